"""Links from a processed webhook event to the orders it touched (``event_orders``), written
when the event is applied (through ``event_outcomes``), so an order's story lists its provider events by index."""
from __future__ import annotations

from typing import Iterable

from sqlalchemy.orm import Session

from bridge.ledger.models import EventOrder


_INSERT: dict = {}


def _insert_stmt(dialect: str):
    """Built once per dialect (building an insert construct costs more than running it)."""
    stmt = _INSERT.get(dialect)
    if stmt is None:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = _INSERT[dialect] = insert(EventOrder.__table__).on_conflict_do_nothing(
            index_elements=["event_pk", "order_pk"])
    return stmt


def link_all(session: Session, pairs: Iterable[tuple[int, int]]) -> None:
    """(event, order) links of several events, in one statement. Idempotent: a replayed event
    links the same orders once."""
    rows = [{"event_pk": e, "order_pk": o} for e, o in sorted({(e, o) for e, o in pairs if o is not None})]
    if rows:
        session.execute(_insert_stmt(session.get_bind().dialect.name), rows)
