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
A transaction that already holds keys of an earlier unit of work (a worker's batch of events in
one transaction, bridge/worker/batch.py) must not wait for more: two such transactions could
each hold what the other's next event needs. Put in no-wait mode (``no_wait``), ``lock`` takes
every key with ``pg_try_advisory_xact_lock`` and raises ``LockBusy`` when one is held elsewhere;
the caller rolls back to a savepoint taken before that unit (PostgreSQL releases what an aborted
subtransaction took), commits what it has done, and runs that unit first in a new transaction,
where it may wait like any other. A unit that had written nothing yet (``nothing_written``)
needs no savepoint: the keys its try took go with that commit.

SQLite needs none of this: every writing transaction there holds the one write lock
(``BEGIN IMMEDIATE``, see db.py).

The row versions of ``orders`` and ``refund_requests`` (models.py) are the constraint under the
locks: a transaction that writes one of those rows from a stale read fails (``StaleDataError``)
instead of overwriting a newer state, so the invariants hold even where a lock was missed.
"""
from __future__ import annotations

import hashlib
from typing import Iterable, Optional

from sqlalchemy import event
from sqlalchemy.orm import Session

from bridge.ledger import write_behind
from bridge.ledger.absent import Resolution, storable
from bridge.ledger.driver_sql import driver_error
from bridge.ledger.models import PAYMENT_ID_FIELDS

_LEVEL = {"payment": 0, "subscription": 0, "payout": 0, "order": 1, "customer": 2}

# The statements here run on the driver's own connection (psycopg placeholders), inside the
# session's transaction: SQLAlchemy's execution layer cost five times the client CPU of the
# statement itself (100 us against 18), and an event takes two to six of them (see _rows).

# One round trip for all keys of a level; unnest yields them in the array's (sorted) order. The
# arrays travel as PostgreSQL array literals (text): binding a Python list as an ARRAY costs
# more client CPU than the whole statement (see _array).
_LOCK = "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(%(keys)s AS BIGINT[])) AS t(k)"
# Every key tried (a busy one does not stop the others): the caller rolls back all of them anyway.
_TRY_LOCK = "SELECT bool_and(pg_try_advisory_xact_lock(k)) FROM unnest(CAST(%(keys)s AS BIGINT[])) AS t(k)"

# What the keys of an event resolve to: the orders and customers of the payments it names (by any
# provider id, or by subscription), and the customers of the orders it names. The first column
# says which arm a row came from: 'c' rows are the event's customers that have any order or any
# payment of the provider already (the others are new: bridge/ledger/absent.py).
#
# Written for a plan PostgreSQL makes once per connection. With the arrays compared directly
# (``col = ANY(%(ids)s)``) the planner sees their lengths in every custom plan, so it never
# takes the generic plan (which assumes ten elements) and planned this statement on every call:
# 0.3-0.5 ms of the server's CPU against 0.06 ms to run it, the costliest statement of an event.
# Each array is read through an InitPlan (``(SELECT %(ids)s)``), hidden from custom and generic
# plans alike, so the generic plan is taken after five calls; and every arm is a nested loop of
# index probes per element (LATERAL, kept from being flattened into a join by its LIMIT or
# OFFSET 0), a plan that stays right whatever the tables' size or statistics.
_RESOLVE_EVENT = """
SELECT 'p', o.order_id, o.customer_id, p.customer_ref
FROM unnest(CAST((SELECT %(ids)s) AS TEXT[])) AS i(v)
CROSS JOIN LATERAL (
    SELECT p.order_pk, p.customer_ref FROM payments p WHERE p.provider = %(provider)s AND p.transaction_id = i.v
    UNION ALL SELECT p.order_pk, p.customer_ref FROM payments p WHERE p.provider = %(provider)s AND p.charge_id = i.v
    UNION ALL SELECT p.order_pk, p.customer_ref FROM payments p
              WHERE p.provider = %(provider)s AND p.payment_intent_id = i.v
    UNION ALL SELECT p.order_pk, p.customer_ref FROM payments p WHERE p.provider = %(provider)s AND p.invoice_id = i.v
    UNION ALL SELECT p.order_pk, p.customer_ref FROM payments p
              WHERE p.provider = %(provider)s AND p.checkout_session_id = i.v) p
LEFT JOIN LATERAL (SELECT o.order_id, o.customer_id FROM orders o WHERE o.id = p.order_pk LIMIT 1) o ON true
UNION ALL
SELECT 'p', o.order_id, o.customer_id, p.customer_ref
FROM unnest(CAST((SELECT %(subs)s) AS TEXT[])) AS s(v)
CROSS JOIN LATERAL (SELECT p.order_pk, p.customer_ref FROM payments p
                    WHERE p.subscription_id = s.v AND p.provider = %(provider)s AND p.order_pk IS NOT NULL
                    OFFSET 0) p
LEFT JOIN LATERAL (SELECT o.order_id, o.customer_id FROM orders o WHERE o.id = p.order_pk LIMIT 1) o ON true
UNION ALL
SELECT 'o', o.order_id, o.customer_id, NULL
FROM unnest(CAST((SELECT %(refs)s) AS TEXT[])) AS r(v)
CROSS JOIN LATERAL (SELECT o.order_id, o.customer_id FROM orders o WHERE o.order_id = r.v LIMIT 1) o
UNION ALL
SELECT 'c', NULL, NULL, t.c FROM unnest(CAST((SELECT %(customers)s) AS TEXT[])) AS t(c)
CROSS JOIN LATERAL (SELECT 1 FROM orders o WHERE o.customer_id = t.c LIMIT 1) x
UNION ALL
SELECT 'c', NULL, NULL, t.c FROM unnest(CAST((SELECT %(customers)s) AS TEXT[])) AS t(c)
CROSS JOIN LATERAL (SELECT 1 FROM payments p WHERE p.provider = %(provider)s AND p.customer_ref = t.c LIMIT 1) x
"""

# (order_id, customer_id) rows
_ORDER_BY_ID = "SELECT order_id, customer_id FROM orders WHERE order_id = %(order_id)s"
_ORDER_BY_PK = "SELECT order_id, customer_id FROM orders WHERE id = %(pk)s"
_ORDER_OF_REQUEST = ("SELECT o.order_id, o.customer_id FROM refund_requests r JOIN orders o ON o.id = r.order_pk "
                     "WHERE r.id = %(rr_id)s")
_PAYMENT = ("SELECT p.provider, o.order_id, o.customer_id, p.customer_ref, "
            + ", ".join(f"p.{f}" for f in PAYMENT_ID_FIELDS) + " "
            "FROM payments p LEFT JOIN orders o ON o.id = p.order_pk WHERE p.id = %(pk)s")

_NO_WAIT = "bridge_locks_no_wait"  # session.info: this session's lock() must not wait


class LockBusy(Exception):
    """A key was held by another transaction and this one, in no-wait mode, did not wait."""

    def __init__(self, keys: list[str]):
        super().__init__(f"lock busy: one of {len(keys)} keys ({', '.join(keys[:3])}...) is held elsewhere")
        self.keys = keys
        # Set by a caller that knows its unit of work had written nothing yet (its first step):
        # then nothing needs undoing but the keys this try took, which go at the COMMIT.
        self.nothing_written = False


def no_wait(session: Session, on: bool) -> None:
    """From now on in this session, ``lock`` fails with ``LockBusy`` instead of waiting (on),
    or waits as usual (off)."""
    session.info[_NO_WAIT] = on


def _rows(session: Session, sql: str, params: dict, reads: bool = True) -> list[tuple]:
    """Run one statement in the session's transaction, on the driver's connection; its rows.
    A driver error is raised as SQLAlchemy's ``DBAPIError`` (a deadlock, the database gone),
    as the callers (the worker's retries) expect of every statement. ``reads``: it may read
    rows still waiting to be written (write_behind.py), which are written first."""
    if reads:
        write_behind.flush(session)
    conn = session.connection()
    driver = conn.connection.driver_connection
    try:
        return driver.execute(sql, params).fetchall()
    except conn.dialect.loaded_dbapi.Error as err:
        raise driver_error(err, driver, conn.dialect, conn.invalidate, sql, params) from err


def _array(values: Iterable) -> str:
    """A PostgreSQL array literal: every element double-quoted, with its quotes and
    backslashes escaped (provider ids are the provider's strings, not ours)."""
    return "{" + ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def key_hash(key: str) -> int:
    # surrogatepass: a provider's id may hold a lone surrogate (refused later, when stored).
    return int.from_bytes(hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()[:8], "big", signed=True)


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
    keys = {"keys": _array(key_hash(k) for k in todo)}
    if session.info.get(_NO_WAIT):
        if not _rows(session, _TRY_LOCK, keys, reads=False)[0][0]:
            raise LockBusy(todo)
    else:
        _rows(session, _LOCK, keys, reads=False)
    held.update(todo)


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, _transaction) -> None:
    # The keys went with the transaction (or with a savepoint rolled back: PostgreSQL releases
    # what a subtransaction took when it aborts). Taking a held key again is harmless.
    session.info.pop("bridge_locks", None)


def row_keys(table: str, values: dict) -> list[str]:
    """The keys a new row of ``orders`` or ``payments`` answers to (what the resolution of an
    event's keys would find it by); none for other tables."""
    if table == "orders":
        return _order_keys(values.get("order_id"), values.get("customer_id"))
    if table == "payments":
        provider = values["provider"]
        keys = [f"payment:{provider}:{values[f]}" for f in PAYMENT_ID_FIELDS if values.get(f)]
        if values.get("subscription_id"):
            keys.append(f"subscription:{provider}:{values['subscription_id']}")
        return keys + _order_keys(None, values.get("customer_ref"))
    return []


def _order_keys(order_id: Optional[str], *customers: Optional[str]) -> list[str]:
    return ([f"order:{order_id}"] if order_id else []) + [f"customer:{c}" for c in customers if c]


def lock_order(session: Session, order_id: Optional[str] = None, order_pk: Optional[int] = None,
               customers: Iterable[Optional[str]] = ()) -> None:
    """The order (by its merchant id or row id) and its customer, and any other ``customers``
    the transaction may attach to it."""
    if not _pg(session):
        return
    if order_id is None:
        rows = _rows(session, _ORDER_BY_PK, {"pk": order_pk})
        if not rows:
            return
        order_id = rows[0][0]
    lock(session, _order_keys(order_id))
    # Read once the order is held: only a holder of the order changes its customer.
    rows = _rows(session, _ORDER_BY_ID, {"order_id": order_id})
    lock(session, _order_keys(None, rows[0][1] if rows else None, *customers))


def lock_refund_request(session: Session, rr_id: str) -> None:
    if not _pg(session):
        return
    rows = _rows(session, _ORDER_OF_REQUEST, {"rr_id": rr_id})
    if rows:
        lock_order(session, rows[0][0])


def lock_payment(session: Session, payment_pk: int) -> None:
    """A payment row: its provider ids, then its order and customer (re-read once held)."""
    if not _pg(session):
        return
    for _ in range(4):
        rows = _rows(session, _PAYMENT, {"pk": payment_pk})
        if not rows:
            return
        provider, order_id, customer_id, customer_ref, *ids = rows[0]
        keys = [f"payment:{provider}:{i}" for i in ids if i]
        keys += _order_keys(order_id, customer_id, customer_ref)
        if set(keys) <= _held(session):
            return
        lock(session, keys)


def lock_payout(session: Session, provider: str, payout_id: str) -> None:
    """A payout (its row and its lines): a payout event, sync and the itemizing job each read
    whether it is itemized and write what follows."""
    lock(session, [f"payout:{provider}:{payout_id}"])


def lock_for_events(session: Session, provider: str, events: Iterable,
                    ask_customers: bool = False) -> Optional[Resolution]:
    """Before applying a provider event: the payments, subscriptions, orders and customers it
    names, then those its payments and orders turn out to belong to (re-read after each wait
    until nothing new turns up). Returns what the first resolution, once the event's keys were
    held, found missing (``Resolution``; its new customers only when ``ask_customers``) when the
    event names a payment or an order; else None (always on SQLite)."""
    if not _pg(session):
        return None
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
        return None
    # One PostgreSQL could not store names no row.
    customers = set(filter(storable, customers)) if ask_customers else set()
    params = {"provider": provider, "ids": _array(sorted(filter(storable, ids))),
              "subs": _array(sorted(filter(storable, subs))), "refs": _array(sorted(filter(storable, refs))),
              "customers": _array(sorted(customers))}
    resolution = None
    # Rows of earlier events of this transaction may still wait to be written: only one that
    # answers to a key of this event could change what the resolution finds.
    waiting = not write_behind.pending_keys(session).isdisjoint(keys)
    for attempt in range(4):
        found = []
        rows = _rows(session, _RESOLVE_EVENT, params, reads=waiting)
        named = [r for r in rows if r[0] != "c"]
        if attempt == 0:
            # The customer keys were held before this read (taken above with the rest); a
            # re-read has no need to ask again.
            known = {r[3] for r in rows if r[0] == "c"}
            resolution = Resolution(frozenset() if named else frozenset(ids),
                                    frozenset() if named else frozenset(refs), frozenset(customers - known))
            params["customers"] = _array(())
        for _arm, order_id, customer_id, customer_ref in named:
            found += _order_keys(order_id, customer_id, customer_ref)
        if set(found) <= _held(session):
            break
        lock(session, found)
    return resolution
