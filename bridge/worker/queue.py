"""The job queue in the database (architecture.md invariant 5).

Jobs are rows written in the same transaction as the change that calls for them. A worker
claims ready jobs with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite every
transaction is ``BEGIN IMMEDIATE``, so claimers serialise), extends it by heartbeat, and
finishes with a fencing check on the lease token: a worker whose lease ran out and was
re-claimed by another cannot finish (or commit the effects of) the job. A job whose worker
died is claimed again once its lease has expired. Failures back off exponentially with
jitter up to ``max_attempts``, then the job is ``dead`` and visible to operators and finance.
"""
from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Optional, Union

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection, Engine

from bridge.ledger import driver_sql
from bridge.ledger.jobs import enqueue  # noqa: F401 - re-exported for handlers

# The due jobs: ready ones whose time has come, and running ones whose lease ran out (their
# worker died). Each kind is read in (run_at, id) order off ix_jobs_state_run_at_id and cut at
# the limit, then the two are merged: one OR over both would read and sort every ready job of
# a backlog (a sync's) to take the first few.
_DUE = """
    SELECT id, run_at FROM (
        SELECT id, run_at FROM jobs WHERE state = 'ready' AND run_at <= :now
        ORDER BY state, run_at, id LIMIT :limit{lock}) AS ready
    UNION ALL
    SELECT id, run_at FROM (
        SELECT id, run_at FROM jobs WHERE state = 'running' AND locked_until < :now
        ORDER BY state, run_at, id LIMIT :limit{lock}) AS expired
    ORDER BY run_at, id
    LIMIT :limit"""

_CLAIM = """
UPDATE jobs SET state = 'running', locked_by = :worker, lease_token = :token,
       locked_until = :until, attempts = attempts + 1
WHERE id IN (SELECT id FROM ({due}) AS due)
RETURNING id, kind, ref_id, attempts, max_attempts, run_at
"""

# PostgreSQL: a job another claimer has locked is skipped, not waited for.
_CLAIM_PG = text(_CLAIM.format(due=_DUE.format(lock=" FOR UPDATE SKIP LOCKED")))
_CLAIM_SQLITE = text(_CLAIM.format(due=_DUE.format(lock="")))

_HEARTBEAT = text("""
UPDATE jobs SET locked_until = :until
WHERE id = :id AND lease_token = :token AND state = 'running'
""")

# Every job of one claim shares its lease token: one statement extends them all. On PostgreSQL
# it skips the rows a batch transaction of the same claim is writing (they are being renewed or
# finished there): waiting for them while holding others could close a cycle with that batch.
_HEARTBEAT_CLAIM = text("""
UPDATE jobs SET locked_until = :until
WHERE lease_token = :token AND state = 'running'
""")

_HEARTBEAT_CLAIM_PG = text("""
UPDATE jobs SET locked_until = :until
WHERE id IN (SELECT id FROM jobs WHERE lease_token = :token AND state = 'running' FOR UPDATE SKIP LOCKED)
""")

# Inside a batch's transaction: extend the lease of its jobs, and say which are still ours.
_RENEW = text("""
UPDATE jobs SET locked_until = :until
WHERE id IN :ids AND lease_token = :token AND state = 'running'
RETURNING id
""").bindparams(bindparam("ids", expanding=True))

# Give back claimed jobs that were not started (as if never claimed: the attempt is returned).
_RELEASE = text("""
UPDATE jobs SET state = 'ready', lease_token = NULL, locked_until = NULL, locked_by = NULL,
       attempts = attempts - 1
WHERE id IN :ids AND lease_token = :token AND state = 'running'
""").bindparams(bindparam("ids", expanding=True))

# Jobs that only touch the database and take milliseconds: a claim may take several of them
# at once (one round trip). Of anything else (a provider call, a notice delivery) a claim takes
# at most one, run after its quick jobs (runner.py), so that it holds none of them up; the
# others go back at once, for any worker to claim. Keeping that one spares the round trips of
# giving the quick jobs back and claiming them again (a claim of 8 events that came upon one
# notice used to keep only the notice, or only the events).
BATCHABLE = frozenset({"process_event"})

_FINISH = text("""
UPDATE jobs SET state = :state, finished_at = :now, lease_token = NULL, locked_until = NULL,
       last_error = :error
WHERE id = :id AND lease_token = :token AND state = 'running'
""")

# The done jobs of a batch, fenced like _FINISH: one statement for all of them.
_FINISH_MANY = text("""
UPDATE jobs SET state = 'done', finished_at = :now, lease_token = NULL, locked_until = NULL,
       last_error = NULL
WHERE id IN :ids AND lease_token = :token AND state = 'running'
""").bindparams(bindparam("ids", expanding=True))

_RETRY = text("""
UPDATE jobs SET state = 'ready', run_at = :run_at, lease_token = NULL, locked_until = NULL,
       locked_by = NULL, last_error = :error, attempts = attempts - :refund_attempt
WHERE id = :id AND lease_token = :token AND state = 'running'
""")


class StaleLease(Exception):
    """The lease was lost (expired and re-claimed): this worker must not finish the job."""


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    ref_id: str
    attempts: int
    max_attempts: int
    lease_token: str


def _t(value: datetime, dialect: str):
    if dialect == "sqlite":
        return value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


# A moment, or a clock to read it from. Lease deadlines read the clock only once the
# transaction holds its lock: on SQLite ``BEGIN IMMEDIATE`` can wait up to the busy timeout,
# and a deadline computed before that wait would hand out a lease already partly spent.
When = Union[datetime, Callable[[], datetime]]


def _read(when: When) -> datetime:
    return when() if callable(when) else when


def _one_token(jobs: list[ClaimedJob]) -> str:
    token = jobs[0].lease_token
    if any(j.lease_token != token for j in jobs):
        raise ValueError("jobs of different claims")
    return token


class Queue:
    def __init__(self, engine: Engine, lease_seconds: float, backoff_base: float,
                 backoff_max: float):
        self.engine = engine
        self.dialect = engine.dialect.name
        self.lease = timedelta(seconds=lease_seconds)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max

    def claim(self, worker_id: str, when: When, limit: int = 1) -> list[ClaimedJob]:
        token = secrets.token_hex(16)
        sql = _CLAIM_PG if self.dialect == "postgresql" else _CLAIM_SQLITE
        with self.engine.begin() as conn:
            now = _read(when)
            rows = driver_sql.rows(conn, sql, {"worker": worker_id, "token": token,
                                               "until": _t(now + self.lease, self.dialect),
                                               "now": _t(now, self.dialect), "limit": limit})
            rows.sort(key=lambda r: (r.run_at, r.id))  # RETURNING keeps no order: the queue's order
            if len(rows) > 1:
                # Its quick jobs, then the first of the slow ones; other slow jobs go back.
                quick = [r for r in rows if r.kind in BATCHABLE]
                slow = [r for r in rows if r.kind not in BATCHABLE]
                if slow[1:]:
                    driver_sql.write(conn, _RELEASE, [{"ids": [r.id for r in slow[1:]], "token": token}])
                rows = quick + slow[:1]
        return [ClaimedJob(r.id, r.kind, r.ref_id, r.attempts, r.max_attempts, token) for r in rows]

    def heartbeat_claim(self, token: str, when: When) -> int:
        """Extend the lease of every job of one claim still running; how many were extended."""
        sql = _HEARTBEAT_CLAIM_PG if self.dialect == "postgresql" else _HEARTBEAT_CLAIM
        with self.engine.begin() as conn:
            now = _read(when)
            return driver_sql.write(conn, sql, [{"until": _t(now + self.lease, self.dialect), "token": token}])

    def renew(self, conn: Connection, jobs: list[ClaimedJob], when: When) -> set[int]:
        """Inside the caller's transaction: extend the lease of these jobs of one claim; the
        ids of those still ours (on PostgreSQL they stay locked until the transaction ends, so
        no other worker can claim them meanwhile)."""
        if not jobs:
            return set()
        now = _read(when)
        rows = driver_sql.rows(conn, _RENEW, {"until": _t(now + self.lease, self.dialect), "ids": [j.id for j in jobs],
                                              "token": _one_token(jobs)})
        return {r.id for r in rows}

    def release(self, jobs: list[ClaimedJob]) -> None:
        """Give back claimed jobs this worker will not start (it is stopping)."""
        by_token: dict[str, list[int]] = {}
        for job in jobs:
            by_token.setdefault(job.lease_token, []).append(job.id)
        if not by_token:
            return
        with self.engine.begin() as conn:
            for token, ids in by_token.items():
                driver_sql.write(conn, _RELEASE, [{"ids": ids, "token": token}])

    def heartbeat(self, job: ClaimedJob, when: When) -> bool:
        with self.engine.begin() as conn:
            now = _read(when)
            changed = driver_sql.write(conn, _HEARTBEAT, [{"until": _t(now + self.lease, self.dialect),
                                                           "id": job.id, "token": job.lease_token}])
        return changed == 1

    def finish(self, conn: Connection, job: ClaimedJob, now: datetime, state: str = "done",
               error: Optional[str] = None) -> None:
        """Mark the job finished inside the caller's transaction; raises ``StaleLease`` (so the
        caller's transaction, effects included, rolls back) if the lease is no longer ours."""
        changed = driver_sql.write(conn, _FINISH, [{"state": state, "now": _t(now, self.dialect), "id": job.id,
                                                    "token": job.lease_token, "error": error}])
        if changed != 1:
            raise StaleLease(f"job {job.id} lease lost")

    def finish_done(self, conn: Connection, jobs: list[ClaimedJob], now: datetime) -> None:
        """``finish`` (state done) for several jobs of one claim in one statement; raises
        ``StaleLease`` unless every one of them is still ours."""
        if not jobs:
            return
        changed = driver_sql.write(conn, _FINISH_MANY, [{"now": _t(now, self.dialect), "ids": [j.id for j in jobs],
                                                         "token": _one_token(jobs)}])
        if changed != len(jobs):
            raise StaleLease(f"{len(jobs) - changed} of jobs {[j.id for j in jobs]} lost their lease")

    def backoff(self, attempts: int) -> float:
        # Full exponential step, then jitter down to half of it so retries spread out.
        step = min(self.backoff_max, self.backoff_base * (2 ** max(0, attempts - 1)))
        return step * random.uniform(0.5, 1.0)

    def reschedule(self, conn: Connection, job: ClaimedJob, now: datetime, error: str) -> str:
        """Inside the caller's transaction: retry later with backoff, or ``dead`` after the
        last attempt. Fenced like ``finish``. Returns the new state."""
        if job.attempts >= job.max_attempts:
            self.finish(conn, job, now, state="dead", error=error[:2000])
            return "dead"
        run_at = now + timedelta(seconds=self.backoff(job.attempts))
        changed = driver_sql.write(conn, _RETRY, [{"run_at": _t(run_at, self.dialect), "error": error[:2000],
                                                   "id": job.id, "token": job.lease_token, "refund_attempt": 0}])
        if changed != 1:
            raise StaleLease(f"job {job.id} lease lost")
        return "ready"

    def fail(self, job: ClaimedJob, now: datetime, error: str) -> str:
        """The job failed (its transaction rolled back): retry later or mark it dead."""
        with self.engine.begin() as conn:
            return self.reschedule(conn, job, now, error)

    def postpone(self, job: ClaimedJob, now: datetime, delay: float, note: str) -> None:
        """Run again later without spending an attempt (waiting is not failing: a refund
        waiting for its provider confirmation, a notice waiting for the receiver)."""
        with self.engine.begin() as conn:
            self.postpone_in(conn, job, now, delay, note)

    def postpone_in(self, conn: Connection, job: ClaimedJob, now: datetime, delay: float, note: str) -> None:
        """``postpone`` inside the caller's transaction (fenced like ``finish``)."""
        changed = driver_sql.write(conn, _RETRY, [{"run_at": _t(now + timedelta(seconds=delay), self.dialect),
                                                   "error": note[:2000], "id": job.id,
                                                   "token": job.lease_token, "refund_attempt": 1}])
        if changed != 1:
            raise StaleLease(f"job {job.id} lease lost")
