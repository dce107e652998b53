"""The ledger only grows: what an entry says about money never changes once it is written.

An entry's ``provider``, ``kind``, ``amount``, ``currency``, ``occurred_at``, ``effect_key``,
``provider_ref``, ``corrects`` and ``created_at`` are fixed at insert. Two links may move:

- ``order_pk``, filled once when an unmatched payment is matched to its order (from empty to
  an order, never from one order to another, never back to empty);
- ``payment_pk``, when two payment rows turn out to be one payment and are merged (the money
  is the same; only which of our rows describes it changes).

No entry is ever deleted. A change of figure is a new entry whose ``corrects`` names the old
one (``bridge.ledger.entries.settle``).

Enforced twice: here, in the ORM (an entry object changed and flushed, a bulk ``UPDATE`` or
``DELETE`` of the table through a session), so the mistake fails at the line that made it with
a clear message; and in the database by triggers (migration ``0003_money``), which also stop
raw SQL and other clients.
"""
from __future__ import annotations

from sqlalchemy import event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from bridge.ledger.models import LedgerEntry

FROZEN = ("provider", "kind", "amount", "currency", "occurred_at", "effect_key", "provider_ref", "corrects",
          "created_at")
MOVABLE_LINKS = ("order_pk", "payment_pk")


class LedgerImmutable(Exception):
    """Code tried to change or delete a ledger entry."""


def _check_object(entry: LedgerEntry) -> None:
    state = inspect(entry)
    for name in FROZEN:
        if state.attrs[name].history.has_changes():
            raise LedgerImmutable(f"ledger entry {entry.id} ({entry.effect_key}): {name} is append-only; "
                                  f"book a correcting entry instead")
    hist = state.attrs["order_pk"].history
    if hist.has_changes() and (hist.deleted and hist.deleted[0] is not None):
        raise LedgerImmutable(f"ledger entry {entry.id}: its order link is set once, from empty")


def _before_flush(session: Session, _ctx, _instances) -> None:
    for obj in session.dirty:
        if isinstance(obj, LedgerEntry) and session.is_modified(obj):
            _check_object(obj)
    for obj in session.deleted:
        if isinstance(obj, LedgerEntry):
            raise LedgerImmutable(f"ledger entry {obj.id} ({obj.effect_key}) cannot be deleted")


def _targets_ledger(state: ORMExecuteState) -> bool:
    table = getattr(state.statement, "table", None)
    return table is not None and getattr(table, "name", None) == LedgerEntry.__tablename__


def _do_orm_execute(state: ORMExecuteState) -> None:
    if state.is_delete and _targets_ledger(state):
        raise LedgerImmutable("ledger entries cannot be deleted")
    if state.is_update and _targets_ledger(state):
        values = getattr(state.statement, "_values", None) or {}
        names = {getattr(k, "key", None) or getattr(k, "name", None) or str(k) for k in values}
        changed = names - set(MOVABLE_LINKS)
        if changed:
            raise LedgerImmutable(f"ledger entries are append-only: UPDATE of {', '.join(sorted(changed))}")


def install(factory: sessionmaker) -> sessionmaker:
    """Guard every session the factory makes (idempotent).

    Marked on the factory itself: ``event.contains`` answers from a registry keyed by the
    target's ``id()``, and a new factory that got the id of a collected one was taken as already
    guarded (a test run saw an UPDATE of an entry pass the ORM guard, stopped only by the
    database's trigger)."""
    if not getattr(factory, "_bridge_append_only", False):
        event.listen(factory, "before_flush", _before_flush)
        event.listen(factory, "do_orm_execute", _do_orm_execute)
        factory._bridge_append_only = True
    return factory
