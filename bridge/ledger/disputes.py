"""Disputes (Stripe ``charge.dispute.*``, Paddle ``chargeback*`` adjustments): one record per
case, moved only forward in provider time, with chargeback, fee and reversal entries."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import bindparam, inspect, or_, select
from sqlalchemy.orm import Session

from bridge.domain.events import DisputeUpdated
from bridge.domain.states import DISPUTE_RANK, newer
from bridge.ledger import entries, holds, rows
from bridge.ledger.models import Dispute
from bridge.ledger.payments import find_payment
from bridge.ledger.reads import objects, read
from bridge.ledger.refunds import EventParked

# status_at of a case known only from statuses the bridge cannot map: before any real time.
NO_STATUS_YET = datetime(1970, 1, 1, tzinfo=timezone.utc)


_D = Dispute.__table__
_GET = select(_D).where(_D.c.provider == bindparam("provider"), _D.c.provider_dispute_id == bindparam("did"))


def get_dispute(session: Session, provider: str, provider_dispute_id: str) -> Optional[Dispute]:
    found = objects(session, Dispute, _GET, {"provider": provider, "did": provider_dispute_id})
    return found[0] if found else None  # (provider, provider_dispute_id) is unique


# The case an adjustment already moved. The provider in each arm: each is read off its index
# (provider, adjustment_id / reversed_by).
_SEEN = select(Dispute.provider_dispute_id).where(or_(
    (Dispute.provider == bindparam("p")) & (Dispute.adjustment_id == bindparam("a")),
    (Dispute.provider == bindparam("p")) & (Dispute.reversed_by == bindparam("a"))))


def _case_key(session: Session, ev: DisputeUpdated) -> tuple[str, Optional[Dispute], bool]:
    """Which case an event belongs to. Stripe names its dispute. A Paddle adjustment names only
    its transaction: the transaction's case (its warning, its chargeback, the reversal of that
    chargeback) as before, except that a *second* chargeback of the transaction is a case of its
    own, keyed by its adjustment id (it used to land on the first one's effect keys and book
    nothing), and a reversal undoes the earliest chargeback of the transaction not reversed yet.
    An adjustment already applied finds its case again (replays). Returns the key, and the case's
    row when this already looked it up (``looked_up``; None then means there is none)."""
    adj = ev.adjustment_id
    if adj is None:
        return ev.provider_dispute_id, None, False
    seen = read(session, _SEEN, {"p": ev.provider, "a": adj}).scalars().first()
    if seen is not None:
        return seen, None, False
    if ev.provider_status == "chargeback":
        first = get_dispute(session, ev.provider, ev.provider_dispute_id)
        if first is not None and first.adjustment_id is not None:
            return f"{ev.provider}:{adj}", None, False
        return ev.provider_dispute_id, first, True
    if ev.provider_status == "chargeback_reverse":
        open_case = session.execute(select(Dispute.provider_dispute_id).where(
            Dispute.provider == ev.provider, Dispute.transaction_id == ev.transaction_id,
            Dispute.adjustment_id.is_not(None), Dispute.reversed_by.is_(None))
            .order_by(Dispute.opened_at, Dispute.id)).scalars().first()
        if open_case is not None:
            return open_case, None, False
    return ev.provider_dispute_id, None, False


def apply_dispute(session: Session, ev: DisputeUpdated, now: datetime) -> tuple[Dispute, Optional[str]]:
    """Returns the dispute and its status before this event (None when new)."""
    payment = find_payment(session, ev.provider, transaction_id=ev.transaction_id, charge_id=ev.charge_id,
                           payment_intent_id=ev.payment_intent_id)
    if payment is None:
        raise EventParked(f"dispute {ev.provider_dispute_id}: payment not known yet")
    if not payment.captured or payment.amount is None:
        raise EventParked(f"dispute {ev.provider_dispute_id}: amount of payment not known yet")
    case, row, looked_up = _case_key(session, ev)
    if not looked_up:
        row = get_dispute(session, ev.provider, case)
    holds.check_within(session, payment, holds.disputable(session, payment, row.id if row else None),
                       {"amount": ev.amount, "funds withdrawn": ev.funds_withdrawn}, ev.currency,
                       f"dispute {ev.provider_dispute_id}")
    if ev.fee is not None and ev.fee < 0:
        raise holds.AmountHeld(holds.NEGATIVE_FEE, f"dispute {ev.provider_dispute_id}: fee {ev.fee} is negative")
    before = row.status if row else None
    if row is None and ev.status is None:
        # First seen with a status the bridge does not know: a case exists (money may have
        # moved), its state is the least it can be, dated so that any known status overrides.
        row = Dispute(provider=ev.provider, provider_dispute_id=case, payment_pk=payment.id,
                      order_pk=payment.order_pk, amount=ev.amount, currency=ev.currency, reason=ev.reason,
                      status="open" if ev.funds_withdrawn else "warning", provider_status=None,
                      status_at=NO_STATUS_YET, evidence_due_by=ev.evidence_due_by, funds_withdrawn=0,
                      funds_reinstated=0, fee=0, transaction_id=ev.transaction_id, charge_id=ev.charge_id,
                      payment_intent_id=ev.payment_intent_id, opened_at=ev.occurred_at, created_at=now,
                      updated_at=now)
    elif row is None:
        row = Dispute(provider=ev.provider, provider_dispute_id=case, payment_pk=payment.id,
                      order_pk=payment.order_pk, amount=ev.amount, currency=ev.currency, reason=ev.reason,
                      status=ev.status, provider_status=ev.provider_status, status_at=ev.occurred_at,
                      evidence_due_by=ev.evidence_due_by, funds_withdrawn=0, funds_reinstated=0, fee=0,
                      transaction_id=ev.transaction_id, charge_id=ev.charge_id,
                      payment_intent_id=ev.payment_intent_id, opened_at=ev.occurred_at, created_at=now,
                      updated_at=now)
    elif ev.status is not None and newer(ev.occurred_at, DISPUTE_RANK[ev.status], row.status_at,
                                         DISPUTE_RANK[row.status]):
        row.status, row.provider_status, row.status_at = ev.status, ev.provider_status, ev.occurred_at
        # The disputed amount as of the latest status (a chargeback may be for less than the
        # warning announced), not as of whichever event happened to arrive first.
        row.amount = ev.amount
        row.evidence_due_by = ev.evidence_due_by or row.evidence_due_by
    row.order_pk = row.order_pk or payment.order_pk
    if ev.adjustment_id and ev.provider_status == "chargeback" and row.adjustment_id is None:
        row.adjustment_id = ev.adjustment_id
    elif ev.adjustment_id and ev.provider_status == "chargeback_reverse" and row.reversed_by is None:
        row.reversed_by = ev.adjustment_id
    # The reason of the case is the one given when it opened (Paddle's warning, chargeback and
    # reverse adjustments each carry their own text): judged by provider time, not arrival.
    if ev.reason and (row.reason is None or ev.occurred_at < row.opened_at
                      or (ev.occurred_at == row.opened_at and ev.reason < row.reason)):
        row.reason = ev.reason
    row.opened_at = min(row.opened_at, ev.occurred_at)
    row.evidence_due_by = row.evidence_due_by or ev.evidence_due_by
    # The record keeps the largest figure any event reported (set before the flush: one write
    # of the row, not one per figure).
    if ev.funds_withdrawn:
        row.funds_withdrawn = max(row.funds_withdrawn, ev.funds_withdrawn)
    if ev.fee:
        row.fee = max(row.fee, ev.fee)
    if ev.funds_reinstated:
        row.funds_reinstated = max(row.funds_reinstated, ev.funds_reinstated)
    row.updated_at = now
    if inspect(row).transient:
        # A new case, written once with every figure above (not an INSERT, then an UPDATE).
        rows.add_now(session, row)
    session.flush()
    key = f"{row.provider}:{row.provider_dispute_id}"
    common = dict(provider=row.provider, currency=row.currency, now=now, order_pk=payment.order_pk,
                  payment_pk=payment.id, provider_ref=row.provider_dispute_id)
    first = dict(first=before is None)  # a new case: nothing booked under its keys yet
    # The ledger follows the record: a figure that grew after it was booked is booked as a
    # correcting entry of the difference (``settle``), never by changing the entry already
    # written (append-only).
    if ev.funds_withdrawn:
        entries.settle(session, kind="chargeback", magnitude=row.funds_withdrawn,
                       occurred_at=ev.withdrawn_at or ev.occurred_at, effect_key=f"chargeback:{key}", **common, **first)
    if ev.fee:
        entries.settle(session, kind="chargeback_fee", magnitude=row.fee, occurred_at=ev.withdrawn_at or ev.occurred_at,
                       effect_key=f"chargeback_fee:{key}", **common, **first)
    if ev.funds_reinstated:
        entries.settle(session, kind="chargeback_reversal", magnitude=row.funds_reinstated,
                       occurred_at=ev.reinstated_at or ev.occurred_at, effect_key=f"chargeback_reversal:{key}",
                       **common, **first)
    if ev.fee_reinstated:
        entries.post(session, kind="chargeback_fee_reversal", magnitude=ev.fee_reinstated,
                     occurred_at=ev.reinstated_at or ev.occurred_at, effect_key=f"chargeback_fee_reversal:{key}",
                     **common)
    return row, before
