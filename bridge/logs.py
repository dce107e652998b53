"""Logging to stdout. Log lines carry ids (event, order, token id), never secrets, signature
headers, tokens, bodies or e-mail addresses: the code logs only those ids, and a filter
redacts anything that still looks like a secret."""
from __future__ import annotations

import logging
import re
import sys

_SECRETISH = re.compile(
    r"(whsec_[A-Za-z0-9+/=_-]+|pdl_[a-z]+_[A-Za-z0-9_]+|sk_(live|test)_[A-Za-z0-9]+|brg_[A-Za-z0-9_-]+"
    r"|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}|v1=[0-9a-f]{16,}|h1=[0-9a-f]{16,})")


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        red = _SECRETISH.sub("[redacted]", msg)
        if red != msg:
            record.msg, record.args = red, None
        return True


_configured = False


def configure_logging(level: str = "INFO") -> None:
    global _configured
    root = logging.getLogger("bridge")
    root.setLevel(level.upper())
    if _configured:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.propagate = False
    _configured = True
