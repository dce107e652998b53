"""Validation of the evaluate body (order + request) into input dataclasses: every error names
the offending field as a path (the web layer answers 422 with it)."""
from __future__ import annotations

import copy
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bridge.policy import (PolicyInputError, PolicyRegistry, UnknownPolicyError, parse_evaluation,
                           parse_facts)

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = PolicyRegistry.load(ROOT / "config" / "policies")
NOW = datetime(2026, 4, 1, tzinfo=timezone.utc)

BODY = {
    "order": {"order_id": "ord_1", "policy": "software-mor", "currency": "usd", "bundle": False,
              "customer": {"id": "cus_1", "email": "a@example.com", "country": "de"},
              "items": [{"item_id": "li_1", "sku": "pro-license", "category": "license",
                         "billing": "one_time", "amount": 4900, "price_id": "pri_01h",
                         "paid_at": "2026-03-01T10:00:00Z", "fee": 172, "purchase": "initial"}]},
    "request": {"order_id": "ord_1", "reason": "not_satisfied", "items": ["li_1"],
                "requested_at": "2026-03-20T10:00:00Z", "facts": {}, "item_facts": {}},
}


def body(**changes) -> dict:
    """A copy of BODY with dotted-path changes; a value of ... deletes the key."""
    out = copy.deepcopy(BODY)
    for path, value in changes.items():
        node = out
        parts = path.split("__")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is ...:
            del node[parts[-1]]
        else:
            node[parts[-1]] = value
    return out


def error_of(data: dict, policy: str = "software-mor") -> PolicyInputError:
    with pytest.raises(PolicyInputError) as err:
        REGISTRY.evaluate(policy, data, NOW)
    return err.value


def test_valid_body_parses_and_normalises():
    order, request = parse_evaluation(BODY, NOW)
    assert order.currency == "USD" and order.country == "DE" and order.business is False
    [item] = order.items
    assert item.paid_at == datetime(2026, 3, 1, 10, tzinfo=timezone.utc) and item.fee == 172
    assert request.items == ("li_1",) and request.reason == "not_satisfied"
    assert REGISTRY.evaluate("software-mor", BODY, NOW).to_dict()["refund_amount"] == 4728


def test_offsets_are_converted_to_utc():
    data = body(order__items__0__paid_at="2026-03-01T12:00:00+02:00",
                request__requested_at="2026-03-31T12:00:00+02:00")
    order, request = parse_evaluation(data, NOW)
    assert order.items[0].paid_at.utcoffset().total_seconds() == 0
    assert order.items[0].paid_at == datetime(2026, 3, 1, 10, tzinfo=timezone.utc)
    assert REGISTRY.evaluate("software-mor", data, NOW).outcome == "approved"   # exactly 30 days


@pytest.mark.parametrize("changes,field", [
    ({"order__items__0__paid_at": ...}, "order.items[0].paid_at"),
    ({"order__items__0__paid_at": "2026-03-01T10:00:00"}, "order.items[0].paid_at"),      # no zone
    ({"order__items__0__paid_at": "yesterday"}, "order.items[0].paid_at"),
    ({"order__items__0__amount": 49.0}, "order.items[0].amount"),
    ({"order__items__0__amount": -1}, "order.items[0].amount"),
    ({"order__items__0__amount": True}, "order.items[0].amount"),
    ({"order__items__0__fee": "172"}, "order.items[0].fee"),
    ({"order__items__0__billing": "weekly"}, "order.items[0].billing"),
    ({"order__items__0__purchase": "first"}, "order.items[0].purchase"),
    ({"order__items__0__already_refunded": 5000}, "order.items[0].already_refunded"),
    ({"order__items__0__period_end": "2026-02-01T00:00:00Z"}, "order.items[0].period_end"),
    ({"order__items__0__duplicate_charge": "yes"}, "order.items[0].duplicate_charge"),
    ({"order__items__0__facts": {"used": "yes"}}, "order.items[0].facts.used"),
    ({"order__items__0__category": "hardware"}, "order.items[0].category"),
    ({"order__items__0__item_id": ...}, "order.items[0].item_id"),
    ({"order__items": []}, "order.items"),
    ({"order__currency": "dollars"}, "order.currency"),
    ({"order__customer__country": "Germany"}, "order.customer.country"),
    ({"order__customer__business": "no"}, "order.customer.business"),
    ({"order__bundle": 1}, "order.bundle"),
    ({"order__facts": {"vibes": True}}, "order.facts.vibes"),
    ({"request__reason": "fraud"}, "request.reason"),
    ({"request__reason": ...}, "request.reason"),
    ({"request__requested_at": "2026-02-28T10:00:00Z"}, "request.requested_at"),   # before paid_at
    ({"request__requested_at": "2026-03-20"}, "request.requested_at"),
    ({"request__items": ["li_9"]}, "request.items[0]"),
    ({"request__items": ["li_1", "li_1"]}, "request.items[1]"),
    ({"request__items": []}, "request.items"),
    ({"request__facts": {"unknown_fact": True}}, "request.facts.unknown_fact"),
    ({"request__facts": {"content_accessed": 1}}, "request.facts.content_accessed"),
    ({"request__facts": {"documented_effort_amount": -5}}, "request.facts.documented_effort_amount"),
    ({"request__facts": {"documented_effort_amount": 1.5}}, "request.facts.documented_effort_amount"),
    ({"request__facts": {"problem_reported_at": "2026-03-02T10:00:00"}}, "request.facts.problem_reported_at"),
    ({"request__item_facts": {"li_9": {}}}, "request.item_facts.li_9"),
    ({"request__item_facts": {"li_1": {"bogus": True}}}, "request.item_facts.li_1.bogus"),
    ({"request": ...}, "request"),
    ({"order": ...}, "order"),
])
def test_input_errors_name_the_field(changes, field):
    err = error_of(body(**changes))
    assert err.field == field, str(err)
    assert err.message and str(err).startswith(field)


def test_billing_not_sold_by_the_category_is_an_input_error():
    data = body(order__items__0__category="plan", order__items__0__billing="one_time")
    assert error_of(data, "mittrik").field == "order.items[0].billing"
    data = body(order__items__0__category="plan", order__items__0__billing=...)
    assert error_of(data, "mittrik").field == "order.items[0].billing"


def test_requested_at_defaults_to_now_and_item_checks_only_the_requested_items():
    order, request = parse_evaluation(body(request__requested_at=...), NOW)
    assert request.requested_at == NOW
    two = body()
    two["order"]["items"].append({**two["order"]["items"][0], "item_id": "li_2",
                                  "paid_at": "2026-03-25T00:00:00Z"})
    assert REGISTRY.evaluate("software-mor", two, NOW).outcome == "approved"   # li_2 not requested
    two["request"]["items"] = ["li_1", "li_2"]
    assert error_of(two).field == "request.requested_at"


def test_facts_types_and_nulls():
    facts = parse_facts({"used": False, "documented_effort_amount": None,
                         "third_party_cost_amount": 0, "problem_reported_at": "2026-03-02T10:00:00+01:00"},
                        "request.facts")
    assert facts["used"] is False and "documented_effort_amount" not in facts
    assert facts["third_party_cost_amount"] == 0
    assert facts["problem_reported_at"] == datetime(2026, 3, 2, 9, tzinfo=timezone.utc)


def test_unknown_policy_is_a_key_error():
    with pytest.raises(UnknownPolicyError) as err:
        REGISTRY.evaluate("acme", BODY, NOW)
    assert isinstance(err.value, KeyError) and err.value.policy_id == "acme"
    assert "acme" in str(err.value)


def test_url_policy_wins_over_order_policy():
    data = body(order__items__0__category="training", order__items__0__billing="one_time",
                request__reason="charged_by_mistake")
    d = REGISTRY.evaluate("micromastery", data, NOW)                   # order says software-mor
    assert d.policy_id == "micromastery" and d.refund_amount == 4900


def test_the_simulator_accepts_a_future_requested_at_a_real_request_does_not():
    """policies.md: the simulator decides hypothetical orders (what if the buyer asked next
    month); a refund request dated after now is a 422."""
    future = body(request__requested_at="2026-04-01T00:00:01Z")
    d = REGISTRY.evaluate("software-mor", future, NOW).to_dict()
    assert d["outcome"] == "denied" and d["requested_at"] == "2026-04-01T00:00:01Z"   # day 30 + 14 h
    d = REGISTRY.evaluate("software-mor", body(request__requested_at="2026-03-31T10:00:00Z"),
                          datetime(2026, 3, 2, tzinfo=timezone.utc)).to_dict()
    assert d["outcome"] == "approved" and d["deadline"] == "2026-03-31T10:00:00Z"
    with pytest.raises(PolicyInputError) as err:
        parse_evaluation(future, NOW)
    assert err.value.field == "request.requested_at" and "future" in err.value.message
    from bridge.policy import evaluate
    order, request = parse_evaluation(future, NOW, allow_future=True)
    with pytest.raises(PolicyInputError):
        evaluate(REGISTRY.get("software-mor"), order, request, NOW)
