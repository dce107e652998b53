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
from typing import Iterator, Optional

from bridge.domain.ids import escape_unprintable

_SECRETISH = re.compile(
    r"(whsec_[A-Za-z0-9+/=_-]+|pdl_[a-z]+_[A-Za-z0-9_]+|sk_(live|test)_[A-Za-z0-9]+|brg_[A-Za-z0-9_-]+"
    r"|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}|v1=[0-9a-f]{16,}|h1=[0-9a-f]{16,})")
# A URL's query string, as a request line or URL shows it (not one already removed).
_QUERY = re.compile(r"\?(?!\[query removed\])[^\s\"']*")

# Ids of what the current thread works on (a job, a request), added to every record.
_context: contextvars.ContextVar[dict] = contextvars.ContextVar("bridge_log_context", default={})
# Records held back by ``holding`` in this thread: (handler, record), said by ``say``.
_held: contextvars.ContextVar[Optional[list]] = contextvars.ContextVar("bridge_log_held", default=None)


def escape_controls(text: str) -> str:
    """Control and other unprintable characters escaped as everywhere else (one form)."""
    return escape_unprintable(text)


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


@contextlib.contextmanager
def holding() -> Iterator[list]:
    """Inside, this thread's records are held back by the bridge's handlers, not written: for
    work that may yet be undone and done again (a batch transaction of the worker), whose lines
    would otherwise say twice that an event was processed. ``say`` writes what was held (after
    the COMMIT); what is not said is dropped. Handlers other than the bridge's (a test's, the
    root logger's) see every record at once."""
    held: list = []
    token = _held.set(held)
    try:
        yield held
    finally:
        _held.reset(token)


def say(held: list) -> None:
    """Write the records ``holding`` held back, in order, with the ids they were logged with."""
    for handler, record in held:
        handler.handle(record)
    held.clear()


def _add_context(record: logging.LogRecord) -> None:
    for key, value in _context.get().items():
        if not hasattr(record, key):
            setattr(record, key, value)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        red = _SECRETISH.sub("[redacted]", msg)
        if not red.isprintable():
            red = escape_controls(red)
        if red != msg:
            record.msg, record.args = red, None
        _add_context(record)
        return True


class _Handler(logging.StreamHandler):
    """stdout, or records held back (``holding``) with the ids of the moment they were logged."""

    def handle(self, record: logging.LogRecord) -> bool:
        held = _held.get()
        if held is None:
            return super().handle(record)
        _add_context(record)
        held.append((self, record))
        return False


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
    handler = _Handler(stream or sys.stdout)
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
