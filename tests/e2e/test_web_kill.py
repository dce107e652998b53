"""T8: gunicorn worker processes killed with SIGKILL mid-request during a stream of deliveries.

The sender retries whatever did not get a 2xx (a reset connection, a 5xx), as the providers do.
Every event ends stored exactly once with one job, nothing is lost, and an event whose first
delivery was cut after its commit is answered as a duplicate on the retry."""
import json
import os
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from sqlalchemy import func, select

from bridge.ledger.models import Job, WebhookEvent
from tests.conftest import PADDLE_SECRET, STRIPE_SECRET
from tests.e2e.test_intake_races import deliveries
from tests.support.servers import GunicornBridge, bridge_env
from tests.support.signing import paddle_headers, stripe_headers

FULL = os.environ.get("BRIDGE_BATTERY") == "full"
SEED = int(os.environ.get("SEED", random.randrange(1 << 30)))


def gunicorn_workers(master_pid: int) -> list[int]:
    """The master's children, from /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == master_pid:
                pids.append(int(entry.name))
    return pids


def test_t8_web_worker_sigkill_mid_request(settings, runtime, tmp_path):
    rng = random.Random(SEED)
    n, kills = (2000, 5) if FULL else (600, 5)
    events = deliveries(n, rng)
    # 16 senders keep both workers busy, so most kills land inside a request.
    web = GunicornBridge(bridge_env(settings), tmp_path, workers=2)
    outcomes = {"reset": 0, "dup_on_retry": 0}
    lock = threading.Lock()

    def send(provider, doc):
        body = json.dumps(doc).encode()
        deadline = time.monotonic() + 60
        retried = False
        while time.monotonic() < deadline:
            # Signed afresh on each attempt, as a provider's retry is.
            headers = stripe_headers(body, STRIPE_SECRET) if provider == "stripe" else paddle_headers(body, PADDLE_SECRET)
            try:
                r = requests.post(f"{web.url}/webhooks/{provider}", data=body, headers=headers, timeout=10)
            except requests.RequestException:
                with lock:
                    outcomes["reset"] += 1
                retried = True
                time.sleep(0.05)
                continue
            if r.status_code == 200:
                with lock:
                    done[0] += 1
                    if retried and r.json()["duplicate"]:
                        outcomes["dup_on_retry"] += 1
                return True
            with lock:
                outcomes[f"http_{r.status_code}"] = outcomes.get(f"http_{r.status_code}", 0) + 1
            retried = True
            time.sleep(0.05)
        return False

    stop = threading.Event()
    killed = []
    done = [0]

    def killer():
        while len(killed) < kills and not stop.is_set():
            # Kill only a serving worker: wait until the master has replaced the last one and
            # deliveries have gone on since, so each kill lands in the middle of the load.
            mark = done[0]
            while not stop.is_set() and (len(gunicorn_workers(web.proc.pid)) < 2 or done[0] < mark + 30):
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.1))
            pids = gunicorn_workers(web.proc.pid)
            if pids and not stop.is_set():
                try:
                    os.kill(rng.choice(pids), signal.SIGKILL)
                    killed.append(1)
                except ProcessLookupError:
                    pass

    try:
        k = threading.Thread(target=killer, daemon=True)
        k.start()
        t0 = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda e: send(*e), events))
        elapsed = time.monotonic() - t0
        stop.set()
        k.join(5)
    finally:
        web.stop()
    assert all(results), f"SEED={SEED} some deliveries never got a 2xx"
    assert len(killed) == kills, f"only {len(killed)} kills landed"
    # A sync worker killed under this load is serving a request: its sender sees the reset.
    assert outcomes["reset"] + sum(v for k, v in outcomes.items() if k.startswith("http_5")) >= 1, outcomes
    with runtime.reads() as s:
        rows = s.scalar(select(func.count()).select_from(WebhookEvent))
        jobs = s.scalar(select(func.count()).select_from(Job))
        distinct = s.scalar(select(func.count(func.distinct(WebhookEvent.provider_event_id))))
    assert (rows, jobs, distinct) == (n, n, n), f"SEED={SEED}"
    print(f"T8 SEED={SEED} events={n} kills={len(killed)} sender saw {outcomes} in {elapsed:.1f}s")
