"""``/api/v1/licenses`` and ``/api/v1/disputes``: what the merchant's app reads to know whether
a buyer may use what they bought, and which chargebacks are under way."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from bridge.domain.states import OPEN_DISPUTE
from bridge.ledger import orders as order_repo
from bridge.ledger.models import Dispute, License, Order
from bridge.ledger.views import dispute_view, license_view
from bridge.web.api import bp
from bridge.web.auth import require
from bridge.web.contract import operation, respond
from bridge.web.errors import ApiError
from bridge.web.models.licenses import DisputeList, DisputeQuery, LicenseList, LicenseQuery
from bridge.web.models.orders import LicenseOut

# ?status= of GET /disputes: "open" = not decided yet (an inquiry/warning or an open chargeback),
# "closed" = won or lost, or one exact status.
DISPUTE_FILTERS = {"open": OPEN_DISPUTE, "closed": ("won", "lost"), "warning": ("warning",),
                   "won": ("won",), "lost": ("lost",)}


def _rt():
    return current_app.extensions["bridge"]


def _license_json(lic: License, order_id: str, now) -> dict:
    """The stored view, with ``expired`` derived at read time from ``expires_at``."""
    return license_view(lic, order_id, now)


@bp.get("/licenses/<license_id>")
@require("read")
@operation(responses={200: LicenseOut}, errors=(404,), tags=("licenses",))
def get_license(license_id: str):
    """A license: active, suspended (a dispute is open), revoked or expired, with the reason."""
    rt = _rt()
    with rt.reads() as session:
        lic = session.get(License, license_id)
        if lic is None:
            raise ApiError(404, "license_not_found", f"no license {license_id!r}")
        order = session.get(Order, lic.order_pk)
        out = _license_json(lic, order.order_id if order else None, rt.clock())
    return respond(LicenseOut, out)


@bp.get("/licenses")
@require("read")
@operation(query=LicenseQuery, responses={200: LicenseList}, errors=(404,), tags=("licenses",))
def list_licenses(query: LicenseQuery):
    """The licenses of an order."""
    rt = _rt()
    order_id = query.order_id
    with rt.reads() as session:
        order = order_repo.get_order(session, order_id)
        if order is None:
            raise ApiError(404, "order_not_found", f"no order {order_id!r}")
        rows = session.execute(select(License).where(License.order_pk == order.id)
                               .order_by(License.item_id)).scalars().all()
        now = rt.clock()
        out = {"order_id": order.order_id, "licenses": [_license_json(lic, order.order_id, now) for lic in rows]}
    return respond(LicenseList, out)


@bp.get("/disputes")
@require("read")
@operation(query=DisputeQuery, responses={200: DisputeList}, tags=("disputes",))
def list_disputes(query: DisputeQuery):
    """Disputes, oldest first (``?status=open``: not decided yet)."""
    rt = _rt()
    status, limit = query.status, query.limit
    with rt.reads() as session:
        q = (select(Dispute, Order.order_id).outerjoin(Order, Order.id == Dispute.order_pk)
             .order_by(Dispute.opened_at, Dispute.id).limit(limit))
        if status:
            q = q.where(Dispute.status.in_(DISPUTE_FILTERS[status]))
        rows = session.execute(q).all()
        out = {"disputes": [dispute_view(d, order_id) for d, order_id in rows]}
    return respond(DisputeList, out)
