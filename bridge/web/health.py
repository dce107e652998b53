"""``/healthz`` (the process answers) and ``/readyz`` (database reachable, schema current)."""
from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from bridge.ledger import schema
from bridge.web.errors import error_response

log = logging.getLogger("bridge.web.health")

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    rt = current_app.extensions["bridge"]
    try:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = schema.is_current(rt.engine)
    except Exception as err:  # any failure to reach the database means "not ready"
        # The exception class stays in the log: an unauthenticated probe learns nothing of the
        # driver or the database behind it.
        log.warning("readiness check failed: %s", type(err).__name__)
        return error_response(503, "database_unavailable", "the database is unreachable")
    if not current:
        return error_response(503, "schema_outdated", "run `bridge db upgrade`")
    return jsonify({"status": "ready"})
