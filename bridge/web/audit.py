"""The ``/api/v1`` audit trail: one metadata-only row per call, and the per-IP lookup of recent
authentication failures that the throttle in ``bridge.web.auth`` reads from it.

A row holds only what cannot carry a credential: time, client IP, method, path (never the query
string), status, the token's row id and the scope the route needs. It is written after the
answer is known, in its own short transaction; if that fails the answer stands and a warning
(naming no request data) is logged, because the audit must never change what the API says.
"""
from __future__ import annotations

import logging
from datetime import datetime

from flask import Flask, Response, current_app, g, request
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from bridge.domain.ids import printable
from bridge.ledger.models import ApiAudit
from bridge.web.api import bp as api_bp

log = logging.getLogger("bridge.web.audit")

AUTH_FAILURE = 401  # the only status the throttle counts: 403 means the token was valid
_PREFIX = api_bp.url_prefix


def init_app(app: Flask) -> None:
    app.after_request(_record)


def is_api_request() -> bool:
    path = request.path
    return path == _PREFIX or path.startswith(_PREFIX + "/")


def _clean(value: str, size: int) -> str:
    # Paths and (behind a proxy) addresses come from the client: a control character such as
    # NUL would make PostgreSQL refuse the row, so store it escaped; cut to the column.
    return printable(value, size)


def client_ip() -> str:
    """The address the throttle keys on and the row records (ProxyFix, if on, already applied)."""
    return _clean(request.remote_addr or "unknown", 64)


def recent_failures(session: Session, ip: str, since: datetime, limit: int) -> list[datetime]:
    """Times of the newest ``limit`` authentication failures from ``ip`` after ``since``,
    newest first (served by the (client_ip, status, created_at) index)."""
    return list(session.execute(
        select(ApiAudit.created_at)
        .where(ApiAudit.client_ip == ip, ApiAudit.status == AUTH_FAILURE, ApiAudit.created_at > since)
        .order_by(ApiAudit.created_at.desc())
        .limit(limit)).scalars())


def _record(response: Response) -> Response:
    if not is_api_request():
        return response
    rt = current_app.extensions["bridge"]
    # ``auth.require`` marks its views with the scope they need; the view may not have run
    # (429, 404), so the scope is read off the route rather than from the request's progress.
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    row = {
        "created_at": rt.clock(),
        "client_ip": client_ip(),
        "method": _clean(request.method, 16),
        "path": _clean(request.path, 512),
        "status": response.status_code,
        "token_id": g.get("token_id"),
        "scope": getattr(view, "required_scope", None),
    }
    try:
        # Core INSERT on the engine: one statement, no ORM unit of work, its own transaction
        # (the view's own work has already committed or rolled back).
        with rt.engine.begin() as conn:
            conn.execute(insert(ApiAudit), row)
    except Exception as err:  # the database is down or locked: the answer must not change
        log.warning("api audit row not written (%s %s): %s", row["method"], row["status"],
                    type(err).__name__)
    return response
