"""The webhook inbox: store a verified delivery and its processing job, once.

This is the intake hot path (see ../shared/reference/performance.md and bench/). It takes a
connection from SQLAlchemy's pool and runs hand-written SQL on the driver's own connection:
SQLAlchemy's execution layer cost as much CPU as the rest of the delivery (bench/README.md).
On PostgreSQL it is a single autocommitted statement (a data-modifying CTE inserts the event
and, only if it is new, its job: one round trip, atomic because it is one statement); on
SQLite two statements inside one ``BEGIN IMMEDIATE`` transaction. Duplicates are absorbed by
the unique index (``ON CONFLICT DO NOTHING``), never by check-then-insert. Driver errors are
raised as SQLAlchemy's ``DBAPIError`` like everywhere else, and a connection the database
dropped is invalidated so the pool reconnects.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from bridge.ledger.driver_sql import driver_error

PROCESS_EVENT = "process_event"

# psycopg's placeholders
_PG_SQL = """
WITH ins AS (
    INSERT INTO webhook_events
        (provider, provider_event_id, event_type, body, headers, received_at, occurred_at, status,
         source)
    VALUES (%(provider)s, %(event_id)s, %(event_type)s, %(body)s, CAST(%(headers)s AS JSONB),
            %(now)s, %(occurred_at)s, 'received', %(source)s)
    ON CONFLICT (provider, provider_event_id) DO NOTHING
    RETURNING id
)
INSERT INTO jobs (kind, ref_id, state, run_at, attempts, max_attempts, created_at)
SELECT %(kind)s, CAST(id AS TEXT), 'ready', %(now)s, 0, %(max_attempts)s, %(now)s FROM ins
RETURNING ref_id
"""

# sqlite3's placeholders
_SQLITE_EVENT = """
INSERT INTO webhook_events
    (provider, provider_event_id, event_type, body, headers, received_at, occurred_at, status, source)
VALUES (:provider, :event_id, :event_type, :body, :headers, :now, :occurred_at, 'received', :source)
ON CONFLICT (provider, provider_event_id) DO NOTHING
RETURNING id
"""

_SQLITE_JOB = """
INSERT INTO jobs (kind, ref_id, state, run_at, attempts, max_attempts, created_at)
VALUES (:kind, :ref_id, 'ready', :now, 0, :max_attempts, :now)
"""


@dataclass(frozen=True)
class Delivery:
    provider: str
    provider_event_id: str
    event_type: str
    body: bytes
    headers: dict
    occurred_at: Optional[datetime]
    source: str = "webhook"          # or "sync": read from the provider's record by bridge sync


class Inbox:
    def __init__(self, engine: Engine, max_attempts: int):
        self._engine = engine
        self._max_attempts = max_attempts
        self._pg = engine.dialect.name == "postgresql"
        self._driver_error = engine.dialect.loaded_dbapi.Error

    def store(self, delivery: Delivery, now: datetime) -> bool:
        """Durably store the delivery; True if it was new, False for a duplicate.

        Raises SQLAlchemy's ``OperationalError``/``DBAPIError`` when the database cannot store
        it: the caller answers 503 so the provider retries.
        """
        params = {
            "provider": delivery.provider,
            "event_id": delivery.provider_event_id,
            "event_type": delivery.event_type,
            "body": delivery.body,
            "headers": json.dumps(delivery.headers),
            "now": _db_time(now, self._pg),
            "occurred_at": _db_time(delivery.occurred_at, self._pg),
            "source": delivery.source,
            "kind": PROCESS_EVENT,
            "max_attempts": self._max_attempts,
        }
        try:
            # Unlike Connection, the pool raises the driver's own errors when it cannot connect.
            conn = self._engine.raw_connection()  # pooled: close() gives it back
        except self._driver_error as err:
            raise DBAPIError.instance(None, None, err, self._driver_error) from err
        try:
            driver = conn.driver_connection
            try:
                return self._store_pg(driver, params) if self._pg else self._store_sqlite(driver, params)
            except self._driver_error as err:
                raise driver_error(err, driver, self._engine.dialect, conn.invalidate) from err
        finally:
            conn.close()

    @staticmethod
    def _store_pg(driver, params: dict) -> bool:
        # Autocommit for this one statement only: the pool's other users expect transactions.
        driver.autocommit = True
        try:
            return driver.execute(_PG_SQL, params).fetchone() is not None
        finally:
            if not driver.broken:  # a dropped connection is invalidated by the caller instead
                driver.autocommit = False

    @staticmethod
    def _store_sqlite(driver, params: dict) -> bool:
        # The connection has no implicit transactions (db.py): begin and end it here.
        driver.execute("BEGIN IMMEDIATE")
        try:
            row = driver.execute(_SQLITE_EVENT, params).fetchone()
            if row is not None:
                driver.execute(_SQLITE_JOB, {**params, "ref_id": str(row[0])})
            driver.execute("COMMIT")
        except BaseException:
            if driver.in_transaction:
                driver.execute("ROLLBACK")
            raise
        return row is not None


def _db_time(value: Optional[datetime], pg: bool):
    """Raw SQL bypasses the UTCDateTime column type: give each driver what it expects."""
    if value is None:
        return None
    if pg:
        return value
    # The same text form SQLAlchemy writes for DateTime on SQLite, so comparisons sort right.
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
