"""Which failures of an event's processing retrying can never fix.

A signed event whose content cannot be stored or computed (an amount or fee beyond any column,
a time outside years 1-9999, a lone UTF-16 surrogate in a string, JSON nested too deep or with
a 5,000-digit number) fails the same way on every attempt: retrying it twelve times over an
hour only hides it. Such an event ends ``failed`` at once with the reason, visible to finance
(``event_failed``) and to operators (``bridge events list --status failed``).

Everything else (the database unreachable, a lock timeout, a serialisation failure, a unique
violation from a concurrent writer, a provider timeout) may succeed later, and is retried.
"""
from __future__ import annotations

import json
from typing import Optional

from sqlalchemy import exc as sa_exc

from bridge.domain.ids import printable  # noqa: F401 - re-exported for the worker


def permanent_reason(err: BaseException) -> Optional[str]:
    """A short reason when ``err`` is a property of the event's content, else None."""
    if isinstance(err, json.JSONDecodeError):
        return f"body is not valid JSON: {err.msg} at position {err.pos}"
    if isinstance(err, RecursionError):
        return "body is nested too deeply to process"
    if isinstance(err, OverflowError):
        return f"a value is out of range: {err}"
    if isinstance(err, UnicodeError):
        return f"a string cannot be stored (invalid Unicode, such as a lone surrogate): {type(err).__name__}"
    if isinstance(err, sa_exc.DataError):
        # PostgreSQL refused the value itself (numeric out of range, invalid text, value too
        # long for its column): the same value is refused on every attempt.
        return f"the database refused a value: {type(err.orig).__name__}"
    if isinstance(err, ValueError) and "Exceeds the limit" in str(err) and "integer string" in str(err):
        return "a number in the body has too many digits"
    return None
