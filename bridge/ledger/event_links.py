"""Links from a processed webhook event to the orders it touched (``event_orders``), written
when the event is applied, so an order's story lists its provider events by index."""
from __future__ import annotations

from typing import Iterable

from sqlalchemy.orm import Session

from bridge.ledger.models import EventOrder


def link(session: Session, event_pk: int, order_pks: Iterable[int]) -> None:
    """Idempotent: a replayed event links the same orders once."""
    pks = sorted({pk for pk in order_pks if pk is not None})
    if not pks:
        return
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(EventOrder).values([{"event_pk": event_pk, "order_pk": pk} for pk in pks])
                    .on_conflict_do_nothing(index_elements=["event_pk", "order_pk"]))
