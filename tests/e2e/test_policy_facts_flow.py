"""A merchant's own facts end to end (issue 14): the facts API and refund requests accept the
facts the order's policy declares (hotlunch: deactivated_and_uninstalled), refuse them on an
order of another policy, and the decision follows the tiers of that policy; the simulator
takes a future requested_at and answers the deadline."""
from tests.e2e.test_refund_flow import fakes, pay_stripe, register, request_refund, shop  # noqa: F401

LICENSE = {"item_id": "li_1", "sku": "hl-license", "category": "license", "billing": "one_time",
           "amount": 120000, "price_id": "pri_hl"}


def test_declared_fact_through_the_facts_api_and_a_refund_request(shop, fakes):  # noqa: F811
    stripe, _ = fakes
    register(shop, "ord_hl", "hotlunch", [LICENSE])
    pay_stripe(shop, stripe, "ord_hl", amount=120000, fee=3510)          # paid 2026-03-01T10:00Z
    # not deactivated yet: denied, citing 2.3
    rr = request_refund(shop, "ord_hl", at="2026-03-05T10:00:00Z")
    assert rr["decision"]["outcome"] == "denied" and rr["decision"]["items"][0]["rule"] == "license#1"
    r = shop.api("POST", "/orders/ord_hl/facts", {"item_facts": {"li_1": {"deactivated_and_uninstalled": True}}})
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["facts"] == {"deactivated_and_uninstalled": True}
    bad = shop.api("POST", "/orders/ord_hl/facts", {"facts": {"deactivated_and_uninstalled": "yes"}})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "facts.deactivated_and_uninstalled"
    # second quarter: 50% of the fee (31 Jan is not involved: 1 Mar + 3 months = 1 Jun)
    rr = request_refund(shop, "ord_hl", at="2026-06-01T10:00:01Z")
    d = rr["decision"]
    assert (d["outcome"], d["refund_amount"], d["fee_deducted"]) == ("approved", 60000, 0)
    assert d["deadline"] == "2026-09-01T10:00:00Z" and d["items"][0]["deadline"] == "2026-09-01T10:00:00Z"
    assert d["policy"]["id"] == "hotlunch" and [c["section"] for c in d["clauses"]] == ["2.1"]


def test_a_fact_the_orders_policy_does_not_declare_is_a_422(shop, fakes):  # noqa: F811
    stripe, _ = fakes
    register(shop, "ord_sm", "software-mor", [{**LICENSE, "category": "license", "amount": 4900}])
    bad = shop.api("POST", "/orders/ord_sm/facts", {"facts": {"deactivated_and_uninstalled": True}})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "facts.deactivated_and_uninstalled"
    pay_stripe(shop, stripe, "ord_sm")
    rr = request_refund(shop, "ord_sm", at="2026-03-05T10:00:00Z", expect=422,
                        facts={"deactivated_and_uninstalled": True})
    assert rr["error"]["field"] == "facts.deactivated_and_uninstalled"
    rr = request_refund(shop, "ord_sm", reason="not_as_described", at="2026-03-05T10:00:00Z", expect=422)
    assert rr["error"]["field"] == "reason"


def test_simulator_takes_a_future_request_and_answers_the_deadline(shop):
    body = {"order": {"currency": "EUR", "items": [{"item_id": "li_1", "category": "software", "amount": 4900,
                                                    "paid_at": "2099-03-06T10:00:00Z"}]},
            "request": {"reason": "changed_mind", "requested_at": "2099-03-10T10:00:00Z"}}
    r = shop.api("POST", "/policies/nextos/evaluate", body)
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "approved" and r.json()["deadline"] == "2099-03-17T10:00:00Z"
