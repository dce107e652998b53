"""``bridge events replay``: process a stored event again (its effects are idempotent)."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import select

from bridge.ledger.inbox import PROCESS_EVENT
from bridge.ledger.models import WebhookEvent
from bridge.ledger.jobs import enqueue


def replay_event(rt, provider_event_id: str, provider: Optional[str] = None) -> list[tuple[str, str]]:
    now = rt.clock()
    with rt.sessions.begin() as session:
        q = select(WebhookEvent).where(WebhookEvent.provider_event_id == provider_event_id)
        if provider:
            q = q.where(WebhookEvent.provider == provider)
        rows = session.execute(q).scalars().all()
        if not rows:
            raise LookupError(f"no stored event {provider_event_id!r}")
        if len(rows) > 1:
            raise LookupError(f"event id {provider_event_id!r} exists for several providers; pass --provider")
        row = rows[0]
        row.status, row.error = "received", None
        enqueue(session, PROCESS_EVENT, str(row.id), now, max_attempts=rt.settings.job_max_attempts)
        return [(row.provider, row.provider_event_id)]
