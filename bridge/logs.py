"""Logging to stdout. Log lines carry ids (event, order, job, request, token id), never
secrets, signature headers, tokens, bodies or e-mail addresses: the code logs only those ids,
and a filter redacts anything that still looks like a secret and escapes control characters
(an event id is chosen by whoever signed the event: a newline in it must not start a forged
line).

``BRIDGE_LOG_FORMAT=json`` writes one JSON object per line (python-json-logger): ``time``,
``level``, ``logger``, ``message``, and ``event_id``, ``order_id``, ``job_id``,
``request_id`` where known, from ``extra=`` or from the ``log_context`` the worker (per job)
and the web app (per request) set.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import sys
from typing import Iterator

_SECRETISH = re.compile(
    r"(whsec_[A-Za-z0-9+/=_-]+|pdl_[a-z]+_[A-Za-z0-9_]+|sk_(live|test)_[A-Za-z0-9]+|brg_[A-Za-z0-9_-]+"
    r"|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}|v1=[0-9a-f]{16,}|h1=[0-9a-f]{16,})")
# A URL's query string, as a request line or URL shows it (not one already removed).
_QUERY = re.compile(r"\?(?!\[query removed\])[^\s\"']*")
# C0 and C1 controls, DEL, and the Unicode line/paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

# Ids of what the current thread works on (a job, a request), added to every record.
_context: contextvars.ContextVar[dict] = contextvars.ContextVar("bridge_log_context", default={})


def escape_controls(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", text)


def strip_queries(text: str) -> str:
    """Every URL query string in ``text`` replaced (tokens, e-mails, anything may be in one)."""
    return _QUERY.sub("?[query removed]", text)


class QueryFreeFilter(logging.Filter):
    """For loggers that quote request lines (gunicorn's error log, werkzeug's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = escape_controls(strip_queries(msg))
        if clean != msg:
            record.msg, record.args = clean, None
        return True


def redact(text: str) -> str:
    return _SECRETISH.sub("[redacted]", text)


def push_context(**ids) -> contextvars.Token:
    """Records logged from now on (in this thread) carry these ids; undo with ``pop_context``."""
    return _context.set({**_context.get(), **{k: v for k, v in ids.items() if v is not None}})


def pop_context(token: contextvars.Token) -> None:
    _context.reset(token)


@contextlib.contextmanager
def log_context(**ids) -> Iterator[None]:
    """Records logged inside carry these ids (``job_id=...``, ``request_id=...``)."""
    token = push_context(**ids)
    try:
        yield
    finally:
        pop_context(token)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        red = _SECRETISH.sub("[redacted]", msg)
        if not red.isprintable():
            red = escape_controls(red)
        if red != msg:
            record.msg, record.args = red, None
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class _TextFormatter(logging.Formatter):
    """The message line as today; a traceback (several lines) is redacted too."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return redact(line) if (record.exc_text or record.stack_info) else line


def _json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    class _RedactingJson(JsonFormatter):
        # Extras and tracebacks are redacted in the finished line too; json.dumps has already
        # escaped every control character.
        def format(self, record: logging.LogRecord) -> str:
            return redact(super().format(record))

    return _RedactingJson(["levelname", "name", "message"], timestamp="time",
                          rename_fields={"levelname": "level", "name": "logger"})


def make_handler(fmt: str = "text", stream=None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(_json_formatter() if fmt == "json" else
                         _TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter())
    return handler


_configured: set = set()


def configure_logging(level: str = "INFO", fmt: str = "text", loggers: tuple[str, ...] = ("bridge",)) -> None:
    """Send the named loggers (``bridge``, and ``werkzeug`` under ``bridge serve``) to stdout
    in ``fmt``. Idempotent per logger: the first call's format stays."""
    for name in loggers:
        logger = logging.getLogger(name)
        logger.setLevel(level.upper())
        if name in _configured:
            continue
        logger.addHandler(make_handler(fmt))
        logger.propagate = False
        _configured.add(name)
