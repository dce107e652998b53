"""T16: several worker processes, each running several worker loops (``--threads``), claim one
queue at once (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite).
Every job is done, its effects commit exactly once, and two runs of one job overlap only if
the first one's lease could have expired (and then the first one did not commit)."""
import os
import re
import time
from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select, update

from bridge.ledger.inbox import Delivery
from bridge.ledger.models import Job, WebhookEvent
from tests.support.servers import BIN, Process, WorkerProcess, bridge_env
from tests.support.worker_main import check_overlaps, read_runs

FULL = os.environ.get("BRIDGE_BATTERY") == "full"
PROCESSES, THREADS = 3, 4


def _store_events(runtime, n: int, prefix: str) -> None:
    # Ignored events: the job is real work (parse, record the outcome) but touches no other
    # row, so any overlap or double commit seen below comes from the queue, not the ledger.
    now = runtime.clock()
    for i in range(n):
        body = (b'{"id": "evt_%s%d", "type": "customer.updated", "created": 1770000000, '
                b'"data": {"object": {"id": "cus_%d"}}}' % (prefix.encode(), i, i))
        runtime.inbox.store(Delivery("stripe", f"evt_{prefix}{i}", "customer.updated", body, {}, now), now)


def _wait_all_done(runtime, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with runtime.reads() as s:
            if s.scalar(select(func.count()).select_from(Job).where(Job.state != "done")) == 0:
                return
        time.sleep(0.2)


def _max_parallel(runs) -> int:
    """The most runs (of any jobs) in progress at one moment: >PROCESSES means threads overlapped."""
    edges = sorted((t, d) for rs in runs.values() for r in rs
                   for t, d in ((r["start"], 1), (r["end"] or r["start"], -1)))
    best = cur = 0
    for _, d in edges:
        cur += d
        best = max(best, cur)
    return best


def _set_run_at(runtime, when) -> None:
    with runtime.sessions.begin() as s:
        s.execute(update(Job).values(run_at=when))


def test_t16_threaded_workers_claim_each_job_once(runtime, settings, tmp_path):
    n = 2000 if FULL else 600
    _store_events(runtime, n, "c")
    # Held back until every process is up, then released at once: all loops race for the
    # same rows from the first claim on (a staggered start would let the first process drain
    # much of the queue alone, and on SQLite latecomers can lose every BEGIN IMMEDIATE race).
    _set_run_at(runtime, runtime.clock() + timedelta(days=1))
    log, ready = tmp_path / "jobs.log", tmp_path / "ready"
    ready.mkdir()
    env = bridge_env(settings, T7_JOB_LOG=str(log), T7_JOB_DELAY="0.005", T7_THREADS=str(THREADS),
                     T7_READY_DIR=str(ready))
    workers = [WorkerProcess(env, tmp_path, f"w{i}", module="tests.support.worker_main") for i in range(PROCESSES)]
    try:
        deadline = time.monotonic() + 30
        while len(list(ready.iterdir())) < PROCESSES and time.monotonic() < deadline:
            time.sleep(0.05)
        _set_run_at(runtime, runtime.clock())
        _wait_all_done(runtime, 60)
    finally:
        for w in workers:
            w.stop()

    with runtime.reads() as s:
        left = s.scalar(select(func.count()).select_from(Job).where(Job.state != "done"))
        assert left == 0, f"{left} jobs not done\n" + "\n".join(w.log()[-2000:] for w in workers)
        assert s.scalar(select(func.count()).select_from(WebhookEvent).where(WebhookEvent.status != "ignored")) == 0
        reclaimed_db = s.scalar(select(func.count()).select_from(Job).where(Job.attempts > 1))

    runs = read_runs(log)
    assert len(runs) == n
    lease = settings.lease_seconds
    claims = sum(len(rs) for rs in runs.values())
    for job_id, rs in runs.items():
        # No worker is killed here: every job's effects commit exactly once, and it is logged.
        assert sum(r["commit"] for r in rs) == 1, f"job {job_id} commits {rs}"
    stale = check_overlaps(runs, lease)

    claimers = Counter(r["who"] for rs in runs.values() for r in rs)
    assert len({who.split(":")[0] for who in claimers}) == PROCESSES, claimers
    if settings.is_sqlite:
        # SQLite's busy handler is unfair (a waiter sleeps while newcomers take the lock), so
        # one loop may starve; several loops of one process still claimed.
        assert len(claimers) > PROCESSES, claimers
    else:
        # SKIP LOCKED never makes a claimer wait: every loop of every process took jobs.
        assert len(claimers) == PROCESSES * THREADS, claimers
    first = min(r["start"] for rs in runs.values() for r in rs)
    last = max(r["end"] or r["start"] for rs in runs.values() for r in rs)
    backend = "sqlite" if settings.is_sqlite else "postgresql"
    print(f"T16 {backend} jobs={n} workers={PROCESSES}x{THREADS} claims={claims} "
          f"claims/s={claims / max(last - first, 1e-6):.0f} reclaimed={claims - n} (jobs with attempts>1: "
          f"{reclaimed_db}) stale_runs_fenced={stale} max_parallel_runs={_max_parallel(runs)} "
          f"claims_per_loop={min(claimers.values())}..{max(claimers.values())}")


def test_bridge_worker_threads_flag_and_clean_stop(runtime, settings, tmp_path):
    """``bridge worker --threads 3`` (the flag beats ``BRIDGE_WORKER_THREADS``) runs three loops
    with ids of their own, and SIGTERM stops them all with exit status 0."""
    _store_events(runtime, 30, "f")
    env = bridge_env(settings, BRIDGE_WORKER_THREADS="2")
    proc = Process([str(BIN / "bridge"), "worker", "--threads", "3"], env, tmp_path / "worker-cli.log")
    try:
        _wait_all_done(runtime, 30)
    finally:
        proc.stop()
    out = proc.log()
    with runtime.reads() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.state != "done")) == 0, out[-2000:]
    started = set(re.findall(r"worker (\S+) started", out))
    stopped = set(re.findall(r"worker (\S+) stopped", out))
    assert len(started) == 3 and stopped == started, out[-2000:]
    assert proc.proc.returncode == 0, out[-2000:]
