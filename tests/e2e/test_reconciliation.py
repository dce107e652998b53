"""``GET /api/v1/reconciliation``: totals equal the fake providers' effects to the cent, and the
discrepancies a person must look at are listed (T15 in miniature)."""
import csv
import io
import time

import pytest
import requests

from bridge.fakes.paddle_server import FakePaddle
from bridge.fakes.stripe_server import FakeStripe

from tests.e2e.test_refund_flow import (LICENSE_ITEM, fakes, pay_paddle, pay_stripe, register,  # noqa: F401
                                        request_refund, settle, shop)
from tests.fixtures import stripe_payloads as sp
from tests.support.api import auth, token


# The providers' clock for the times they write (a refund's ``created``): 2026-03-25T10:00Z and
# running, so the test asks for March 2026 whatever today's date is.
PROVIDER_T0 = 1_774_432_800


@pytest.fixture
def fakes():  # noqa: F811 - the refund-flow fakes, on a provider clock of March 2026
    started = time.monotonic()
    clock = lambda: PROVIDER_T0 + (time.monotonic() - started)  # noqa: E731
    stripe, paddle = FakeStripe(clock=clock), FakePaddle(clock=clock)
    stripe.start()
    paddle.start()
    yield stripe, paddle
    stripe.stop()
    paddle.stop()


def test_totals_lines_and_discrepancies(shop, fakes):  # noqa: F811
    stripe, paddle = fakes
    register(shop, "ord_a", "software-mor", [LICENSE_ITEM])
    pay_stripe(shop, stripe, "ord_a", fee=172)
    register(shop, "ord_b", "software-mor", [dict(LICENSE_ITEM, price_id="pri_b")])
    pay_paddle(shop, paddle, "ord_b", [("pri_b", 4900)], fee=245)
    rr = request_refund(shop, "ord_a", at="2026-03-20T10:00:00Z")
    settle(shop, stripe, rr["id"], "refunded")
    # A payment nobody registered and that names no order, and a refund made in the dashboard.
    shop.stripe(sp.charge_succeeded(charge_id="ch_stray", payment_intent_id="pi_stray", amount=1500,
                                    metadata={}, created=1_772_359_200))
    register(shop, "ord_c", "software-mor", [LICENSE_ITEM])
    pay_stripe(shop, stripe, "ord_c", fee=0)
    shop.stripe(sp.refund_event("refund.updated", refund_id="re_dash", charge_id="ch_ord_c", payment_intent_id="pi_ord_c",
                                amount=900, status="succeeded", created=1_772_400_000))
    shop.drain()
    fin = auth(token(shop.rt, "finance:read"))
    url = shop.url + "/api/v1/reconciliation?from=2026-03-01&to=2026-04-01"
    assert requests.get(url, headers=auth(token(shop.rt, "read")), timeout=10).status_code == 403
    r = requests.get(url, headers=fin, timeout=10)
    assert r.status_code == 200, r.text
    totals = {(t["provider"], t["currency"]): t for t in r.json()["totals"]}
    s = totals[("stripe", "USD")]
    assert s["gross"] == 4900 + 1500 + 4900 == sum(c.amount for c in stripe.charges.values()) + 1500
    assert s["fees"] == 172
    assert s["refunds"] == 4728 + 900
    assert s["refunds"] - 900 == sum(a.amount for a in stripe.applied)
    assert s["net"] == s["gross"] - s["fees"] - s["refunds"]
    p = totals[("paddle", "USD")]
    assert (p["gross"], p["fees"], p["refunds"]) == (4900, 245, 0)
    kinds = {(d["kind"], d["order_id"]) for d in r.json()["discrepancies"]}
    assert ("unmatched_payment", None) in kinds
    assert ("refund_without_decision", "ord_c") in kinds
    # Only one provider, and CSV lines that add up to the same net.
    only = requests.get(url + "&provider=paddle", headers=fin, timeout=10).json()["totals"]
    assert [t["provider"] for t in only] == ["paddle"]
    text = requests.get(url + "&format=csv", headers=fin, timeout=10).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sum(int(x["amount"]) for x in rows if x["provider"] == "stripe") == s["net"]
    assert requests.get(shop.url + "/api/v1/reconciliation?from=2026-04-01&to=2026-03-01", headers=fin,
                        timeout=10).status_code == 422
    assert requests.get(shop.url + "/api/v1/reconciliation?to=2026-03-01", headers=fin, timeout=10).status_code == 422


def test_a_payment_that_differs_from_its_order_is_an_amount_mismatch(shop, fakes):  # noqa: F811
    stripe, _ = fakes
    register(shop, "ord_m", "software-mor", [LICENSE_ITEM])          # items: 49.00 USD
    pay_stripe(shop, stripe, "ord_m", amount=5000, fee=175)
    fin = auth(token(shop.rt, "finance:read"))
    found = requests.get(shop.url + "/api/v1/reconciliation?from=2026-03-01&to=2026-04-01", headers=fin,
                         timeout=10).json()["discrepancies"]
    assert [(d["kind"], d["order_id"], d["detail"]) for d in found if d["kind"] == "amount_mismatch"] == [
        ("amount_mismatch", "ord_m", "paid 50.00 USD, the order's items sum to 49.00 USD")]
