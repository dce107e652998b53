"""Writing jobs: always inside the transaction of the change that calls for them."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy.orm import Session

from bridge.ledger import insert_once, reads
from bridge.ledger.models import Job


def enqueue(session: Session, kind: str, ref_id: str, now: datetime, *,
            dedupe_key: Optional[str] = None, run_at: Optional[datetime] = None,
            max_attempts: int = 12) -> None:
    """Add a job inside the caller's transaction. With a ``dedupe_key`` the job is written at
    most once, ever: the key is the effect's own idempotency key."""
    bind = session.get_bind()
    values = dict(kind=kind, ref_id=ref_id, dedupe_key=dedupe_key, state="ready",
                  run_at=run_at or now, attempts=0, max_attempts=max_attempts, created_at=now)
    if dedupe_key is None:
        session.add(Job(**values))
        return
    reads.write(session, insert_once.statement(Job.__table__, ("dedupe_key",), bind.dialect.name), [values])
