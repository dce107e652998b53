"""Early fraud warnings (issue 12, api.md "Chargebacks and licenses"): the order policy's
``early_fraud_warning`` rule, as a refund request with reason ``fraud_warning`` that takes the
normal path (review by a person, or refunded at once), once per warning."""
from __future__ import annotations

from sqlalchemy import select

from bridge.ledger.models import WebhookEvent
from tests.e2e.test_refund_flow import LICENSE_ITEM, fakes, pay_stripe, register, shop  # noqa: F401
from tests.fixtures import stripe_payloads as sp

T0 = 1_772_359_200
DAY = 86_400


def warning_obj(order_id: str, warning_id: str = None, **kw) -> dict:
    obj = {"id": warning_id or f"issfr_{order_id}", "object": "radar.early_fraud_warning", "actionable": True,
           "charge": f"ch_{order_id}", "created": T0 + 2 * DAY, "fraud_type": "made_with_stolen_card",
           "livemode": False, "payment_intent": f"pi_{order_id}"}
    obj.update(kw)
    return obj


def warning(order_id: str, **kw) -> dict:
    return sp.event("radar.early_fraud_warning.created", warning_obj(order_id, **kw), created=T0 + 2 * DAY)


def fraud_requests(shop, order_id: str) -> list[dict]:
    return [r for r in shop.order(order_id)["refund_requests"] if r["reason"] == "fraud_warning"]


def test_review_by_default_once_per_warning(shop, fakes):  # noqa: F811
    stripe, _ = fakes
    register(shop, "ord_fw", "software-mor", [LICENSE_ITEM])
    pay_stripe(shop, stripe, "ord_fw")
    ev = warning("ord_fw")
    shop.stripe(ev)
    shop.drain()
    shop.stripe(ev)                               # a re-delivery
    shop.stripe(dict(ev, id="evt_other_copy"))    # the same warning in another event
    shop.drain()
    [rr] = fraud_requests(shop, "ord_fw")
    assert rr["status"] == "review" and rr["decision"]["outcome"] == "review"
    assert rr["decision"]["items"][0]["outcome"] == "review"
    listed = shop.api("GET", "/refund-requests?status=review", expect=200).json()["refund_requests"]
    assert [r["id"] for r in listed] == [rr["id"]]
    assert stripe.calls_to("POST", "/v1/refunds") == []
    # A person approves it: refunded through the normal execution path.
    shop.api("POST", f"/refund-requests/{rr['id']}/review", {"outcome": "approved"}, expect=200)
    shop.drain()
    assert sum(a.amount for a in stripe.applied) == 4900


def test_warning_before_its_payment_waits_for_it(shop, fakes):  # noqa: F811
    stripe, _ = fakes
    register(shop, "ord_early", "software-mor", [LICENSE_ITEM])
    shop.stripe(warning("ord_early"))
    shop.worker.run_once()  # parked (retried with backoff) until its payment is known
    with shop.rt.reads() as s:
        assert s.scalar(select(WebhookEvent.status)) == "parked"
    assert fraud_requests(shop, "ord_early") == []
    pay_stripe(shop, stripe, "ord_early")
    shop.drain(until=lambda: fraud_requests(shop, "ord_early") != [], timeout=30)
    assert fraud_requests(shop, "ord_early")[0]["status"] == "review"


def test_not_actionable_warning_decides_nothing(shop, fakes):  # noqa: F811
    stripe, _ = fakes
    register(shop, "ord_na", "software-mor", [LICENSE_ITEM])
    pay_stripe(shop, stripe, "ord_na")
    shop.stripe(warning("ord_na", actionable=False))
    shop.drain()
    assert fraud_requests(shop, "ord_na") == []


def test_thin_fraud_warning(shop, fakes):  # noqa: F811
    stripe, _ = fakes
    register(shop, "ord_tfw", "software-mor", [LICENSE_ITEM])
    pay_stripe(shop, stripe, "ord_tfw")
    shop.stripe(stripe.thin_event("radar.early_fraud_warning.created", warning_obj("ord_tfw"), created=T0 + 2 * DAY))
    shop.drain()
    [rr] = fraud_requests(shop, "ord_tfw")
    assert rr["status"] == "review"
    assert stripe.calls_to("GET", "/v1/radar/early_fraud_warnings/issfr_ord_tfw")
