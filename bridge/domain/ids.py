"""Ids the bridge stores and shows: our order ids, item ids, license ids, provider references.

One rule for every way an id reaches us, so that an order the merchant's app registers and an
order the bridge creates from a payment's ``metadata.order_id`` / ``custom_data.order_id`` obey
the same limits: a non-empty string of at most 255 characters (the columns' size), every
character printable (no control characters, no lone UTF-16 surrogates, which PostgreSQL and
SQLite cannot store, no invisible format characters). Pure: no I/O.
"""
from __future__ import annotations

import hashlib
from typing import Optional

MAX_ID_LENGTH = 255


def license_id_for(order_id: str, item_id: str) -> str:
    """The id of the license the bridge creates for an order item the merchant gave none."""
    return "lic_" + hashlib.sha256(f"{order_id}|{item_id}".encode()).hexdigest()[:24]


def id_problem(value: object, max_len: int = MAX_ID_LENGTH) -> Optional[str]:
    """None when ``value`` is a usable id, else what is wrong with it (for a 422 or a note)."""
    if not isinstance(value, str):
        return "must be a string"
    if not value.strip():
        return "must not be empty"
    if len(value) > max_len:
        return f"must be at most {max_len} characters (got {len(value)})"
    for c in value:
        if not (c.isprintable() or c == " "):
            return f"must contain only printable characters (found U+{ord(c):04X})"
    return None


def escape_unprintable(text: str) -> str:
    """``text`` with surrogates and every unprintable character (controls, line separators,
    invisible format characters such as a right-to-left override) written as Python escapes
    (``\\ud800``, ``\\n``, ``\\x00``, ``\\u202e``): one form wherever text from outside is
    stored, logged or printed, so a newline in an id can never start a forged line."""
    out = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if out.isprintable():
        return out
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in out)


def printable(text: str, limit: int = 2000) -> str:
    """``text`` safe to store and log (:func:`escape_unprintable`), cut to ``limit`` characters."""
    return escape_unprintable(text)[:limit]
