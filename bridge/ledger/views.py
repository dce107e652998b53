"""Rows -> the JSON shapes of api.md (no HTTP here: the web layer returns these)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.ledger.models import (Dispute, License, Order, OrderItem, Payment, PaymentItem, Refund,
                                  RefundRequest)


def iso(value: Optional[datetime]) -> Optional[str]:
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S") + (f".{value.microsecond:06d}" if value.microsecond else "") + "Z"


def payment_view(p: Payment, lines: list[PaymentItem]) -> dict:
    return {"provider": p.provider, "amount": p.amount, "tax": p.tax, "fee": p.fee,
            "net": (p.amount - p.fee) if p.amount is not None and p.fee is not None else None,
            "currency": p.currency, "paid_at": iso(p.paid_at), "purchase": p.purchase,
            "period_start": iso(p.period_start), "period_end": iso(p.period_end),
            "duplicate_charge": p.duplicate_of is not None,
            "provider_ids": {k: v for k, v in (("transaction_id", p.transaction_id), ("charge_id", p.charge_id),
                                               ("payment_intent_id", p.payment_intent_id),
                                               ("invoice_id", p.invoice_id),
                                               ("checkout_session_id", p.checkout_session_id),
                                               ("subscription_id", p.subscription_id)) if v},
            "items": [{"provider_item_id": li.provider_item_id, "price_id": li.price_id, "amount": li.amount,
                       "tax": li.tax} for li in lines]}


def refund_view(r: Refund) -> dict:
    return {"provider": r.provider, "provider_refund_id": r.provider_refund_id, "amount": r.amount,
            "currency": r.currency, "status": r.status, "refund_request_id": r.refund_request_id,
            "failure_reason": r.failure_reason, "updated_at": iso(r.updated_at)}


def dispute_view(d: Dispute, order_id: Optional[str] = None) -> dict:
    return {"provider": d.provider, "provider_dispute_id": d.provider_dispute_id, "order_id": order_id,
            "amount": d.amount, "currency": d.currency, "reason": d.reason, "status": d.status,
            "provider_status": d.provider_status, "evidence_due_by": iso(d.evidence_due_by),
            "funds_withdrawn": d.funds_withdrawn, "funds_reinstated": d.funds_reinstated, "fee": d.fee,
            "restriction": d.restriction, "opened_at": iso(d.opened_at), "updated_at": iso(d.status_at)}


def license_view(lic: License, order_id: Optional[str] = None, now: Optional[datetime] = None) -> dict:
    """The stored license, with ``expired`` derived at read time: access ran to the end of the
    paid period after a subscription was canceled."""
    out = {"license_id": lic.license_id, "order_id": order_id, "item_id": lic.item_id, "status": lic.status,
           "reason": lic.reason, "changed_at": iso(lic.changed_at), "expires_at": iso(lic.expires_at)}
    if lic.status == "active" and lic.expires_at is not None and now is not None and lic.expires_at <= now:
        out.update(status="expired", reason="subscription ended", changed_at=iso(lic.expires_at))
    return out


def refund_request_view(rr: RefundRequest, refunds: list[Refund], order_id: Optional[str] = None) -> dict:
    out = {"id": rr.id, "order_id": order_id, "status": rr.status, "reason": rr.reason, "items": rr.items,
           "requested_at": iso(rr.requested_at), "decision": rr.decision,
           "refunds": [{"provider": r.provider, "provider_refund_id": r.provider_refund_id, "amount": r.amount,
                        "status": r.status} for r in refunds],
           "created_at": iso(rr.created_at), "updated_at": iso(rr.updated_at)}
    if rr.review:
        out["review"] = rr.review
    if rr.error_code:
        out["error"] = {"code": rr.error_code, "detail": rr.error_detail}
    return out


def order_view(session: Session, order: Order, now: Optional[datetime] = None) -> dict[str, Any]:
    items = session.execute(select(OrderItem).where(OrderItem.order_pk == order.id).order_by(OrderItem.id)).scalars().all()
    pays = session.execute(select(Payment).where(Payment.order_pk == order.id).order_by(Payment.paid_at, Payment.id)).scalars().all()
    pay_ids = [p.id for p in pays]
    lines = session.execute(select(PaymentItem).where(PaymentItem.payment_pk.in_(pay_ids)).order_by(PaymentItem.id)).scalars().all() if pay_ids else []
    refunds = session.execute(select(Refund).where(Refund.payment_pk.in_(pay_ids)).order_by(Refund.id)).scalars().all() if pay_ids else []
    disputes = session.execute(select(Dispute).where(Dispute.order_pk == order.id).order_by(Dispute.id)).scalars().all()
    licenses = session.execute(select(License).where(License.order_pk == order.id).order_by(License.item_id)).scalars().all()
    requests = session.execute(select(RefundRequest).where(RefundRequest.order_pk == order.id)
                               .order_by(RefundRequest.created_at)).scalars().all()
    return {
        "order_id": order.order_id, "policy": order.policy, "currency": order.currency, "bundle": order.bundle,
        "status": order.status, "source": order.source,
        "customer": {"id": order.customer_id, "email": order.customer_email, "country": order.customer_country,
                     "business": order.customer_business},
        "items": [{"item_id": i.item_id, "sku": i.sku, "category": i.category, "billing": i.billing,
                   "amount": i.amount, "price_id": i.price_id, "facts": i.facts or {}} for i in items],
        "facts": order.facts or {},
        "payments": [payment_view(p, [li for li in lines if li.payment_pk == p.id]) for p in pays],
        "refund_requests": [refund_request_view(rr, [r for r in refunds if r.refund_request_id == rr.id])
                            for rr in requests],
        "refunds": [refund_view(r) for r in refunds],
        "disputes": [dispute_view(d, order.order_id) for d in disputes],
        "licenses": [license_view(lic, order.order_id, now) for lic in licenses],
        "created_at": iso(order.created_at), "updated_at": iso(order.updated_at),
    }
