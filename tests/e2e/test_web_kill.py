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


def gunicorn_workers(master_pid: int) -> dict[int, float]:
    """The master's children with their ages in seconds, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master_pid:  # ppid
                out[int(entry.name)] = uptime - int(fields[19]) / ticks  # starttime
    return out


def test_t8_web_worker_sigkill_mid_request(settings, runtime, tmp_path):
    rng = random.Random(SEED)
    n, kills = (2000, 5) if FULL else (600, 5)
    pool_of_events = iter(deliveries(20 * n, rng))
    web = GunicornBridge(bridge_env(settings), tmp_path, workers=2)
    outcomes = {"reset": 0, "dup_on_retry": 0}
    lock = threading.Lock()
    sent: list[str] = []
    stop = threading.Event()
    killed = []

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
                    if retried and r.json()["duplicate"]:
                        outcomes["dup_on_retry"] += 1
                return True
            with lock:
                outcomes[f"http_{r.status_code}"] = outcomes.get(f"http_{r.status_code}", 0) + 1
            retried = True
            time.sleep(0.05)
        return False

    def sender() -> bool:
        # 16 of these keep both workers busy until at least n events went out and every kill
        # landed, so each kill finds a worker in the middle of a request.
        ok = True
        while True:
            with lock:
                if len(sent) >= n and (stop.is_set() or len(killed) == kills):
                    return ok
                provider, doc = next(pool_of_events)
                sent.append(doc.get("id") or doc.get("event_id"))
            ok = send(provider, doc) and ok

    def killer():
        while len(killed) < kills and not stop.is_set():
            # Only a worker that has booted and been serving for a while: a freshly forked
            # replacement may still be importing the app.
            serving = [pid for pid, age in gunicorn_workers(web.proc.pid).items() if age >= 1.5]
            if not serving:
                time.sleep(0.05)
                continue
            time.sleep(rng.uniform(0.0, 0.2))
            try:
                os.kill(rng.choice(serving), signal.SIGKILL)
                with lock:
                    killed.append(1)
            except ProcessLookupError:
                pass

    try:
        k = threading.Thread(target=killer, daemon=True)
        k.start()
        t0 = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda _: sender(), range(16)))
        elapsed = time.monotonic() - t0
        stop.set()
        k.join(5)
    finally:
        stop.set()
        web.stop()
    assert all(results), f"SEED={SEED} some deliveries never got a 2xx"
    assert len(killed) == kills, f"only {len(killed)} kills landed"
    # A sync worker killed under this load is serving a request: its sender sees the reset.
    assert outcomes["reset"] + sum(v for k, v in outcomes.items() if k.startswith("http_5")) >= 1, outcomes
    total = len(sent)
    with runtime.reads() as s:
        rows = s.scalar(select(func.count()).select_from(WebhookEvent))
        jobs = s.scalar(select(func.count()).select_from(Job))
        distinct = s.scalar(select(func.count(func.distinct(WebhookEvent.provider_event_id))))
    assert (rows, jobs, distinct) == (total, total, total), f"SEED={SEED}"
    print(f"T8 SEED={SEED} events={total} kills={len(killed)} sender saw {outcomes} in {elapsed:.1f}s")
