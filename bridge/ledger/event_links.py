"""Links from a processed webhook event to the orders it touched (``event_orders``), written
when the event is applied (through ``event_outcomes``), so an order's story lists its provider events by index."""
from __future__ import annotations

from typing import Iterable

from sqlalchemy.orm import Session

from bridge.ledger import insert_once, reads
from bridge.ledger.models import EventOrder


def link_all(session: Session, pairs: Iterable[tuple[int, int]]) -> None:
    """(event, order) links of several events, in one statement. Idempotent: a replayed event
    links the same orders once."""
    rows = [{"event_pk": e, "order_pk": o} for e, o in sorted({(e, o) for e, o in pairs if o is not None})]
    if rows:
        reads.write(session, insert_once.statement(EventOrder.__table__, ("event_pk", "order_pk"),
                                                   session.get_bind().dialect.name), rows)
