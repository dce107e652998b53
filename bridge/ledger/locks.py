"""Which transactions wait for which: locks keyed by what an invariant protects.

A transaction that reads money state and writes what follows from it (applying a provider
event, deciding or reviewing a refund request, recording a refund's outcome, registering an
order) must not run at the same time as another one about the same payment, order or
customer: under PostgreSQL's READ COMMITTED each would miss the other's change and the later
commit would win with a stale status (two refund requests for one order both seeing it
unrefunded; a request left ``refunding`` although its refund succeeded). Transactions about
different customers never wait for each other.

The keys, in three levels taken in this order (so two transactions cannot wait for each other
in a cycle, save when a re-resolution below adds a key of a lower level; PostgreSQL then aborts
one, and its job or request is retried):

1. ``payment:<provider>:<id>`` for every provider id an event names (transaction, charge,
   payment intent, invoice, Checkout Session) and ``subscription:<provider>:<id>``: events about
   one payment serialise before either has found or created its row;
2. ``order:<order_id>`` for the order an event names or its payment belongs to: the order's
   status, its refund requests and refunds, its licenses;
3. ``customer:<id>`` for the order's customer and the payment's customer reference: account-wide
   restrictions judge every license of the customer, duplicate charges compare the customer's
   payments.

``payout:<provider>:<id>`` (taken with the payments, level 1; no order or customer is held
with it) serialises what is written about one payout: its events, sync and its itemizing.

Each key is a transaction-scoped advisory lock (``pg_advisory_xact_lock`` on 64 bits of the
key's SHA-256), released at commit or rollback. What a transaction resolves (payment -> order
-> customer) is read again after its locks are held, and locked too if it changed meanwhile.
SQLite needs none of this: every writing transaction there holds the one write lock
(``BEGIN IMMEDIATE``, see db.py).

The row versions of ``orders`` and ``refund_requests`` (models.py) are the constraint under the
locks: a transaction that writes one of those rows from a stale read fails (``StaleDataError``)
instead of overwriting a newer state, so the invariants hold even where a lock was missed.
"""
from __future__ import annotations

import hashlib
from typing import Iterable, Optional

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from bridge.ledger.models import PAYMENT_ID_FIELDS

_LEVEL = {"payment": 0, "subscription": 0, "payout": 0, "order": 1, "customer": 2}

# One round trip for all keys of a level; unnest yields them in the array's (sorted) order. The
# arrays travel as PostgreSQL array literals (text): binding a Python list as an ARRAY costs
# more client CPU than the whole statement (see _array).
_LOCK = text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS BIGINT[])) AS t(k)")

# What the keys of an event resolve to: the orders and customers of the payments it names (by any
# provider id, or by subscription), and the customers of the orders it names.
_RESOLVE_EVENT = text("""
SELECT o.order_id, o.customer_id, p.customer_ref
FROM payments p LEFT JOIN orders o ON o.id = p.order_pk
WHERE p.provider = :provider AND (p.transaction_id = ANY(CAST(:ids AS TEXT[])) OR p.charge_id = ANY(CAST(:ids AS TEXT[]))
    OR p.payment_intent_id = ANY(CAST(:ids AS TEXT[])) OR p.invoice_id = ANY(CAST(:ids AS TEXT[])) OR p.checkout_session_id = ANY(CAST(:ids AS TEXT[]))
    OR (p.subscription_id = ANY(CAST(:subs AS TEXT[])) AND p.order_pk IS NOT NULL))
UNION ALL
SELECT o.order_id, o.customer_id, NULL FROM orders o WHERE o.order_id = ANY(CAST(:refs AS TEXT[]))
""")

_ORDER_BY_ID = text("SELECT order_id, customer_id FROM orders WHERE order_id = :order_id")
_ORDER_BY_PK = text("SELECT order_id, customer_id FROM orders WHERE id = :pk")
_ORDER_OF_REQUEST = text("SELECT o.order_id, o.customer_id FROM refund_requests r JOIN orders o ON o.id = r.order_pk "
                         "WHERE r.id = :rr_id")
_PAYMENT = text("SELECT p.provider, p.transaction_id, p.charge_id, p.payment_intent_id, p.invoice_id, "
                "p.checkout_session_id, p.customer_ref, o.order_id, o.customer_id "
                "FROM payments p LEFT JOIN orders o ON o.id = p.order_pk WHERE p.id = :pk")


def _array(values: Iterable) -> str:
    """A PostgreSQL array literal: every element double-quoted, with its quotes and
    backslashes escaped (provider ids are the provider's strings, not ours)."""
    return "{" + ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def key_hash(key: str) -> int:
    # surrogatepass: a provider's id may hold a lone surrogate (refused later, when stored).
    return int.from_bytes(hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()[:8], "big", signed=True)


def _storable(value: str) -> bool:
    """Whether PostgreSQL could hold it (no lone surrogate, no NUL): one it could not cannot
    name a stored row either, and must not fail the look-up."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def _pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _held(session: Session) -> set[str]:
    return session.info.setdefault("bridge_locks", set())


def lock(session: Session, keys: Iterable[str]) -> None:
    """Hold these keys until the transaction ends (PostgreSQL; nothing to do on SQLite). Keys
    already held by this transaction are skipped; the rest are taken by level, then by hash."""
    if not _pg(session):
        return
    held = _held(session)
    todo = sorted({k for k in keys if k and k not in held}, key=lambda k: (_LEVEL[k.partition(":")[0]], key_hash(k)))
    if not todo:
        return
    session.execute(_LOCK, {"keys": _array(key_hash(k) for k in todo)})
    held.update(todo)


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, _transaction) -> None:
    # The keys went with the transaction (or with a savepoint rolled back: PostgreSQL releases
    # what a subtransaction took when it aborts). Taking a held key again is harmless.
    session.info.pop("bridge_locks", None)


def _order_keys(order_id: Optional[str], *customers: Optional[str]) -> list[str]:
    return ([f"order:{order_id}"] if order_id else []) + [f"customer:{c}" for c in customers if c]


def lock_order(session: Session, order_id: Optional[str] = None, order_pk: Optional[int] = None,
               customers: Iterable[Optional[str]] = ()) -> None:
    """The order (by its merchant id or row id) and its customer, and any other ``customers``
    the transaction may attach to it."""
    if not _pg(session):
        return
    if order_id is None:
        row = session.execute(_ORDER_BY_PK, {"pk": order_pk}).first()
        if row is None:
            return
        order_id = row.order_id
    lock(session, _order_keys(order_id))
    # Read once the order is held: only a holder of the order changes its customer.
    row = session.execute(_ORDER_BY_ID, {"order_id": order_id}).first()
    lock(session, _order_keys(None, row.customer_id if row else None, *customers))


def lock_refund_request(session: Session, rr_id: str) -> None:
    if not _pg(session):
        return
    row = session.execute(_ORDER_OF_REQUEST, {"rr_id": rr_id}).first()
    if row is not None:
        lock_order(session, row.order_id)


def lock_payment(session: Session, payment_pk: int) -> None:
    """A payment row: its provider ids, then its order and customer (re-read once held)."""
    if not _pg(session):
        return
    for _ in range(4):
        row = session.execute(_PAYMENT, {"pk": payment_pk}).first()
        if row is None:
            return
        keys = [f"payment:{row.provider}:{getattr(row, f)}" for f in PAYMENT_ID_FIELDS if getattr(row, f)]
        keys += _order_keys(row.order_id, row.customer_id, row.customer_ref)
        if set(keys) <= _held(session):
            return
        lock(session, keys)


def lock_payout(session: Session, provider: str, payout_id: str) -> None:
    """A payout (its row and its lines): a payout event, sync and the itemizing job each read
    whether it is itemized and write what follows."""
    lock(session, [f"payout:{provider}:{payout_id}"])


def lock_for_events(session: Session, provider: str, events: Iterable) -> None:
    """Before applying a provider event: the payments, subscriptions, orders and customers it
    names, then those its payments and orders turn out to belong to (re-read after each wait
    until nothing new turns up)."""
    if not _pg(session):
        return
    ids: set[str] = set()
    subs: set[str] = set()
    refs: set[str] = set()
    customers: set[str] = set()
    payouts: set[str] = set()
    for ev in events:
        if getattr(ev, "payout_id", None):  # a payout event: its payout alone
            payouts.add(ev.payout_id)
        ids.update(v for v in (getattr(ev, f, None) for f in PAYMENT_ID_FIELDS) if v)
        if getattr(ev, "subscription_id", None):
            subs.add(ev.subscription_id)
        if getattr(ev, "order_ref", None):
            refs.add(ev.order_ref)
        if getattr(ev, "customer_ref", None):
            customers.add(ev.customer_ref)
    keys = ([f"payment:{provider}:{i}" for i in ids] + [f"subscription:{provider}:{s}" for s in subs]
            + [f"order:{r}" for r in refs] + [f"customer:{c}" for c in customers]
            + [f"payout:{provider}:{p}" for p in payouts])
    lock(session, keys)
    if not (ids or subs or refs):
        return
    params = {"provider": provider, "ids": _array(sorted(filter(_storable, ids))),
              "subs": _array(sorted(filter(_storable, subs))), "refs": _array(sorted(filter(_storable, refs)))}
    for _ in range(4):
        found = []
        for row in session.execute(_RESOLVE_EVENT, params):
            found += _order_keys(row.order_id, row.customer_id, row.customer_ref)
        if set(found) <= _held(session):
            return
        lock(session, found)
