"""Applying provider-neutral events to orders, payments, refunds, disputes and the ledger.

Each apply is idempotent (unique provider ids, unique ledger effect keys) and judged by the
provider's time, so a replayed, duplicated or reordered event leaves the same state. Effects
that belong to other parts (licenses, refund requests, the fetches a provider needs) are asked
of the ``effects`` passed in (``bridge.ledger.effects.LedgerEffects``), in the same
transaction; they write their own rows and jobs there. Nothing here knows a provider's name.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from bridge.domain.events import (DisputeUpdated, FeeReported, FraudWarning, Ignored, ParsedEvent,
                                  PaymentSucceeded, PayoutUpdated, RefundUpdated, SubscriptionCanceled)
from bridge.ledger import absent, disputes, fresh, orders, payments, payouts, reads, refunds
from bridge.ledger.db import keep_loaded
from bridge.ledger.locks import LockBusy, lock_for_events
from bridge.ledger.effects import LedgerEffects
from bridge.ledger.jobs import enqueue
from bridge.ledger.models import Dispute, Order, Refund


# Built once: the cases and refunds of a payment, in the order they were recorded.
_DISPUTES_OF = select(Dispute.__table__).where(Dispute.__table__.c.payment_pk == bindparam("p")).order_by(
    Dispute.__table__.c.id)
_REFUNDS_OF = select(Refund.__table__).where(Refund.__table__.c.payment_pk == bindparam("p")).order_by(
    Refund.__table__.c.id)


def apply_parsed(effects: LedgerEffects, session: Session, parsed: ParsedEvent, now: datetime) -> set[int]:
    """Apply the event's facts; returns the primary keys of the orders it touched."""
    fresh.forget(session)  # rows an earlier event of this transaction created are not this one's
    try:
        return _apply(effects, session, parsed, now)
    finally:
        fresh.forget(session)
        absent.forget(session)


def _apply(effects: LedgerEffects, session: Session, parsed: ParsedEvent, now: datetime) -> set[int]:
    only_payments = all(isinstance(e, (PaymentSucceeded, FeeReported, Ignored)) for e in parsed.events)
    # One payment and perhaps its fee: the event writes no other payment, order or dispute.
    lone = only_payments and sum(isinstance(e, PaymentSucceeded) for e in parsed.events) == 1
    try:
        found = lock_for_events(session, parsed.provider, parsed.events, ask_customers=lone)
    except LockBusy as busy:
        busy.nothing_written = True  # the event's first step
        raise
    if found is None and lone and session.get_bind().dialect.name == "sqlite":
        found = absent.find(session, next(e for e in parsed.events if isinstance(e, PaymentSucceeded)))
    if found is not None:
        absent.note(session, parsed.provider, found)
    keep_loaded(session)  # its steps look up the same payment and order again
    catalog = effects.catalog
    touched: set[int] = set()
    last_payment = None  # the payment this event's PaymentSucceeded was applied to
    for ev in parsed.events:
        if isinstance(ev, PaymentSucceeded):
            # The order first: a new payment is then written on it in one INSERT.
            order = orders.order_for_payment(session, ev, catalog, effects.default_policy, now)
            payment = last_payment = payments.upsert_payment(session, ev, now, order=order)
            if order is None and payment.order_pk is not None:
                order = reads.get(session, Order, payment.order_pk)
            linked = False
            if order is not None:
                linked = payments.link_to_order(session, payment, order, now)
                touched.add(order.id)
            payments.flag_duplicates(session, payment)
            payments.post_money(session, payment, now)
            _follow_up(effects, session, payment, "payment", now)
            if order is not None:
                effects.on_payment(session, payment, order, now)
            if linked and not payments.is_new(payment):  # a new payment has nothing to replay
                _replay_on_order(effects, session, payment, now)
        elif isinstance(ev, FeeReported):
            payment = payments.apply_fee(session, ev, now, known=last_payment)
            if payment is None:
                raise refunds.EventParked("fee for a payment not known yet")
            if payment.order_pk:
                touched.add(payment.order_pk)
            _follow_up(effects, session, payment, "fee_reported", now)
        elif isinstance(ev, RefundUpdated):
            row = refunds.apply_refund(session, ev, now)
            if row is not None:
                payment = reads.get(session, payments.Payment, row.payment_pk)
                if payment.order_pk:
                    touched.add(payment.order_pk)
                effects.on_refund(session, row, now)
        elif isinstance(ev, DisputeUpdated):
            row, before = disputes.apply_dispute(session, ev, now)
            if row.order_pk:
                touched.add(row.order_pk)
            effects.on_dispute(session, row, before, now)
        elif isinstance(ev, SubscriptionCanceled):
            effects.on_subscription_canceled(session, ev, now)
        elif isinstance(ev, FraudWarning):
            payment = payments.find_payment(session, ev.provider, charge_id=ev.charge_id,
                                            payment_intent_id=ev.payment_intent_id)
            if payment is None or payment.order_pk is None:
                # Out of order (the warning before its payment) or a payment of no order yet:
                # retried until the order is known, since the decision is the order policy's.
                raise refunds.EventParked("fraud warning for a payment of no known order yet")
            effects.on_fraud_warning(session, payment, ev, now)
            touched.add(payment.order_pk)
        elif isinstance(ev, PayoutUpdated):
            payouts.apply_payout(session, ev, now)
        elif isinstance(ev, Ignored):
            continue
    session.flush()
    for order_pk in touched:
        orders.refresh_status(session, reads.get(session, Order, order_pk), now, only_payments=only_payments)
    return touched


def _follow_up(effects: LedgerEffects, session: Session, payment, after, now: datetime) -> None:
    """The fetches the payment's provider says it needs, as jobs (one per dedupe key)."""
    for f in effects.follow_ups(payment, after):
        enqueue(session, f.kind, str(payment.id), now, dedupe_key=f.dedupe_key,
                run_at=now + timedelta(seconds=f.delay_seconds) if f.delay_seconds else None)


def _replay_on_order(effects: LedgerEffects, session: Session, payment, now: datetime) -> None:
    """Refunds and disputes applied while their payment had no order had no effect on an
    order's licenses: now that it has one, run their effects (idempotent, judged from their
    current state), so the outcome does not depend on which event came first."""
    session.flush()
    for row in reads.objects(session, Dispute, _DISPUTES_OF, {"p": payment.id}):
        effects.on_dispute(session, row, row.status, now)
    for row in reads.objects(session, Refund, _REFUNDS_OF, {"p": payment.id}):
        effects.on_refund(session, row, now)
