"""Claiming several jobs per round trip: only quick kinds are taken together, the rest of a
claim keeps its lease by heartbeat while it waits, and a stopping worker gives back what it has
not started."""
import threading
import time
from datetime import timedelta

from sqlalchemy import select, text

from bridge.ledger.inbox import PROCESS_EVENT
from bridge.ledger.models import Job
from bridge.worker.runner import Worker
from tests.integration.test_queue import add_jobs, jobs, queue


def _state(rt):
    return [(j.kind, j.state, j.attempts, j.locked_by) for j in jobs(rt)]


def test_quick_jobs_are_claimed_together_and_slow_ones_alone(runtime):
    add_jobs(runtime, 3, kind=PROCESS_EVENT)
    add_jobs(runtime, 1, kind="execute_refund")
    add_jobs(runtime, 2, kind=PROCESS_EVENT)
    q = queue(runtime)
    now = runtime.clock()
    first = q.claim("w1", now, limit=10)
    assert [j.kind for j in first] == [PROCESS_EVENT] * 5
    assert len({j.lease_token for j in first}) == 1
    # The slow job went straight back: ready, its attempt returned, claimable by anyone.
    slow = [j for j in jobs(runtime) if j.kind == "execute_refund"][0]
    assert (slow.state, slow.attempts, slow.lease_token, slow.locked_by) == ("ready", 0, None, None)
    second = q.claim("w2", now, limit=10)
    assert [j.kind for j in second] == ["execute_refund"]


def test_a_claim_led_by_a_slow_job_takes_it_alone(runtime):
    add_jobs(runtime, 1, kind="deliver_notice")
    add_jobs(runtime, 3, kind=PROCESS_EVENT)
    q = queue(runtime)
    got = q.claim("w1", runtime.clock(), limit=10)
    assert [j.kind for j in got] == ["deliver_notice"]
    assert sum(1 for j in jobs(runtime) if j.state == "ready") == 3


def test_heartbeat_keeps_the_waiting_rest_of_a_claim(runtime):
    add_jobs(runtime, 3, kind=PROCESS_EVENT)
    q = queue(runtime, lease=2.0)
    t0 = runtime.clock()
    claimed = q.claim("w1", t0, limit=3)
    assert q.heartbeat_claim(claimed[0].lease_token, t0 + timedelta(seconds=1.5)) == 3
    assert q.claim("w2", t0 + timedelta(seconds=3), limit=3) == []   # leased until t0+3.5
    assert len(q.claim("w2", t0 + timedelta(seconds=4), limit=3)) == 3


def test_a_stopping_worker_gives_back_the_jobs_it_did_not_start(runtime):
    add_jobs(runtime, 4, kind=PROCESS_EVENT)
    stop = threading.Event()
    ran = []

    def handler(rt, job, session):
        ran.append(job.id)
        stop.set()  # told to stop while running the first of its claim

    w = Worker(runtime, {PROCESS_EVENT: handler}, "w")
    w._stop = stop
    assert w.run_once(limit=4)
    assert len(ran) == 1
    states = _state(runtime)
    assert [s[1] for s in states] == ["done", "ready", "ready", "ready"]
    assert all(s[2] == 0 and s[3] is None for s in states[1:])  # as if never claimed
    with runtime.reads() as s:
        assert s.execute(select(Job.lease_token).where(Job.state == "ready")).scalars().all() == [None] * 3


def test_run_forever_claims_in_batches(runtime):
    add_jobs(runtime, 20, kind=PROCESS_EVENT)
    claims = []
    w = Worker(runtime.__class__(**{**runtime.__dict__, "settings": runtime.settings.with_(worker_batch=8)}),
               {PROCESS_EVENT: lambda rt, job, session: claims.append(job.lease_token)}, "w")
    stop = threading.Event()
    t = threading.Thread(target=w.run_forever, args=(stop,), daemon=True)
    t.start()
    deadline = runtime.clock() + timedelta(seconds=20)
    while len(claims) < 20 and runtime.clock() < deadline:
        stop.wait(0.05)
    stop.set()
    t.join(10)
    assert len(claims) == 20 and all(j.state == "done" for j in jobs(runtime))
    assert len(set(claims)) == 3  # 8 + 8 + 4: three round trips, not twenty


def test_a_job_that_lost_its_lease_while_waiting_in_a_claim_is_not_started(runtime):
    add_jobs(runtime, 3, kind=PROCESS_EVENT)
    ran = []
    ids = [j.id for j in jobs(runtime)]

    def handler(rt, job, session):
        ran.append(job.id)
        if job.id == ids[0]:
            # Meanwhile the heartbeats fell behind and another worker claimed the second job.
            session.execute(text("UPDATE jobs SET lease_token = 'theirs', locked_by = 'other' WHERE id = :id"),
                            {"id": ids[1]})
            time.sleep(0.1 * rt.settings.lease_seconds + 0.05)  # past the point of renewing

    w = Worker(runtime, {PROCESS_EVENT: handler}, "w")
    assert w.run_once(limit=3)
    assert ran == [ids[0], ids[2]]
    by_id = {j.id: j for j in jobs(runtime)}
    assert by_id[ids[1]].state == "running" and by_id[ids[1]].lease_token == "theirs"
    assert by_id[ids[2]].state == "done"
