"""Refund execution: from an approved request to refunds at the provider, exactly once; and
the follow-up fetches a payment's provider asked for (its fee, the payment paying an invoice).

Small committed steps, each its own short transaction (a provider call never runs inside a
database transaction: on SQLite that would hold the write lock for the whole call):

1. decided: the request and its planned provider refunds were written with the decision;
2. submitted: ``submitted_at`` is committed *before* the call, so a crash after it makes the
   next attempt reconcile first (``RefundCall.may_exist``: each provider resolves it its own
   way, e.g. Stripe by the same ``Idempotency-Key``, Paddle by adopting ours from the list);
3. the provider's refund id is stored; confirmation then comes from the provider's events
   (or from ``confirm_refund`` polling the API when no event came).
Permanent refusals (4xx) fail the request with the provider's code; transient failures raise
and the job retries with backoff.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.domain.events import RefundUpdated
from bridge.ledger.apply import apply_parsed
from bridge.ledger.locks import lock_payment, lock_refund_request
from bridge.ledger.effects import LedgerEffects
from bridge.ledger.holds import AmountHeld
from bridge.ledger.jobs import enqueue
from bridge.ledger.models import Order, Payment, PaymentItem, Refund, RefundRequest
from bridge.ledger.payments import set_fee
from bridge.ledger.refunds import apply_refund
from bridge.logs import push_context
from bridge.providers.base import RefundCall, RefundRef
from bridge.providers.outcomes import (OutcomeUnknown, PermanentProviderError, ProviderBusy, RefundResult,
                                       TransientProviderError)
from bridge.runtime import Runtime
from bridge.services.refund_requests import sync_status
from bridge.worker.queue import ClaimedJob
from bridge.worker.runner import Postpone, Reschedule

log = logging.getLogger("bridge.worker.refunds")

CONFIRM_REFUND = "confirm_refund"
POLL_FOR = timedelta(days=14)  # after that an unconfirmed refund is left to finance


@dataclass(frozen=True)
class Planned:
    id: int
    provider: str
    payment_pk: int
    call: RefundCall


def execute_refund(rt: Runtime, job: ClaimedJob, session: Session) -> None:
    rr_id = job.ref_id
    with rt.reads() as s:
        rr = s.get(RefundRequest, rr_id)
        if rr is None or rr.status not in ("approved", "refunding"):
            return
        todo = [_planned(s, r, rr) for r in s.execute(select(Refund).where(
            Refund.refund_request_id == rr_id, Refund.provider_refund_id.is_(None),
            Refund.status == "pending").order_by(Refund.id)).scalars()]
    if todo:
        push_context(order_id=todo[0].call.order_id)  # for this job's records; the runner undoes it
    for planned in todo:
        provider = rt.providers[planned.provider]
        wait = max(1.0, rt.settings.job_backoff_base_seconds * 4)
        if not _claim(rt, planned, serialised=provider.one_pending_refund_per_payment):
            raise Postpone(wait, f"another refund on this {planned.provider} payment awaits approval")
        try:
            result = provider.create_refund(planned.call)
        except ProviderBusy as err:
            # Paddle still decides another refund on this transaction (one made in its
            # dashboard, or by a bridge that lost our claim): ours is valid, try again later.
            if not planned.call.may_exist:
                _unclaim(rt, planned)
            log.info("refund request %s: %s busy (%s); will try again", rr_id, planned.provider, err.code)
            raise Postpone(max(wait, err.retry_after or 0), f"{planned.provider} busy: {err.code}")
        except PermanentProviderError as err:
            rt.metrics.refund(planned.provider, "refused")
            log.warning("refund request %s: %s refused refund %s: %s", rr_id, planned.provider, planned.id, err.code)
            _record_refusal(rt, planned, rr_id, err)
            break  # the request is failed; refunds already submitted are still confirmed below
        except OutcomeUnknown:
            rt.metrics.refund(planned.provider, "outcome_unknown")
            log.warning("refund request %s: outcome of refund %s unknown; will reconcile", rr_id, planned.id)
            raise
        except TransientProviderError:
            rt.metrics.refund(planned.provider, "transient_error")
            raise
        rt.metrics.refund(planned.provider, "submitted")
        _record_result(rt, planned, rr_id, result)
    enqueue(session, CONFIRM_REFUND, rr_id, rt.clock() + timedelta(seconds=rt.settings.refund_poll_seconds),
            dedupe_key=f"confirm:{rr_id}")


def _planned(s: Session, r: Refund, rr: RefundRequest) -> Planned:
    payment = s.get(Payment, r.payment_pk)
    order = s.get(Order, rr.order_pk)
    lines = s.execute(select(PaymentItem).where(PaymentItem.payment_pk == payment.id)).scalars().all()
    earlier = s.execute(select(Refund.id).where(Refund.payment_pk == payment.id, Refund.id != r.id,
                                                Refund.status.in_(("pending", "succeeded")))).first()
    parts = {p.get("provider_item_id"): p["amount"] for p in r.items or []}
    full = (earlier is None and bool(lines) and r.amount == payment.amount
            and all(parts.get(li.provider_item_id) == li.amount for li in lines))
    call = RefundCall(refund_id=r.id, request_id=rr.id, amount=r.amount, currency=r.currency,
                      items=tuple(r.items or ()), full_transaction=full, transaction_id=payment.transaction_id,
                      charge_id=payment.charge_id, payment_intent_id=payment.payment_intent_id,
                      order_id=order.order_id, reason=rr.reason, may_exist=r.submitted_at is not None)
    return Planned(r.id, r.provider, payment.id, call)


def _claim(rt: Runtime, planned: Planned, *, serialised: bool) -> bool:
    """Mark our refund submitted (committed before the call: a crash after it makes the next
    attempt reconcile first). For a provider that keeps one refund awaiting approval per
    payment (Paddle), only when no other refund of this payment is submitted and undecided
    (in flight or awaiting approval); False then, and ours waits.

    Check and mark are one transaction under the payment's lock (``locks.lock_payment``,
    PostgreSQL) or SQLite's single writer: two refund jobs on one transaction can no longer both pass the check (the loser
    used to get ``adjustment_pending_refund_request`` and fail a valid request)."""
    with rt.sessions.begin() as s:
        lock_payment(s, planned.payment_pk)
        row = s.get(Refund, planned.id)
        if row.submitted_at is not None:
            return True  # ours, sent before: reconcile, whatever the others do
        if serialised and s.execute(select(Refund.id).where(
                Refund.provider == planned.provider, Refund.payment_pk == planned.payment_pk,
                Refund.id != planned.id, Refund.status == "pending",
                Refund.submitted_at.is_not(None))).first() is not None:
            return False
        row.submitted_at = rt.clock()
        return True


def _unclaim(rt: Runtime, planned: Planned) -> None:
    """The provider created nothing (it said busy): ours is not in flight any more."""
    with rt.sessions.begin() as s:
        row = s.get(Refund, planned.id)
        if row.provider_refund_id is None and row.status == "pending":
            row.submitted_at = None


def _record_result(rt: Runtime, planned: Planned, rr_id: str, result: RefundResult) -> None:
    now = rt.clock()
    with rt.sessions.begin() as s:
        lock_refund_request(s, rr_id)
        row = s.get(Refund, planned.id)
        other = s.execute(select(Refund).where(Refund.provider == planned.provider,
                                               Refund.provider_refund_id == result.provider_refund_id)).scalar_one_or_none()
        if other is not None and other.id != row.id:
            # The provider's webhook got here first and recorded the refund on its own row.
            # Our planned row goes first: (refund request, payment) is unique.
            items, submitted_at = row.items, row.submitted_at
            s.delete(row)
            s.flush()
            other.refund_request_id = rr_id
            other.items = items
            other.submitted_at = submitted_at
            row = other
        else:
            row.provider_refund_id = result.provider_refund_id
        row.updated_at = now
        s.flush()
        rr = s.get(RefundRequest, rr_id)
        sync_status(s, rr, now)
    log.info("refund request %s: %s refund %s submitted (%s)", rr_id, planned.provider,
             result.provider_refund_id, result.status)


def _record_refusal(rt: Runtime, planned: Planned, rr_id: str, err: PermanentProviderError) -> None:
    now = rt.clock()
    with rt.sessions.begin() as s:
        lock_refund_request(s, rr_id)
        row = s.get(Refund, planned.id)
        row.status, row.failure_reason, row.updated_at = "failed", err.code, now
        rr = s.get(RefundRequest, rr_id)
        rr.status, rr.error_code, rr.error_detail, rr.updated_at = "failed", err.code, err.message[:2000], now


def confirm_refund(rt: Runtime, job: ClaimedJob, session: Session, *, effects: LedgerEffects) -> None:
    """Ask the provider about refunds no event has confirmed yet (a webhook is a hint; the
    provider's API is the truth)."""
    with rt.reads() as s:
        rows = s.execute(select(Refund).where(Refund.refund_request_id == job.ref_id, Refund.status == "pending",
                                              Refund.provider_refund_id.is_not(None))).scalars().all()
        pending = [(r.provider, r.provider_refund_id, r.transaction_id, r.charge_id, r.payment_intent_id,
                    r.submitted_at) for r in rows]
    if not pending:
        return
    now = rt.clock()
    results = []
    for provider, refund_id, txn, charge, pi, submitted_at in pending:
        res = rt.providers[provider].poll_refund(RefundRef(refund_id, txn, charge, pi))
        if res is not None and res.status != "pending":
            # Dated by the provider's time of the refund, not by this poll (a refund approved
            # on the 31st and polled on the 1st belongs to the month it happened in).
            results.append(RefundUpdated(provider=provider, occurred_at=res.status_at or now,
                                         provider_refund_id=refund_id,
                                         amount=res.amount, currency=res.currency, status=res.status,
                                         transaction_id=txn, charge_id=charge, payment_intent_id=pi,
                                         failure_reason=res.failure_reason, refund_request_id=job.ref_id))
    lock_refund_request(session, job.ref_id)
    for ev in results:
        try:
            with session.begin_nested():
                row = apply_refund(session, ev, now)
                if row is not None:
                    effects.on_refund(session, row, now)
        except AmountHeld as held:
            # The provider reports an amount that cannot be true: not booked; the refund stays
            # unconfirmed, which finance sees (refund_unconfirmed), and the log says why.
            log.error("refund request %s: %s refund %s held: %s", job.ref_id, ev.provider, ev.provider_refund_id, held)
    if len(results) < len(pending) and all(now - (p[5] or now) < POLL_FOR for p in pending):
        # Keep what was confirmed (this job commits) and look again later for the rest; past
        # POLL_FOR the refund is left to finance as refund_unconfirmed.
        enqueue(session, CONFIRM_REFUND, job.ref_id, now + timedelta(seconds=rt.settings.refund_poll_seconds),
                dedupe_key=f"confirm:{job.ref_id}:after:{job.id}")


def _payment_of(session: Session, ref_id: str) -> Optional[Payment]:
    """A follow-up job's payment: its primary key (jobs written before the provider seam named
    the invoice itself: still found by it)."""
    if ref_id.isdigit():
        return session.get(Payment, int(ref_id))
    return session.execute(select(Payment).where(Payment.invoice_id == ref_id)).scalars().first()


def link_payment(rt: Runtime, job: ClaimedJob, session: Session, *, effects: LedgerEffects) -> None:
    """An invoice-like payment and the provider payment that paid it are one payment: the
    provider says which (Stripe: ``/v1/invoice_payments``); the link is applied as an event."""
    def unlinked(p: Optional[Payment]) -> bool:
        return p is not None and not p.payment_intent_id and not p.charge_id

    with rt.reads() as s:
        seen = _payment_of(s, job.ref_id)
        if not unlinked(seen):  # another event (an expanded invoice, a session) linked it meanwhile
            return
        s.expunge(seen)  # read after the session closes, by the provider
    now = rt.clock()
    link = rt.providers[seen.provider].link_payment(seen, now)
    if link is None:
        return
    row = _payment_of(session, job.ref_id)
    if not unlinked(row):
        return
    apply_parsed(effects, session, link, now)


def fetch_fee(rt: Runtime, job: ClaimedJob, session: Session) -> None:
    """A fee the provider's events did not carry (Stripe: the charge's balance transaction),
    fetched through its API."""
    with rt.reads() as s:
        p = s.get(Payment, int(job.ref_id))
        if p is None or p.fee is not None:
            return
        s.expunge(p)
    found = rt.providers[p.provider].fetch_fee(p)
    if found is None:  # not set at the provider yet (a Paddle transaction paid, not completed)
        return Reschedule("fee not known at the provider yet")
    fee, currency = found
    lock_payment(session, int(job.ref_id))
    payment = session.get(Payment, int(job.ref_id))
    if currency.upper() == (payment.currency or "").upper():
        try:
            with session.begin_nested():
                set_fee(session, payment, fee, rt.clock())
        except AmountHeld as held:
            # A fee no payment can have (negative, above its amount): left unknown, not booked;
            # retrying would fetch the same figure. Finance sees the payment without its fee.
            log.error("payment %s: fee from %s held: %s", payment.id, payment.provider, held)
    else:
        log.warning("payment %s: fee in %s, payment in %s: left unknown", payment.id, currency, payment.currency)
