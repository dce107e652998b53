"""A refund confirmed by polling is dated by the provider's time, not the poll's (issue 11
item 10): the fakes run on a provider clock of March 2026, the bridge polls "today", and the
refunds land in March."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from bridge.fakes.paddle_server import FakePaddle
from bridge.fakes.stripe_server import FakeStripe
from tests.conftest import test_settings
from tests.e2e.test_refund_flow import LICENSE_ITEM, pay_paddle, pay_stripe, register, request_refund
from tests.support.harness import Shop

PROVIDER_T0 = 1_774_432_800  # 2026-03-25T10:00:00Z


@pytest.fixture
def fakes():
    started = time.monotonic()
    clock = lambda: PROVIDER_T0 + (time.monotonic() - started)  # noqa: E731
    stripe, paddle = FakeStripe(clock=clock), FakePaddle(clock=clock)
    stripe.start()
    paddle.start()
    yield stripe, paddle
    stripe.stop()
    paddle.stop()


def test_refunds_confirmed_by_polling_are_dated_by_the_provider(db_url, tmp_path, fakes):
    stripe, paddle = fakes
    s = Shop(test_settings(db_url, tmp_path, stripe_api_base=stripe.url, paddle_api_base=paddle.url,
                           refund_poll_seconds=0.2))
    try:
        stripe.webhook_url = paddle.webhook_url = None  # no confirmation webhook: only polling
        register(s, "ord_d", "software-mor", [LICENSE_ITEM])
        pay_stripe(s, stripe, "ord_d", fee=0)
        register(s, "ord_dp", "software-mor", [dict(LICENSE_ITEM, price_id="pri_dp")])
        pay_paddle(s, paddle, "ord_dp", [("pri_dp", 4900)], fee=0)
        ids = [request_refund(s, o, at="2026-03-05T10:00:00Z")["id"] for o in ("ord_d", "ord_dp")]
        refund_of = lambda i: s.api("GET", f"/refund-requests/{i}").json()["refunds"][0]  # noqa: E731
        s.drain(until=lambda: refund_of(ids[1])["provider_refund_id"], timeout=30)
        paddle.decide(refund_of(ids[1])["provider_refund_id"], "approved")
        s.drain(until=lambda: all(s.api("GET", f"/refund-requests/{i}").json()["status"] == "refunded" for i in ids),
                timeout=30)
        provider_time = datetime.fromtimestamp(PROVIDER_T0, timezone.utc)
        for order_id in ("ord_d", "ord_dp"):
            (at,) = [e[3] for e in s.ledger(order_id) if e[0] == "refund"]
            assert provider_time <= at < provider_time + timedelta(minutes=10), (order_id, at)
    finally:
        s.close()
