"""``GET /metrics`` (scope ``metrics``): the Prometheus text of ``bridge.metrics``."""
from __future__ import annotations

from flask import Blueprint, Response, current_app

from bridge.metrics import CONTENT_TYPE
from bridge.web.auth import require
from bridge.web.errors import error_response

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
@require("metrics")
def metrics():
    rt = current_app.extensions["bridge"]
    if not rt.metrics.enabled:
        return error_response(404, "not_found", "metrics are switched off (BRIDGE_METRICS=off)")
    return Response(rt.metrics.render(rt.reads, rt.clock()), 200, {"Cache-Control": "no-store"},
                    content_type=CONTENT_TYPE)
