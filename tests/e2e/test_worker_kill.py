"""T7: worker processes killed with SIGKILL mid-batch, restarted; nothing is lost and no job
runs in two workers at the same time (unless its lease expired first)."""
import os
import random
import time

from sqlalchemy import func, select

from bridge.ledger.inbox import Delivery
from bridge.ledger.models import Job, WebhookEvent
from tests.support.servers import WorkerProcess, bridge_env
from tests.support.worker_main import check_overlaps, read_runs

FULL = os.environ.get("BRIDGE_BATTERY") == "full"
SEED = int(os.environ.get("SEED", random.randrange(1 << 30)))


def test_t7_sigkill_workers_mid_batch(runtime, settings, tmp_path):
    rng = random.Random(SEED)
    n, kills = (1000, 10) if FULL else (200, 3)
    now = runtime.clock()
    for i in range(n):
        body = (b'{"id": "evt_k%d", "type": "customer.updated", "created": 1770000000, '
                b'"data": {"object": {"id": "cus_%d"}}}' % (i, i))
        runtime.inbox.store(Delivery("stripe", f"evt_k{i}", "customer.updated", body, {}, now), now)
    log = tmp_path / "jobs.log"
    env = bridge_env(settings, T7_JOB_LOG=str(log), T7_JOB_DELAY="0.02")
    workers = [WorkerProcess(env, tmp_path, f"w{i}", module="tests.support.worker_main") for i in range(2)]
    try:
        for k in range(kills):
            time.sleep(rng.uniform(0.2, 1.5))
            i = rng.randrange(2)
            workers[i].kill()
            workers[i] = WorkerProcess(env, tmp_path, f"w{i}-{k}", module="tests.support.worker_main")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with runtime.reads() as s:
                left = s.scalar(select(func.count()).select_from(Job).where(Job.state != "done"))
            if left == 0:
                break
            time.sleep(0.3)
    finally:
        for w in workers:
            w.stop()
    with runtime.reads() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.state != "done")) == 0, f"SEED={SEED}"
        assert s.scalar(select(func.count()).select_from(WebhookEvent).where(WebhookEvent.status != "ignored")) == 0
        reclaimed = s.scalar(select(func.count()).select_from(Job).where(Job.attempts > 1))
    # Overlap check from the job log. Two runs of one job may overlap only when the first
    # one's lease had run out (its worker died, or stalled past the lease waiting for a
    # database lock), and then fencing must have rolled the stale run back: every job's
    # effects commit exactly once.
    runs = read_runs(log)
    assert len(runs) == n
    lease = settings.lease_seconds
    unlogged = 0
    for job_id, rs in runs.items():
        commits = sum(r["commit"] for r in rs)
        # 0 only if a SIGKILL landed between a commit and its log line.
        assert commits <= 1, f"job {job_id} committed twice {rs} SEED={SEED}"
        unlogged += commits == 0
    stale = check_overlaps(runs, lease, f"SEED={SEED}")
    assert unlogged <= kills
    print(f"T7 SEED={SEED} jobs={n} kills={kills} reclaimed={reclaimed} overlaps_after_lease={stale}")
