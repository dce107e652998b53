"""Reads of plain values past the ORM: sums, flags, a few columns, rows no one changes.

``session.execute`` runs every statement through the ORM's execution (its events, its
compile state, and for a select of mapped entities or columns, the loading of objects): on this
machine a look-up of a few rows costs about 145 us of the client's CPU that way, 90 us as a
select of columns through the session and 35 us on the session's connection, of which the
driver's own work is 5 (bench/README.md, session 22). The worker's refunds and disputes make
about a dozen such reads each. ``read`` runs a Core statement on the session's connection,
after what the session would have written first anyway: its changed objects (autoflush, unless
the caller turned it off) and the rows waiting in write-behind mode (``write_behind``). Its
rows are ``Row`` tuples, whose columns are also attributes: read-only stand-ins for the objects
they come from.
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
