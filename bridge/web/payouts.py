"""``GET /api/v1/payouts`` and ``GET /api/v1/payouts/{payout_id}`` (``finance:read``): payouts
as the provider records them, each explained by its lines (``bridge.ledger.payouts``)."""
from __future__ import annotations

from flask import current_app, jsonify, request

from bridge.ledger import payouts as store
from bridge.ledger.views import iso
from bridge.web.api import bp
from bridge.web.auth import require
from bridge.web.errors import ApiError
from bridge.web.finance import _day


@bp.get("/payouts")
@require("finance:read")
def payouts():
    rt = current_app.extensions["bridge"]
    start, end = _day("from"), _day("to")
    if end <= start:
        raise ApiError(422, "invalid_field", "to: must be after from", field="to")
    provider = request.args.get("provider")
    if provider is not None and provider not in rt.providers:
        raise ApiError(422, "invalid_field", f"provider: one of {', '.join(rt.providers)}", field="provider")
    with rt.reads() as session:
        rows = store.list_payouts(session, start, end, provider)
    return jsonify({"payouts": [{**r, "arrival_date": iso(r["arrival_date"])} for r in rows]})


@bp.get("/payouts/<payout_id>")
@require("finance:read")
def payout(payout_id: str):
    rt = current_app.extensions["bridge"]
    with rt.reads() as session:
        detail = store.payout_detail(session, payout_id)
    if detail is None:
        raise ApiError(404, "not_found", f"no payout {payout_id!r}")
    breakdown = detail.pop("breakdown")
    return jsonify({**detail, **breakdown, "arrival_date": iso(detail["arrival_date"])})
