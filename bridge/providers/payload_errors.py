"""``PayloadError`` and the defensive field readers the event parsers share.

A provider event of a type we handle whose payload lacks a field we need, or carries it with the
wrong type, raises :class:`PayloadError` naming the field (``data.object.amount: expected an
integer, got 'abc'``). The worker marks the event failed with that message, so an operator sees
exactly what was wrong. The readers below never let a ``KeyError``/``TypeError``/``ValueError``
escape: everything becomes a ``PayloadError``.

Paths in messages are dotted from the envelope root (``data.object.refunds.data[0].status``).
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Optional

from bridge.domain.money import normalize_currency, parse_minor

__all__ = ["PayloadError"]

_MISSING = object()


class PayloadError(ValueError):
    """A known event type's payload lacks (or mistypes) what the bridge needs."""

    def __init__(self, path: str, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def join(path: str, key: str) -> str:
    """``data.object`` + ``amount`` -> ``data.object.amount``; the root path is ``""``."""
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- containers -------------------------------------------------------------------------------

def as_dict(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise PayloadError(path, f"expected an object, got {_show(value)}")
    return value


def req_dict(obj: dict, key: str, path: str) -> dict:
    value = obj.get(key, _MISSING)
    if value is _MISSING or value is None:
        raise PayloadError(join(path, key), "missing")
    return as_dict(value, join(path, key))


def opt_dict(obj: dict, key: str, path: str) -> Optional[dict]:
    value = obj.get(key)
    if value is None:
        return None
    return as_dict(value, join(path, key))


def req_list(obj: dict, key: str, path: str) -> list:
    value = obj.get(key, _MISSING)
    if value is _MISSING or value is None:
        raise PayloadError(join(path, key), "missing")
    if not isinstance(value, list):
        raise PayloadError(join(path, key), f"expected a list, got {_show(value)}")
    return value


def opt_list(obj: dict, key: str, path: str) -> list:
    """A list that may be absent or null (then empty)."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(join(path, key), f"expected a list, got {_show(value)}")
    return value


def opt_stripe_list(obj: dict, key: str, path: str) -> Optional[list]:
    """A Stripe list object (``{"object": "list", "data": [...]}``); None when absent/null."""
    value = obj.get(key)
    if value is None:
        return None
    listing = as_dict(value, join(path, key))
    return req_list(listing, "data", join(path, key))


# --- scalars ----------------------------------------------------------------------------------

def req_str(obj: dict, key: str, path: str) -> str:
    value = obj.get(key, _MISSING)
    if value is _MISSING or value is None:
        raise PayloadError(join(path, key), "missing")
    if not isinstance(value, str) or not value:
        raise PayloadError(join(path, key), f"expected a non-empty string, got {_show(value)}")
    return value


def opt_str(obj: dict, key: str, path: str) -> Optional[str]:
    """A string or None; an empty string counts as None."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError(join(path, key), f"expected a string, got {_show(value)}")
    return value


def opt_ref(obj: dict, key: str, path: str) -> Optional[str]:
    """A merchant reference from metadata/custom_data: a string, or an integer we stringify."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise PayloadError(join(path, key), f"expected a string, got {_show(value)}")
    return str(value).strip() or None


def opt_id(obj: dict, key: str, path: str) -> Optional[str]:
    """A Stripe expandable field: an id string, an expanded object with ``id``, or null."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return req_str(value, "id", join(path, key))
    raise PayloadError(join(path, key), f"expected an id or an object, got {_show(value)}")


def req_bool(obj: dict, key: str, path: str) -> bool:
    value = obj.get(key, _MISSING)
    if value is _MISSING or value is None:
        raise PayloadError(join(path, key), "missing")
    if not isinstance(value, bool):
        raise PayloadError(join(path, key), f"expected true/false, got {_show(value)}")
    return value


def opt_bool(obj: dict, key: str, path: str) -> Optional[bool]:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise PayloadError(join(path, key), f"expected true/false, got {_show(value)}")
    return value


# --- money ------------------------------------------------------------------------------------

def _minor(value: Any, path: str) -> int:
    try:
        return parse_minor(value)
    except (ValueError, TypeError):
        raise PayloadError(path, f"expected an amount in minor units, got {_show(value)}") from None


def req_amount(obj: dict, key: str, path: str, nonneg: bool = False) -> int:
    """An amount in minor units (Stripe int or Paddle string of digits), required;
    ``nonneg`` rejects negative amounts (a payment, refund or dispute amount)."""
    value = obj.get(key, _MISSING)
    if value is _MISSING or value is None:
        raise PayloadError(join(path, key), "missing")
    amount = _minor(value, join(path, key))
    if nonneg and amount < 0:
        raise PayloadError(join(path, key), f"negative amount {amount}")
    return amount


def opt_amount(obj: dict, key: str, path: str, nonneg: bool = False) -> Optional[int]:
    if obj.get(key) is None:
        return None
    return req_amount(obj, key, path, nonneg)


def req_currency(obj: dict, key: str, path: str) -> str:
    value = obj.get(key, _MISSING)
    if value is _MISSING or value is None:
        raise PayloadError(join(path, key), "missing")
    if not isinstance(value, str):
        raise PayloadError(join(path, key), f"expected a currency code, got {_show(value)}")
    try:
        return normalize_currency(value)
    except ValueError:
        raise PayloadError(join(path, key), f"not an ISO 4217 currency code: {_show(value)}") from None


def opt_currency(obj: dict, key: str, path: str) -> Optional[str]:
    if obj.get(key) is None:
        return None
    return req_currency(obj, key, path)


# --- times ------------------------------------------------------------------------------------

# Unix seconds Stripe could plausibly send: 1970 .. 9999-12-31.
_MAX_UNIX = 253_402_300_799


def _unix(value: Any, path: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(path, f"expected a unix timestamp, got {_show(value)}")
    if not 0 <= value <= _MAX_UNIX:
        raise PayloadError(path, f"unix timestamp out of range: {value}")
    return datetime.fromtimestamp(value, tz=timezone.utc)


def req_unix(obj: dict, key: str, path: str) -> datetime:
    """A Stripe unix timestamp as an aware UTC datetime."""
    value = obj.get(key, _MISSING)
    if value is _MISSING or value is None:
        raise PayloadError(join(path, key), "missing")
    return _unix(value, join(path, key))


def opt_unix(obj: dict, key: str, path: str, zero_is_none: bool = False) -> Optional[datetime]:
    value = obj.get(key)
    if value is None or (zero_is_none and type(value) is int and value == 0):
        return None
    return _unix(value, join(path, key))


# RFC 3339 date-time with a mandatory offset; fromisoformat does the rest (it also accepts
# Paddle's occasional nanosecond fractions, truncating them to microseconds).
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _iso(value: Any, path: str) -> datetime:
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise PayloadError(path, f"expected an RFC 3339 date-time with offset, got {_show(value)}")
    try:
        return datetime.fromisoformat(value).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise PayloadError(path, f"invalid date-time {_show(value)}") from None


def req_iso(obj: dict, key: str, path: str) -> datetime:
    """A Paddle RFC 3339 time as an aware UTC datetime."""
    value = obj.get(key, _MISSING)
    if value is _MISSING or value is None:
        raise PayloadError(join(path, key), "missing")
    return _iso(value, join(path, key))


def opt_iso(obj: dict, key: str, path: str) -> Optional[datetime]:
    value = obj.get(key)
    if value is None:
        return None
    return _iso(value, join(path, key))


def opt_int(obj: dict, key: str, path: str) -> Optional[int]:
    """A plain JSON integer (a count, not money) or None."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(join(path, key), f"expected an integer, got {_show(value)}")
    return value


def opt_country(obj: Optional[dict], key: str, path: str) -> Optional[str]:
    """An ISO 3166-1 alpha-2 country, upper-cased; None when absent or empty."""
    if obj is None:
        return None
    value = opt_str(obj, key, path)
    return value.strip().upper() or None if value else None


# --- catalog hints ----------------------------------------------------------------------------

_BILLING_ALIASES = {
    "one_time": "one_time", "one-time": "one_time", "onetime": "one_time",
    "monthly": "monthly", "month": "monthly",
    "annual": "annual", "yearly": "annual", "year": "annual",
}


def normalize_billing(value: Optional[str]) -> Optional[str]:
    """A merchant's ``billing`` key: one_time | monthly | annual (a few aliases); anything else
    None, so that the catalog or the price's own cycle decides rather than a typo."""
    if value is None:
        return None
    return _BILLING_ALIASES.get(value.strip().lower())
