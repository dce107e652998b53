"""Refund execution end to end over HTTP (issue 4): an order paid by webhook, a refund request
decided by its policy, the refund executed at the fake provider by the worker, the provider's
confirmation webhook, and the request, ledger and order state that follow."""
import pytest

from bridge.fakes.paddle_server import FakePaddle
from bridge.fakes.stripe_server import FakeStripe
from tests.conftest import PADDLE_SECRET, STRIPE_SECRET, test_settings
from tests.fixtures import paddle_payloads as pp, stripe_payloads as sp
from tests.support.harness import Shop

PAID = "2026-03-01T10:00:00Z"
T0 = 1_772_359_200


@pytest.fixture
def fakes():
    stripe, paddle = FakeStripe(), FakePaddle()
    stripe.start()
    paddle.start()
    yield stripe, paddle
    stripe.stop()
    paddle.stop()


@pytest.fixture
def shop(db_url, tmp_path, fakes):
    stripe, paddle = fakes
    s = Shop(test_settings(db_url, tmp_path, stripe_api_base=stripe.url, paddle_api_base=paddle.url,
                           refund_poll_seconds=3600))
    # The fakes confirm refunds with signed webhooks to the bridge, as the providers do.
    for fake, secret, path in ((stripe, STRIPE_SECRET, "/webhooks/stripe"), (paddle, PADDLE_SECRET, "/webhooks/paddle")):
        fake.webhook_url, fake.webhook_secret = s.url + path, secret
    yield s
    s.close()


def register(shop, order_id, policy, items, currency="USD", bundle=False, country="US"):
    shop.api("POST", "/orders", {"order_id": order_id, "policy": policy, "currency": currency, "bundle": bundle,
                                 "customer": {"id": f"cus_{order_id}", "country": country}, "items": items}, expect=201)


def pay_stripe(shop, fake, order_id, amount=4900, fee=172, charge=None, currency="usd"):
    charge = charge or f"ch_{order_id}"
    pi = f"pi_{order_id}"
    bt = sp.balance_transaction(bt_id=f"txn_{order_id}", amount=amount, fee=fee, currency=currency, source=charge)
    fake.add_charge(charge, pi, amount, currency, fee, f"txn_{order_id}")
    shop.stripe(sp.charge_succeeded(charge_id=charge, payment_intent_id=pi, amount=amount, currency=currency,
                                    customer=f"cus_{order_id}", metadata={"order_id": order_id},
                                    balance_transaction=bt, created=T0))
    shop.drain()
    return charge


def pay_paddle(shop, fake, order_id, lines, fee=400, currency="USD"):
    txn = f"txn_{order_id}"
    doc = pp.transaction_completed(txn_id=txn, custom_data={"order_id": order_id}, currency=currency, fee=fee,
                                   items=[{"price_id": p, "product_id": f"pro_{p}", "amount": a, "tax": 0} for p, a in lines],
                                   customer_id=f"ctm_{order_id}", subscription_id=None, billing_period=None,
                                   billed_at=PAID, captured_at=PAID, occurred_at=PAID)
    line_ids = [li["id"] for li in doc["data"]["details"]["line_items"]]
    fake.add_transaction(txn, currency, list(zip(line_ids, [a for _, a in lines])), fee)
    shop.paddle(doc)
    shop.drain()
    return txn, line_ids


def request_refund(shop, order_id, reason="not_satisfied", at="2026-03-05T10:00:00Z", expect=201, **extra):
    r = shop.api("POST", "/refund-requests", {"order_id": order_id, "reason": reason, "requested_at": at, **extra},
                 headers={"Idempotency-Key": f"idem-{order_id}-{reason}-{at}-{extra.get('items')}"})
    assert r.status_code == expect, r.text
    return r.json()


def settle(shop, fake, rr_id, want):
    shop.drain()
    fake.wait_webhooks()
    shop.drain(until=lambda: shop.api("GET", f"/refund-requests/{rr_id}").json()["status"] == want, timeout=30)
    return shop.api("GET", f"/refund-requests/{rr_id}", expect=200).json()


LICENSE_ITEM = {"item_id": "li_1", "sku": "pro-license", "category": "license", "billing": "one_time",
                "amount": 4900, "price_id": "pri_lic"}


# -- Stripe ----------------------------------------------------------------------------------

def test_stripe_full_refund_with_fee_deduction(shop, fakes):
    stripe, _ = fakes
    register(shop, "ord_1", "software-mor", [LICENSE_ITEM])
    charge = pay_stripe(shop, stripe, "ord_1")
    rr = request_refund(shop, "ord_1", at="2026-03-20T10:00:00Z")
    d = rr["decision"]
    assert (rr["status"], d["outcome"], d["refund_amount"], d["fee_deducted"]) == ("approved", "approved", 4728, 172)
    assert {c["section"] for c in d["clauses"]} >= {"2", "3"}
    done = settle(shop, stripe, rr["id"], "refunded")
    assert done["refunds"][0]["amount"] == 4728 and done["refunds"][0]["status"] == "succeeded"
    assert stripe.refunded_amount(charge) == 4728
    assert len(stripe.applied) == 1
    # The idempotency key is derived from our refund id.
    call = [c for c in stripe.calls_to("POST", "/v1/refunds")][0]
    assert call.idempotency_key.startswith("refund-")
    order = shop.order("ord_1")
    assert order["status"] == "partially_refunded"
    kinds = sorted((e[0], e[1]) for e in shop.ledger("ord_1"))
    assert kinds == [("fee", -172), ("refund", -4728), ("sale", 4900)]


def test_stripe_denied_request_refunds_nothing(shop, fakes):
    stripe, _ = fakes
    register(shop, "ord_d", "software-mor", [LICENSE_ITEM])
    pay_stripe(shop, stripe, "ord_d")
    rr = request_refund(shop, "ord_d", at="2026-03-31T10:00:01Z")
    assert rr["status"] == "denied" and rr["decision"]["refund_amount"] == 0
    shop.drain()
    assert stripe.calls_to("POST", "/v1/refunds") == []
    assert shop.order("ord_d")["status"] == "paid"


def test_stripe_partial_refund_of_one_item(shop, fakes):
    stripe, _ = fakes
    items = [dict(LICENSE_ITEM, amount=3000), {"item_id": "li_2", "sku": "addon", "category": "store_addon",
                                                 "billing": "one_time", "amount": 1900, "price_id": "pri_add"}]
    register(shop, "ord_p", "software-mor", items)
    charge = pay_stripe(shop, stripe, "ord_p", amount=4900, fee=0)
    rr = request_refund(shop, "ord_p", items=["li_2"], at="2026-03-03T10:00:00Z")
    assert rr["status"] == "approved" and rr["decision"]["refund_amount"] == 1900
    settle(shop, stripe, rr["id"], "refunded")
    assert stripe.refunded_amount(charge) == 1900
    assert shop.order("ord_p")["status"] == "partially_refunded"
    # What remains can be refunded; asking again for the refunded item is a conflict.
    again = request_refund(shop, "ord_p", items=["li_2"], at="2026-03-04T10:00:00Z", expect=409)
    assert again["error"]["code"] == "nothing_to_refund"


def test_stripe_review_approved_by_a_person(shop, fakes):
    stripe, _ = fakes
    register(shop, "ord_r", "mittrik", [{"item_id": "li_1", "sku": "credits", "category": "addon", "billing": "one_time",
                                          "amount": 5000, "price_id": "pri_credits"}])
    charge = pay_stripe(shop, stripe, "ord_r", amount=5000, fee=175)
    rr = request_refund(shop, "ord_r", at="2026-03-04T10:00:00Z")
    assert rr["status"] == "review"
    assert shop.api("GET", "/refund-requests?status=review").json()["refund_requests"][0]["id"] == rr["id"]
    shop.drain()
    assert stripe.calls_to("POST", "/v1/refunds") == []
    r = shop.api("POST", f"/refund-requests/{rr['id']}/review", {"outcome": "approved", "refund_amount": 4000,
                                                                  "note": "unused credits"}, expect=200)
    assert r.json()["status"] == "approved"
    shop.api("POST", f"/refund-requests/{rr['id']}/review", {"outcome": "approved"}, expect=409)
    done = settle(shop, stripe, rr["id"], "refunded")
    assert done["review"]["note"] == "unused credits"
    assert stripe.refunded_amount(charge) == 4000


def test_stripe_refund_that_later_fails(shop, fakes):
    stripe, _ = fakes
    stripe.refund_status_on_create = "pending"
    register(shop, "ord_f", "software-mor", [LICENSE_ITEM])
    pay_stripe(shop, stripe, "ord_f", fee=0)
    rr = request_refund(shop, "ord_f", at="2026-03-05T10:00:00Z")
    shop.drain()
    stripe.wait_webhooks()
    shop.drain()
    refund_id = shop.api("GET", f"/refund-requests/{rr['id']}").json()["refunds"][0]["provider_refund_id"]
    stripe.settle_refund(refund_id, "succeeded")
    settle(shop, stripe, rr["id"], "refunded")
    stripe.settle_refund(refund_id, "failed", "expired_or_canceled_card")
    done = settle(shop, stripe, rr["id"], "failed")
    assert done["refunds"][0]["status"] == "failed"
    kinds = sorted(e[0] for e in shop.ledger("ord_f"))
    assert kinds == ["refund", "refund_reversal", "sale"]
    assert shop.order("ord_f")["status"] == "paid"


def test_stripe_permanent_error_fails_visibly_after_one_call(shop, fakes):
    stripe, _ = fakes
    register(shop, "ord_x", "software-mor", [LICENSE_ITEM])
    charge = pay_stripe(shop, stripe, "ord_x", fee=0)
    # Refunded in the dashboard in the meantime: Stripe answers charge_already_refunded.
    import stripe as stripe_sdk
    client = stripe_sdk.StripeClient("sk_test_x", base_addresses={"api": stripe.url})
    client.v1.refunds.create({"charge": charge})
    rr = request_refund(shop, "ord_x", at="2026-03-05T10:00:00Z")
    shop.drain()
    got = shop.api("GET", f"/refund-requests/{rr['id']}").json()
    assert got["status"] == "failed" and got["error"]["code"] == "charge_already_refunded"
    assert len(stripe.calls_to("POST", "/v1/refunds")) == 2  # the dashboard's and our single one


def test_refund_request_validation(shop, fakes):
    stripe, _ = fakes
    register(shop, "ord_v", "software-mor", [LICENSE_ITEM])
    assert request_refund(shop, "nope", expect=404)["error"]["code"] == "order_not_found"
    assert request_refund(shop, "ord_v", expect=409)["error"]["code"] == "not_paid"
    pay_stripe(shop, stripe, "ord_v")
    bad = request_refund(shop, "ord_v", reason="because", expect=422)
    assert bad["error"]["field"] == "reason"
    bad = request_refund(shop, "ord_v", at="2026-02-01T10:00:00Z", expect=422)
    assert bad["error"]["field"] == "requested_at"
    bad = request_refund(shop, "ord_v", items=["li_9"], expect=422)
    assert bad["error"]["field"].startswith("items")
    # The same Idempotency-Key returns the first result; a different body with it is refused.
    body = {"order_id": "ord_v", "reason": "not_satisfied", "requested_at": "2026-03-05T10:00:00Z"}
    first = shop.api("POST", "/refund-requests", body, headers={"Idempotency-Key": "k1"}, expect=201).json()
    again = shop.api("POST", "/refund-requests", body, headers={"Idempotency-Key": "k1"}, expect=201).json()
    assert again["id"] == first["id"]
    shop.api("POST", "/refund-requests", dict(body, reason="other"), headers={"Idempotency-Key": "k1"}, expect=409)
    shop.drain()
    stripe.wait_webhooks()
    shop.drain()
    assert len(stripe.applied) == 1
    # Nothing remains: a second request is a conflict.
    assert request_refund(shop, "ord_v", at="2026-03-06T10:00:00Z", expect=409)["error"]["code"] == "nothing_to_refund"


# -- Paddle ----------------------------------------------------------------------------------

def test_paddle_full_refund_pending_then_approved(shop, fakes):
    _, paddle = fakes
    register(shop, "ord_q", "software-mor", [dict(LICENSE_ITEM, price_id="pri_q")])
    txn, lines = pay_paddle(shop, paddle, "ord_q", [("pri_q", 4900)], fee=245)
    rr = request_refund(shop, "ord_q", at="2026-03-10T10:00:00Z")
    assert rr["decision"]["refund_amount"] == 4900 - 245
    shop.drain()
    paddle.wait_webhooks()
    shop.drain()
    got = shop.api("GET", f"/refund-requests/{rr['id']}").json()
    assert got["status"] == "refunding" and got["refunds"][0]["status"] == "pending"
    adj = got["refunds"][0]["provider_refund_id"]
    assert adj.startswith("adj_")
    paddle.decide(adj, "approved")
    settle(shop, paddle, rr["id"], "refunded")
    assert paddle.refunded_by_item(txn) == {lines[0]: 4655}
    kinds = sorted((e[0], e[1]) for e in shop.ledger("ord_q"))
    assert kinds == [("fee", -245), ("refund", -4655), ("sale", 4900)]


def test_paddle_partial_refund_splits_by_line_item(shop, fakes):
    _, paddle = fakes
    items = [{"item_id": "li_a", "category": "license", "billing": "one_time", "amount": 4000, "price_id": "pri_a"},
             {"item_id": "li_b", "category": "store_addon", "billing": "one_time", "amount": 1000, "price_id": "pri_b"}]
    register(shop, "ord_s", "software-mor", items)
    txn, lines = pay_paddle(shop, paddle, "ord_s", [("pri_a", 4000), ("pri_b", 1000)], fee=500)
    rr = request_refund(shop, "ord_s", items=["li_b"], at="2026-03-03T10:00:00Z")
    # Fee share of the add-on: ceil(500 * 1000 / 5000) = 100.
    assert (rr["decision"]["refund_amount"], rr["decision"]["fee_deducted"]) == (900, 100)
    shop.drain()
    paddle.wait_webhooks()
    shop.drain()
    adj = shop.api("GET", f"/refund-requests/{rr['id']}").json()["refunds"][0]["provider_refund_id"]
    paddle.decide(adj, "approved")
    settle(shop, paddle, rr["id"], "refunded")
    assert paddle.refunded_by_item(txn) == {lines[1]: 900}


def test_paddle_refund_rejected(shop, fakes):
    _, paddle = fakes
    register(shop, "ord_j", "micromastery", [{"item_id": "li_1", "category": "training", "billing": "one_time",
                                               "amount": 9900, "price_id": "pri_j"}])
    pay_paddle(shop, paddle, "ord_j", [("pri_j", 9900)])
    rr = request_refund(shop, "ord_j", reason="charged_by_mistake", at="2026-05-30T10:00:00Z")
    assert rr["status"] == "approved" and rr["decision"]["refund_amount"] == 9900
    shop.drain()
    paddle.wait_webhooks()
    shop.drain()
    adj = shop.api("GET", f"/refund-requests/{rr['id']}").json()["refunds"][0]["provider_refund_id"]
    paddle.decide(adj, "rejected")
    done = settle(shop, paddle, rr["id"], "failed")
    assert done["refunds"][0]["status"] == "failed"
    assert sorted(e[0] for e in shop.ledger("ord_j")) == ["fee", "sale"]
    assert shop.order("ord_j")["status"] == "paid"


def test_paddle_denied_request(shop, fakes):
    _, paddle = fakes
    register(shop, "ord_n", "mittrik", [{"item_id": "li_1", "category": "plan", "billing": "monthly", "amount": 2900,
                                          "price_id": "pri_n"}])
    pay_paddle(shop, paddle, "ord_n", [("pri_n", 2900)])
    rr = request_refund(shop, "ord_n", at="2026-03-01T11:00:00Z")
    assert rr["status"] == "denied" and any(c["section"] == "1" for c in rr["decision"]["clauses"])
    shop.drain()
    assert paddle.calls_to("POST", "/adjustments") == []


def test_duplicate_charge_is_refunded_in_full(shop, fakes):
    """A second paid charge for the same customer and price inside one period is flagged; a
    request naming it (reason duplicate_charge) refunds that payment in full, no fee kept."""
    _, paddle = fakes
    register(shop, "ord_dup", "software-mor", [dict(LICENSE_ITEM, price_id="pri_dup")])
    pay_paddle(shop, paddle, "ord_dup", [("pri_dup", 4900)], fee=245)
    txn2 = "txn_ord_dup_2"
    doc = pp.transaction_completed(txn_id=txn2, custom_data={"order_id": "ord_dup"}, currency="USD", fee=245,
                                   items=[{"price_id": "pri_dup", "product_id": "pro_pri_dup", "amount": 4900, "tax": 0}],
                                   customer_id="ctm_ord_dup", subscription_id=None, billing_period=None,
                                   billed_at="2026-03-01T10:05:00Z", captured_at="2026-03-01T10:05:00Z",
                                   occurred_at="2026-03-01T10:05:00Z")
    line2 = doc["data"]["details"]["line_items"][0]["id"]
    paddle.add_transaction(txn2, "USD", [(line2, 4900)], 245)
    shop.paddle(doc)
    shop.drain()
    payments = shop.order("ord_dup")["payments"]
    assert [p["duplicate_charge"] for p in payments] == [False, True]
    rr = request_refund(shop, "ord_dup", reason="duplicate_charge", at="2026-04-20T10:00:00Z")
    assert rr["status"] == "approved"
    assert (rr["decision"]["refund_amount"], rr["decision"]["fee_deducted"]) == (4900, 0)
    shop.drain()
    paddle.wait_webhooks()
    shop.drain()
    adj = shop.api("GET", f"/refund-requests/{rr['id']}").json()["refunds"][0]["provider_refund_id"]
    paddle.decide(adj, "approved")
    settle(shop, paddle, rr["id"], "refunded")
    assert paddle.refunded_by_item(txn2) == {line2: 4900}
    assert paddle.refunded_by_item("txn_ord_dup") == {}


def test_refund_confirmed_by_polling_when_no_webhook_comes(db_url, tmp_path, fakes):
    """A webhook is a hint; the provider's API is the truth: with no confirmation event the
    worker asks the provider and the request still ends refunded."""
    stripe, paddle = fakes
    s = Shop(test_settings(db_url, tmp_path, stripe_api_base=stripe.url, paddle_api_base=paddle.url,
                           refund_poll_seconds=0.2))
    try:
        stripe.webhook_url = paddle.webhook_url = None  # the providers' webhooks never arrive
        register(s, "ord_poll", "software-mor", [LICENSE_ITEM])
        pay_stripe(s, stripe, "ord_poll", fee=0)
        register(s, "ord_poll_p", "software-mor", [dict(LICENSE_ITEM, price_id="pri_pp")])
        pay_paddle(s, paddle, "ord_poll_p", [("pri_pp", 4900)], fee=0)
        ids = [request_refund(s, o, at="2026-03-05T10:00:00Z")["id"] for o in ("ord_poll", "ord_poll_p")]
        refund_of = lambda i: s.api("GET", f"/refund-requests/{i}").json()["refunds"][0]  # noqa: E731
        s.drain(until=lambda: refund_of(ids[1])["provider_refund_id"], timeout=30)
        paddle.decide(refund_of(ids[1])["provider_refund_id"], "approved")
        s.drain(until=lambda: all(s.api("GET", f"/refund-requests/{i}").json()["status"] == "refunded" for i in ids),
                timeout=30)
        assert sorted(e[0] for e in s.ledger("ord_poll")) == ["refund", "sale"]
        assert sorted(e[0] for e in s.ledger("ord_poll_p")) == ["refund", "sale"]
    finally:
        s.close()
