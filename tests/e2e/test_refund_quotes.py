"""``POST /api/v1/refund-quotes`` (issue 12): the decision a request would get now, storing
nothing, equal to the decision of the request filed right after it."""
from __future__ import annotations

import pytest
import requests
from sqlalchemy import func, select

from bridge.ledger.models import Job, RefundRequest
from tests.e2e.test_refund_flow import (LICENSE_ITEM, fakes, pay_paddle, pay_stripe, register,  # noqa: F401
                                        request_refund, shop)
from tests.support.api import auth, token

ADDON = {"item_id": "li_2", "sku": "addon", "category": "store_addon", "billing": "one_time", "amount": 1900,
         "price_id": "pri_add"}


def quote(shop, body, expect=200, scope="read"):
    r = requests.post(shop.url + "/api/v1/refund-quotes", json=body, headers=auth(token(shop.rt, scope)), timeout=30)
    assert r.status_code == expect, r.text
    return r.json()


def stored(shop) -> tuple[int, int]:
    with shop.rt.reads() as s:
        return (s.scalar(select(func.count()).select_from(RefundRequest)),
                s.scalar(select(func.count()).select_from(Job)))


CASES = {
    "approved with the fee kept": ({"reason": "not_satisfied", "requested_at": "2026-03-20T10:00:00Z"}, "approved"),
    "denied after the window": ({"reason": "not_satisfied", "requested_at": "2026-03-31T10:00:01Z"}, "denied"),
    "one item": ({"reason": "not_satisfied", "items": ["li_2"], "requested_at": "2026-03-03T10:00:00Z"}, "approved"),
    "technical issue": ({"reason": "technical_issue", "requested_at": "2026-03-04T10:00:00Z",
                         "facts": {"technical_issue": True}}, None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_quote_equals_the_decision_of_the_request_filed_after_it(shop, fakes, case):  # noqa: F811
    stripe, _ = fakes
    body, outcome = CASES[case]
    register(shop, "ord_q", "software-mor", [dict(LICENSE_ITEM, amount=3000), ADDON])
    pay_stripe(shop, stripe, "ord_q", amount=4900, fee=172)
    before = stored(shop)
    q = quote(shop, {"order_id": "ord_q", **body})
    assert stored(shop) == before  # nothing stored, nothing queued
    assert outcome is None or q["outcome"] == outcome
    assert "deadline" in q and all("deadline" in i for i in q["items"])
    rr = request_refund(shop, "ord_q", **{k: v for k, v in body.items() if k != "requested_at"},
                        at=body["requested_at"])
    assert rr["decision"] == q


def test_quote_for_paddle_and_after_a_refund(shop, fakes):  # noqa: F811
    _, paddle = fakes
    register(shop, "ord_pq", "software-mor", [dict(LICENSE_ITEM, price_id="pri_pq")])
    pay_paddle(shop, paddle, "ord_pq", [("pri_pq", 4900)], fee=245)
    body = {"order_id": "ord_pq", "reason": "not_satisfied", "requested_at": "2026-03-10T10:00:00Z"}
    q = quote(shop, body)
    rr = request_refund(shop, "ord_pq", at="2026-03-10T10:00:00Z")
    assert rr["decision"] == q and q["outcome"] == "approved"
    # Once that refund is decided, a quote for the same items says what filing would say: 409.
    again = quote(shop, body, expect=409)
    assert again["error"]["code"] in ("nothing_to_refund", "exceeds_remaining")


def test_quote_errors_are_those_of_a_request(shop, fakes):  # noqa: F811
    register(shop, "ord_unpaid", "software-mor", [LICENSE_ITEM])
    assert quote(shop, {"order_id": "nope", "reason": "not_satisfied"}, 404)["error"]["code"] == "order_not_found"
    assert quote(shop, {"order_id": "ord_unpaid", "reason": "not_satisfied"}, 409)["error"]["code"] == "not_paid"
    err = quote(shop, {"reason": "not_satisfied"}, 422)["error"]
    assert err["field"] == "order_id"
    quote(shop, {"order_id": "ord_unpaid", "reason": "not_satisfied"}, 403, scope="orders:write")
    r = requests.post(shop.url + "/api/v1/refund-quotes", data="[]", timeout=10,
                      headers={**auth(token(shop.rt, "read")), "Content-Type": "application/json"})
    assert r.status_code in (400, 422) and r.json()["error"]
