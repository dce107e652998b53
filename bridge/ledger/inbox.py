"""The webhook inbox: store a verified delivery and its processing job, once.

This is the intake hot path (see ../shared/reference/performance.md), so it uses SQLAlchemy
Core with hand-written SQL: on PostgreSQL a single autocommitted statement (a data-modifying
CTE inserts the event and, only if it is new, its job: one round trip, atomic because it is one
statement); on SQLite two statements inside one ``BEGIN IMMEDIATE`` transaction. Duplicates are
absorbed by the unique index (``ON CONFLICT DO NOTHING``), never by check-then-insert.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import text
from sqlalchemy.engine import Engine

PROCESS_EVENT = "process_event"

_PG_SQL = text("""
WITH ins AS (
    INSERT INTO webhook_events
        (provider, provider_event_id, event_type, body, headers, received_at, occurred_at, status)
    VALUES (:provider, :event_id, :event_type, :body, CAST(:headers AS JSONB), :now, :occurred_at,
            'received')
    ON CONFLICT (provider, provider_event_id) DO NOTHING
    RETURNING id
)
INSERT INTO jobs (kind, ref_id, state, run_at, attempts, max_attempts, created_at)
SELECT :kind, CAST(id AS TEXT), 'ready', :now, 0, :max_attempts, :now FROM ins
RETURNING ref_id
""")

_SQLITE_EVENT = text("""
INSERT INTO webhook_events
    (provider, provider_event_id, event_type, body, headers, received_at, occurred_at, status)
VALUES (:provider, :event_id, :event_type, :body, :headers, :now, :occurred_at, 'received')
ON CONFLICT (provider, provider_event_id) DO NOTHING
RETURNING id
""")

_SQLITE_JOB = text("""
INSERT INTO jobs (kind, ref_id, state, run_at, attempts, max_attempts, created_at)
VALUES (:kind, :ref_id, 'ready', :now, 0, :max_attempts, :now)
""")


@dataclass(frozen=True)
class Delivery:
    provider: str
    provider_event_id: str
    event_type: str
    body: bytes
    headers: dict
    occurred_at: Optional[datetime]


class Inbox:
    def __init__(self, engine: Engine, max_attempts: int):
        self._engine = engine
        self._max_attempts = max_attempts
        self._pg = engine.dialect.name == "postgresql"
        if self._pg:
            self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

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
            "kind": PROCESS_EVENT,
            "max_attempts": self._max_attempts,
        }
        if self._pg:
            with self._autocommit.connect() as conn:
                return conn.execute(_PG_SQL, params).first() is not None
        with self._engine.begin() as conn:
            row = conn.execute(_SQLITE_EVENT, params).first()
            if row is None:
                return False
            conn.execute(_SQLITE_JOB, {**params, "ref_id": str(row[0])})
            return True


def _db_time(value: Optional[datetime], pg: bool):
    """Raw SQL bypasses the UTCDateTime column type: give each driver what it expects."""
    if value is None:
        return None
    if pg:
        return value
    # The same text form SQLAlchemy writes for DateTime on SQLite, so comparisons sort right.
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
