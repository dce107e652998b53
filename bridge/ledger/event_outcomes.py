"""What the worker writes about a stored event once it is applied: its outcome (status,
processed_at, error, the order reference of a held event) and its links to the orders it touched
(``event_links``).

They are collected in the session and written by ``write``, in the same transaction as the
event's effects: right after one event, or once for a whole batch of events in one transaction
(bridge/worker/batch.py), where one statement per kind of row replaces one per event. An event
whose effects roll back records nothing (its ``record`` and ``link`` come after its savepoint),
and a transaction that rolls back takes everything recorded in it along.
"""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import bindparam, event, update
from sqlalchemy.orm import Session

from bridge.ledger import driver_sql, event_links
from bridge.ledger.models import WebhookEvent

_OUTCOMES = "bridge_event_outcomes"
_LINKS = "bridge_event_links"
_UPDATE: dict = {}
_FIELDS = ("status", "processed_at", "error", "order_ref")


def _update_stmt(fields: tuple[str, ...]):
    """One UPDATE per set of columns written (a parked event leaves processed_at as it was)."""
    stmt = _UPDATE.get(fields)
    if stmt is None:
        table = WebhookEvent.__table__
        stmt = _UPDATE[fields] = (update(table).where(table.c.id == bindparam("event_pk"))
                                  .values({f: bindparam(f"new_{f}") for f in fields}))
    return stmt


def record(session: Session, event_pk: int, **fields) -> None:
    """The event's outcome, written by ``write`` (fields: status, processed_at, error, order_ref)."""
    unknown = set(fields) - set(_FIELDS)
    if unknown:
        raise TypeError(f"not an event outcome: {sorted(unknown)}")
    session.info.setdefault(_OUTCOMES, []).append((event_pk, fields))


def link(session: Session, event_pk: int, order_pks: Iterable[int]) -> None:
    """The orders the event touched, linked by ``write``."""
    session.info.setdefault(_LINKS, []).extend((event_pk, pk) for pk in order_pks if pk is not None)


def write(session: Session) -> None:
    """Write everything recorded in this session's transaction so far."""
    links = session.info.pop(_LINKS, None)
    if links:
        event_links.link_all(session, links)
    outcomes = session.info.pop(_OUTCOMES, None)
    if not outcomes:
        return
    by_shape: dict[tuple[str, ...], list[dict]] = {}
    for event_pk, fields in outcomes:
        shape = tuple(f for f in _FIELDS if f in fields)
        by_shape.setdefault(shape, []).append(
            {"event_pk": event_pk, **{f"new_{f}": v for f, v in fields.items()}})
    conn = session.connection()
    for shape, rows in by_shape.items():
        driver_sql.write(conn, _update_stmt(shape), rows)


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction) -> None:
    # Recorded in a transaction that ended unwritten (rolled back): gone with it.
    if transaction.parent is None:
        session.info.pop(_OUTCOMES, None)
        session.info.pop(_LINKS, None)
