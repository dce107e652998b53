"""Links from a processed webhook event to the orders it touched (``event_orders``), written
when the event is applied, so an order's story lists its provider events by index."""
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


def link(session: Session, event_pk: int, order_pks: Iterable[int]) -> None:
    """Idempotent: a replayed event links the same orders once."""
    pks = sorted({pk for pk in order_pks if pk is not None})
    if not pks:
        return
    session.execute(_insert_stmt(session.get_bind().dialect.name),
                    [{"event_pk": event_pk, "order_pk": pk} for pk in pks])
