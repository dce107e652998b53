"""T9: the database unavailable for a while. During: webhooks answer 503 (never 2xx for
anything not stored) and /readyz fails; after: the sender's retries are all accepted, each
event stored once, and the worker process carries on without a restart."""
import json
import sqlite3
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import func, select

from bridge.ledger.models import Job, WebhookEvent
from tests.conftest import STRIPE_SECRET
from tests.support.servers import GunicornBridge, TcpProxy, WorkerProcess, bridge_env
from tests.support.signing import stripe_headers

OUTAGE_SECONDS = 6


def event(i):
    return {"id": f"evt_t9_{i}", "object": "event", "type": "customer.updated", "created": int(time.time()),
            "data": {"object": {"id": f"cus_{i}"}}}


def send(url, doc):
    body = json.dumps(doc).encode()
    return requests.post(url + "/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET), timeout=30)


class Outage:
    """Makes the database unavailable: a held exclusive lock (SQLite) or a cut TCP path (PG)."""

    def __init__(self, settings):
        self.settings = settings
        self.proxy = None
        self.url = settings.database_url
        if not settings.is_sqlite:
            parts = urlsplit(settings.database_url)
            self.proxy = TcpProxy(parts.hostname, parts.port or 5432)
            self.url = settings.database_url.replace(f"{parts.hostname}:{parts.port or 5432}",
                                                     f"127.0.0.1:{self.proxy.port}")
        self._release = threading.Event()
        self._thread = None

    def begin(self):
        if self.proxy:
            self.proxy.cut()
            return
        ready = threading.Event()

        def hold():
            conn = sqlite3.connect(self.url[len("sqlite:///"):], timeout=10, isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE")
            ready.set()
            self._release.wait()
            conn.execute("ROLLBACK")
            conn.close()
        self._thread = threading.Thread(target=hold, daemon=True)
        self._thread.start()
        ready.wait(10)

    def end(self):
        if self.proxy:
            self.proxy.restore()
        else:
            self._release.set()
            self._thread.join()

    def close(self):
        if self.proxy:
            self.proxy.close()


def test_t9_database_unavailable(settings, runtime, tmp_path):
    outage = Outage(settings)
    env = bridge_env(settings.with_(database_url=outage.url))
    web = GunicornBridge(env, tmp_path, workers=2)
    worker = WorkerProcess(env, tmp_path, "t9")
    try:
        for i in range(5):
            assert send(web.url, event(i)).status_code == 200
        outage.begin()
        during = []
        t_end = time.monotonic() + OUTAGE_SECONDS
        i = 5
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            r = send(web.url, event(i))
            during.append((i, r.status_code, time.monotonic() - t0))
            i += 1
            time.sleep(max(0.0, 0.02 - (time.monotonic() - t0)))  # about 50 requests a second
        ready = requests.get(web.url + "/readyz", timeout=30).status_code
        outage.end()
        assert during, "no request was sent during the outage"
        assert all(code == 503 for _, code, _ in during), during
        assert max(lat for *_, lat in during) < 5.0
        assert ready == 503
        # Recovery: the sender retries everything that was refused.
        first_ok = None
        t_recover = time.monotonic()
        for j, _, _ in during:
            for _ in range(50):
                if send(web.url, event(j)).status_code == 200:
                    first_ok = first_ok or time.monotonic() - t_recover
                    break
                time.sleep(0.2)
            else:
                pytest.fail(f"event {j} never accepted after the outage")
        assert requests.get(web.url + "/readyz", timeout=10).status_code == 200
        total = i
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with runtime.reads() as s:
                pending = s.scalar(select(func.count()).select_from(Job).where(Job.state != "done"))
                stored = s.scalar(select(func.count()).select_from(WebhookEvent))
            if pending == 0 and stored == total:
                break
            time.sleep(0.3)
        assert stored == total and pending == 0, (stored, total, pending)
        print(f"T9 backend={'sqlite' if settings.is_sqlite else 'postgresql'} refused={len(during)} "
              f"max_latency={max(l for *_, l in during):.2f}s first_2xx_after={first_ok:.2f}s lost=0")
    finally:
        web.stop()
        worker.stop()
        outage.close()
