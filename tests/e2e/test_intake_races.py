"""T1 and T2 over real HTTP, the app under gunicorn as the Procfile runs it: duplicated,
shuffled, concurrent deliveries are each stored once and processed once; every delivery is
answered 2xx. Sizes: quick by default, ``BRIDGE_BATTERY=full`` for the reliability.md sizes."""
import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from bridge.ledger.models import Job, WebhookEvent
from tests.conftest import PADDLE_SECRET, STRIPE_SECRET
from tests.support.servers import GunicornBridge, bridge_env
from tests.support.signing import paddle_headers, stripe_headers

FULL = os.environ.get("BRIDGE_BATTERY") == "full"
SEED = int(os.environ.get("SEED", random.randrange(1 << 30)))


def deliveries(n, rng):
    """n distinct events, half per provider, of types the bridge stores and ignores."""
    out = []
    for i in range(n):
        if i % 2:
            doc = {"id": f"evt_t1_{i}_{rng.randrange(1 << 40):x}", "object": "event", "type": "customer.updated",
                   "created": int(time.time()), "data": {"object": {"id": f"cus_{i}", "object": "customer"}}}
            out.append(("stripe", doc))
        else:
            doc = {"event_id": f"evt_01t1{i}{rng.randrange(1 << 40):x}", "event_type": "customer.updated",
                   "occurred_at": "2026-03-01T10:00:00.000000Z", "notification_id": f"ntf_{i}",
                   "data": {"id": f"ctm_{i}"}}
            out.append(("paddle", doc))
    return out


def post(url, provider, doc):
    body = json.dumps(doc).encode()
    headers = stripe_headers(body, STRIPE_SECRET) if provider == "stripe" else paddle_headers(body, PADDLE_SECRET)
    for attempt in range(5):  # the sender retries non-2xx, as the providers do
        r = requests.post(f"{url}/webhooks/{provider}", data=body, headers=headers, timeout=30)
        if r.status_code == 200:
            return r
        time.sleep(0.2)
    return r


@pytest.fixture
def bridge(settings, tmp_path):
    server = GunicornBridge(bridge_env(settings), tmp_path, workers=2)
    yield server
    server.stop()


def stored(runtime):
    with runtime.reads() as s:
        return (s.scalar(select(func.count()).select_from(WebhookEvent)),
                s.scalar(select(func.count()).select_from(Job)))


def test_t1_duplicated_shuffled_concurrent(bridge, runtime, worker):
    rng = random.Random(SEED)
    n = 2000 if FULL else 200
    events = deliveries(n, rng)
    sends = [e for e in events for _ in range(rng.randint(1, 3))]
    rng.shuffle(sends)
    t0 = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda e: post(bridge.url, *e), sends))
    elapsed = time.monotonic() - t0
    codes = [r.status_code for r in results]
    assert codes.count(200) == len(sends), f"SEED={SEED} non-2xx: {set(codes)}"
    assert stored(runtime) == (n, n), f"SEED={SEED}"
    dupes = sum(1 for r in results if r.json()["duplicate"])
    assert dupes == len(sends) - n
    assert worker.drain(max_seconds=120) == n
    with runtime.reads() as s:
        jobs = s.execute(select(Job)).scalars().all()
        assert all(j.state == "done" and j.attempts == 1 for j in jobs)
        statuses = s.execute(select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)).all()
    assert dict(statuses) == {"ignored": n}
    print(f"T1 SEED={SEED} events={n} posts={len(sends)} duplicates={dupes} req/s={len(sends)/elapsed:.0f}")


def test_t2_same_instant_duplicate_race(bridge, runtime):
    rng = random.Random(SEED)
    n, copies = (200, 8) if FULL else (40, 8)
    events = deliveries(n, rng)
    barrier = threading.Barrier(copies)
    results = []
    lock = threading.Lock()

    def fire(event):
        barrier.wait()
        r = post(bridge.url, *event)
        with lock:
            results.append(r.status_code)

    for event in events:
        threads = [threading.Thread(target=fire, args=(event,)) for _ in range(copies)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results.count(200) == n * copies, f"SEED={SEED} {set(results)}"
    assert stored(runtime) == (n, n)
