"""Refunds seen at the provider (ours or not), with their ledger entries.

A refund's status follows the provider's time: a late ``pending`` never overrides a newer
``succeeded``. The ledger holds a refund entry once the refund was ever seen succeeded, and a
reversal when it failed afterwards: the same entries whatever order the events came in.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from bridge.domain.events import RefundUpdated
from bridge.domain.states import REFUND_RANK, newer
from bridge.ledger import entries, holds, reads, rows
from bridge.ledger.models import Payment, Refund, RefundRequest
from bridge.ledger.payments import find_payment


class EventParked(Exception):
    """The event refers to a payment the bridge has not seen yet: retry later."""


_R = Refund.__table__
_GET = select(_R).where(_R.c.provider == bindparam("provider"), _R.c.provider_refund_id == bindparam("rid"))


def get_refund(session: Session, provider: str, provider_refund_id: str) -> Optional[Refund]:
    found = reads.objects(session, Refund, _GET, {"provider": provider, "rid": provider_refund_id})
    return found[0] if found else None  # (provider, provider_refund_id) is unique


def apply_refund(session: Session, ev: RefundUpdated, now: datetime) -> Optional[Refund]:
    payment = find_payment(session, ev.provider, transaction_id=ev.transaction_id, charge_id=ev.charge_id,
                           payment_intent_id=ev.payment_intent_id)
    if payment is None:
        raise EventParked(f"refund {ev.provider_refund_id}: payment not known yet")
    if ev.provider_refund_id is None:
        return None  # a charge.refunded without its refunds list: the refund events will tell
    if not payment.captured or payment.amount is None:
        # Known only from a Checkout Session or an invoice: what it captured is not known, so
        # neither is whether this refund can be true. The charge event will tell.
        raise EventParked(f"refund {ev.provider_refund_id}: amount of payment not known yet")
    row = get_refund(session, ev.provider, ev.provider_refund_id)
    ours = None
    if row is None and ev.refund_request_id:
        # Ours, submitted by the refund worker but not yet linked to the provider's id.
        ours = session.execute(select(Refund).where(
            Refund.refund_request_id == ev.refund_request_id, Refund.provider_refund_id.is_(None),
            Refund.payment_pk == payment.id)).scalars().first()
    judged = row or ours
    holds.check_within(session, payment, holds.refundable(session, payment, judged.id if judged else None),
                       {"amount": ev.amount}, ev.currency, f"refund {ev.provider_refund_id}")
    if ours is not None:
        row = ours
        row.provider_refund_id = ev.provider_refund_id
    new = row is None
    if row is None:
        # A refund first seen with a status the bridge does not know waits as pending.
        row = Refund(provider=ev.provider, provider_refund_id=ev.provider_refund_id, payment_pk=payment.id,
                     amount=ev.amount, currency=ev.currency, status=ev.status or "pending", status_at=None,
                     items=[{"provider_item_id": i.provider_item_id, "amount": i.amount} for i in ev.items],
                     created_at=now, updated_at=now)
    if row.payment_pk is None:
        row.payment_pk = payment.id
    if row.refund_request_id is None and ev.refund_request_id and reads.get(session, RefundRequest, ev.refund_request_id):
        row.refund_request_id = ev.refund_request_id
    row.transaction_id = row.transaction_id or ev.transaction_id
    row.charge_id = row.charge_id or ev.charge_id
    row.payment_intent_id = row.payment_intent_id or ev.payment_intent_id
    row.reason = row.reason or ev.reason
    if ev.items and not row.items:
        row.items = [{"provider_item_id": i.provider_item_id, "amount": i.amount} for i in ev.items]
    if ev.status is not None and newer(ev.occurred_at, REFUND_RANK[ev.status], row.status_at,
                                       REFUND_RANK.get(row.status, 0)):
        row.status, row.status_at = ev.status, ev.occurred_at
        row.failure_reason = ev.failure_reason if ev.status in ("failed", "canceled") else row.failure_reason
        row.amount = ev.amount or row.amount
    if ev.status == "succeeded" and (row.succeeded_at is None or ev.occurred_at < row.succeeded_at):
        row.succeeded_at = ev.occurred_at
    row.updated_at = now
    if new:
        # Written once with everything above (the reads in between would have flushed it
        # half-made, then updated it).
        rows.add_now(session, row)
    session.flush()
    post_refund_entries(session, row, payment, now, first=new)
    return row


def post_refund_entries(session: Session, row: Refund, payment: Payment, now: datetime, first: bool = False) -> None:
    """``first``: the refund row was just created (nothing booked under its keys yet)."""
    if row.succeeded_at is None or row.provider_refund_id is None:
        return
    key = f"{row.provider}:{row.provider_refund_id}"
    # ``settle``: should the provider report another amount for a refund already booked, the
    # difference is a correcting entry; the booked one never changes (append-only).
    entries.settle(session, provider=row.provider, kind="refund", magnitude=row.amount, currency=row.currency,
                   occurred_at=row.succeeded_at, effect_key=f"refund:{key}", now=now, order_pk=payment.order_pk,
                   payment_pk=payment.id, provider_ref=row.provider_refund_id, first=first)
    if row.status in ("failed", "canceled") and row.status_at and row.status_at >= row.succeeded_at:
        entries.settle(session, provider=row.provider, kind="refund_reversal", magnitude=row.amount,
                       currency=row.currency, occurred_at=row.status_at, effect_key=f"refund_reversal:{key}",
                       now=now, order_pk=payment.order_pk, payment_pk=payment.id, provider_ref=row.provider_refund_id,
                       first=first)
