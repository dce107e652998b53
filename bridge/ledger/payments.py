"""Payments from provider events: one row per real payment, whichever of its events (Stripe
sends several: checkout session, payment intent, charge, invoice) arrives first. Rows are
found and merged by any provider id they share. The sale and fee ledger entries follow."""
from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Optional

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from bridge.domain.events import FeeReported, PaymentSucceeded
from bridge.domain.follow_ups import FETCH_FEE, FETCH_PAYMENT, LINK_PAYMENT
from bridge.domain.ids import id_problem, printable
from bridge.ledger import absent, entries, fresh, holds, reads, rows
from bridge.ledger.models import (PAYMENT_ID_FIELDS, Dispute, Job, LedgerEntry, Order, OrderItem, Payment,
                                  PaymentItem, Refund)
from bridge.ledger.orders import items_of

# Without a known billing period, how close two charges of one price must be to be duplicates.
DUPLICATE_WINDOW = {"monthly": timedelta(days=28), "annual": timedelta(days=365), "one_time": timedelta(hours=24)}


@lru_cache(maxsize=None)
def _find(fields: tuple[str, ...]):
    """The look-up by these ids (built once per set of ids given). Every arm of the OR names the
    provider and one id, so each is read off its unique index (provider, id): with the provider
    tested outside the OR, SQLite read every payment of the provider (9.7 ms per event at
    20,000 past payments, bench/worker_bench.py --history)."""
    return (select(Payment.__table__)
            .where(or_(*(and_(Payment.provider == bindparam("provider"), getattr(Payment, f) == bindparam(f))
                         for f in fields)))
            .order_by(Payment.id))


def find_payments(session: Session, provider: str, **ids: Optional[str]) -> list[Payment]:
    if set(ids) - set(PAYMENT_ID_FIELDS):
        raise TypeError(f"unknown payment ids {sorted(set(ids) - set(PAYMENT_ID_FIELDS))}")
    given = {f: ids[f] for f in PAYMENT_ID_FIELDS if ids.get(f)}
    if not given:
        return []
    return reads.objects(session, Payment, _find(tuple(given)), {"provider": provider, **given})


def find_payment(session: Session, provider: str, **ids: Optional[str]) -> Optional[Payment]:
    found = find_payments(session, provider, **ids)
    return found[0] if found else None


def _merge(session: Session, keep: Payment, other: Payment) -> None:
    """Two rows turned out to be one payment (an event named ids of both)."""
    for model in (PaymentItem,):
        session.execute(update(model).where(model.payment_pk == other.id).values(payment_pk=keep.id))
    for model in (Refund, Dispute, LedgerEntry):
        session.execute(update(model).where(model.payment_pk == other.id).values(payment_pk=keep.id))
    # A follow-up fetch queued for the row that goes away would find nothing, and its dedupe key
    # (the balance transaction, the payment intent) keeps it from ever being queued again: it
    # fetches for the kept row.
    session.execute(update(Job).where(Job.kind.in_((FETCH_FEE, FETCH_PAYMENT, LINK_PAYMENT)),
                                      Job.ref_id == str(other.id))
                    .values(ref_id=str(keep.id)))
    carried = {f: getattr(other, f) for f in (*PAYMENT_ID_FIELDS, "subscription_id", "balance_transaction_id")}
    if other.captured and not keep.captured:
        keep.captured, keep.amount, keep.currency, keep.paid_at = True, other.amount, other.currency, other.paid_at
    elif other.captured and other.paid_at < keep.paid_at:
        keep.paid_at = other.paid_at
    for f in ("amount", "currency", "tax", "fee", "paid_at", "purchase", "period_start", "period_end",
              "customer_ref", "order_ref", "order_pk"):
        if getattr(keep, f) is None:
            setattr(keep, f, getattr(other, f))
    session.delete(other)
    session.flush()
    for f, v in carried.items():
        if v and getattr(keep, f) is None:
            setattr(keep, f, v)


def _ref(ev) -> str:
    return ev.transaction_id or ev.charge_id or ev.payment_intent_id or ev.invoice_id or ev.checkout_session_id or "?"


def upsert_payment(session: Session, ev: PaymentSucceeded, now: datetime, order: Optional[Order] = None) -> Payment:
    """The payment row of ``ev`` (found by any of its ids, merged, or created). ``order``: the
    order the event names, if known: a new payment and its lines are written on it at once
    (``link_to_order`` then has nothing left to change)."""
    ids = {f: getattr(ev, f) for f in PAYMENT_ID_FIELDS}
    found = [] if absent.take_payment(session, ev.provider, ids.values()) else find_payments(session, ev.provider, **ids)
    known = next((r.amount for r in found if r.captured and r.amount is not None), None)
    holds.check_fee(ev.fee, ev.amount if ev.amount is not None else known, f"payment {_ref(ev)}", ev.order_ref)
    if found:
        payment = found[0]
        for other in found[1:]:
            _merge(session, payment, other)
    else:
        # On its order from the first INSERT when the order is known (no UPDATE after it).
        payment = Payment(provider=ev.provider, status="succeeded", created_at=now, updated_at=now,
                          order_pk=order.id if order is not None else None)
        fresh.mark(session, payment)  # see is_new; written below (rows.add_now)
    for f, v in ids.items():
        if v and getattr(payment, f) is None:
            setattr(payment, f, v)
    for f in ("subscription_id", "balance_transaction_id", "customer_ref", "period_start", "period_end", "tax"):
        v = getattr(ev, f)
        if v is not None and getattr(payment, f) is None:
            setattr(payment, f, v)
    if ev.order_ref is not None and payment.order_ref is None:
        problem = id_problem(ev.order_ref)
        if problem is None:
            payment.order_ref = ev.order_ref
        elif payment.order_pk is None:
            # Not an id an order could have (the API would refuse it with a 422): the payment
            # is kept unmatched, and finance sees why.
            payment.match_note = printable(f"order reference {printable(ev.order_ref, 60)!r} refused: {problem}", 255)
    # Order-independent merges: amount and paid_at from the money events once any is seen
    # (the earliest of them), else from the descriptive ones; "renewal" wins over "initial".
    if ev.moves_money:
        if not payment.captured:
            payment.captured, payment.paid_at = True, ev.paid_at
            if ev.amount is not None:
                payment.amount, payment.currency = ev.amount, ev.currency
        elif ev.paid_at < payment.paid_at:
            payment.paid_at = ev.paid_at
    elif not payment.captured:
        if payment.paid_at is None or ev.paid_at < payment.paid_at:
            payment.paid_at = ev.paid_at
        if payment.amount is None and ev.amount is not None:
            payment.amount, payment.currency = ev.amount, ev.currency
    if payment.currency is None:
        payment.currency = ev.currency
    if ev.fee is not None and payment.fee is None:
        payment.fee = ev.fee
    if ev.purchase == "renewal" or payment.purchase is None:
        payment.purchase = ev.purchase or payment.purchase
    payment.updated_at = now
    if not found:
        rows.add_now(session, payment)
    session.flush()
    if ev.items and not _has_lines(session, payment):
        items = items_of(session, order) if order is not None and payment.order_pk == order.id else None
        lines = [PaymentItem(payment_pk=payment.id, provider_item_id=line.provider_item_id,
                             price_id=line.price_id, product_id=line.product_id,
                             amount=line.amount, tax=line.tax or 0,
                             order_item_pk=_matching_item(items, line, len(ev.items)) if items else None)
                 for line in ev.items]
        rows.add_all_now(session, lines)
        if is_new(payment):
            payment._new_lines = lines  # all its lines (see _lines_of)
    return payment


def is_new(payment: Payment) -> bool:
    """Created by the event being applied (``fresh``): nothing can be booked on it yet,
    no refund, dispute or ledger entry refers to it, so there is nothing to move or replay."""
    return fresh.is_fresh(payment)


def _has_lines(session: Session, payment: Payment) -> bool:
    if is_new(payment):
        return bool(getattr(payment, "_new_lines", None))
    return session.execute(select(PaymentItem.id).where(PaymentItem.payment_pk == payment.id)).first() is not None


def _lines_of(session: Session, payment: Payment) -> list[PaymentItem]:
    """The payment's lines in id order; a payment created by this event has them in
    memory (nothing else adds lines to it)."""
    if is_new(payment):
        return list(getattr(payment, "_new_lines", ()))
    return list(session.execute(select(PaymentItem).where(PaymentItem.payment_pk == payment.id)
                                .order_by(PaymentItem.id)).scalars())


def link_to_order(session: Session, payment: Payment, order: Order, now: datetime) -> bool:
    """Attach the payment (and its lines) to the order, and its ledger entries with it.
    True when the payment, or anything booked on it, was not on this order before."""
    moved = payment.order_pk != order.id
    if moved:
        payment.order_pk = order.id
    # Entries and disputes posted while the payment was unmatched (or on a row merged into this
    # one, which may already carry the order) follow it: always, not only when the payment moves.
    # Ledger entries only ever get an empty order link filled (the one change append_only
    # allows); an entry already on an order stays there. A payment created by this event
    # has nothing booked or disputed on it yet (is_new): nothing to move.
    if not is_new(payment):
        res = session.execute(update(LedgerEntry).where(LedgerEntry.payment_pk == payment.id,
                                                        LedgerEntry.order_pk.is_(None))
                              .values(order_pk=order.id))
        moved = moved or res.rowcount > 0
        res = session.execute(update(Dispute).where(Dispute.payment_pk == payment.id,
                                                    or_(Dispute.order_pk.is_(None), Dispute.order_pk != order.id))
                              .values(order_pk=order.id))
        moved = moved or res.rowcount > 0
    if order.customer_id is None and payment.customer_ref:
        order.customer_id = payment.customer_ref
    if order.currency is None:
        order.currency = payment.currency
    lines = _lines_of(session, payment)
    pending = [line for line in lines if line.order_item_pk is None]
    if pending:  # a new payment's lines were matched when written (upsert_payment)
        items = items_of(session, order)
        for line in pending:
            match = _matching_item(items, line, len(lines))
            if match is not None:  # assigning None again would still dirty the row
                line.order_item_pk = match
    session.flush()
    return moved


def _matching_item(items: list[OrderItem], line, n_lines: int) -> Optional[int]:
    """The order item a payment line pays for: by price, else by item id; a payment of one
    line on an order of one item pays for that item."""
    match = next((i for i in items if i.price_id and i.price_id == line.price_id), None)
    match = match or next((i for i in items if i.item_id in (line.provider_item_id, line.price_id)), None)
    if match is None and len(items) == n_lines == 1:
        match = items[0]
    return match.id if match is not None else None


def post_money(session: Session, payment: Payment, now: datetime) -> None:
    """Sale and fee entries, once each. A row that knows only an invoice or a Checkout Session
    posts nothing until its charge is known: the charge is the money."""
    if not payment.captured or payment.amount is None or payment.currency is None:
        return
    holds.check_fee(payment.fee, payment.amount, f"payment {_ref(payment)}", payment.order_ref)
    ref = payment.transaction_id or payment.charge_id or payment.payment_intent_id
    # Keyed by the provider's id of the money (a captured row always has its transaction or
    # charge id), not by our row id: rows of one payment merged later keep one sale and one fee.
    common = dict(provider=payment.provider, currency=payment.currency, occurred_at=payment.paid_at,
                  order_pk=payment.order_pk, payment_pk=payment.id, provider_ref=ref)
    movements = [dict(common, kind="sale", magnitude=payment.amount, effect_key=f"sale:{payment.provider}:{ref}")]
    if payment.fee is not None and payment.fee > 0:
        movements.append(dict(common, kind="fee", magnitude=payment.fee, effect_key=f"fee:{payment.provider}:{ref}"))
    entries.post_many(session, movements, now)  # one statement for both


def set_fee(session: Session, payment: Payment, fee: int, now: datetime) -> None:
    """Raises ``AmountHeld`` for a fee no payment can have (negative, above its amount)."""
    holds.check_fee(fee, payment.amount, f"payment {_ref(payment)}", payment.order_ref)
    if payment.fee is None:
        payment.fee = fee
        payment.updated_at = now
    post_money(session, payment, now)


def apply_fee(session: Session, ev: FeeReported, now: datetime, known: Optional[Payment] = None) -> Optional[Payment]:
    """``known``: the payment the same provider event was just applied to (a Stripe charge
    carries its fee too), if it is the one this fee is about: no second look-up, and nothing
    to post again when the fee is the one it already booked."""
    if known is not None and known.charge_id == ev.charge_id and ev.charge_id is not None:
        payment = known
        if ev.fee is not None and payment.fee == ev.fee and (
                not ev.balance_transaction_id or payment.balance_transaction_id == ev.balance_transaction_id):
            return payment
    else:
        payment = find_payment(session, ev.provider, charge_id=ev.charge_id, payment_intent_id=ev.payment_intent_id)
    if payment is None:
        return None
    if ev.balance_transaction_id and payment.balance_transaction_id is None:
        payment.balance_transaction_id = ev.balance_transaction_id
    if ev.fee is not None:
        set_fee(session, payment, ev.fee, now)
    return payment


# Built once (an expanding IN takes the list at execution).
_P, _PI, _OI = Payment.__table__, PaymentItem.__table__, OrderItem.__table__
_SAME_CUSTOMER_AND_PRICE = (
    select(_P).join(_PI, _PI.c.payment_pk == _P.c.id).where(
        _P.c.provider == bindparam("provider"), _P.c.customer_ref == bindparam("customer"),
        _P.c.id != bindparam("pk"), _PI.c.price_id.in_(bindparam("prices", expanding=True)),
        _P.c.paid_at.is_not(None)).distinct())
_PRICES_OF = select(_PI.c.price_id).where(_PI.c.payment_pk == bindparam("pk"), _PI.c.price_id.is_not(None))
_BILLING_OF = select(_OI.c.billing).join(_PI, _PI.c.order_item_pk == _OI.c.id).where(
    _PI.c.payment_pk == bindparam("pk")).limit(1)


def flag_duplicates(session: Session, payment: Payment) -> None:
    """A second paid charge for the same customer and price inside one billing period is a
    duplicate charge: the later of the two (by ``paid_at``) points at the earlier."""
    if not payment.customer_ref or payment.paid_at is None:
        return
    if is_new(payment) and absent.new_customer(session, payment.provider, payment.customer_ref):
        return  # the customer's first payment: there is no other (absent.py)
    if is_new(payment):
        prices = [line.price_id for line in _lines_of(session, payment) if line.price_id is not None]
    else:
        prices = list(reads.read(session, _PRICES_OF, {"pk": payment.id}).scalars())
    if not prices:
        return
    others = reads.objects(session, Payment, _SAME_CUSTOMER_AND_PRICE, {
        "provider": payment.provider, "customer": payment.customer_ref, "pk": payment.id, "prices": prices})
    if not others:
        return
    billing = reads.read(session, _BILLING_OF, {"pk": payment.id}).scalars().first()
    for other in others:
        first, second = sorted((payment, other), key=lambda p: (p.paid_at, p.id))
        if first.period_end is not None:
            inside = second.paid_at < first.period_end
        else:
            inside = second.paid_at - first.paid_at < DUPLICATE_WINDOW.get(billing or "one_time", timedelta(hours=24))
        if inside and second.duplicate_of is None:
            second.duplicate_of = first.id
