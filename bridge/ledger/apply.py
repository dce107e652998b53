"""Applying provider-neutral events to orders, payments, refunds, disputes and the ledger.

Each apply is idempotent (unique provider ids, unique ledger effect keys) and judged by the
provider's time, so a replayed, duplicated or reordered event leaves the same state. Effects
that belong to other parts (licenses, refund requests, fee fetches) are hooks called in the same
transaction; they write their own rows and jobs there.
"""
from __future__ import annotations

from datetime import datetime
from typing import Callable, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.domain.events import (DisputeUpdated, FeeReported, Ignored, ParsedEvent, PaymentSucceeded,
                                  RefundUpdated, SubscriptionCanceled)
from bridge.ledger import disputes, orders, payments, refunds
from bridge.ledger.locks import lock_for_events
from bridge.ledger.catalog import Catalog
from bridge.ledger.jobs import enqueue
from bridge.ledger.models import Dispute, Order, Refund

FETCH_FEE = "fetch_fee"
LINK_INVOICE = "link_invoice"


class Hooks:
    """What other parts of the bridge do when the ledger changes (set by the worker)."""
    on_payment: Optional[Callable] = None        # (session, payment, order, now)
    on_refund: Optional[Callable] = None         # (session, refund, now)
    on_dispute: Optional[Callable] = None        # (session, dispute, before, now)
    on_subscription_canceled: Optional[Callable] = None  # (session, event, now)


hooks = Hooks()


def apply_parsed(rt, session: Session, parsed: ParsedEvent, now: datetime) -> None:
    lock_for_events(session, parsed.provider, parsed.events)
    catalog = _catalog(rt)
    touched: set[int] = set()
    last_payment = None  # the payment this event's PaymentSucceeded was applied to
    for ev in parsed.events:
        if isinstance(ev, PaymentSucceeded):
            payment = last_payment = payments.upsert_payment(session, ev, now)
            order = orders.order_for_payment(session, ev, catalog, rt.settings.default_policy, now)
            if order is None and payment.order_pk is not None:
                order = session.get(Order, payment.order_pk)
            linked = False
            if order is not None:
                linked = payments.link_to_order(session, payment, order, now)
                touched.add(order.id)
            payments.flag_duplicates(session, payment)
            payments.post_money(session, payment, now)
            if (payment.provider == "stripe" and payment.invoice_id and not payment.payment_intent_id
                    and not payment.charge_id):
                # Since basil an invoice names no charge: ask Stripe which payment paid it.
                enqueue(session, LINK_INVOICE, payment.invoice_id, now,
                        dedupe_key=f"invoice:stripe:{payment.invoice_id}")
            if (payment.provider == "stripe" and payment.fee is None and payment.balance_transaction_id
                    and payment.charge_id):
                enqueue(session, FETCH_FEE, str(payment.id), now,
                        dedupe_key=f"fee:stripe:{payment.balance_transaction_id}")
            if hooks.on_payment and order is not None:
                hooks.on_payment(session, payment, order, now)
            if linked and not payments.is_new(payment):  # a new payment has nothing to replay
                _replay_on_order(session, payment, now)
        elif isinstance(ev, FeeReported):
            payment = payments.apply_fee(session, ev, now, known=last_payment)
            if payment is None:
                raise refunds.EventParked("fee for a payment not known yet")
            if payment.fee is None and payment.balance_transaction_id:
                enqueue(session, FETCH_FEE, str(payment.id), now,
                        dedupe_key=f"fee:stripe:{payment.balance_transaction_id}")
        elif isinstance(ev, RefundUpdated):
            row = refunds.apply_refund(session, ev, now)
            if row is not None:
                payment = session.get(payments.Payment, row.payment_pk)
                if payment.order_pk:
                    touched.add(payment.order_pk)
                if hooks.on_refund:
                    hooks.on_refund(session, row, now)
        elif isinstance(ev, DisputeUpdated):
            row, before = disputes.apply_dispute(session, ev, now)
            if row.order_pk:
                touched.add(row.order_pk)
            if hooks.on_dispute:
                hooks.on_dispute(session, row, before, now)
        elif isinstance(ev, SubscriptionCanceled):
            if hooks.on_subscription_canceled:
                hooks.on_subscription_canceled(session, ev, now)
        elif isinstance(ev, Ignored):
            continue
    session.flush()
    for order_pk in touched:
        orders.refresh_status(session, session.get(Order, order_pk), now)


def _replay_on_order(session: Session, payment, now: datetime) -> None:
    """Refunds and disputes applied while their payment had no order had no effect on an
    order's licenses: now that it has one, run their hooks (idempotent, judged from their
    current state), so the outcome does not depend on which event came first."""
    session.flush()
    if hooks.on_dispute:
        for row in session.execute(select(Dispute).where(Dispute.payment_pk == payment.id)
                                   .order_by(Dispute.id)).scalars():
            hooks.on_dispute(session, row, row.status, now)
    if hooks.on_refund:
        for row in session.execute(select(Refund).where(Refund.payment_pk == payment.id)
                                   .order_by(Refund.id)).scalars():
            hooks.on_refund(session, row, now)


_catalogs: dict = {}


def _catalog(rt) -> Catalog:
    path = rt.settings.config_dir / "catalog.toml"
    if path not in _catalogs:
        _catalogs[path] = Catalog.load(path)
    return _catalogs[path]
