"""Every row and every example of spec/policies.md, per policy, with exact amounts and the
sections cited, plus the edges: window boundaries, leap years, zero-decimal currencies,
bundles, missing amounts, the statutory overlay."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bridge.policy import PolicyRegistry

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = PolicyRegistry.load(ROOT / "config" / "policies")
NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
PAID = "2026-03-01T10:00:00Z"
T0 = datetime(2026, 3, 1, 10, tzinfo=timezone.utc)


def at(days: float = 0, seconds: int = 0, base: datetime = T0) -> str:
    moment = base + timedelta(days=days, seconds=seconds)
    return moment.isoformat().replace("+00:00", "Z")


def item(category: str, amount: int = 4900, item_id: str = "li_1", **kw) -> dict:
    out = {"item_id": item_id, "category": category, "amount": amount, "paid_at": PAID}
    out.update(kw)
    return out


def decide(policy: str, items: list[dict], reason: str = "not_satisfied",
           requested_at: str | None = None, *, country: str | None = "US", business: bool = False,
           bundle: bool = False, currency: str = "USD", facts: dict | None = None,
           request_items: list[str] | None = None, item_facts: dict | None = None) -> dict:
    order = {"currency": currency, "bundle": bundle, "items": items,
             "customer": {"country": country, "business": business}}
    request = {"reason": reason, "requested_at": requested_at or at(1), "facts": facts or {}}
    if request_items is not None:
        request["items"] = request_items
    if item_facts is not None:
        request["item_facts"] = item_facts
    return REGISTRY.evaluate(policy, {"order": order, "request": request}, NOW).to_dict()


def sections(decision: dict) -> list[str]:
    """The section numbers cited, in order, each once."""
    return list(dict.fromkeys(c["section"] for c in decision["clauses"]))


def rows(decision: dict) -> set[str]:
    return {c["row"] for c in decision["clauses"] if "row" in c}


def assert_decision(d: dict, outcome: str, refund: int = 0, fee: int = 0,
                    cites: list[str] | None = None, rule: str | None = None) -> None:
    assert d["outcome"] == outcome, d["explanation"]
    assert d["refund_amount"] == refund
    assert d["fee_deducted"] == fee
    if cites is not None:
        assert sections(d) == cites
    if rule is not None:
        assert [i["rule"] for i in d["items"]] == [rule]
    assert d["explanation"].endswith(".") and d["explanation"].count(". ") == 0
    for clause in d["clauses"]:
        assert set(clause) >= {"section", "title", "text"} and clause["text"]


# -- micromastery ---------------------------------------------------------------------------

MICRO = [
    # id, item kwargs, reason, requested_at, facts, outcome, refund, cites, rule
    ("1 duplicate charge any time", {}, "duplicate_charge", at(200), {}, "approved", 4900, ["1"], "training#1"),
    ("1 example 5: charged by mistake day 90", {}, "charged_by_mistake", at(90), {}, "approved", 4900, ["1"], "training#1"),
    ("1 beats content accessed", {}, "charged_by_mistake", at(2), {"content_accessed": True}, "approved", 4900, ["1"], "training#1"),
    ("2 cancellation", {"billing": "monthly"}, "cancellation", at(2), {}, "denied", 0, ["3"], "training#2"),
    ("2 cancellation even with an issue", {"billing": "annual"}, "cancellation", at(2),
     {"technical_issue": True}, "denied", 0, ["3"], "training#2"),
    ("3 issue resolved", {}, "technical_issue", at(3),
     {"technical_issue": True, "technical_issue_resolved": True}, "denied", 0, ["4"], "training#3"),
    ("4 issue reported day 5, asked day 20", {}, "technical_issue", at(20),
     {"technical_issue": True, "problem_reported_at": at(5)}, "approved", 4900, ["1", "4"], "training#4"),
    ("4 reported exactly at 7 days", {}, "technical_issue", at(9),
     {"technical_issue": True, "problem_reported_at": at(7)}, "approved", 4900, ["1", "4"], "training#4"),
    ("5 reported one second past 7 days", {}, "technical_issue", at(9),
     {"technical_issue": True, "problem_reported_at": at(7, 1)}, "denied", 0, ["4"], "training#5"),
    ("4 reported_at defaults to requested_at (day 6)", {}, "technical_issue", at(6),
     {"technical_issue": True}, "approved", 4900, ["1", "4"], "training#4"),
    ("5 reported_at defaults to requested_at (day 8)", {}, "not_satisfied", at(8),
     {"technical_issue": True}, "denied", 0, ["4"], "training#5"),
    ("6 example 6: changed mind, content accessed", {}, "changed_mind", at(1),
     {"content_accessed": True}, "denied", 0, ["2"], "training#6"),
    ("6 purchased by mistake", {}, "purchased_by_mistake", at(1), {}, "denied", 0, ["2"], "training#6"),
    ("6 not satisfied, nothing known", {}, "not_satisfied", at(0), {}, "denied", 0, ["2"], "training#6"),
    ("6 technical_issue reason without the fact", {}, "technical_issue", at(1), {}, "denied", 0, ["2"], "training#6"),
]


@pytest.mark.parametrize("case", MICRO, ids=[c[0] for c in MICRO])
def test_micromastery(case):
    _, kw, reason, when, facts, outcome, refund, cites, rule = case
    d = decide("micromastery", [item("training", **kw)], reason, when, facts=facts)
    assert_decision(d, outcome, refund, 0, cites, rule)
    assert d["policy"]["id"] == "micromastery" and d["policy"]["version"] == "2025-07-26"


def test_micromastery_never_deducts_fee_and_ignores_overlay():
    d = decide("micromastery", [item("training", fee=300)], "charged_by_mistake", at(1))
    assert_decision(d, "approved", 4900, 0)
    d = decide("micromastery", [item("training")], "changed_mind", at(2), country="DE")
    assert_decision(d, "denied", 0, 0, ["2"])          # the overlay ships switched off


# -- mittrik ---------------------------------------------------------------------------------

ANNUAL = {"billing": "annual", "amount": 120000, "paid_at": "2026-01-10T00:00:00Z",
          "period_start": "2026-01-10T00:00:00Z", "period_end": "2027-01-10T00:00:00Z"}
A0 = datetime(2026, 1, 10, tzinfo=timezone.utc)

MITTRIK = [
    ("duplicate charge flagged", "plan", {"billing": "monthly", "duplicate_charge": True}, "duplicate_charge",
     at(2), {}, "approved", 4900, ["5"], "duplicate_charge"),
    ("duplicate reason without the flag", "plan", {"billing": "monthly"}, "duplicate_charge",
     at(2), {}, "denied", 0, ["1"], "6"),
    ("1 cancellation", "plan", ANNUAL, "cancellation", at(2, base=A0), {}, "denied", 0, ["3"], "1"),
    ("1 downgrade", "plan", {"billing": "monthly"}, "downgrade", at(2), {}, "denied", 0, ["3"], "1"),
    ("1 addon cancellation", "addon", {}, "cancellation", at(1), {}, "denied", 0, ["3"], "1"),
    ("2 unresolved technical issue", "plan", {"billing": "monthly"}, "technical_issue", at(20),
     {"technical_issue": True}, "review", 0, ["4"], "2"),
    ("2 resolved issue falls through", "plan", {"billing": "monthly"}, "technical_issue", at(2),
     {"technical_issue": True, "technical_issue_resolved": True}, "denied", 0, ["1"], "6"),
    ("3 addon used", "addon", {}, "not_satisfied", at(1), {"used": True}, "denied", 0, ["2"], "3"),
    ("4 addon unused exactly 7 days", "addon", {}, "not_satisfied", at(7), {}, "review", 0, ["2"], "4"),
    ("5 addon unused one second past 7 days", "addon", {}, "not_satisfied", at(7, 1), {}, "denied", 0, ["2"], "5"),
    ("6 example 4: monthly plan one hour after payment", "plan", {"billing": "monthly"}, "not_satisfied",
     at(0, 3600), {}, "denied", 0, ["1"], "6"),
    ("7 example 3: annual plan day 5.5", "plan", ANNUAL, "not_satisfied", "2026-01-15T12:00:00Z",
     {}, "approved", 118027, ["1"], "7"),
    ("7 exactly 14 days: used 14", "plan", ANNUAL, "not_satisfied", at(14, base=A0),
     {}, "approved", 120000 * 351 // 365, ["1"], "7"),
    ("8 one second past 14 days", "plan", ANNUAL, "not_satisfied", at(14, 1, base=A0),
     {}, "denied", 0, ["1", "3"], "8"),
    ("7 asked at the period start: used_days is at least 1", "plan", ANNUAL, "changed_mind", at(0, base=A0),
     {}, "approved", 120000 * 364 // 365, ["1"], "7"),
]


@pytest.mark.parametrize("case", MITTRIK, ids=[c[0] for c in MITTRIK])
def test_mittrik(case):
    _, category, kw, reason, when, facts, outcome, refund, cites, rule = case
    d = decide("mittrik", [item(category, **kw)], reason, when, facts=facts)
    assert_decision(d, outcome, refund, 0, cites, rule)
    assert d["policy"]["version"] == "2025-04-10"


def test_mittrik_example_3_arithmetic():
    # elapsed 5.5 days -> used_days 6; floor(120000 * 359 / 365) = 118027
    assert 120000 * 359 // 365 == 118027
    d = decide("mittrik", [item("plan", **ANNUAL)], "not_satisfied", "2026-01-15T12:00:00Z")
    assert d["refund_amount"] == 118027 and d["items"][0]["fee_deducted"] == 0


def test_mittrik_pro_rating_leap_year_without_period_end():
    kw = {"billing": "annual", "amount": 120000, "paid_at": "2028-01-10T00:00:00Z",
          "period_start": "2028-01-10T00:00:00Z"}
    d = decide("mittrik", [item("plan", **kw)], "not_satisfied", "2028-01-11T00:00:00Z")
    assert d["refund_amount"] == 120000 * 365 // 366 == 119672      # 366 days, used 1
    assert d["refund_amount"] != 120000 * 364 // 365


def test_mittrik_pro_rating_non_leap_year_and_no_period_at_all():
    kw = {"billing": "annual", "amount": 120000, "paid_at": "2026-01-10T00:00:00Z"}
    d = decide("mittrik", [item("plan", **kw)], "not_satisfied", "2026-01-13T00:00:01Z")
    assert d["refund_amount"] == 120000 * (365 - 4) // 365          # from paid_at, 365 days, used 4


def test_mittrik_pro_rating_jpy():
    kw = {"billing": "annual", "amount": 12000, "paid_at": "2026-01-10T00:00:00Z",
          "period_start": "2026-01-10T00:00:00Z", "period_end": "2027-01-10T00:00:00Z"}
    d = decide("mittrik", [item("plan", **kw)], "not_satisfied", "2026-01-15T12:00:00Z", currency="JPY")
    assert_decision(d, "approved", 12000 * 359 // 365, 0, ["1"])
    assert d["refund_amount"] == 11802 and d["currency"] == "JPY"
    assert "11802 JPY" in d["explanation"]


def test_mittrik_renewal_window_counts_from_the_renewal_payment():
    kw = {"billing": "annual", "amount": 120000, "purchase": "renewal",
          "paid_at": "2027-01-10T00:00:00Z", "period_start": "2027-01-10T00:00:00Z",
          "period_end": "2028-01-10T00:00:00Z"}
    d = decide("mittrik", [item("plan", **kw)], "not_satisfied", "2027-01-12T00:00:00Z")
    assert_decision(d, "approved", 120000 * (365 - 2) // 365, 0, ["1"], "7")


def test_mittrik_plan_billing_one_time_is_an_input_error():
    from bridge.policy import PolicyInputError
    with pytest.raises(PolicyInputError) as err:
        decide("mittrik", [item("plan", billing="one_time")], "not_satisfied", at(1))
    assert err.value.field == "order.items[0].billing"


# -- software-mor ----------------------------------------------------------------------------

SM = [
    # id, category, item kwargs, reason, requested_at, facts, outcome, refund, fee, cites, rule
    ("saas 1 renewal", "saas_subscription", {"purchase": "renewal", "fee": 172}, "not_satisfied", at(1), {},
     "denied", 0, 0, ["3"], "saas_subscription#1"),
    ("saas 2 exactly 7 days", "saas_subscription", {"fee": 172}, "not_satisfied", at(7), {},
     "approved", 4728, 172, ["3", "2"], "saas_subscription#2"),
    ("saas 3 one second past 7 days", "saas_subscription", {"fee": 172}, "not_satisfied", at(7, 1), {},
     "denied", 0, 0, ["3"], "saas_subscription#3"),
    ("license 1 materially used", "license", {"fee": 172}, "not_satisfied", at(2), {"materially_used": True},
     "denied", 0, 0, ["3"], "license#1"),
    ("license 1 irreversible delivery", "license", {"fee": 172}, "not_satisfied", at(2),
     {"irreversible_delivery": True}, "denied", 0, 0, ["3"], "license#1"),
    ("license 2 example 1", "license", {"fee": 172}, "not_satisfied", "2026-03-20T10:00:00Z", {},
     "approved", 4728, 172, ["3", "2"], "license#2"),
    ("license 2 exactly 30 days", "license", {"fee": 172}, "not_satisfied", "2026-03-31T10:00:00Z", {},
     "approved", 4728, 172, ["3", "2"], "license#2"),
    ("license 3 example 2: one second past 30 days", "license", {"fee": 172}, "not_satisfied",
     "2026-03-31T10:00:01Z", {}, "denied", 0, 0, ["3"], "license#3"),
    ("store_addon 1 day 7", "store_addon", {"amount": 2000, "fee": 90}, "not_satisfied", at(7), {},
     "approved", 1910, 90, ["3", "2"], "store_addon#1"),
    ("store_addon 2 day 8", "store_addon", {"amount": 2000, "fee": 90}, "not_satisfied", at(8), {},
     "denied", 0, 0, ["3"], "store_addon#2"),
    ("custom 1 project completed", "custom_development", {"amount": 500000, "fee": 0}, "not_satisfied", at(60),
     {"project_completed": True, "work_started": True}, "denied", 0, 0, ["3"], "custom_development#1"),
    ("custom 2 work not started", "custom_development", {"amount": 500000, "fee": 14530}, "changed_mind", at(90),
     {}, "approved", 485470, 14530, ["3", "2"], "custom_development#2"),
    ("custom 3 example 8", "custom_development", {"amount": 500000, "fee": 0}, "not_satisfied", at(20),
     {"work_started": True, "delivered_milestones_amount": 200000, "documented_effort_amount": 50000},
     "approved", 250000, 0, ["3"], "custom_development#3"),
    ("custom 3 with a fee: deduction rounds up", "custom_development", {"amount": 1000, "fee": 33}, "not_satisfied",
     at(20), {"work_started": True, "delivered_milestones_amount": 667, "documented_effort_amount": 0},
     "approved", 322, 11, ["3", "2"], "custom_development#3"),
    ("custom 3 nothing left", "custom_development", {"amount": 500000, "fee": 0}, "not_satisfied", at(20),
     {"work_started": True, "delivered_milestones_amount": 400000, "documented_effort_amount": 100000},
     "denied", 0, 0, ["3"], "custom_development#3"),
    ("custom 4 effort unknown", "custom_development", {"amount": 500000, "fee": 0}, "not_satisfied", at(20),
     {"work_started": True, "delivered_milestones_amount": 200000}, "review", 0, 0, ["3"], "custom_development#4"),
    ("installation 1 not started", "installation", {"amount": 10000, "fee": 350}, "changed_mind", at(40), {},
     "approved", 9650, 350, ["3", "2"], "installation#1"),
    ("installation 2 started, incompatible", "installation", {"amount": 10000, "fee": 350}, "technical_issue",
     at(4), {"work_started": True, "incompatibility_confirmed": True}, "review", 0, 0, ["3"], "installation#2"),
    ("installation 3 started", "installation", {"amount": 10000, "fee": 350}, "not_satisfied", at(4),
     {"work_started": True}, "denied", 0, 0, ["3"], "installation#3"),
    ("support_sub 1 renewal", "support_subscription", {"purchase": "renewal", "billing": "monthly", "fee": 100},
     "not_satisfied", at(1), {}, "denied", 0, 0, ["3"], "support_subscription#1"),
    ("support_sub 2 request submitted", "support_subscription", {"billing": "monthly", "fee": 100},
     "not_satisfied", at(1), {"support_request_submitted": True}, "denied", 0, 0, ["3"], "support_subscription#2"),
    ("support_sub 3 exactly 30 days", "support_subscription", {"billing": "annual", "fee": 100},
     "not_satisfied", at(30), {}, "approved", 4800, 100, ["3", "2"], "support_subscription#3"),
    ("support_sub 4 one second past 30 days", "support_subscription", {"billing": "annual", "fee": 100},
     "not_satisfied", at(30, 1), {}, "denied", 0, 0, ["3"], "support_subscription#4"),
    ("support_task 1 started", "support_task", {"fee": 100}, "not_satisfied", at(1), {"work_started": True},
     "denied", 0, 0, ["3"], "support_task#1"),
    ("support_task 2 not started, any time", "support_task", {"fee": 100}, "changed_mind", at(100), {},
     "approved", 4800, 100, ["3", "2"], "support_task#2"),
    ("third_party 1 after 30 days", "third_party_item", {"amount": 10000, "fee": 300}, "not_satisfied", at(30, 1),
     {}, "denied", 0, 0, ["3"], "third_party_item#1"),
    ("third_party 2 not provisioned", "third_party_item", {"amount": 10000, "fee": 300}, "not_satisfied", at(30),
     {}, "approved", 9700, 300, ["3", "2"], "third_party_item#2"),
    ("third_party 3 cost known", "third_party_item", {"amount": 10000, "fee": 300}, "not_satisfied", at(3),
     {"provisioning_started": True, "third_party_cost_amount": 3000}, "approved", 6790, 210, ["3", "2"],
     "third_party_item#3"),
    ("third_party 3 cost eats it all", "third_party_item", {"amount": 10000, "fee": 300}, "not_satisfied", at(3),
     {"provisioning_started": True, "third_party_cost_amount": 10000}, "denied", 0, 0, ["3"], "third_party_item#3"),
    ("third_party 4 cost unknown", "third_party_item", {"amount": 10000, "fee": 300}, "not_satisfied", at(3),
     {"provisioning_started": True}, "review", 0, 0, ["3"], "third_party_item#4"),
    ("consulting 1 work started", "consulting", {"fee": 100}, "not_satisfied", at(1), {"work_started": True},
     "denied", 0, 0, ["3"], "consulting#1"),
    ("consulting 1 service provided", "consulting", {"fee": 100}, "not_satisfied", at(1), {"service_provided": True},
     "denied", 0, 0, ["3"], "consulting#1"),
    ("consulting 2 exactly 30 days", "consulting", {"fee": 100}, "not_satisfied", at(30), {},
     "approved", 4800, 100, ["3", "2"], "consulting#2"),
    ("consulting 3 one second past", "consulting", {"fee": 100}, "not_satisfied", at(30, 1), {},
     "denied", 0, 0, ["3"], "consulting#3"),
]


@pytest.mark.parametrize("case", SM, ids=[c[0] for c in SM])
def test_software_mor(case):
    _, category, kw, reason, when, facts, outcome, refund, fee, cites, rule = case
    d = decide("software-mor", [item(category, **kw)], reason, when, facts=facts)
    assert_decision(d, outcome, refund, fee, cites, rule)
    # every decision cites section 3 with the category's own row
    labels = {"saas_subscription": "Software subscriptions (SaaS)",
              "license": "Software licenses / one-time purchases",
              "store_addon": "Add-ons / integrations for online store platforms",
              "custom_development": "Custom development (services)",
              "installation": "Installation / setup services",
              "support_subscription": "Technical support (subscription)",
              "support_task": "Technical support (per task)",
              "third_party_item": "SSL certificates / third-party items",
              "consulting": "SEO / content analysis / consulting services"}
    assert labels[category] in rows(d)
    assert d["policy"] == {"id": "software-mor", "version": "2026-03-06",
                           "hash": REGISTRY.get("software-mor").hash}


def test_software_mor_example_1_full_object():
    d = decide("software-mor", [item("license", fee=172)], "not_satisfied", "2026-03-20T10:00:00Z")
    assert {k: d[k] for k in ("outcome", "refund_amount", "fee_deducted", "currency")} == {
        "outcome": "approved", "refund_amount": 4728, "fee_deducted": 172, "currency": "USD"}
    assert "3" in sections(d) and "2" in sections(d)
    [it] = d["items"]
    assert (it["item_id"], it["outcome"], it["refund_amount"], it["fee_deducted"]) == ("li_1", "approved", 4728, 172)
    assert [c["section"] for c in it["clauses"]] == ["3", "2"]
    assert it["clauses"][0]["row"] == "Software licenses / one-time purchases"
    assert "47.28 USD" in d["explanation"] and "1.72 USD" in d["explanation"]


def test_software_mor_missing_amount_review_names_it():
    d = decide("software-mor", [item("custom_development", amount=500000, fee=0)], "not_satisfied", at(20),
               facts={"work_started": True})
    assert d["outcome"] == "review" and d["refund_amount"] == 0
    assert d["missing"] == ["delivered_milestones_amount", "documented_effort_amount"]
    assert "milestones" in d["explanation"] and "documented effort" in d["explanation"]
    d = decide("software-mor", [item("third_party_item", amount=10000, fee=300)], "not_satisfied", at(3),
               facts={"provisioning_started": True})
    assert d["missing"] == ["third_party_cost_amount"] and "third-party cost" in d["explanation"]


def test_software_mor_fee_unknown_is_review_naming_the_fee():
    d = decide("software-mor", [item("license")], "not_satisfied", at(3))          # no "fee"
    assert_decision(d, "review", 0, 0, ["3", "2"], "license#2")
    assert d["missing"] == ["fee"] and "processing fee" in d["explanation"]
    # a denial does not need the fee
    d = decide("software-mor", [item("license")], "not_satisfied", at(40))
    assert_decision(d, "denied", 0, 0, ["3"], "license#3")


def test_software_mor_design_and_compliance_follow_custom_development():
    for category, label in (("design_service", "Design / UI / HTML services"),
                            ("compliance_service", "Compliance / validation services")):
        d = decide("software-mor", [item(category, amount=500000, fee=0)], "not_satisfied", at(20),
                   facts={"work_started": True, "delivered_milestones_amount": 200000,
                          "documented_effort_amount": 50000})
        assert_decision(d, "approved", 250000, 0, ["3"], "custom_development#3")
        assert rows(d) == {label, "Custom development (services)"}


def test_software_mor_zero_decimal_fee_deduction():
    d = decide("software-mor", [item("custom_development", amount=100000, fee=3600)], "not_satisfied",
               at(10), currency="JPY",
               facts={"work_started": True, "delivered_milestones_amount": 33333, "documented_effort_amount": 0})
    # base 66667; fee ceil(3600 * 66667 / 100000) = ceil(2400.012) = 2401
    assert_decision(d, "approved", 64266, 2401, ["3", "2"])
    assert "64266 JPY" in d["explanation"] and "2401 JPY" in d["explanation"]
    d = decide("software-mor", [item("license", amount=4900, fee=173)], "not_satisfied", at(1), currency="JPY")
    assert_decision(d, "approved", 4727, 173)


def test_software_mor_duplicate_charge_full_without_fee():
    d = decide("software-mor", [item("saas_subscription", purchase="renewal", fee=172, duplicate_charge=True)],
               "duplicate_charge", at(25))
    assert_decision(d, "approved", 4900, 0, ["1", "3"], "duplicate_charge")
    assert "Software subscriptions (SaaS)" in rows(d)
    # the reason alone, without the payment flag, follows the category's rows
    d = decide("software-mor", [item("saas_subscription", purchase="renewal", fee=172)], "duplicate_charge", at(25))
    assert_decision(d, "denied", 0, 0, ["3"], "saas_subscription#1")


def test_already_refunded_items():
    d = decide("software-mor", [item("license", fee=172, already_refunded=4900)], "not_satisfied", at(2))
    assert_decision(d, "denied", 0, 0, [], "already_refunded")
    # a partial earlier refund: the rest, fee in proportion
    d = decide("software-mor", [item("license", fee=172, already_refunded=1000)], "not_satisfied", at(2))
    assert_decision(d, "approved", 3900 - 137, 137)                  # ceil(172 * 3900 / 4900) = 137
    d = decide("micromastery", [item("training", already_refunded=900)], "charged_by_mistake", at(2))
    assert_decision(d, "approved", 4000, 0)


def test_several_items_not_a_bundle():
    items = [item("license", fee=172, item_id="li_1"), item("installation", amount=10000, fee=350, item_id="li_2")]
    d = decide("software-mor", items, "not_satisfied", at(3), item_facts={"li_2": {"work_started": True}})
    assert d["outcome"] == "approved" and d["refund_amount"] == 4728 and d["fee_deducted"] == 172
    assert [(i["item_id"], i["outcome"]) for i in d["items"]] == [("li_1", "approved"), ("li_2", "denied")]
    assert "li_2 cannot be refunded" in d["explanation"]
    d = decide("software-mor", items, "not_satisfied", at(3), request_items=["li_2"])
    assert [i["item_id"] for i in d["items"]] == ["li_2"] and d["outcome"] == "approved"


def test_stored_facts_merge_under_request_facts():
    items = [item("license", fee=172, facts={"materially_used": True})]
    d = decide("software-mor", items, "not_satisfied", at(3))
    assert d["outcome"] == "denied"
    d = decide("software-mor", items, "not_satisfied", at(3), item_facts={"li_1": {"materially_used": False}})
    assert d["outcome"] == "approved"


# -- bundles (software-mor) ------------------------------------------------------------------

def bundle_items(installation_facts: dict | None = None) -> list[dict]:
    return [item("license", fee=172, item_id="li_1"),
            item("installation", amount=10000, fee=350, item_id="li_2", facts=installation_facts or {})]


def test_bundle_example_7_whole_order_blocked_by_the_installation():
    d = decide("software-mor", bundle_items({"work_started": True}), "not_satisfied", at(3), bundle=True)
    assert_decision(d, "denied", 0, 0)
    assert "Installation / setup services" in rows(d)
    assert "Discount bundles / multi-item offers" in rows(d)
    assert all(i["outcome"] == "denied" and i["refund_amount"] == 0 for i in d["items"])
    assert all(i["blocked_by"] == ["li_2"] for i in d["items"])
    assert "li_2" in d["explanation"] and "only in full" in d["explanation"]


def test_bundle_partial_request_is_denied():
    d = decide("software-mor", bundle_items(), "not_satisfied", at(3), bundle=True, request_items=["li_1"])
    assert_decision(d, "denied", 0, 0, ["3"], "bundle")
    assert rows(d) == {"Discount bundles / multi-item offers"}
    assert "only in full" in d["explanation"]


def test_bundle_whole_order_all_approved():
    d = decide("software-mor", bundle_items(), "not_satisfied", at(3), bundle=True)
    assert_decision(d, "approved", 4728 + 9650, 172 + 350)
    d = decide("software-mor", bundle_items(), "not_satisfied", at(3), bundle=True, request_items=["li_2", "li_1"])
    assert d["outcome"] == "approved" and d["refund_amount"] == 4728 + 9650


def test_bundle_whole_order_with_a_review_item_is_review():
    d = decide("software-mor", bundle_items({"work_started": True, "incompatibility_confirmed": True}),
               "not_satisfied", at(3), bundle=True)
    assert d["outcome"] == "review" and d["refund_amount"] == 0
    assert all(i["outcome"] == "review" for i in d["items"])


def test_bundle_whole_order_with_a_partial_amount_is_denied():
    items = [item("license", fee=0, item_id="li_1"),
             item("custom_development", amount=50000, fee=0, item_id="li_2",
                  facts={"work_started": True, "delivered_milestones_amount": 10000, "documented_effort_amount": 0})]
    d = decide("software-mor", items, "not_satisfied", at(3), bundle=True)
    assert d["outcome"] == "denied" and "Custom development (services)" in rows(d)


def test_bundle_flag_is_ignored_by_policies_without_a_bundle_rule():
    items = [item("training", item_id="a"), item("training", item_id="b")]
    d = decide("micromastery", items, "charged_by_mistake", at(3), bundle=True, request_items=["a"])
    assert_decision(d, "approved", 4900, 0, ["1"])


# -- statutory overlay -----------------------------------------------------------------------

def test_overlay_de_consumer_denied_on_day_10_becomes_review():
    d = decide("software-mor", [item("license", fee=172)], "not_satisfied", at(10), country="DE",
               facts={"materially_used": True})
    assert d["outcome"] == "review" and d["refund_amount"] == 0
    assert rows(d) >= {"Statutory rights", "Software licenses / one-time purchases"}
    assert d["items"][0]["statutory_overlay"] is True and d["items"][0]["rule"] == "license#1"


@pytest.mark.parametrize("country,business,when,outcome", [
    ("DE", True, at(10), "denied"),       # a business: no consumer rights
    ("DE", False, at(15), "denied"),      # past 14 days
    ("US", False, at(10), "denied"),      # not EU/EEA/UK
    (None, False, at(10), "denied"),      # country unknown
    ("GB", False, at(14), "review"),      # UK, exactly 14 days
    ("no", False, at(14, 1), "denied"),   # Norway (EEA), one second past 14 days
    ("no", False, at(2), "review"),
])
def test_overlay_edges(country, business, when, outcome):
    d = decide("software-mor", [item("license", fee=172)], "not_satisfied", when, country=country,
               business=business, facts={"materially_used": True})
    assert d["outcome"] == outcome


def test_overlay_does_not_touch_approvals_and_applies_to_bundles():
    d = decide("software-mor", [item("license", fee=172)], "not_satisfied", at(3), country="DE")
    assert_decision(d, "approved", 4728, 172)
    d = decide("software-mor", bundle_items(), "not_satisfied", at(3), bundle=True, country="FR",
               request_items=["li_1"])
    assert d["outcome"] == "review"


def test_bundle_items_already_refunded_are_settled_not_blocking():
    items = [item("license", fee=172, item_id="li_1", already_refunded=4900),
             item("installation", amount=10000, fee=350, item_id="li_2")]
    d = decide("software-mor", items, "not_satisfied", at(3), bundle=True)
    assert_decision(d, "approved", 9650, 350)
    assert [i["rule"] for i in d["items"]] == ["already_refunded", "installation#1"]
    d = decide("software-mor", items, "not_satisfied", at(3), bundle=True, country="DE", request_items=["li_1"])
    assert_decision(d, "denied", 0, 0, [], "already_refunded")     # nothing left: no overlay review
