"""``bridge sync`` (issue 9): the ledger equals the fake provider's own book to the cent after
sync, however many webhooks were lost; onboarding from history older than the events window;
a sync killed mid-way and run again; 429s from the provider while webhooks keep flowing.

The fakes keep one book of everything they did (``bridge.fakes.*_books.book_totals``) on their
own clock; "older than the events window" is made by moving that clock. The bridge runs on the
real clock, so each test starts the fake's history a few weeks (or months) before now.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from bridge.fakes import FakePaddle, FakeStripe, Fault
from bridge.fakes import paddle_books, stripe_books
from bridge.fakes.month import paddle_month, stripe_month
from bridge.fakes.payments import stripe_charge
from bridge.ledger.models import Job, LedgerEntry, SyncCursor, SyncStatus, WebhookEvent
from bridge.services.sync import sync_provider
from tests.conftest import PADDLE_SECRET, STRIPE_SECRET, test_settings
from tests.support.harness import Shop
from tests.support.servers import BIN, Process, bridge_env

DAY = 86400
FULL = os.environ.get("BRIDGE_BATTERY") == "full"
PAYMENTS = 1000 if FULL else 200

PROVIDERS = {
    "stripe": (FakeStripe, stripe_month, stripe_books.book_totals, STRIPE_SECRET, 30),
    "paddle": (FakePaddle, paddle_month, paddle_books.book_totals, PADDLE_SECRET, 90),
}


@pytest.fixture
def world(db_url, tmp_path, request):
    """A shop whose webhooks come from both fakes (started), and the fakes."""
    stripe, paddle = FakeStripe().start(), FakePaddle().start()
    settings = test_settings(db_url, tmp_path, stripe_api_base=stripe.url, paddle_api_base=paddle.url,
                             stripe_calls_per_second=500.0, paddle_calls_per_second=500.0,
                             refund_poll_seconds=3600)
    shop = Shop(settings)
    fakes = {"stripe": stripe, "paddle": paddle}
    for name, fake in fakes.items():
        fake.webhook_url, fake.webhook_secret = shop.url + f"/webhooks/{name}", PROVIDERS[name][3]
    yield shop, fakes
    shop.close()
    stripe.stop()
    paddle.stop()


def ledger_totals(rt, provider: str) -> dict[tuple[str, str], tuple[int, int]]:
    with rt.reads() as s:
        rows = s.execute(select(LedgerEntry.kind, LedgerEntry.currency, func.count(), func.sum(LedgerEntry.amount))
                         .where(LedgerEntry.provider == provider)
                         .group_by(LedgerEntry.kind, LedgerEntry.currency)).all()
    return {(kind, cur): (int(n), int(total)) for kind, cur, n, total in rows}


def drain(shop, timeout: float = 120.0) -> None:
    """Run jobs until none is due within a few seconds (parked events come back quickly)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if shop.worker.run_once():
            continue
        with shop.rt.reads() as s:
            soon = s.scalar(select(func.count()).select_from(Job).where(
                Job.state.in_(("ready", "running")),
                Job.run_at < datetime.now(timezone.utc) + timedelta(seconds=5)))
        if not soon:
            return
        time.sleep(0.02)
    raise AssertionError("jobs still pending after the timeout")


def generate(fake, name: str, *, start: float, payments: int = PAYMENTS, **kw) -> None:
    PROVIDERS[name][1](fake, start=start, payments=payments, refunds=max(2, payments // 10),
                       disputes=3, days=kw.pop("days", 27), **kw)


@pytest.mark.parametrize("name", ["stripe", "paddle"])
def test_month_with_lost_webhooks_equals_the_book_after_sync(world, name):
    shop, fakes = world
    fake = fakes[name]
    book_of = PROVIDERS[name][2]
    fake.drop_webhooks(0.10, seed=11)
    generate(fake, name, start=time.time() - 28 * DAY)
    assert fake.wait_webhooks(120)
    drain(shop)
    book = book_of(fake)
    assert sum(n for (kind, _), (n, _) in book.items() if kind == "sale") == PAYMENTS
    assert {cur for (_, cur) in book} == ({"USD", "EUR"})
    assert len(fake.dropped) >= PAYMENTS // 20
    assert ledger_totals(shop.rt, name) != book          # lost webhooks: the ledger is short

    report = sync_provider(shop.rt, name)
    assert sum(report.new.values()) == len(fake.dropped)  # exactly what never came
    assert sum(report.seen.values()) == len(fake.events)
    drain(shop)
    assert ledger_totals(shop.rt, name) == book, _unapplied(shop)  # every kind, count and sum

    with shop.rt.reads() as s:
        sources = dict(s.execute(select(WebhookEvent.source, func.count()).where(WebhookEvent.provider == name)
                                 .group_by(WebhookEvent.source)).all())
        status = s.get(SyncStatus, name)
        assert status.last_success_at is not None and status.last_error is None
    assert sources == {"webhook": len(fake.events) - len(fake.dropped), "sync": len(fake.dropped)}

    # The webhook of an event sync already stored arrives late: a duplicate, one effect.
    late = next(e for e in fake.events if _event_id(name, e) == fake.dropped[0])
    fake.send_webhook(late)
    drain(shop)
    assert ledger_totals(shop.rt, name) == book
    with shop.rt.reads() as s:
        assert s.scalar(select(func.count()).select_from(WebhookEvent).where(
            WebhookEvent.provider_event_id == fake.dropped[0])) == 1

    # A second sync finds nothing new (incremental: it starts near where the last one ended).
    again = sync_provider(shop.rt, name)
    assert sum(again.new.values()) == 0


def _unapplied(shop) -> list:
    """What the worker did not apply (for a failure's message)."""
    with shop.rt.reads() as s:
        return s.execute(select(WebhookEvent.provider_event_id, WebhookEvent.event_type, WebhookEvent.status,
                                WebhookEvent.error, WebhookEvent.source)
                         .where(WebhookEvent.status.notin_(("processed",)))).all()


def _event_id(name: str, event: dict) -> str:
    return event["id"] if name == "stripe" else event["event_id"]


@pytest.mark.parametrize("name", ["stripe", "paddle"])
def test_onboarding_imports_history_older_than_the_events_window(world, name):
    shop, fakes = world
    fake = fakes[name]
    window = PROVIDERS[name][4]
    fake.webhook_url = None                               # the bridge was not there: nothing delivered
    start = time.time() - (window + 60) * DAY
    generate(fake, name, start=start, payments=PAYMENTS if FULL else 100)
    fake.set_time(time.time())                            # all of it is now older than the window
    since = datetime.fromtimestamp(start - DAY, timezone.utc)

    report = sync_provider(shop.rt, name, since=since)
    drain(shop)
    assert ledger_totals(shop.rt, name) == PROVIDERS[name][2](fake)
    assert sum(report.new.values()) > 0
    with shop.rt.reads() as s:
        streams = {r.stream: r for r in s.execute(select(SyncCursor).where(SyncCursor.provider == name)).scalars()}
    assert {"events"} | {f"objects:{k}" for k in shop.rt.providers[name].object_kinds} == set(streams)
    assert all(c.position is None for c in streams.values())  # every listing finished
    # Listing the same history again stores nothing: the synthesized ids are stable.
    assert sum(sync_provider(shop.rt, name, since=since).new.values()) == 0


def test_sync_killed_midway_then_run_again_misses_nothing_and_duplicates_nothing(world, tmp_path):
    shop, fakes = world
    fake = fakes["stripe"]
    fake.webhook_url = None
    generate(fake, "stripe", start=time.time() - 28 * DAY, payments=100)   # two pages of events
    # Page 2 of the Events list answers 429 with Retry-After 30: the process waits there and
    # is killed while waiting, page 1 stored and its cursor committed.
    fake.faults.script(None, Fault.rate_limit(30), method="GET", path="/v1/events")
    env = bridge_env(shop.rt.settings, BRIDGE_PROVIDER_ATTEMPTS="4")
    proc = Process([str(BIN / "bridge"), "sync", "--provider", "stripe"], env, tmp_path / "sync1.log")
    try:
        _wait(lambda: any(c.status == 429 for c in fake.calls_to("GET", "/v1/events")), 60)
        time.sleep(0.3)
    finally:
        proc.kill()
    with shop.rt.reads() as s:
        cursor = s.get(SyncCursor, ("stripe", "events"))
        stored_before = s.scalar(select(func.count()).select_from(WebhookEvent))
    assert cursor is not None and cursor.position, "the killed run left its place"
    assert 0 < stored_before < len(fake.events)

    calls_before = len(fake.calls_to("GET", "/v1/events"))
    out = _run_cli(env, tmp_path / "sync2.log")
    assert "stripe:" in out and "charge.succeeded" in out
    resumed = fake.calls_to("GET", "/v1/events")[calls_before]
    assert f"starting_after={cursor.position}" in resumed.query  # went on from its place
    drain(shop)
    assert ledger_totals(shop.rt, "stripe") == stripe_books.book_totals(fake)
    with shop.rt.reads() as s:
        assert s.scalar(select(func.count()).select_from(WebhookEvent)) == len(fake.events)


def _run_cli(env, log_path) -> str:
    proc = Process([str(BIN / "bridge"), "sync", "--provider", "stripe"], env, log_path)
    assert proc.proc.wait(timeout=180) == 0, log_path.read_text()
    return log_path.read_text()


def _wait(cond, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def test_rate_limited_sync_slows_down_finishes_and_webhooks_keep_flowing(world):
    shop, fakes = world
    fake = fakes["stripe"]
    fake.drop_webhooks(1.0, seed=1)                       # the history reaches the bridge by sync only
    generate(fake, "stripe", start=time.time() - 20 * DAY, payments=100)  # two pages of events
    fake.drop_webhooks(0.0)
    fake.faults.script(Fault.rate_limit(1), None, Fault.rate_limit(1), Fault.rate_limit(1),
                       method="GET", path="/v1/events")
    done = threading.Event()
    errors: list[BaseException] = []

    def run():
        try:
            sync_provider(shop.rt, "stripe")
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)
        finally:
            done.set()

    t = threading.Thread(target=run)
    t.start()
    # Meanwhile a customer pays, and its webhook is applied while the sync waits out a 429.
    _wait(lambda: any(c.status == 429 for c in fake.calls_to("GET", "/v1/events")), 30)
    stripe_charge(fake, charge_id="ch_live", amount=1500, currency="usd", fee=74, order_id="ord_live",
                  customer="cus_live")
    assert fake.wait_webhooks(30)
    deadline = time.monotonic() + 30
    while not _has_sale(shop, "ch_live"):
        assert time.monotonic() < deadline, "the webhook was not applied"
        if not shop.worker.run_once():
            time.sleep(0.02)
    assert not done.is_set(), "the webhook was applied while the sync was still under way"
    t.join(120)
    assert not errors, errors
    calls = fake.calls_to("GET", "/v1/events")
    limited = [i for i, c in enumerate(calls) if c.status == 429]
    assert len(limited) == 3
    for i in limited:                                      # each 429 was waited out (Retry-After 1)
        assert calls[i + 1].at - calls[i].at >= 0.95
    drain(shop)
    assert ledger_totals(shop.rt, "stripe") == stripe_books.book_totals(fake)


def _has_sale(shop, charge_id: str) -> bool:
    with shop.rt.reads() as s:
        return bool(s.scalar(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.kind == "sale", LedgerEntry.provider_ref == charge_id)))


def test_worker_sync_runs_every_interval_and_survives_a_provider_down(world):
    from bridge.worker.sync_loop import SyncScheduler
    shop, fakes = world
    stripe, paddle = fakes["stripe"], fakes["paddle"]
    stripe.webhook_url = paddle.webhook_url = None        # nothing delivered: only sync brings it
    generate(stripe, "stripe", start=time.time() - 5 * DAY, payments=20)
    generate(paddle, "paddle", start=time.time() - 5 * DAY, payments=20)
    # Stripe is down (every read answers 503) for the first run; Paddle answers.
    stripe.faults.randomize({Fault.http(503): 1.0}, method="GET", path="/v1/events")
    scheduler = SyncScheduler(shop.rt, interval=3.0, tick=0.1, owner="test-sync")
    assert scheduler.providers() == ["stripe", "paddle"]
    assert scheduler.run_once() == ["stripe", "paddle"]
    with shop.rt.reads() as s:
        st, pd = s.get(SyncStatus, "stripe"), s.get(SyncStatus, "paddle")
        assert st.last_success_at is None and "TransientProviderError" in st.last_error
        assert pd.last_success_at is not None and pd.last_error is None
        assert st.lease_owner is None and pd.lease_owner is None   # leases given back
    assert scheduler.run_once() == []                     # not due again before the interval
    stripe.faults.clear()                                 # Stripe is back
    stop = threading.Event()
    t = threading.Thread(target=scheduler.run_forever, args=(stop,))
    t.start()
    try:
        _wait(lambda: _synced(shop, "stripe"), 30)
    finally:
        stop.set()
        t.join(10)
    drain(shop)
    assert ledger_totals(shop.rt, "stripe") == stripe_books.book_totals(stripe)
    assert ledger_totals(shop.rt, "paddle") == paddle_books.book_totals(paddle)


def _synced(shop, name: str) -> bool:
    with shop.rt.reads() as s:
        row = s.get(SyncStatus, name)
        return row is not None and row.last_success_at is not None


def test_bridge_sync_cli_prints_by_type_and_rejects_bad_input(world, tmp_path):
    shop, fakes = world
    stripe = fakes["stripe"]
    stripe.webhook_url = None
    generate(stripe, "stripe", start=time.time() - 3 * DAY, payments=10)
    env = bridge_env(shop.rt.settings)
    import subprocess
    bad = subprocess.run([str(BIN / "bridge"), "sync", "--since", "yesterday"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--since" in bad.stderr and "Traceback" not in bad.stderr
    ok = subprocess.run([str(BIN / "bridge"), "sync", "--provider", "stripe", "--since",
                         datetime.fromtimestamp(time.time() - 4 * DAY, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")],
                        env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert lines[0].startswith(f"stripe: {len(stripe.events)} seen, {len(stripe.events)} new")
    assert any(line.strip().startswith("charge.succeeded: 10 seen, 10 new") for line in lines)
    assert "it/s" not in ok.stderr and "docs/s" not in ok.stderr   # no progress bar off a terminal


def test_a_cursor_gone_at_the_provider_lists_the_window_again(world):
    """A sync killed long ago left ``starting_after`` an event Stripe no longer lists (404):
    the next run lists the window again instead of failing forever."""
    from bridge.ledger import sync_state
    shop, fakes = world
    fake = fakes["stripe"]
    fake.webhook_url = None
    generate(fake, "stripe", start=time.time() - 5 * DAY, payments=10)
    now = datetime.now(timezone.utc)
    sync_state.save_cursor(shop.rt.engine, sync_state.Cursor("stripe", "events", "evt_aged_out", now - timedelta(days=29),
                                                             now - timedelta(days=1)), now)
    report = sync_provider(shop.rt, "stripe")
    assert sum(report.new.values()) == len(fake.events)
