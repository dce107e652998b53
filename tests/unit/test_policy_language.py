"""The policy language for new merchants (issue 14): declared facts and reasons, percentage
and tiered amounts, calendar windows (months, business days, month ends), the clock of a
window, explanations that stay one sentence, versions.lock, cases and explain."""
from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bridge.policy import PolicyFileError, PolicyInputError, PolicyRegistry, parse_policy
from bridge.policy.commands import check, explain, lock, test as run_tests
from bridge.policy.windows import add_business_days, add_months, month_end

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
PAID = "2026-01-31T09:00:00Z"

HEAD = '''
id = "lang"
version = "1"
effective_date = 2026-01-01
[sections.1]
title = "Refunds"
text = "The terms."
[sections.2]
title = "Exceptions"
text = "No refund."
[facts.deactivated]
type = "bool"
label = "the software was deactivated and uninstalled"
[facts.abuse_suspended]
type = "bool"
label = "the account was suspended for abuse"
[facts.delivered_at]
type = "time"
label = "when the product was delivered"
[facts.seats_used_amount]
type = "money"
label = "the value of the seats already used"
[reasons.not_as_described]
label = "the product is not as described"
'''


def policy(rows: str, extra: str = "", name: str = "lang.toml"):
    return parse_policy((HEAD + extra + "\n[categories.app]\ncite = [\"1\"]\n" + rows).encode(), name)


def decide(p, reason="not_satisfied", at="2026-02-01T09:00:00Z", facts=None, **item) -> dict:
    it = {"item_id": "li_1", "category": "app", "amount": 10000, "paid_at": PAID, **item}
    body = {"order": {"currency": "USD", "items": [it]},
            "request": {"reason": reason, "requested_at": at, "facts": facts or {}}}
    registry = PolicyRegistry([p])
    d = registry.evaluate(p.id, body, NOW).to_dict()
    assert d["explanation"].endswith(".") and ". " not in d["explanation"], d["explanation"]
    return d


# -- calendar arithmetic --------------------------------------------------------------------

def test_months_clamp_to_the_end_of_the_month():
    t = datetime(2026, 1, 31, 9, tzinfo=timezone.utc)
    assert add_months(t, 1) == datetime(2026, 2, 28, 9, tzinfo=timezone.utc)
    assert add_months(datetime(2028, 1, 31, 9, tzinfo=timezone.utc), 1).day == 29      # leap year
    assert add_months(t, 3) == datetime(2026, 4, 30, 9, tzinfo=timezone.utc)
    assert add_months(t, 12) == datetime(2027, 1, 31, 9, tzinfo=timezone.utc)
    assert add_months(datetime(2026, 11, 15, tzinfo=timezone.utc), 3) == datetime(2027, 2, 15, tzinfo=timezone.utc)


def test_business_days_skip_weekends():
    friday = datetime(2026, 3, 6, 10, tzinfo=timezone.utc)
    assert friday.weekday() == 4
    assert add_business_days(friday, 1) == datetime(2026, 3, 9, 10, tzinfo=timezone.utc)       # Monday
    assert add_business_days(friday, 5) == datetime(2026, 3, 13, 10, tzinfo=timezone.utc)      # next Friday
    saturday = datetime(2026, 3, 7, 10, tzinfo=timezone.utc)
    assert add_business_days(saturday, 1) == datetime(2026, 3, 9, 10, tzinfo=timezone.utc)
    assert add_business_days(friday, 0) == friday


def test_month_end_is_the_last_instant_of_the_month():
    t = datetime(2026, 2, 10, 12, tzinfo=timezone.utc)
    assert month_end(t) == datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=timezone.utc)
    assert month_end(t, 1) == datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)
    assert month_end(datetime(2026, 12, 5, tzinfo=timezone.utc)).month == 12


# -- windows in rows ------------------------------------------------------------------------

MONTHS = '''
[[categories.app.rows]]
when = { within_months = 1 }
outcome = "approved"
amount = "full"
because = "you asked within a month of your purchase"
[[categories.app.rows]]
outcome = "denied"
cite = ["2"]
because = "the month to ask for a refund has passed"
'''


@pytest.mark.parametrize("at,outcome", [
    ("2026-02-28T09:00:00Z", "approved"),          # 31 Jan + 1 month = 28 Feb, inclusive
    ("2026-02-28T09:00:01Z", "denied"),
])
def test_within_months_clamped(at, outcome):
    d = decide(policy(MONTHS), at=at)
    assert d["outcome"] == outcome
    assert d["deadline"] == ("2026-02-28T09:00:00Z" if outcome == "approved" else None)


BUSINESS = '''
[[categories.app.rows]]
when = { within_business_days = 5 }
outcome = "approved"
amount = "full"
because = "you asked within 5 business days of the payment"
[[categories.app.rows]]
outcome = "denied"
cite = ["2"]
'''


def test_within_business_days():
    p = policy(BUSINESS)
    paid = "2026-03-06T10:00:00Z"                   # a Friday: 5 business days = next Friday 10:00
    assert decide(p, at="2026-03-13T10:00:00Z", paid_at=paid)["outcome"] == "approved"
    d = decide(p, at="2026-03-13T10:00:01Z", paid_at=paid)
    assert d["outcome"] == "denied"
    assert decide(p, at="2026-03-10T10:00:00Z", paid_at=paid)["deadline"] == "2026-03-13T10:00:00Z"


MONTH_END = '''
[[categories.app.rows]]
when = { within_month_end = 0 }
outcome = "approved"
amount = "full"
because = "you asked before the end of the month of your purchase"
[[categories.app.rows]]
outcome = "denied"
cite = ["2"]
'''


def test_before_the_end_of_the_month():
    p = policy(MONTH_END)
    d = decide(p, at="2026-01-31T23:59:59Z")
    assert d["outcome"] == "approved" and d["deadline"] == "2026-01-31T23:59:59.999999Z"
    assert decide(p, at="2026-02-01T00:00:00Z")["outcome"] == "denied"


def test_the_clock_of_a_window_period_start_and_a_time_fact():
    p = policy('''
[[categories.app.rows]]
when = { within_days = 14, clock = "period_start", billing = ["annual"] }
outcome = "approved"
amount = "full"
because = "you asked within 14 days of the start of the billing period"
[[categories.app.rows]]
when = { unknown = ["delivered_at"] }
outcome = "review"
because = "we need to know when the product was delivered"
[[categories.app.rows]]
when = { within_days = 7, clock = "delivered_at" }
outcome = "approved"
amount = "full"
because = "you asked within 7 days of delivery"
[[categories.app.rows]]
outcome = "denied"
cite = ["2"]
''')
    # period start 10 days before the renewal payment was recorded
    annual = {"billing": "annual", "period_start": "2026-01-25T09:00:00Z"}
    assert decide(p, at="2026-02-08T09:00:00Z", **annual)["outcome"] == "approved"
    d = decide(p, at="2026-02-08T09:00:01Z", **annual)
    assert d["outcome"] == "review" and d["missing"] == ["delivered_at"]
    assert "when the product was delivered" in d["explanation"]
    d = decide(p, at="2026-02-20T09:00:00Z", facts={"delivered_at": "2026-02-14T09:00:00Z"})
    assert d["outcome"] == "approved" and d["deadline"] == "2026-02-21T09:00:00Z"
    assert decide(p, at="2026-02-22T09:00:00Z", facts={"delivered_at": "2026-02-14T09:00:00Z"})["outcome"] == "denied"


def test_measured_at_a_declared_time_fact_not_given_does_not_hold():
    p = policy('''
[[categories.app.rows]]
when = { within_business_days = 7, measured_at = "delivered_at" }
outcome = "approved"
amount = "full"
because = "the written notice came within 7 business days"
[[categories.app.rows]]
outcome = "denied"
cite = ["2"]
''')
    assert decide(p, at="2026-03-20T09:00:00Z", facts={"delivered_at": "2026-02-05T09:00:00Z"})["outcome"] == "approved"
    assert decide(p, at="2026-03-20T09:00:00Z")["outcome"] == "denied"


# -- declared facts and reasons -------------------------------------------------------------

FACTS = '''
[[categories.app.rows]]
when = { facts = { abuse_suspended = true } }
outcome = "denied"
cite = ["2"]
because = "accounts suspended for abuse are not refunded"
[[categories.app.rows]]
when = { reason = ["not_as_described"] }
outcome = "approved"
amount = "full"
because = "the product was not as described"
[[categories.app.rows]]
when = { facts = { deactivated = false } }
outcome = "review"
because = "the software must be deactivated and uninstalled before a refund"
[[categories.app.rows]]
when = { known = ["seats_used_amount"] }
outcome = "approved"
amount = "amount_minus"
minus = ["seats_used_amount"]
because = "the refund is the price less the seats already used"
[[categories.app.rows]]
outcome = "review"
'''


def test_declared_facts_and_reasons_decide():
    p = policy(FACTS)
    assert p.fact_types["deactivated"] == "bool" and p.fact_types["delivered_at"] == "time"
    assert p.fact_types["used"] == "bool"                         # the standard facts stay
    assert "not_as_described" in p.reasons and "changed_mind" in p.reasons
    assert decide(p, "not_as_described", facts={"abuse_suspended": True})["outcome"] == "denied"
    assert decide(p, "not_as_described")["outcome"] == "approved"
    assert decide(p)["outcome"] == "review"
    d = decide(p, facts={"deactivated": True, "seats_used_amount": 2500})
    assert (d["outcome"], d["refund_amount"]) == ("approved", 7500)
    assert decide(p, facts={"deactivated": True})["outcome"] == "review"


def test_declared_facts_are_validated_by_type_and_other_policies_do_not_know_them():
    p = policy(FACTS)
    with pytest.raises(PolicyInputError) as err:
        decide(p, facts={"deactivated": "yes"})
    assert err.value.field == "request.facts.deactivated"
    with pytest.raises(PolicyInputError) as err:
        decide(p, facts={"seats_used_amount": -1})
    assert err.value.field == "request.facts.seats_used_amount"
    with pytest.raises(PolicyInputError) as err:
        decide(p, facts={"deactivatd": True})
    assert err.value.field == "request.facts.deactivatd" and "unknown fact" in err.value.message
    with pytest.raises(PolicyInputError) as err:
        decide(p, "fraud")
    assert err.value.field == "request.reason"
    shipped = PolicyRegistry.load(ROOT / "config" / "policies")
    assert "deactivated" not in shipped.fact_types("software-mor")
    assert shipped.fact_types("software-mor")["work_started"] == "bool"
    assert "not_as_described" not in shipped.reasons("software-mor")


@pytest.mark.parametrize("extra,rows,key,problem", [
    ('[facts.used]\ntype = "bool"\nlabel = "x"', "", "facts.used", "standard fact"),
    ('[facts.fee]\ntype = "money"\nlabel = "x"', "", "facts.fee", "payment data"),
    ('[facts.seats]\ntype = "integer"\nlabel = "x"', "", "facts.seats.type", "not one of"),
    ('[facts.seats]\ntype = "bool"', "", "facts.seats.label", "missing required key"),
    ('[facts.Seats]\ntype = "bool"\nlabel = "x"', "", "facts.Seats", "lower-case"),
    ('[reasons.other]\nlabel = "x"', "", "reasons.other", "standard reason"),
    ("", '[[categories.app.rows]]\nwhen = { facts = { delivered_at = true } }\noutcome = "denied"',
     "categories.app.rows[0].when.facts.delivered_at", "time fact"),
    ("", '[[categories.app.rows]]\nwhen = { within_days = 3, clock = "shipped_at" }\noutcome = "denied"',
     "categories.app.rows[0].when.clock", "not one of"),
    ("", '[[categories.app.rows]]\nwhen = { clock = "delivered_at" }\noutcome = "denied"',
     "categories.app.rows[0].when.clock", "only applies with"),
    ("", '[[categories.app.rows]]\nwhen = { within_days = 3, within_months = 1 }\noutcome = "denied"',
     "categories.app.rows[0].when.within_months", "one within_* window"),
    ("", '[[categories.app.rows]]\nwhen = { within_business_days = -1 }\noutcome = "denied"',
     "categories.app.rows[0].when.within_business_days", "negative"),
    ("", '[[categories.app.rows]]\noutcome = "approved"\namount = "percent"',
     "categories.app.rows[0].percent", "needs percent"),
    ("", '[[categories.app.rows]]\noutcome = "approved"\namount = "percent"\npercent = 150',
     "categories.app.rows[0].percent", "at most 100"),
    ("", '[[categories.app.rows]]\noutcome = "approved"\namount = "percent"\npercent = "half"',
     "categories.app.rows[0].percent", "expected a number"),
    ("", '[[categories.app.rows]]\noutcome = "approved"\namount = "full"\npercent = 50',
     "categories.app.rows[0].percent", "only an amount"),
    ("", '[[categories.app.rows]]\noutcome = "approved"\namount = "tiered"',
     "categories.app.rows[0].tiers", "needs tiers"),
    ("", '[[categories.app.rows]]\noutcome = "approved"\namount = "tiered"\ntiers = [{ percent = 50 }]',
     "categories.app.rows[0].tiers[0].within_days", "exactly one within_*"),
    ("", '[[categories.app.rows]]\noutcome = "approved"\namount = "tiered"\ntiers = [{ within_days = 3 }]',
     "categories.app.rows[0].tiers[0].percent", "missing required key"),
    ("", '[[categories.app.rows]]\noutcome = "approved"\namount = "tiered"\ntiers = [{ within_days = 3, percent = 5, pct = 1 }]',
     "categories.app.rows[0].tiers[0].pct", "unknown key"),
])
def test_new_keys_are_validated(extra, rows, key, problem):
    with pytest.raises(PolicyFileError) as err:
        policy(rows or MONTHS, extra)
    assert err.value.key == key and problem in err.value.problem, str(err.value)


# -- percentages and tiers ------------------------------------------------------------------

def test_percent_rounds_down_and_caps_at_what_remains():
    p = policy('''
[[categories.app.rows]]
when = { within_days = 60 }
outcome = "approved"
amount = "percent"
percent = 50
because = "half of the price comes back within 60 days"
[[categories.app.rows]]
outcome = "denied"
cite = ["2"]
''')
    d = decide(p, amount=9999)
    assert (d["outcome"], d["refund_amount"]) == ("approved", 4999)           # floor(4999.5)
    assert d["deadline"] == "2026-04-01T09:00:00Z"
    assert decide(p, amount=10000, already_refunded=6000)["refund_amount"] == 4000
    p = policy(MONTHS.replace('amount = "full"', 'amount = "percent"\npercent = 12.5'))
    assert decide(p, amount=999)["refund_amount"] == 124                      # floor(124.875)


TIERS = '''
[[categories.app.rows]]
when = { facts = { deactivated = false } }
outcome = "denied"
cite = ["2"]
because = "the software must be deactivated and uninstalled first"
[[categories.app.rows]]
outcome = "approved"
amount = "tiered"
tiers = [
  { within_months = 3, percent = 75, because = "you asked within the first quarter, which returns 75% of the price" },
  { within_months = 6, percent = 50 },
  { within_months = 9, percent = 25 },
]
because = "refunds are on a sliding scale in the first nine months"
[[categories.app.rows]]
outcome = "denied"
cite = ["2"]
because = "no refund is available after nine months"
'''


@pytest.mark.parametrize("at,refund,deadline,rule", [
    ("2026-02-15T00:00:00Z", 7500, "2026-04-30T09:00:00Z", "app#2"),   # 31 Jan + 3 months = 30 Apr
    ("2026-04-30T09:00:00Z", 7500, "2026-04-30T09:00:00Z", "app#2"),
    ("2026-04-30T09:00:01Z", 5000, "2026-07-31T09:00:00Z", "app#2"),
    ("2026-10-31T09:00:00Z", 2500, "2026-10-31T09:00:00Z", "app#2"),
    ("2026-10-31T09:00:01Z", 0, None, "app#3"),
])
def test_tiers_by_elapsed_months(at, refund, deadline, rule):
    d = decide(policy(TIERS), at=at, facts={"deactivated": True}, amount=10000)
    assert d["refund_amount"] == refund and d["deadline"] == deadline
    assert d["items"][0]["rule"] == rule


def test_tier_explanations_are_one_sentence_in_the_merchants_words():
    p = policy(TIERS)
    first = decide(p, at="2026-02-15T00:00:00Z", facts={"deactivated": True})["explanation"]
    assert first == ("We will refund 75.00 USD because you asked within the first quarter, which "
                     "returns 75% of the price.")
    second = decide(p, at="2026-06-01T00:00:00Z", facts={"deactivated": True})["explanation"]
    assert second == ("We will refund 50.00 USD because refunds are on a sliding scale in the first "
                      "nine months, and 50% of the price is refunded within 6 months of the payment.")
    assert decide(p, facts={"deactivated": False})["explanation"].startswith("We cannot refund")


# -- explain, cases, versions ---------------------------------------------------------------

def _dir(tmp_path: Path, text: str, name: str = "lang") -> Path:
    d = tmp_path / "policies"
    d.mkdir(exist_ok=True)
    (d / f"{name}.toml").write_text(text)
    return d


CASES = '''
now = 2030-01-01T00:00:00Z
[defaults]
order = { currency = "USD" }
[[case]]
name = "first quarter"
order = { items = [{ item_id = "li_1", category = "app", amount = 10000, paid_at = 2026-01-31T09:00:00Z }] }
request = { reason = "not_satisfied", requested_at = 2026-02-15T00:00:00Z, facts = { deactivated = true } }
[case.expect]
outcome = "approved"
refund_amount = 7500
cites = ["1"]
rule = "app#2"
deadline = 2026-04-30T09:00:00Z
'''


def test_cases_run_by_test_and_check_and_a_failing_case_fails_both(tmp_path):
    d = _dir(tmp_path, HEAD + "\n[categories.app]\ncite = [\"1\"]\n" + TIERS)
    (d / "lang.cases.toml").write_text(CASES)
    code, lines = run_tests(None, d)
    assert code == 0 and lines[0].split() == ["policy", "case", "expected", "got", "result"]
    assert any("first quarter" in line and line.endswith("ok") for line in lines)
    assert lines[-1] == "1 of 1 cases pass"
    code, lines = check(None, d)
    assert code == 0 and lines[-1].endswith("1 cases pass")
    (d / "lang.cases.toml").write_text(CASES.replace("refund_amount = 7500", "refund_amount = 7600"))
    code, lines = run_tests(["lang"], d)
    assert code == 1 and "FAIL: refund_amount 7500, expected 7600" in "\n".join(lines)
    code, lines = check(None, d)
    assert code == 1 and "case[0] 'first quarter': refund_amount 7500, expected 7600" in lines[-1]
    (d / "lang.cases.toml").write_text(CASES.replace("[case.expect]", "[case.expect]\nrefund = 1"))
    code, lines = check(None, d)
    assert code == 1 and "case[0].expect.refund: unknown key" in lines[-1]


def test_a_file_changed_under_a_locked_version_is_refused(tmp_path):
    text = HEAD + "\n[categories.app]\ncite = [\"1\"]\n" + TIERS
    d = _dir(tmp_path, text)
    code, lines = check(None, d)
    assert code == 0                                        # no lock file: not checked
    assert lock(d) == (0, ["recorded: lang@1"])
    assert check(None, d)[0] == 0 and PolicyRegistry.load(d).get("lang")
    (d / "lang.toml").write_text(text.replace("percent = 75", "percent = 80"))
    code, lines = check(None, d)
    assert code == 1 and "changed since version '1' was recorded" in "\n".join(lines)
    with pytest.raises(PolicyFileError) as err:
        PolicyRegistry.load(d)
    assert err.value.key == "version" and "lang.toml" in err.value.path
    assert lock(d)[0] == 1                                  # lock refuses to paper over it
    # a new version is loaded, reported by check until recorded, and the old entry is kept
    (d / "lang.toml").write_text(text.replace("percent = 75", "percent = 80").replace('version = "1"', 'version = "2"'))
    assert PolicyRegistry.load(d).get("lang").version == "2"
    code, lines = check(None, d)
    assert code == 1 and "version '2' is not recorded" in "\n".join(lines)
    assert lock(d) == (0, ["recorded: lang@2"])
    assert check(None, d)[0] == 0
    (d / "lang.toml").write_text(text.replace("percent = 75", "percent = 70"))   # back to "1", other text
    with pytest.raises(PolicyFileError):
        PolicyRegistry.load(d)


def test_shipped_policies_match_their_lock():
    code, lines = check(None, ROOT / "config" / "policies")
    assert code == 0, lines


def test_explain_reads_every_construct(tmp_path):
    d = _dir(tmp_path, HEAD + "\n[categories.app]\ncite = [\"1\"]\n" + TIERS)
    code, lines = explain("lang", d)
    text = "\n".join(lines)
    assert code == 0
    assert "Facts this policy declares: deactivated (bool): the software was deactivated and uninstalled" in text
    assert "Reasons this policy declares: not_as_described: the product is not as described" in text
    assert "1. [app#1] If the software was deactivated and uninstalled: no -> denied; cites 2 (Exceptions), 1 (Refunds)." in text
    assert ("2. [app#2] If the request falls in one of the tiers below -> approved, 75% of the price within 3 months of the payment; 50% of "
            "the price within 6 months of the payment; 25% of the price within 9 months of the payment") in text
    code, lines = explain("software-mor", ROOT / "config" / "policies")
    text = "\n".join(lines)
    assert "[license#2] If the request is within 30 days of the payment -> approved, the full amount; cites 3 (Software licenses / one-time purchases)." in text
    assert "when the buyer first reported the problem is within 7 days of the payment" in "\n".join(
        explain("micromastery", ROOT / "config" / "policies")[1])
    assert explain("nope", ROOT / "config" / "policies")[0] == 1


def test_a_copy_of_the_shipped_directory_keeps_passing(tmp_path):
    d = tmp_path / "p"
    shutil.copytree(ROOT / "config" / "policies", d)
    assert check(None, d)[0] == 0 and run_tests(None, d)[0] == 0


def test_month_end_tiers_explain_in_one_sentence(tmp_path):
    p = policy('''
[[categories.app.rows]]
outcome = "approved"
amount = "tiered"
tiers = [{ within_month_end = 0, percent = 100 }, { within_month_end = 1, percent = 50 }]
because = "refunds depend on the month you ask in"
[[categories.app.rows]]
outcome = "denied"
cite = ["2"]
''')
    d = decide(p, at="2026-02-27T00:00:00Z", paid_at="2026-01-10T09:00:00Z")
    assert d["refund_amount"] == 5000 and d["deadline"] == "2026-02-28T23:59:59.999999Z"
    assert d["explanation"] == ("We will refund 50.00 USD because refunds depend on the month you ask in, and "
                                "50% of the price is refunded by the end of the month after the payment.")
    d = _dir(tmp_path, HEAD + "\n[categories.app]\ncite = [\"1\"]\n" + '''
[[categories.app.rows]]
when = { after_month_end = 0 }
outcome = "denied"
cite = ["2"]
[[categories.app.rows]]
outcome = "approved"
amount = "full"
''')
    text = "\n".join(explain("lang", d)[1])
    assert "If the request does not come by the end of the month of the payment -> denied" in text
