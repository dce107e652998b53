"""Reads of plain values past the ORM: sums, flags, a few columns, rows no one changes.

``session.execute`` runs every statement through the ORM's execution (its events, its compile
state, and for a select of mapped entities, the loading of objects). ``bench/read_paths.py``
measures one look-up of three rows: on SQLite about 90-120 us of the client's CPU as ORM
objects, 25-35 us as a Core select on the session's connection, 4-6 us of it the driver's own
work; on PostgreSQL 340-390 us against 165-220 (bench/README.md, session 22). The worker's
refunds and disputes make about a dozen such reads each. ``read`` runs a Core statement on the
session's connection, after what the session would have written first anyway: its changed
objects (autoflush, unless the caller turned it off) and the rows waiting in write-behind mode
(``write_behind``). Its rows are ``Row`` tuples, whose columns are also attributes: read-only
stand-ins for the objects they come from.
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy.orm import Session

from bridge.ledger import write_behind


def read(session: Session, statement, params: Optional[dict] = None):
    """The result of ``statement`` (a Core SELECT), run where the session's transaction is."""
    if session.autoflush:
        session.flush()
    write_behind.flush(session)
    return session.connection().execute(statement, params or {})
