"""Reads of plain values past the ORM: sums, flags, a few columns, rows no one changes.

``session.execute`` runs every statement through the ORM's execution (its events, its compile
state, and for a select of mapped entities, the loading of objects). ``bench/read_paths.py``
measures one look-up of three rows: on SQLite about 90-120 us of the client's CPU as ORM
objects, 25-35 us as a Core select on the session's connection, 4-6 us of it the driver's own
work; on PostgreSQL 340-390 us against 165-220 (bench/README.md, session 22). The worker's
refunds and disputes make about a dozen such reads each. ``read`` runs a Core statement on the
session's connection, after what the session would have written first anyway: its changed
objects (autoflush, unless the caller turned it off) and the rows waiting in write-behind mode
(``write_behind``), on the driver's connection (``driver_sql``: about 5 us on SQLite, 30 on
PostgreSQL, for the same look-up). Its rows are named tuples, whose columns are also
attributes: read-only stand-ins for the objects they come from.
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy.orm import Session

from bridge.ledger import driver_sql, write_behind


class Found(list):
    """The rows a read found, with the few ways of taking them that SQLAlchemy's results have."""

    def all(self) -> list:
        return list(self)

    def first(self):
        return self[0] if self else None

    def one_or_none(self):
        if len(self) > 1:
            raise LookupError(f"{len(self)} rows where at most one was expected")
        return self.first()

    def one(self):
        if len(self) != 1:
            raise LookupError(f"{len(self)} rows where one was expected")
        return self[0]

    def scalars(self) -> "Found":
        return Found(row[0] for row in self)

    def scalar_one(self):
        return self.one()[0]

    def scalar_one_or_none(self):
        row = self.one_or_none()
        return None if row is None else row[0]


def read(session: Session, statement, params: Optional[dict] = None) -> Found:
    """The rows of ``statement`` (a Core SELECT built once), run where the session's
    transaction is."""
    if session.autoflush:
        session.flush()
    write_behind.flush(session)
    conn = session.connection()
    try:
        return Found(driver_sql.rows(conn, statement, params))
    except driver_sql.Unsupported:
        return Found(conn.execute(statement, params or {}).all())
