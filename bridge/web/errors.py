"""JSON errors: every 4xx/5xx the bridge sends has a body naming the problem."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

log = logging.getLogger("bridge.web")


class ApiError(Exception):
    """Raised by views: turned into ``{"error": {"code", "message", "field"?}}``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict | None = None):
    body = {"error": {"code": code, "message": message}}
    if field:
        body["error"]["field"] = field
    resp = jsonify(body)
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def constraint_of(err: IntegrityError) -> str:
    """The constraint (PostgreSQL) or the column list (SQLite) a write violated; no values."""
    orig = err.orig
    diag = getattr(orig, "diag", None)
    name = getattr(diag, "constraint_name", None) if diag is not None else None
    if name:
        return str(name)
    text = str(orig).splitlines()[0] if orig is not None else ""
    # SQLite: "UNIQUE constraint failed: orders.order_id"
    return text.split(":", 1)[1].strip()[:200] if "constraint failed:" in text else "a constraint"


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(err: ApiError):
        return error_response(err.status, err.code, err.message, err.field, err.headers)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        code = (err.name or "error").lower().replace(" ", "_")
        resp = error_response(err.code or 500, code, err.description or err.name)
        if isinstance(err, MethodNotAllowed) and err.valid_methods:
            resp.headers["Allow"] = ", ".join(err.valid_methods)
        return resp

    @app.errorhandler(DataError)
    def _bad_value(err):
        # The database refused a value the client sent (PostgreSQL rejects a NUL character in
        # text): the client's fault, not an outage.
        return error_response(400, "invalid_value", "the request contains a value that cannot be stored or looked up")

    @app.errorhandler(IntegrityError)
    def _conflict(err: IntegrityError):
        # A constraint refused the write: retrying the same request can never succeed, so this
        # is a 409 naming the constraint, never a 503 with Retry-After.
        what = constraint_of(err)
        log.info("constraint violation: %s", what)
        return error_response(409, "conflict", f"the request conflicts with stored data ({what})")

    @app.errorhandler(StaleDataError)
    def _concurrent(err):
        # A row version check failed (ledger/locks.py): another transaction changed the same
        # order or request meanwhile. Nothing was written; the client may retry.
        log.warning("concurrent update refused: %s", type(err).__name__)
        return error_response(409, "concurrent_update",
                              "the order changed while this request was applied; nothing was written, retry")

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(DBAPIError)
    def _db_down(err: DBAPIError):
        if not isinstance(err, (OperationalError, InterfaceError)) and not err.connection_invalidated:
            # A statement the database refused for a reason other than reachability is our bug.
            log.error("database error: %s", type(err.orig).__name__ if err.orig is not None else type(err).__name__)
            return error_response(500, "internal_error", "internal error")
        log.warning("database unavailable: %s", type(err.orig).__name__ if hasattr(err, "orig") else type(err).__name__)
        return error_response(503, "database_unavailable", "the database is unavailable; retry later",
                              headers={"Retry-After": "5"})

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):  # pragma: no cover - a bug, but never a bare 500 page
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal error")
