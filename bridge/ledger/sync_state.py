"""The rows ``bridge sync`` keeps: a cursor per provider and listing (``sync_cursors``), and per
provider the last run, the last success and the scheduler's lease (``sync_status``).

Each function runs in its own short transaction on the engine: a cursor is committed after
the page it points past was stored, so a sync killed at any moment resumes where its last
committed page ended (the inbox absorbs the events of a page stored twice).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bridge.ledger.models import SyncCursor, SyncStatus


@dataclass(frozen=True)
class Cursor:
    provider: str
    stream: str
    position: Optional[str] = None      # next page of a listing under way
    lower: Optional[datetime] = None    # that listing's time bounds
    upper: Optional[datetime] = None
    resume: Optional[str] = None        # where a later listing goes on from (Paddle)
    watermark: Optional[datetime] = None

    @property
    def under_way(self) -> bool:
        return self.position is not None


def load_cursor(engine: Engine, provider: str, stream: str) -> Cursor:
    with Session(engine) as session:
        row = session.get(SyncCursor, (provider, stream))
        if row is None:
            return Cursor(provider, stream)
        return Cursor(provider, stream, row.position, row.lower, row.upper, row.resume, row.watermark)


def save_cursor(engine: Engine, cursor: Cursor, now: datetime) -> None:
    with Session(engine) as session, session.begin():
        row = session.get(SyncCursor, (cursor.provider, cursor.stream))
        if row is None:
            row = SyncCursor(provider=cursor.provider, stream=cursor.stream)
            session.add(row)
        row.position, row.lower, row.upper = cursor.position, cursor.lower, cursor.upper
        row.resume, row.watermark, row.updated_at = cursor.resume, cursor.watermark, now


def _status(session: Session, provider: str) -> SyncStatus:
    row = session.get(SyncStatus, provider, with_for_update=True)
    if row is None:
        row = SyncStatus(provider=provider, last_result={})
        session.add(row)
    return row


def mark_started(engine: Engine, provider: str, now: datetime) -> None:
    with Session(engine) as session, session.begin():
        _status(session, provider).last_started_at = now


def mark_finished(engine: Engine, provider: str, now: datetime, result: dict,
                  error: Optional[str] = None) -> None:
    """Record a run's outcome: a success moves ``last_success_at``; a failure keeps it."""
    with Session(engine) as session, session.begin():
        row = _status(session, provider)
        row.last_result = result
        row.last_error = error
        if error is None:
            row.last_success_at = now


def ensure_status(engine: Engine, provider: str) -> None:
    with Session(engine) as session, session.begin():
        if session.get(SyncStatus, provider) is None:
            session.add(SyncStatus(provider=provider, last_result={}))


def take_lease(engine: Engine, provider: str, owner: str, now: datetime, seconds: float) -> bool:
    """Become the one process syncing ``provider`` for ``seconds`` (a conditional UPDATE: of
    several workers asking at once, one gets it). False while another holds it."""
    ensure_status(engine, provider)
    with engine.begin() as conn:
        result = conn.execute(
            update(SyncStatus)
            .where(SyncStatus.provider == provider,
                   or_(SyncStatus.lease_until.is_(None), SyncStatus.lease_until < now,
                       SyncStatus.lease_owner == owner))
            .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds)))
        return result.rowcount == 1


def release_lease(engine: Engine, provider: str, owner: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(SyncStatus)
                     .where(SyncStatus.provider == provider, SyncStatus.lease_owner == owner)
                     .values(lease_owner=None, lease_until=None))


@dataclass(frozen=True)
class SyncFreshness:
    provider: str
    last_started_at: Optional[datetime]
    last_success_at: Optional[datetime]
    last_error: Optional[str]
    last_result: dict


def freshness(session: Session) -> list[SyncFreshness]:
    """Every provider's last sync and last successful sync (for a metric "time since the last
    successful sync" and the month's reconciliation: how fresh the provider's record is)."""
    rows = session.execute(select(SyncStatus).order_by(SyncStatus.provider)).scalars()
    return [SyncFreshness(r.provider, r.last_started_at, r.last_success_at, r.last_error,
                          dict(r.last_result or {})) for r in rows]
