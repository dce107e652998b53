"""Deadlines (spec/policies.md, "Deadlines"): every decision and every item carries the last
instant of the time window that gave ``approved`` or ``review``, and null where none did; the
early fraud warning rule; the simulator's future requests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bridge.policy import (Order, OrderItem, PolicyFileError, PolicyRegistry, early_fraud_warning_rule,
                           fraud_warning_decision, parse_policy)

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = PolicyRegistry.load(ROOT / "config" / "policies")
NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
T0 = datetime(2026, 3, 1, 10, tzinfo=timezone.utc)
PAID = "2026-03-01T10:00:00Z"


def iso(days: float = 0, seconds: int = 0) -> str:
    return (T0 + timedelta(days=days, seconds=seconds)).isoformat().replace("+00:00", "Z")


def decide(policy, category, reason="not_satisfied", at=1, facts=None, country="US", **kw) -> dict:
    item = {"item_id": "li_1", "category": category, "amount": 4900, "paid_at": PAID, **kw}
    body = {"order": {"currency": "USD", "items": [item], "customer": {"country": country}},
            "request": {"reason": reason, "requested_at": iso(at), "facts": facts or {}}}
    return REGISTRY.evaluate(policy, body, NOW).to_dict()


ANNUAL = {"billing": "annual", "period_start": PAID, "period_end": "2027-03-01T10:00:00Z"}

# policy, category, item kwargs, reason, asked on day, facts, outcome, rule, deadline (days after paid_at)
ROWS = [
    # micromastery: row 4 is the only window that approves (7 days, measured at the report)
    ("micromastery", "training", {}, "technical_issue", 20, {"technical_issue": True, "problem_reported_at": iso(5)},
     "approved", "training#4", 7),
    ("micromastery", "training", {}, "technical_issue", 6, {"technical_issue": True}, "approved", "training#4", 7),
    ("micromastery", "training", {}, "charged_by_mistake", 90, {}, "approved", "training#1", None),
    ("micromastery", "training", {}, "technical_issue", 9, {"technical_issue": True}, "denied", "training#5", None),
    ("micromastery", "training", {}, "changed_mind", 1, {}, "denied", "training#6", None),
    # mittrik: add-on review within 7 days, annual plan within 14 days; the discretionary
    # technical-issue review has no window
    ("mittrik", "addon", {}, "not_satisfied", 3, {}, "review", "4", 7),
    ("mittrik", "addon", {}, "not_satisfied", 8, {}, "denied", "5", None),
    ("mittrik", "plan", ANNUAL, "not_satisfied", 5, {}, "approved", "7", 14),
    ("mittrik", "plan", ANNUAL, "not_satisfied", 15, {}, "denied", "8", None),
    ("mittrik", "plan", {"billing": "monthly"}, "technical_issue", 20, {"technical_issue": True}, "review", "2", None),
    ("mittrik", "plan", {"billing": "monthly", "duplicate_charge": True}, "duplicate_charge", 2, {}, "approved",
     "duplicate_charge", None),
    # software-mor: every approving window row, and the rows without one
    ("software-mor", "saas_subscription", {"fee": 172}, "not_satisfied", 3, {}, "approved", "saas_subscription#2", 7),
    ("software-mor", "license", {"fee": 172}, "not_satisfied", 19, {}, "approved", "license#2", 30),
    ("software-mor", "license", {"fee": 172}, "not_satisfied", 31, {}, "denied", "license#3", None),
    ("software-mor", "store_addon", {"fee": 90}, "not_satisfied", 7, {}, "approved", "store_addon#1", 7),
    ("software-mor", "support_subscription", {"fee": 100, "billing": "annual"}, "not_satisfied", 29, {}, "approved",
     "support_subscription#3", 30),
    ("software-mor", "consulting", {"fee": 100}, "not_satisfied", 2, {}, "approved", "consulting#2", 30),
    # third-party items: "after 30 days: denied" comes first, so it ends the rows below it
    ("software-mor", "third_party_item", {"fee": 300}, "not_satisfied", 4, {}, "approved", "third_party_item#2", 30),
    ("software-mor", "third_party_item", {"fee": 300}, "not_satisfied", 4,
     {"provisioning_started": True, "third_party_cost_amount": 1000}, "approved", "third_party_item#3", 30),
    ("software-mor", "third_party_item", {"fee": 300}, "not_satisfied", 4, {"provisioning_started": True},
     "review", "third_party_item#4", 30),
    ("software-mor", "custom_development", {"fee": 0}, "not_satisfied", 40, {}, "approved", "custom_development#2", None),
    ("software-mor", "custom_development", {"fee": 0}, "not_satisfied", 40, {"work_started": True}, "review",
     "custom_development#4", None),
    ("software-mor", "installation", {"fee": 350}, "not_satisfied", 40, {}, "approved", "installation#1", None),
    ("software-mor", "support_task", {"fee": 100}, "not_satisfied", 100, {}, "approved", "support_task#2", None),
    ("software-mor", "license", {"fee": 172}, "not_satisfied", 3, {}, "review", "license#2", 30),   # fee unknown below
]


@pytest.mark.parametrize("case", ROWS, ids=[f"{c[0]}:{c[7]}:{c[6]}" for c in ROWS])
def test_deadline_of_each_row(case):
    policy, category, kw, reason, day, facts, outcome, rule, deadline_days = case
    if outcome == "review" and rule == "license#2":
        kw = {}                                               # no fee: the amount is unknown
    d = decide(policy, category, reason, day, facts, **kw)
    [item] = d["items"]
    assert (d["outcome"], item["rule"]) == (outcome, rule), d["explanation"]
    want = None if deadline_days is None else iso(deadline_days)
    assert item["deadline"] == want and d["deadline"] == want


def test_the_deadline_is_the_last_instant_inside_the_window():
    d = decide("software-mor", "license", at=30, fee=172)          # the api.md example
    assert d["outcome"] == "approved" and d["deadline"] == "2026-03-31T10:00:00Z"
    d = decide("software-mor", "license", at=30 + 1 / 86400, fee=172)
    assert d["outcome"] == "denied" and d["deadline"] is None


def test_statutory_overlay_review_carries_the_overlay_window():
    d = decide("software-mor", "license", at=10, facts={"materially_used": True}, country="DE", fee=172)
    assert d["outcome"] == "review" and d["items"][0]["statutory_overlay"] is True
    assert d["deadline"] == iso(14)


def test_an_order_decision_carries_its_earliest_item_deadline_and_a_bundle_denial_none():
    items = [{"item_id": "li_1", "category": "license", "amount": 4900, "fee": 172, "paid_at": PAID},
             {"item_id": "li_2", "category": "store_addon", "amount": 2000, "fee": 90, "paid_at": PAID},
             {"item_id": "li_3", "category": "installation", "amount": 10000, "fee": 350, "paid_at": PAID}]
    body = {"order": {"currency": "USD", "items": items, "customer": {"country": "US"}},
            "request": {"reason": "not_satisfied", "requested_at": iso(2)}}
    d = REGISTRY.evaluate("software-mor", body, NOW).to_dict()
    assert [i["deadline"] for i in d["items"]] == [iso(30), iso(7), None]
    assert d["outcome"] == "approved" and d["deadline"] == iso(7)
    body["order"]["bundle"] = True
    body["request"]["items"] = ["li_1"]
    d = REGISTRY.evaluate("software-mor", body, NOW).to_dict()
    assert d["outcome"] == "denied" and d["deadline"] is None and d["items"][0]["deadline"] is None


# -- early fraud warnings --------------------------------------------------------------------

def _order(*categories, refunded=0) -> Order:
    return Order("USD", tuple(OrderItem(item_id=f"li_{i}", category=c, amount=4900, paid_at=T0, fee=172,
                                        already_refunded=refunded) for i, c in enumerate(categories)))


def test_fraud_warning_default_is_review_citing_the_chargeback_section():
    policy = REGISTRY.get("software-mor")
    rule = policy.early_fraud_warning_rule("license")
    assert rule.action == "review" and [c.section for c in rule.cite] == ["6"]
    d = fraud_warning_decision(policy, _order("license"), T0 + timedelta(days=3))
    assert d.outcome == "review" and d.reason == "fraud_warning" and d.refund_amount == 0
    assert [c.section for c in d.clauses] == ["6"] and d.items[0].rule == "early_fraud_warning"
    assert d.to_dict()["deadline"] is None
    assert d.explanation.endswith(".") and ". " not in d.explanation
    micro = REGISTRY.get("micromastery")
    assert micro.early_fraud_warning_rule().action == "review"


EFW_POLICY = '''
id = "efw"
version = "1"
effective_date = 2026-01-01
[sections.1]
title = "Disputes"
text = "A payment reported as fraudulent is refunded at once."
[early_fraud_warning]
action = "refund"
cite = ["1"]
[categories.app]
cite = ["1"]
[[categories.app.rows]]
outcome = "denied"
[categories.service]
cite = ["1"]
early_fraud_warning = "ignore"
[[categories.service.rows]]
outcome = "denied"
'''


def test_fraud_warning_refund_ignore_and_a_mixed_order():
    policy = parse_policy(EFW_POLICY.encode(), "efw.toml")
    d = fraud_warning_decision(policy, _order("app", "app", refunded=900), T0)
    assert (d.outcome, d.refund_amount, d.fee_deducted) == ("approved", 8000, 0)   # the rest, no fee kept
    assert [c.section for c in d.clauses] == ["1"] and "80.00 USD" in d.explanation
    assert fraud_warning_decision(policy, _order("app", refunded=4900), T0).outcome == "denied"
    assert fraud_warning_decision(policy, _order("service"), T0) is None
    assert policy.early_fraud_warning_rule("service").action == "ignore"
    mixed = fraud_warning_decision(policy, _order("app", "service"), T0)
    assert mixed.outcome == "review" and early_fraud_warning_rule(policy, _order("app", "service")).action == "review"


@pytest.mark.parametrize("table,key", [
    ('[early_fraud_warning]\naction = "chargeback"', "early_fraud_warning.action"),
    ('[early_fraud_warning]\naction = "refund"\ncite = ["9"]', "early_fraud_warning.cite[0]"),
    ('[early_fraud_warning]\naction = "refund"\nwhen = 3', "early_fraud_warning.when"),
])
def test_fraud_warning_rule_is_validated(table, key):
    text = EFW_POLICY.replace('[early_fraud_warning]\naction = "refund"\ncite = ["1"]', table)
    with pytest.raises(PolicyFileError) as err:
        parse_policy(text.encode(), "efw.toml")
    assert err.value.key == key
    text = EFW_POLICY.replace('early_fraud_warning = "ignore"', 'early_fraud_warning = "never"')
    with pytest.raises(PolicyFileError) as err:
        parse_policy(text.encode(), "efw.toml")
    assert err.value.key == "categories.service.early_fraud_warning"
