"""Reading and validating JSON request bodies: bad input is a 4xx naming the field."""
from __future__ import annotations

from typing import Any, Optional

from flask import request

from bridge.web.errors import ApiError


def json_object() -> dict:
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "the body must be application/json")
    try:
        doc = request.get_json(force=True, silent=False, cache=True)
    except Exception:  # werkzeug raises BadRequest for invalid JSON
        raise ApiError(400, "invalid_json", "the body is not valid JSON")
    if not isinstance(doc, dict):
        raise ApiError(422, "invalid_body", "the body must be a JSON object")
    return doc


def invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_field", f"{field}: {message}", field=field)


def req_str(doc: dict, key: str, where: str, max_len: int = 255) -> str:
    v = doc.get(key)
    if not isinstance(v, str) or not v.strip() or len(v) > max_len:
        raise invalid(f"{where}{key}", f"a non-empty string of at most {max_len} characters is required")
    _no_control_characters(v, f"{where}{key}")
    return v


def _no_control_characters(v: str, field: str) -> None:
    # Ids and names are printable text: a NUL would be refused by PostgreSQL but kept by SQLite.
    if any(ord(c) < 32 or ord(c) == 127 for c in v):
        raise invalid(field, "must not contain control characters")


def opt_str(doc: dict, key: str, where: str, max_len: int = 255) -> Optional[str]:
    v = doc.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or len(v) > max_len:
        raise invalid(f"{where}{key}", f"must be a string of at most {max_len} characters")
    _no_control_characters(v, f"{where}{key}")
    return v


def opt_bool(doc: dict, key: str, where: str, default: bool = False) -> bool:
    v = doc.get(key, default)
    if not isinstance(v, bool):
        raise invalid(f"{where}{key}", "must be true or false")
    return v


def opt_amount(doc: dict, key: str, where: str) -> Optional[int]:
    v = doc.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > 10**15:
        raise invalid(f"{where}{key}", "must be a non-negative integer amount in minor units")
    return v


def as_list(v: Any, field: str) -> list:
    if not isinstance(v, list):
        raise invalid(field, "must be a list")
    return v


def list_args(statuses) -> tuple[Optional[str], int]:
    """``?status=`` (one of ``statuses``) and ``?limit=`` (1..500, default 100) of a list endpoint."""
    status = request.args.get("status")
    if status is not None and status not in statuses:
        raise ApiError(422, "invalid_field", f"status: must be one of {', '.join(statuses)}", field="status")
    try:
        limit = min(500, max(1, int(request.args.get("limit", 100))))
    except ValueError:
        raise ApiError(422, "invalid_field", "limit: must be an integer", field="limit")
    return status, limit
