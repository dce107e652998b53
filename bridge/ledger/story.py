"""An order's whole story for the console: one timeline, oldest first, of its provider events,
payments, ledger movements (sales, fees, refunds, chargebacks), refund requests with their
decisions and reviews, provider refunds, disputes, and the license notices sent to the
merchant's app, plus the order's items and licenses as they stand.

Entries are plain dicts (``at``, ``kind``, ``title`` and kind-specific fields); amounts stay
integers in minor units with their currency, and formatting is the page's job."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.ledger.models import (ApiToken, Dispute, EventOrder, Job, LedgerEntry, License, Order, OrderItem,
                                  OutboundMessage, Payment, Refund, RefundRequest, WebhookEvent)
from bridge.ledger.views import license_view

# Kinds in the order they sort when two entries share a moment (cause before effect).
_RANK = {"event": 0, "payment": 1, "ledger": 2, "request": 3, "review": 4, "refund": 5,
         "dispute": 6, "notice": 7}
# The newest entries of each kind are read, then the newest of all kept: an order with years
# of renewals would otherwise be a page of megabytes. ``limit`` raises it (up to MAX_LIMIT).
TIMELINE_LIMIT = 300
MAX_LIMIT = 20_000


@dataclass
class Story:
    order: Order
    items: list[OrderItem]
    licenses: list[dict]
    timeline: list[dict] = field(default_factory=list)
    truncated: bool = False


def _parse_at(value: Optional[str]) -> Optional[datetime]:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def order_story(session: Session, order: Order, now: datetime, limit: int = TIMELINE_LIMIT) -> Story:
    limit = max(1, min(limit, MAX_LIMIT))
    items = list(session.execute(select(OrderItem).where(OrderItem.order_pk == order.id).order_by(OrderItem.id)).scalars())
    lic_rows = list(session.execute(select(License).where(License.order_pk == order.id).order_by(License.item_id)).scalars())
    story = Story(order, items, [license_view(lic, order.order_id, now) for lic in lic_rows])
    out: list[dict] = []

    events = session.execute(
        select(WebhookEvent.id, WebhookEvent.provider, WebhookEvent.provider_event_id, WebhookEvent.event_type,
               WebhookEvent.status, WebhookEvent.error, WebhookEvent.received_at, WebhookEvent.occurred_at)
        .join(EventOrder, EventOrder.event_pk == WebhookEvent.id)
        .where(EventOrder.order_pk == order.id)
        .order_by(WebhookEvent.id.desc()).limit(limit + 1)).all()
    for ev in events:
        out.append({"at": ev.occurred_at or ev.received_at, "kind": "event",
                    "title": f"{ev.provider.capitalize()} event {ev.event_type}", "provider": ev.provider,
                    "provider_event_id": ev.provider_event_id, "status": ev.status, "error": ev.error,
                    "received_at": ev.received_at})

    pays = list(session.execute(select(Payment).where(Payment.order_pk == order.id)
                                .order_by(Payment.paid_at.desc(), Payment.id.desc()).limit(limit + 1)).scalars())
    for p in pays:
        ids = {k: v for k, v in (("transaction", p.transaction_id), ("charge", p.charge_id),
                                 ("payment intent", p.payment_intent_id), ("invoice", p.invoice_id),
                                 ("checkout session", p.checkout_session_id),
                                 ("subscription", p.subscription_id)) if v}
        out.append({"at": p.paid_at or p.created_at, "kind": "payment",
                    "title": f"{p.provider.capitalize()} payment ({p.purchase or 'purchase'})",
                    "provider": p.provider, "amount": p.amount, "tax": p.tax, "fee": p.fee, "currency": p.currency,
                    "provider_ids": ids, "duplicate": p.duplicate_of is not None,
                    "period_start": p.period_start, "period_end": p.period_end})

    entries = list(session.execute(
        select(LedgerEntry).where(LedgerEntry.order_pk == order.id)
        .order_by(LedgerEntry.occurred_at.desc(), LedgerEntry.id.desc()).limit(limit + 1)).scalars())
    for e in reversed(entries):  # oldest first, so equal times keep the order they were posted in
        out.append({"at": e.occurred_at, "kind": "ledger", "title": e.kind.replace("_", " ").capitalize(),
                    "ledger_kind": e.kind, "provider": e.provider, "amount": e.amount, "currency": e.currency,
                    "provider_ref": e.provider_ref})

    # Refunds of every payment of the order (not only the payments listed), newest first.
    refunds = list(session.execute(
        select(Refund).join(Payment, Payment.id == Refund.payment_pk).where(Payment.order_pk == order.id)
        .order_by(Refund.id.desc()).limit(limit + 1)).scalars())
    requests = list(session.execute(select(RefundRequest).where(RefundRequest.order_pk == order.id)
                                    .order_by(RefundRequest.created_at, RefundRequest.id)).scalars())
    for rr in requests:
        d = rr.decision or {}
        out.append({"at": rr.created_at, "kind": "request", "title": f"Refund request {rr.id}",
                    "id": rr.id, "status": rr.status, "reason": rr.reason, "requested_at": rr.requested_at,
                    # What the policy said (a review overwrites the stored outcome with its own).
                    "item_ids": rr.items, "policy_outcome": "review" if rr.review else d.get("outcome"),
                    "decision": d, "policy": d.get("policy") or {"id": rr.policy_id, "version": rr.policy_version},
                    "amount": rr.refund_amount, "fee_deducted": rr.fee_deducted, "currency": rr.currency,
                    "error": {"code": rr.error_code, "detail": rr.error_detail} if rr.error_code else None})
        if rr.review:
            rv = dict(rr.review)
            # Reviews record "token:<row id>" (as the API's do): name the token for a person.
            who = rv.get("reviewer") or ""
            if who.startswith("token:") and who[6:].isdigit():
                name = session.execute(select(ApiToken.name).where(ApiToken.id == int(who[6:]))).scalar_one_or_none()
                if name:
                    rv["reviewer"] = f"{name} ({who})"
            out.append({"at": _parse_at(rv.get("at")) or rr.updated_at, "kind": "review",
                        "title": f"Review of {rr.id}: {rv.get('outcome')}", "id": rr.id,
                        "outcome": rv.get("outcome"), "note": rv.get("note"), "reviewer": rv.get("reviewer"),
                        "amount": rr.refund_amount if rv.get("outcome") == "approved" else None,
                        "currency": rr.currency})
    for r in refunds:
        out.append({"at": r.submitted_at or r.created_at, "kind": "refund",
                    "title": f"{r.provider.capitalize()} refund {r.provider_refund_id or '(not yet submitted)'}",
                    "provider": r.provider, "provider_refund_id": r.provider_refund_id, "status": r.status,
                    "status_at": r.status_at, "amount": r.amount, "currency": r.currency,
                    "failure_reason": r.failure_reason, "refund_request_id": r.refund_request_id})

    for d in session.execute(select(Dispute).where(Dispute.order_pk == order.id).order_by(Dispute.id)).scalars():
        out.append({"at": d.opened_at, "kind": "dispute", "title": f"{d.provider.capitalize()} dispute {d.provider_dispute_id}",
                    "provider": d.provider, "status": d.status, "provider_status": d.provider_status,
                    "status_at": d.status_at, "reason": d.reason, "amount": d.amount, "currency": d.currency,
                    "evidence_due_by": d.evidence_due_by, "fee": d.fee, "restriction": d.restriction})

    lic_ids = [lic.license_id for lic in lic_rows]
    if lic_ids:
        msgs = list(session.execute(select(OutboundMessage).where(OutboundMessage.license_id.in_(lic_ids))).scalars())
        jobs = {j.dedupe_key: j for j in session.execute(
            select(Job).where(Job.dedupe_key.in_([f"notice:{m.id}" for m in msgs]))).scalars()} if msgs else {}
        for m in msgs:
            job = jobs.get(f"notice:{m.id}")
            out.append({"at": m.created_at, "kind": "notice", "title": f"Notice {m.type} for license {m.license_id}",
                        "type": m.type, "license_id": m.license_id, "reason": (m.body or {}).get("reason"),
                        "delivered_at": m.delivered_at, "attempts": m.attempts, "last_error": m.last_error,
                        "delivery": "delivered" if m.delivered_at else
                        ("retrying" if job is not None and job.state in ("ready", "running") else "undelivered")})

    out.sort(key=lambda e: (e["at"], _RANK[e["kind"]]))
    if len(out) > limit:
        story.truncated, out = True, out[-limit:]
    story.timeline = out
    return story
