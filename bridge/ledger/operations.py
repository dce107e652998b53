"""What an operator reads and does from outside the API: the figures ``GET /metrics`` reads
from the database at scrape time, and the queries and actions behind the operator's CLI
(``bridge tokens list|revoke``, ``bridge events list|show``, ``bridge jobs list|retry``).

Rows are returned as plain dicts (ISO times, no secrets: a token's hash never leaves here).
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bridge.ledger.models import ApiToken, Job, OutboundMessage, Refund, WebhookEvent

# Jobs the queue still holds or gave up on. ``done`` jobs are never deleted, so counting them
# would read the whole table at every scrape; their completions are counted as they happen
# (bridge_job_run_seconds_count).
OPEN_JOB_STATES = ("ready", "running", "dead")
JOB_STATES = ("ready", "running", "done", "dead")


def _iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


# --- figures for GET /metrics ------------------------------------------------------------

def job_counts(session: Session) -> list[tuple[str, str, int]]:
    """(kind, state, count) of the jobs in ``OPEN_JOB_STATES`` (the (state, run_at) index)."""
    rows = session.execute(select(Job.kind, Job.state, func.count())
                           .where(Job.state.in_(OPEN_JOB_STATES)).group_by(Job.kind, Job.state))
    return [(k, s, int(n)) for k, s, n in rows]


def oldest_ready_since(session: Session, now: datetime) -> Optional[datetime]:
    """When the longest-waiting job that is due became due (None when none waits)."""
    return session.execute(select(func.min(Job.run_at))
                           .where(Job.state == "ready", Job.run_at <= now)).scalar_one()


def refund_counts(session: Session) -> list[tuple[str, str, int]]:
    """(provider, status, count) of the refunds the ledger holds."""
    rows = session.execute(select(Refund.provider, Refund.status, func.count())
                           .group_by(Refund.provider, Refund.status))
    return [(p, s, int(n)) for p, s, n in rows]


def undelivered_notices(session: Session) -> int:
    """License notices not (yet) accepted by the merchant's app."""
    return int(session.execute(select(func.count()).select_from(OutboundMessage)
                               .where(OutboundMessage.delivered_at.is_(None))).scalar_one())


# --- tokens ---------------------------------------------------------------------------------

def list_tokens(session: Session) -> list[dict]:
    rows = session.execute(select(ApiToken).order_by(ApiToken.id)).scalars()
    return [{"id": t.id, "name": t.name, "scopes": list(t.scopes or []), "created_at": _iso(t.created_at),
             "revoked_at": _iso(t.revoked_at)} for t in rows]


def revoke_tokens(session: Session, name: str, now: datetime) -> list[int]:
    """Revoke every active token called ``name``; returns their ids (empty: none active).
    The token lookup refuses a revoked token at once: nothing caches a token."""
    ids = list(session.execute(select(ApiToken.id).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
                               .order_by(ApiToken.id)).scalars())
    if ids:
        session.execute(update(ApiToken).where(ApiToken.id.in_(ids)).values(revoked_at=now)
                        .execution_options(synchronize_session=False))
    return ids


def token_names(session: Session, name: str) -> int:
    """How many tokens (active or revoked) have this name."""
    return int(session.execute(select(func.count()).select_from(ApiToken).where(ApiToken.name == name)).scalar_one())


# --- events ---------------------------------------------------------------------------------

def _event_row(e: WebhookEvent) -> dict:
    return {"id": e.id, "provider": e.provider, "provider_event_id": e.provider_event_id,
            "event_type": e.event_type, "status": e.status, "received_at": _iso(e.received_at),
            "occurred_at": _iso(e.occurred_at), "processed_at": _iso(e.processed_at), "error": e.error}


def list_events(session: Session, status: Optional[str] = None, provider: Optional[str] = None,
                limit: int = 50) -> list[dict]:
    """The newest stored events first."""
    q = select(WebhookEvent).order_by(WebhookEvent.id.desc()).limit(limit)
    if status:
        q = q.where(WebhookEvent.status == status)
    if provider:
        q = q.where(WebhookEvent.provider == provider)
    return [_event_row(e) for e in session.execute(q).scalars()]


def event_statuses(session: Session) -> list[str]:
    return sorted(session.execute(select(WebhookEvent.status).distinct()).scalars())


def find_events(session: Session, provider_event_id: str, provider: Optional[str] = None) -> list[dict]:
    """A stored event with its processing jobs (the body is not shown: it may hold e-mails)."""
    q = select(WebhookEvent).where(WebhookEvent.provider_event_id == provider_event_id)
    if provider:
        q = q.where(WebhookEvent.provider == provider)
    out = []
    for e in session.execute(q.order_by(WebhookEvent.id)).scalars():
        row = _event_row(e)
        row["body_bytes"] = len(e.body or b"")
        row["jobs"] = [_job_row(j) for j in session.execute(
            select(Job).where(Job.kind == "process_event", Job.ref_id == str(e.id)).order_by(Job.id)).scalars()]
        out.append(row)
    return out


# --- jobs -----------------------------------------------------------------------------------

def _job_row(j: Job) -> dict:
    return {"id": j.id, "kind": j.kind, "ref_id": j.ref_id, "state": j.state, "attempts": j.attempts,
            "max_attempts": j.max_attempts, "run_at": _iso(j.run_at), "created_at": _iso(j.created_at),
            "finished_at": _iso(j.finished_at), "last_error": j.last_error}


def list_jobs(session: Session, state: Optional[str] = None, limit: int = 50) -> list[dict]:
    """The newest jobs first."""
    q = select(Job).order_by(Job.id.desc()).limit(limit)
    if state:
        q = q.where(Job.state == state)
    return [_job_row(j) for j in session.execute(q).scalars()]


class JobNotRetryable(Exception):
    pass


def retry_job(session: Session, job_id: int, now: datetime) -> dict:
    """A dead job (or a ready one waiting out its backoff) runs again now with a fresh count of
    attempts. A running job belongs to its worker; a done one has had its effect."""
    job = session.get(Job, job_id)
    if job is None:
        raise LookupError(f"no job {job_id}")
    if job.state not in ("dead", "ready"):
        raise JobNotRetryable(f"job {job_id} is {job.state}: only a dead or waiting job can be retried")
    session.execute(update(Job).where(Job.id == job_id, Job.state.in_(("dead", "ready")))
                    .values(state="ready", run_at=now, attempts=0, finished_at=None, lease_token=None,
                            locked_until=None, locked_by=None)
                    .execution_options(synchronize_session=False))
    session.refresh(job)
    return _job_row(job)
