"""GET /metrics under the Procfile's processes: two gunicorn workers and a ``bridge worker``
count into one multiprocess directory and every scrape, whichever worker answers it, adds
them up; a killed web worker's counts stay in the totals."""
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from bridge.ledger.models import WebhookEvent
from tests.conftest import STRIPE_SECRET
from tests.support.api import auth, token
from tests.support.servers import GunicornBridge, WorkerProcess, bridge_env
from tests.support.signing import stripe_headers

N = 40


def scrape(url: str, tok: str) -> dict:
    r = requests.get(url + "/metrics", headers=auth(tok), timeout=10)
    assert r.status_code == 200, r.text
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def get(found, name, **labels):
    return found.get((name, frozenset(labels.items())), 0.0)


def deliver(url: str, n: int) -> int:
    body = json.dumps({"id": f"evt_mp_{n}", "object": "event", "type": "customer.updated",
                       "created": int(time.time()), "data": {"object": {"id": f"cus_{n}", "object": "customer"}}}).encode()
    # A new connection each (no session): the kernel hands them to either gunicorn worker.
    return requests.post(url + "/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET),
                         timeout=30).status_code


def processed(runtime) -> int:
    with runtime.reads() as s:
        return s.scalar(select(func.count()).select_from(WebhookEvent).where(WebhookEvent.status == "ignored"))


def test_counters_add_up_across_processes(settings, runtime, tmp_path):
    env = bridge_env(settings)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the gunicorn config and `bridge worker` default it alike
    metrics_dir = tmp_path / "metrics"
    tok = token(runtime, "metrics")
    web = GunicornBridge(env, tmp_path, workers=2)
    worker = None
    try:
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(lambda n: deliver(web.url, n), range(N))) == [200] * N
        assert deliver(web.url, 0) == 200  # a duplicate
        worker = WorkerProcess(env, tmp_path, "metrics")
        deadline = time.monotonic() + 60
        while processed(runtime) < N and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processed(runtime) == N, worker.log()[-2000:]

        web_files = [p for p in metrics_dir.glob("counter_*.db") if b"bridge_webhooks_received" in p.read_bytes()]
        assert len(web_files) >= 2, "both gunicorn workers took deliveries (else the test proves nothing)"
        job_files = [p for p in metrics_dir.glob("histogram_*.db") if b"bridge_job_run_seconds" in p.read_bytes()]
        assert [p.name for p in job_files] == [f"histogram_{worker.proc.pid}.db"]

        def check(found):
            assert get(found, "bridge_webhooks_received_total", provider="stripe", outcome="stored", reason="") == N
            assert get(found, "bridge_webhooks_received_total", provider="stripe", outcome="duplicate", reason="") == 1
            assert get(found, "bridge_webhook_intake_seconds_count", provider="stripe") == N + 1
            # Counted by the worker process, served by the web processes.
            assert get(found, "bridge_job_run_seconds_count", kind="process_event", outcome="done") == N
            assert get(found, "bridge_jobs", kind="process_event", state="ready") == 0
        for _ in range(6):  # new connections: either web worker answers
            check(scrape(web.url, tok))

        # A web worker killed: gunicorn starts another; the dead one's counts stay in the totals.
        victim = int(web_files[0].name.split("_")[1].split(".")[0])
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(victim, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        time.sleep(1.0)
        for _ in range(4):
            check(scrape(web.url, tok))
    finally:
        if worker is not None:
            worker.stop()
        web.stop()
