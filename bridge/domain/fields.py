"""Field types of the bridge's JSON boundary (pydantic v2), shared by the policy input models
and the web layer's request and response models, and the translation of a pydantic
``ValidationError`` into the one thing a caller needs: the path of the offending field and
what is wrong with it (``items[0].amount: must be ...``).

Pure: no I/O, no clock. The types are strict (no ``"12"`` for 12, no ``1.0`` for 1, no ``1``
for true) because money and flags that arrive in the wrong JSON type are a client bug that
must be named, not guessed at.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any, Iterable, Optional

from pydantic import BeforeValidator, Field, Strict, ValidationError, WithJsonSchema

# Amounts in minor units: the ledger's columns are 64-bit; 10**15 (ten trillion dollars) is far
# above any real payment and far below what the database can hold.
MAX_AMOUNT = 10**15


_UNPRINTABLE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def check_text(value: str) -> str:
    """Printable text: no control characters (PostgreSQL refuses NUL, SQLite keeps it) and no
    lone UTF-16 surrogates (valid in a JSON escape, not encodable as UTF-8 for the database)."""
    bad = _UNPRINTABLE.search(value)
    if bad is not None:
        if 0xD800 <= ord(bad.group()) <= 0xDFFF:
            raise ValueError("must not contain a lone UTF-16 surrogate")
        raise ValueError("must not contain control characters")
    return value


def _nonblank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return check_text(value)


def _text(value: Any) -> Any:
    if isinstance(value, str):
        check_text(value)
    return value


def _id(value: Any) -> Any:
    if isinstance(value, str):
        _nonblank(value)
    return value


def parse_utc(value: Any) -> datetime:
    """ISO 8601 with ``Z`` or an offset, as an aware UTC datetime inside years 1-9999."""
    if isinstance(value, datetime):
        moment = value
    elif not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 time string, got {kind(value)}")
    else:
        # fromisoformat refuses control characters and surrogates itself; the RFC 3339 spellings
        # it does not know are tried only when the plain parse fails (the fast path stays fast).
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            try:
                moment = datetime.fromisoformat(_rfc3339(value.strip()))
            except ValueError:
                raise ValueError(f"not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"time {value!r} has no time zone (add Z or an offset)")
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:
        # 9999-12-31T23:59:59-05:00 is a valid ISO string whose UTC instant does not exist.
        raise ValueError(f"time {value!r} is outside years 1-9999 in UTC") from None


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _rfc3339(text: str) -> str:
    """What RFC 3339 allows and ``fromisoformat`` does not: lower-case ``t``/``z`` and more
    than six digits of a second (cut to microseconds, the resolution we store)."""
    if len(text) > 10 and text[10] == "t":
        text = text[:10] + "T" + text[11:]
    if text.endswith("z"):
        text = text[:-1] + "Z"
    return _FRACTION.sub(r"\1", text, count=1)


def kind(value: Any) -> str:
    """How a JSON value is named in a message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


_TIME_SCHEMA = {"type": "string", "format": "date-time", "examples": ["2026-03-01T10:00:00Z"]}

# The same rules as patterns for the OpenAPI document (not enforced by pydantic-core: the
# validators above are as fast here and say precisely what is wrong).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
PRINTABLE_NONBLANK = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"


def id_type(max_length: int = 255) -> Any:
    """An id the merchant or a provider chose: 1-``max_length`` printable characters."""
    return Annotated[str, Strict(), Field(min_length=1, max_length=max_length,
                                          json_schema_extra={"pattern": PRINTABLE_NONBLANK}),
                     BeforeValidator(_id)]


Id = id_type(255)
# Optional free text of one line (sku, price id, names): printable, at most 255 characters.
_P = {"pattern": PRINTABLE}
Text = Annotated[str, Strict(), Field(max_length=255, json_schema_extra=_P), BeforeValidator(_text)]
Email = Annotated[str, Strict(), Field(max_length=320, json_schema_extra=_P), BeforeValidator(_text)]
Note = Annotated[str, Strict(), Field(max_length=2000, json_schema_extra=_P), BeforeValidator(_text)]
Money = Annotated[int, Strict(), Field(ge=0, le=MAX_AMOUNT)]
PositiveMoney = Annotated[int, Strict(), Field(gt=0, le=MAX_AMOUNT)]
Flag = Annotated[bool, Strict()]
UtcTime = Annotated[datetime, BeforeValidator(parse_utc), WithJsonSchema(_TIME_SCHEMA)]


# -- ValidationError -> (field path, message) ---------------------------------------------------

class FieldProblem(ValueError):
    """Raised by a model validator that checks several fields: ``field`` is the path below the
    model (``items[1].item_id``), appended to the model's own location in the error."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def field_path(loc: Iterable[Any], prefix: str = "") -> str:
    """``('order', 'items', 0, 'paid_at')`` -> ``order.items[0].paid_at``."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.startswith(("function-", "json-or-python", "tagged-union")):
            continue   # pydantic's own step names inside a validator chain, not a key
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


_MESSAGES = {
    "missing": "required",
    "extra_forbidden": "unknown field",
    "bool_type": "expected true or false",
    "int_type": "expected an integer",
    "string_type": "expected a string",
    "list_type": "expected an array",
    "dict_type": "expected an object",
    "model_type": "expected an object",
    "model_attributes_type": "expected an object",
}


def _why_not_printable(value: Any) -> str:
    if isinstance(value, str):
        try:
            check_text(value)
        except ValueError as err:
            return str(err)
        if not value.strip():
            return "must not be blank"
    return "must be printable text"


def error_message(err: dict) -> str:
    kind_ = err.get("type", "")
    if kind_ == "string_pattern_mismatch" and err.get("ctx", {}).get("pattern") in (PRINTABLE, PRINTABLE_NONBLANK):
        return _why_not_printable(err.get("input"))
    if kind_ == "string_unicode":   # a lone surrogate cannot cross into pydantic-core's strings
        return "must not contain a lone UTF-16 surrogate"
    if kind_ == "value_error":
        msg = str(err.get("ctx", {}).get("error") or err.get("msg", "invalid"))
        return msg
    if kind_ in ("literal_error", "enum"):
        expected = err.get("ctx", {}).get("expected", "")
        return f"must be one of {expected.replace(' or ', ', ')}, got {kind(err.get('input'))}"
    base = _MESSAGES.get(kind_)
    if base is not None:
        if kind_ in ("missing", "extra_forbidden"):
            return base
        return f"{base}, got {kind(err.get('input'))}"
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")


def first_error(err: ValidationError, prefix: str = "") -> tuple[str, str]:
    """The first problem of a ``ValidationError`` as (field path, message)."""
    errors = err.errors(include_url=False)
    if not errors:   # pragma: no cover - pydantic always lists at least one
        return prefix or "body", "invalid"
    first = errors[0]
    path = field_path(first.get("loc", ()), prefix)
    problem = first.get("ctx", {}).get("error")
    if isinstance(problem, FieldProblem):
        sub = problem.field
        path = f"{path}{sub}" if sub.startswith("[") or not path else f"{path}.{sub}"
    return path or prefix or "body", error_message(first)


def optional(tp: Any) -> Any:
    """``Optional[tp]`` (for fields built from a table of names)."""
    return Optional[tp]
