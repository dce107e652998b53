"""``POST /api/v1/refund-quotes`` (``read``): the decision a refund request would get now, with
its ``deadline``, storing nothing (api.md), so the merchant's app can show the buyer what they
would get back, and until when, before they confirm. The body and its errors (404, 409, 422)
are those of ``POST /api/v1/refund-requests``: the same service decides both."""
from __future__ import annotations

from flask import current_app, jsonify

from bridge.services import refund_requests as service
from bridge.web.api import bp
from bridge.web.auth import require
from bridge.web.body import json_object
from bridge.web.errors import ApiError

_HTTP = {"not_found": 404, "conflict": 409, "invalid": 422}


@bp.post("/refund-quotes")
@require("read")
def quote_refund():
    rt = current_app.extensions["bridge"]
    doc = json_object()
    try:
        with rt.reads() as session:  # a read-only session: a quote cannot write
            decision = service.quote(session, rt.policies, doc, rt.clock())
    except service.RequestError as err:
        raise ApiError(_HTTP[err.kind], err.code, err.message, field=err.field)
    return jsonify(decision)
