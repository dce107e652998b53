"""What the event being applied was found not to name yet: no payment with its payment ids, no
order with its order reference.

On PostgreSQL the event's keyed locks are resolved with one query after they are held
(``locks.lock_for_events``); when it finds nothing, no payment and no order the event names
exists, and none can appear meanwhile (whoever would write one holds the same keys). The
first look-up of each then needs no statement: ``take_payment`` and ``take_order`` answer it
once (the caller is about to create that row, after which the answer would be wrong). The marks
last one event: ``apply_parsed`` notes them after the locks and forgets them when it ends.

The same query says which of the event's customer references have no history yet: no order of
that customer and no payment of the provider with that reference. ``apply_parsed`` notes them
only for an event that is one payment (plus its fee): such an event creates at most one payment
and one order of the customer and no dispute, so when its payment and order are new, the
customer has no other payment to be a duplicate of (``payments.flag_duplicates``) and no
dispute that could hold its licenses (``licenses.on_payment``). Unlike the marks above, this
one stays true for the whole event and is read as often as needed.
"""
from __future__ import annotations

from typing import Iterable, NamedTuple, Optional

from sqlalchemy import and_, bindparam, exists, or_, select
from sqlalchemy.orm import Session

from bridge.ledger import driver_sql, write_behind
from bridge.ledger.models import PAYMENT_ID_FIELDS, Order, Payment

_PAYMENTS = "bridge_absent_payments"  # session.info: (provider, frozenset of payment ids)
_ORDERS = "bridge_absent_orders"      # session.info: frozenset of order references
_CUSTOMERS = "bridge_new_customers"   # session.info: (provider, frozenset of customer references)


class Resolution(NamedTuple):
    """What an event's first look-up found missing (``locks.lock_for_events``, ``find``)."""
    payment_ids: frozenset[str]      # no payment has any of them (empty: some payment was found)
    order_refs: frozenset[str]       # no order has any of them (empty: some order was found)
    new_customers: frozenset[str]    # customer references with no order and no payment of the provider


def note(session: Session, provider: str, found: Resolution) -> None:
    """Remember what ``found`` says for the event about to be applied (its new customers are
    asked for only when the event is a lone payment: see above)."""
    session.info[_PAYMENTS] = (provider, found.payment_ids)
    session.info[_ORDERS] = found.order_refs
    session.info[_CUSTOMERS] = (provider, found.new_customers)


_IDS = bindparam("ids", expanding=True)
# Each arm is read off an index: the ids' arms name the provider, for their unique indexes
# (provider, id); with the provider tested outside the OR, SQLite read every payment of the
# provider (as payments._find once did). The subscription's arm does not: SQLite then took the
# provider's index for it too. A subscription id of the other provider can only make the
# answer "named" where "absent" was true, and the event then looks its rows up as any other.
_NAMED_PAYMENT = exists().where(or_(
    *(and_(Payment.provider == bindparam("provider"), getattr(Payment, f).in_(_IDS)) for f in PAYMENT_ID_FIELDS),
    and_(Payment.subscription_id == bindparam("sub"), Payment.order_pk.is_not(None))))
_NAMED_ORDER = exists().where(Order.order_id == bindparam("ref"))
_CUSTOMER_SEEN = or_(exists().where(Order.customer_id == bindparam("customer")),
                     exists().where(Payment.provider == bindparam("provider"),
                                    Payment.customer_ref == bindparam("customer")))
# Run on the connection: the session would write what waits first (write_behind.py).
_FIND = select(_NAMED_PAYMENT, _NAMED_ORDER, _CUSTOMER_SEEN)


def storable(value: Optional[str]) -> bool:
    """Whether the database could hold it (no lone surrogate, no NUL): one it could not cannot
    name a stored row either, and must not fail the look-up."""
    if not value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def find(session: Session, ev) -> Resolution:
    """What a lone payment event (``PaymentSucceeded``) names that does not exist yet: for SQLite,
    whose writing transaction holds the one write lock (PostgreSQL's come with its locks)."""
    ids = {v for v in (getattr(ev, f) for f in PAYMENT_ID_FIELDS) if v}

    def value(v):
        return v if storable(v) else None  # = NULL: matches no row

    # Rows of earlier events of this transaction may still wait to be written (write_behind.py):
    # they are written first only when one answers to a key of this event.
    keys = {f"payment:{ev.provider}:{i}" for i in ids}
    keys |= {f"subscription:{ev.provider}:{ev.subscription_id}", f"order:{ev.order_ref}", f"customer:{ev.customer_ref}"}
    if not write_behind.pending_keys(session).isdisjoint(keys):
        write_behind.flush(session)
    payment, order, seen = driver_sql.rows(session.connection(), _FIND, {
        "provider": ev.provider, "ids": sorted(filter(storable, ids)), "sub": value(ev.subscription_id),
        "ref": value(ev.order_ref), "customer": value(ev.customer_ref)}).one()
    nothing = not (payment or order)
    return Resolution(frozenset(ids) if nothing else frozenset(),
                      frozenset([ev.order_ref]) if nothing and ev.order_ref else frozenset(),
                      frozenset([ev.customer_ref]) if ev.customer_ref and not seen else frozenset())


def new_customer(session: Session, provider: str, customer_ref: Optional[str]) -> bool:
    """Whether this customer had no order and no payment of the provider when the event (a lone
    payment) began (known without a statement)."""
    mark = session.info.get(_CUSTOMERS)
    return bool(customer_ref) and mark is not None and mark[0] == provider and customer_ref in mark[1]


def take_payment(session: Session, provider: str, ids: Iterable[Optional[str]]) -> bool:
    """Whether no payment has any of these ids (known without a statement); said once."""
    mark = session.info.get(_PAYMENTS)
    given = {i for i in ids if i}
    if mark is None or mark[0] != provider or not given or not given <= mark[1]:
        return False
    del session.info[_PAYMENTS]
    return True


def take_order(session: Session, order_ref: Optional[str]) -> bool:
    """Whether no order has this reference (known without a statement); said once."""
    mark = session.info.get(_ORDERS)
    if mark is None or not order_ref or order_ref not in mark:
        return False
    del session.info[_ORDERS]
    return True


def forget(session: Session) -> None:
    session.info.pop(_PAYMENTS, None)
    session.info.pop(_ORDERS, None)
    session.info.pop(_CUSTOMERS, None)
