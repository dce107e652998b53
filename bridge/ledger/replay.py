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


def requeue_parked(session, provider: str, now, *, max_attempts: int) -> int:
    """Give every parked event of ``provider`` another go now (after a sync stored what they
    may have waited for: the payment of a refund whose webhook was lost). A parked event whose
    job ran out of attempts while it waited gets a new job; one still waiting runs now.
    Returns how many were requeued."""
    from bridge.ledger.models import Job
    parked = session.execute(select(WebhookEvent.id).where(
        WebhookEvent.provider == provider, WebhookEvent.status == "parked")).scalars().all()
    if not parked:
        return 0
    refs = [str(i) for i in parked]
    live = {}
    for job in session.execute(select(Job).where(Job.kind == PROCESS_EVENT, Job.ref_id.in_(refs),
                                                 Job.state.in_(("ready", "running")))).scalars():
        live[job.ref_id] = job
    for ref in refs:
        job = live.get(ref)
        if job is None:
            enqueue(session, PROCESS_EVENT, ref, now, max_attempts=max_attempts)
        elif job.state == "ready" and job.run_at > now:
            job.run_at = now
    return len(refs)
