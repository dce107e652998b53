"""``GET /api/v1/payouts`` and ``GET /api/v1/payouts/{payout_id}`` (``finance:read``): payouts
as the provider records them, each explained by its lines (``bridge.ledger.payouts``)."""
from __future__ import annotations

from flask import current_app

from bridge.ledger import payouts as store
from bridge.ledger.views import iso
from bridge.web.api import bp
from bridge.web.auth import require
from bridge.web.contract import operation, respond
from bridge.web.errors import ApiError
from bridge.web.models.finance import PayoutDetail, PayoutList, PayoutsQuery


@bp.get("/payouts")
@require("finance:read")
@operation(query=PayoutsQuery, responses={200: PayoutList}, tags=("finance",))
def payouts(query: PayoutsQuery):
    """Payouts created in ``from <= time < to``, each with what its lines explain."""
    rt = current_app.extensions["bridge"]
    if query.provider is not None and query.provider not in rt.providers:
        raise ApiError(422, "invalid_field", f"provider: one of {', '.join(rt.providers)}", field="provider")
    with rt.reads() as session:
        rows = store.list_payouts(session, query.from_, query.to, query.provider)
    return respond(PayoutList, {"payouts": [{**r, "arrival_date": iso(r["arrival_date"])} for r in rows]})


@bp.get("/payouts/<payout_id>")
@require("finance:read")
@operation(responses={200: PayoutDetail}, errors=(404,), tags=("finance",),
           paths={"payout_id": "the provider's payout id (po_..., payout_...)"})
def payout(payout_id: str):
    """One payout with its breakdown in the payout currency and a line per balance movement."""
    rt = current_app.extensions["bridge"]
    with rt.reads() as session:
        detail = store.payout_detail(session, payout_id)
    if detail is None:
        raise ApiError(404, "not_found", f"no payout {payout_id!r}")
    breakdown = detail.pop("breakdown")
    return respond(PayoutDetail, {**detail, **breakdown, "arrival_date": iso(detail["arrival_date"])})
