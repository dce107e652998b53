"""The job queue: claim with a lease, fencing, backoff to dead, reclaim after a lost lease."""
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from bridge.ledger.jobs import enqueue
from bridge.ledger.models import Job
from bridge.worker.queue import Queue, StaleLease
from bridge.worker.runner import Postpone, Worker


def add_jobs(rt, n, kind="noop", **kw):
    now = rt.clock()
    with rt.sessions.begin() as s:
        for i in range(n):
            enqueue(s, kind, str(i), now, **kw)


def jobs(rt):
    with rt.reads() as s:
        return s.execute(select(Job).order_by(Job.id)).scalars().all()


def queue(rt, lease=2.0):
    return Queue(rt.engine, lease, 0.05, 1.0)


def test_claim_marks_running_and_fences_completion(runtime):
    add_jobs(runtime, 2)
    q = queue(runtime)
    now = runtime.clock()
    a = q.claim("w1", now, limit=1)
    b = q.claim("w2", now, limit=5)
    assert len(a) == 1 and len(b) == 1 and a[0].id != b[0].id
    assert q.claim("w3", now) == []
    with runtime.engine.begin() as conn:
        q.finish(conn, a[0], now)
    # A stale token cannot finish: the effect transaction would roll back.
    stale = a[0].__class__(**{**a[0].__dict__, "lease_token": "not-mine"})
    with pytest.raises(StaleLease):
        with runtime.engine.begin() as conn:
            q.finish(conn, stale, now)
    states = sorted(j.state for j in jobs(runtime))
    assert states == ["done", "running"]


def test_expired_lease_is_reclaimed_and_old_holder_fenced(runtime):
    add_jobs(runtime, 1)
    q = queue(runtime, lease=2.0)
    t0 = runtime.clock()
    first = q.claim("w1", t0)[0]
    assert q.claim("w2", t0 + timedelta(seconds=1)) == []
    second = q.claim("w2", t0 + timedelta(seconds=3))[0]
    assert second.id == first.id and second.attempts == 2
    with pytest.raises(StaleLease):
        with runtime.engine.begin() as conn:
            q.finish(conn, first, t0 + timedelta(seconds=3))
    with runtime.engine.begin() as conn:
        q.finish(conn, second, t0 + timedelta(seconds=3))
    assert jobs(runtime)[0].state == "done"


def test_heartbeat_extends_the_lease(runtime):
    add_jobs(runtime, 1)
    q = queue(runtime, lease=2.0)
    t0 = runtime.clock()
    job = q.claim("w1", t0)[0]
    assert q.heartbeat(job, t0 + timedelta(seconds=1.5))
    assert q.claim("w2", t0 + timedelta(seconds=3)) == []  # still leased until t0+3.5
    assert q.claim("w2", t0 + timedelta(seconds=4))[0].id == job.id


def test_failures_back_off_then_dead(runtime):
    add_jobs(runtime, 1, max_attempts=3)
    q = queue(runtime)
    now = runtime.clock()
    for attempt in (1, 2):
        job = q.claim("w", now)[0]
        assert job.attempts == attempt
        assert q.fail(job, now, "boom") == "ready"
        row = jobs(runtime)[0]
        assert row.run_at > now and row.last_error == "boom"
        assert q.claim("w", now) == []  # not before its backoff
        now = row.run_at
    job = q.claim("w", now)[0]
    assert q.fail(job, now, "boom") == "dead"
    assert jobs(runtime)[0].state == "dead"


def test_backoff_is_exponential_with_jitter_and_bounded(runtime):
    q = Queue(runtime.engine, 2.0, 1.0, 30.0)
    for attempts, step in ((1, 1), (2, 2), (3, 4), (5, 16), (9, 30), (20, 30)):
        samples = [q.backoff(attempts) for _ in range(50)]
        assert all(step / 2 <= s <= step for s in samples)
        assert len(set(samples)) > 1


def test_dedupe_key_writes_a_job_once(runtime):
    now = runtime.clock()
    for _ in range(3):
        with runtime.sessions.begin() as s:
            enqueue(s, "refund", "rr_1", now, dedupe_key="refund:rr_1")
    assert len(jobs(runtime)) == 1


def test_worker_runs_handler_effects_in_the_fenced_transaction(runtime):
    add_jobs(runtime, 3)
    seen = []

    def noop(rt, job, session):
        seen.append(job.ref_id)
        session.execute(text("UPDATE jobs SET last_error = 'touched' WHERE id = :id"), {"id": job.id})

    w = Worker(runtime, {"noop": noop}, "w")
    assert w.drain() == 3
    assert sorted(seen) == ["0", "1", "2"]
    assert all(j.state == "done" and j.last_error is None for j in jobs(runtime))


def test_worker_postpone_does_not_spend_attempts_and_errors_do(runtime):
    add_jobs(runtime, 1, kind="wait")
    add_jobs(runtime, 1, kind="boom")

    def wait(rt, job, session):
        raise Postpone(0.0, "waiting for confirmation")

    def boom(rt, job, session):
        session.execute(text("UPDATE jobs SET last_error = 'partial effect' WHERE id = :id"), {"id": job.id})
        raise RuntimeError("provider said no")

    w = Worker(runtime, {"wait": wait, "boom": boom}, "w")
    w.run_once()
    w.run_once()
    by_kind = {j.kind: j for j in jobs(runtime)}
    assert by_kind["wait"].attempts == 0 and by_kind["wait"].state == "ready"
    assert by_kind["boom"].attempts == 1 and by_kind["boom"].state == "ready"
    assert by_kind["boom"].last_error == "RuntimeError: provider said no"  # effect rolled back


def test_unknown_kind_fails_visibly(runtime):
    add_jobs(runtime, 1, kind="mystery", max_attempts=1)
    Worker(runtime, {}, "w").run_once()
    job = jobs(runtime)[0]
    assert job.state == "dead" and "no handler" in job.last_error


def test_concurrent_workers_never_run_a_job_twice(runtime):
    """T16 in miniature: threads claiming from one queue; each job runs exactly once."""
    add_jobs(runtime, 60)
    ran, lock = [], threading.Lock()

    def record(rt, job, session):
        with lock:
            ran.append(job.id)
        time.sleep(0.002)

    workers = [Worker(runtime, {"noop": record}, f"w{i}") for i in range(4)]
    threads = [threading.Thread(target=w.drain, kwargs={"max_seconds": 30}) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(ran) == sorted({j.id for j in jobs(runtime)})
    assert all(j.state == "done" for j in jobs(runtime))


# SQLite only: a PostgreSQL claim skips locked rows instead of waiting for them.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_lease_deadline_counts_from_when_the_claim_got_the_lock(runtime):
    """A claim that waits for the database (SQLite's write lock, held here by another
    writer for 0.8 s) must not hand out a lease already partly spent while it waited."""
    add_jobs(runtime, 1)
    q = queue(runtime, lease=2.0)
    held = threading.Event()

    def hold_write_lock():
        with runtime.engine.begin() as conn:  # BEGIN IMMEDIATE
            conn.execute(text("UPDATE jobs SET max_attempts = max_attempts"))
            held.set()
            time.sleep(0.8)

    t = threading.Thread(target=hold_write_lock)
    t.start()
    held.wait(5)
    asked_at = runtime.clock()
    job = q.claim("w1", runtime.clock)[0]
    t.join()
    with runtime.reads() as s:
        locked_until = s.get(Job, job.id).locked_until
    # The deadline is the lease counted from the moment the claim ran, not from when it asked.
    assert locked_until.replace(tzinfo=None) >= (asked_at + timedelta(seconds=2.0 + 0.6)).replace(tzinfo=None)
