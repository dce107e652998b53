"""T4, T5, T6 and T7 for refunds (reliability.md): provider faults of every kind, permanent
errors, the outbound rate limit, and workers killed mid-refund. The checks after each:
every approved refund confirmed, refunds at the fake == approved requests, no order refunded
more than it paid. Quick sizes by default; ``BRIDGE_BATTERY=full`` for the documented ones."""
import os
import random
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from bridge.fakes.base import Fault
from bridge.fakes.paddle_server import FakePaddle
from bridge.fakes.stripe_server import FakeStripe
from bridge.ledger.models import Job, RefundRequest
from tests.conftest import PADDLE_SECRET, STRIPE_SECRET, test_settings
from tests.e2e.test_refund_flow import LICENSE_ITEM, pay_paddle, pay_stripe, register
from tests.support.harness import Shop
from tests.support.servers import WorkerProcess, bridge_env

FULL = os.environ.get("BRIDGE_BATTERY") == "full"
SEED = int(os.environ.get("SEED", random.randrange(1 << 30)))


@pytest.fixture
def fakes():
    stripe, paddle = FakeStripe(seed=SEED), FakePaddle(auto_approve=True, seed=SEED)
    stripe.start()
    paddle.start()
    yield stripe, paddle
    stripe.stop()
    paddle.stop()


def make_shop(db_url, tmp_path, fakes, **overrides):
    stripe, paddle = fakes
    s = Shop(test_settings(db_url, tmp_path, stripe_api_base=stripe.url, paddle_api_base=paddle.url,
                           refund_poll_seconds=3600, provider_timeout_seconds=1.0, **overrides))
    for fake, secret, path in ((stripe, STRIPE_SECRET, "/webhooks/stripe"), (paddle, PADDLE_SECRET, "/webhooks/paddle")):
        fake.webhook_url, fake.webhook_secret = s.url + path, secret
    return s


def paid_orders(shop, fakes, n):
    """n orders, alternating providers, each a 4900 license paid 2026-03-01 (software-mor)."""
    stripe, paddle = fakes
    out = []
    for i in range(n):
        order_id = f"ord_{i}"
        if i % 2 == 0:
            register(shop, order_id, "software-mor", [LICENSE_ITEM])
            pay_stripe(shop, stripe, order_id, fee=172)
        else:
            register(shop, order_id, "software-mor", [dict(LICENSE_ITEM, price_id=f"pri_{i}")])
            pay_paddle(shop, paddle, order_id, [(f"pri_{i}", 4900)], fee=245)
        out.append(order_id)
    return out


def file_requests(shop, orders):
    ids = []
    for order_id in orders:
        r = shop.api("POST", "/refund-requests", {"order_id": order_id, "reason": "not_satisfied",
                                                  "requested_at": "2026-03-10T10:00:00Z"}, expect=201)
        assert r.json()["status"] == "approved"
        ids.append(r.json()["id"])
    return ids


def statuses(shop):
    with shop.rt.reads() as s:
        return Counter(s.execute(select(RefundRequest.status)).scalars())


def stuck(shop) -> str:
    """What a request that did not end refunded looks like: its refunds, its jobs, the events
    that name its refunds (a failure message to debug from)."""
    from bridge.ledger.models import Refund, WebhookEvent
    out = []
    with shop.rt.reads() as s:
        for rr in s.execute(select(RefundRequest).where(RefundRequest.status != "refunded")).scalars():
            out.append(f"request {rr.id} {rr.status} {rr.error_code}")
            for r in s.execute(select(Refund).where(Refund.refund_request_id == rr.id)).scalars():
                out.append(f"  refund {r.id} {r.provider} {r.provider_refund_id} {r.status} {r.amount} "
                           f"submitted={r.submitted_at} txn={r.transaction_id} ch={r.charge_id}")
                if r.provider_refund_id:
                    for ev in s.execute(select(WebhookEvent).where(WebhookEvent.body.contains(
                            r.provider_refund_id.encode()))).scalars():
                        out.append(f"    event {ev.provider_event_id} {ev.event_type} {ev.status}")
            for j in s.execute(select(Job).where(Job.ref_id == rr.id)).scalars():
                out.append(f"  job {j.id} {j.kind} {j.state} attempts={j.attempts} err={(j.last_error or '')[:200]}")
        orphans = s.execute(select(Refund).where(Refund.refund_request_id.is_(None))).scalars().all()
        out += [f"  unlinked refund {r.id} {r.provider} {r.provider_refund_id} {r.status} txn={r.transaction_id}"
                for r in orphans]
    return "\n".join(out)


def check_conservation(shop, fakes, approved):
    stripe, paddle = fakes
    applied = stripe.applied + paddle.applied
    assert len(applied) == approved, f"SEED={SEED}: {len(applied)} refunds at the fakes for {approved} approved"
    by_payment = Counter()
    for a in applied:
        by_payment[a.payment_id] += a.amount
    assert all(v <= 4900 for v in by_payment.values()), f"SEED={SEED}: over-refund {by_payment}"


def check_retry_after(fake):
    calls = sorted(fake.calls, key=lambda c: c.at)
    for i, c in enumerate(calls):
        if c.status == 429:
            later = [d for d in calls[i + 1:] if d.method == "POST" or d.path == c.path]
            if later:
                assert later[0].at >= c.at + 1.0 - 0.05, f"SEED={SEED}: call {later[0].seq} came before Retry-After"


def test_t4_faults_on_every_call_every_refund_confirmed_once(db_url, tmp_path, fakes):
    stripe, paddle = fakes
    shop = make_shop(db_url, tmp_path, fakes, provider_attempts=3)
    try:
        n = 300 if FULL else 24
        orders = paid_orders(shop, fakes, n)
        weights = {Fault.http(500): 0.3 * 0.4, Fault.rate_limit(1): 0.3 * 0.3, Fault.timeout(): 0.3 * 0.2,
                   Fault.reset(): 0.3 * 0.1, Fault.applied_lost(): 0.05}
        stripe.faults.randomize(weights, method="POST", path="/v1/refunds", seed=SEED)
        paddle.faults.randomize(weights, method="POST", path="/adjustments", seed=SEED + 1)
        t0 = time.monotonic()
        file_requests(shop, orders)
        shop.drain(timeout=240, until=lambda: statuses(shop).get("refunded", 0) == n
                   or (not shop.worker.run_once() and _idle(shop) and stripe.wait_webhooks(0.2) and paddle.wait_webhooks(0.2)
                       and statuses(shop).get("refunded", 0) == n))
        elapsed = time.monotonic() - t0
        st = statuses(shop)
        assert st == Counter({"refunded": n}), f"SEED={SEED} {st}"
        check_conservation(shop, fakes, n)
        check_retry_after(stripe)
        check_retry_after(paddle)
        # Stripe retries reuse the key: one key per refund, however many calls.
        keys = Counter(c.idempotency_key for c in stripe.calls_to("POST", "/v1/refunds"))
        assert len(keys) == n // 2 + n % 2
        faults = Counter(c.fault for c in stripe.calls + paddle.calls if c.fault)
        calls = len(stripe.calls_to("POST", "/v1/refunds")) + len(paddle.calls_to("POST", "/adjustments"))
        print(f"T4 SEED={SEED} refunds={n} provider POSTs={calls} faults={dict(faults)} "
              f"lists={len(paddle.calls_to('GET', '/adjustments'))} time={elapsed:.1f}s")
    finally:
        shop.close()


def _idle(shop):
    with shop.rt.reads() as s:
        return s.scalar(select(func.count()).select_from(Job).where(Job.state.in_(("ready", "running")),
                                                                    Job.kind != "confirm_refund")) == 0


def test_t5_permanent_errors_are_called_once(db_url, tmp_path, fakes):
    stripe, paddle = fakes
    shop = make_shop(db_url, tmp_path, fakes)
    try:
        n = 30 if FULL else 6
        orders = paid_orders(shop, fakes, n)
        # Refunded elsewhere first: Stripe answers charge_already_refunded, Paddle
        # adjustment_total_amount_above_remaining_allowed.
        import stripe as sdk
        client = sdk.StripeClient("sk_test_x", base_addresses={"api": stripe.url})
        for i, order_id in enumerate(orders):
            if i % 2 == 0:
                client.v1.refunds.create({"charge": f"ch_{order_id}"})
        for i, order_id in enumerate(orders):
            if i % 2 == 1:
                import requests
                requests.post(paddle.url + "/adjustments", json={
                    "action": "refund", "type": "full", "transaction_id": f"txn_{order_id}", "reason": "support"},
                    headers={"Authorization": f"Bearer {paddle.api_key}"}, timeout=5)
        before = len(stripe.calls_to("POST", "/v1/refunds")) + len(paddle.calls_to("POST", "/adjustments"))
        file_requests(shop, orders)
        shop.drain(timeout=60)
        after = len(stripe.calls_to("POST", "/v1/refunds")) + len(paddle.calls_to("POST", "/adjustments"))
        assert after - before == n, f"{after - before} calls for {n} permanent failures"
        with shop.rt.reads() as s:
            rows = s.execute(select(RefundRequest)).scalars().all()
        assert {r.status for r in rows} == {"failed"}
        assert {r.error_code for r in rows} <= {"charge_already_refunded", "adjustment_total_amount_above_remaining_allowed",
                                                "adjustment_amount_above_remaining_allowed"}
        print(f"T5 permanent errors={n} calls={after - before} codes={Counter(r.error_code for r in rows)}")
    finally:
        shop.close()


def test_t6_outbound_rate_limit(db_url, tmp_path, fakes):
    stripe, _ = fakes
    shop = make_shop(db_url, tmp_path, fakes, stripe_calls_per_second=5)
    try:
        n = 30 if FULL else 12
        orders = []
        for i in range(n):
            register(shop, f"ord_{i}", "software-mor", [LICENSE_ITEM])
            pay_stripe(shop, stripe, f"ord_{i}", fee=0)
            orders.append(f"ord_{i}")
        file_requests(shop, orders)
        shop.drain(timeout=60)
        posts = sorted(c.at for c in stripe.calls_to("POST", "/v1/refunds"))
        assert len(posts) == n
        worst = max(sum(1 for t in posts if s <= t < s + 1.0) for s in posts)
        assert worst <= 5, f"{worst} calls in one second"
        assert posts[-1] - posts[0] >= (n / 5) - 1 - 0.1
        print(f"T6 refunds={n} max calls in 1 s={worst} span={posts[-1] - posts[0]:.2f}s")
    finally:
        shop.close()


def test_t7_workers_killed_mid_refund(db_url, tmp_path, fakes):
    stripe, paddle = fakes
    shop = make_shop(db_url, tmp_path, fakes)
    try:
        n = 200 if FULL else 20
        kills = 10 if FULL else 3
        rng = random.Random(SEED)
        orders = paid_orders(shop, fakes, n)
        weights = {Fault.http(500): 0.05, Fault.applied_lost(): 0.05}
        stripe.faults.randomize(weights, method="POST", path="/v1/refunds", seed=SEED)
        paddle.faults.randomize(weights, method="POST", path="/adjustments", seed=SEED)
        file_requests(shop, orders)
        env = bridge_env(shop.rt.settings)
        procs = [WorkerProcess(env, tmp_path, f"r{i}") for i in range(2)]
        try:
            for k in range(kills):
                time.sleep(rng.uniform(0.2, 1.5))
                i = rng.randrange(2)
                procs[i].kill()
                procs[i] = WorkerProcess(env, tmp_path, f"r{i}-{k}")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and statuses(shop).get("refunded", 0) < n:
                time.sleep(0.3)
        finally:
            for p in procs:
                p.stop()
        stripe.wait_webhooks()
        paddle.wait_webhooks()
        shop.drain(timeout=60)
        assert statuses(shop) == Counter({"refunded": n}), f"SEED={SEED} {statuses(shop)}\n{stuck(shop)}"
        check_conservation(shop, fakes, n)
        print(f"T7 refunds={n} kills={kills} SEED={SEED}")
    finally:
        shop.close()
