"""Paddle keeps one refund awaiting approval per transaction (issue 11 item 9): refunds of one
transaction are serialised by the bridge, and Paddle's ``adjustment_pending_refund_request``
means "try again later", never a failed request."""
from __future__ import annotations

import requests

from tests.e2e.test_refund_flow import fakes, pay_paddle, register, request_refund, settle, shop  # noqa: F401

ITEMS = [{"item_id": "li_a", "category": "license", "billing": "one_time", "amount": 4000, "price_id": "pri_sa"},
         {"item_id": "li_b", "category": "store_addon", "billing": "one_time", "amount": 1000, "price_id": "pri_sb"}]


def _refund_of(shop, rr_id):
    return shop.api("GET", f"/refund-requests/{rr_id}").json()


def test_a_refund_made_outside_the_bridge_still_pending_makes_ours_wait_not_fail(shop, fakes):  # noqa: F811
    """A refund made in Paddle's dashboard awaits approval; ours on the same transaction gets
    ``adjustment_pending_refund_request``. Before: the request failed with that code."""
    _, paddle = fakes
    register(shop, "ord_w", "software-mor", ITEMS)
    txn, lines = pay_paddle(shop, paddle, "ord_w", [("pri_sa", 4000), ("pri_sb", 1000)], fee=0)
    outside = requests.post(paddle.url + "/adjustments", timeout=10, headers={"Authorization": "Bearer x"}, json={
        "action": "refund", "transaction_id": txn, "reason": "dashboard refund", "type": "partial",
        "items": [{"item_id": lines[0], "type": "partial", "amount": "500"}]}).json()["data"]
    assert outside["status"] == "pending_approval"
    rr = request_refund(shop, "ord_w", items=["li_b"], at="2026-03-03T10:00:00Z")
    # Ours is sent, refused as busy, and postponed (it would be tried again every few seconds).
    shop.drain(until=lambda: len(paddle.calls_to("POST", "/adjustments")) >= 2, timeout=30)
    shop.worker.run_once()
    got = _refund_of(shop, rr["id"])
    assert got["status"] in ("approved", "refunding") and "error" not in got, got
    assert got["refunds"][0]["provider_refund_id"] is None  # waiting, not failed
    paddle.decide(outside["id"], "approved")
    shop.drain(until=lambda: _refund_of(shop, rr["id"])["refunds"][0]["provider_refund_id"], timeout=30)
    adj = _refund_of(shop, rr["id"])["refunds"][0]["provider_refund_id"]
    paddle.decide(adj, "approved")
    settle(shop, paddle, rr["id"], "refunded")


def test_two_requests_on_one_transaction_are_sent_one_after_the_other(shop, fakes):  # noqa: F811
    _, paddle = fakes
    register(shop, "ord_t", "software-mor", ITEMS)
    txn, lines = pay_paddle(shop, paddle, "ord_t", [("pri_sa", 4000), ("pri_sb", 1000)], fee=0)
    first = request_refund(shop, "ord_t", items=["li_b"], at="2026-03-03T10:00:00Z")
    second = request_refund(shop, "ord_t", items=["li_a"], at="2026-03-03T11:00:00Z")
    shop.drain(until=lambda: _refund_of(shop, first["id"])["refunds"][0]["provider_refund_id"], timeout=30)
    for _ in range(20):  # both jobs get their turns; the second keeps waiting
        shop.worker.run_once()
    sent = paddle.calls_to("POST", "/adjustments")
    assert len(sent) == 1  # the second waits for the first to be decided
    adj = _refund_of(shop, first["id"])["refunds"][0]["provider_refund_id"]
    paddle.decide(adj, "approved")
    settle(shop, paddle, first["id"], "refunded")
    shop.drain(until=lambda: _refund_of(shop, second["id"])["refunds"][0]["provider_refund_id"], timeout=30)
    paddle.decide(_refund_of(shop, second["id"])["refunds"][0]["provider_refund_id"], "approved")
    settle(shop, paddle, second["id"], "refunded")
    assert len(paddle.calls_to("POST", "/adjustments")) == 2
    assert all(c.status < 400 for c in paddle.calls_to("POST", "/adjustments"))
