"""What failed and waits for a person: webhook events that failed or are parked, dead jobs, and
license notices not delivered; and putting a dead job back in the queue (``retry_job``, the same
code ``bridge jobs retry`` runs). Events are retried with ``bridge.ledger.replay.replay_event``
and notices with ``bridge.services.notices.resend_undelivered``, as their CLI verbs do."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bridge.ledger.inbox import PROCESS_EVENT
from bridge.ledger.models import Job, OutboundMessage, WebhookEvent

LIMIT = 200
PAYLOAD_LIMIT = 64 * 1024  # bytes of a stored body shown on the page


@dataclass
class FailedWork:
    events: list[WebhookEvent]
    jobs: list[Job]
    notices: list[tuple[OutboundMessage, Optional[Job]]]
    job_refs: dict[int, str]  # a dead job that processes an event -> "stripe evt_..."


def failed_work(session: Session) -> FailedWork:
    events = list(session.execute(select(WebhookEvent).where(WebhookEvent.status.in_(("failed", "parked")))
                                  .order_by(WebhookEvent.received_at.desc(), WebhookEvent.id.desc())
                                  .limit(LIMIT)).scalars())
    jobs = list(session.execute(select(Job).where(Job.state == "dead")
                                .order_by(Job.finished_at.desc(), Job.id.desc()).limit(LIMIT)).scalars())
    msgs = list(session.execute(select(OutboundMessage).where(OutboundMessage.delivered_at.is_(None))
                                .order_by(OutboundMessage.created_at.desc()).limit(LIMIT)).scalars())
    by_key = {j.dedupe_key: j for j in session.execute(
        select(Job).where(Job.dedupe_key.in_([f"notice:{m.id}" for m in msgs]))).scalars()} if msgs else {}
    event_pks = [int(j.ref_id) for j in jobs if j.kind == PROCESS_EVENT and j.ref_id.isdigit()]
    names = {pk: f"{prov} {eid}" for pk, prov, eid in session.execute(
        select(WebhookEvent.id, WebhookEvent.provider, WebhookEvent.provider_event_id)
        .where(WebhookEvent.id.in_(event_pks)))} if event_pks else {}
    refs = {j.id: names[int(j.ref_id)] for j in jobs
            if j.kind == PROCESS_EVENT and j.ref_id.isdigit() and int(j.ref_id) in names}
    return FailedWork(events, jobs, [(m, by_key.get(f"notice:{m.id}")) for m in msgs], refs)


def stored_headers(event: WebhookEvent) -> dict:
    """The headers kept with a delivery, without its signature (never shown or logged)."""
    return {k: v for k, v in (event.headers or {}).items() if "signature" not in k.lower()}


def retry_job(session: Session, job_id: int, now: datetime) -> bool:
    """A dead job runs again from its first attempt. False if it is not dead (already retried,
    or never failed): a retry never touches a job that is queued or running."""
    res = session.execute(
        update(Job).where(Job.id == job_id, Job.state == "dead")
        .values(state="ready", run_at=now, attempts=0, finished_at=None, lease_token=None,
                locked_until=None, locked_by=None)
        .execution_options(synchronize_session=False))
    return res.rowcount == 1
