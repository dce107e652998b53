"""Policy files: the shipped ones pass `check`; broken ones fail naming file, key and problem;
a fourth merchant is a fourth file; the CLI functions and the registry."""
from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bridge.policy import PolicyFileError, PolicyInputError, PolicyRegistry, load_policy
from bridge.policy.commands import check, evaluate_file

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "config" / "policies"
SHIPPED = ["hotlunch", "micromastery", "mittrik", "nextos", "software-mor"]
NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)

MINIMAL = '''
id = "acme"
version = "2026-01-01"
effective_date = 2026-01-01

[sections.1]
title = "Refunds"
text = "Unused seats are refunded within 10 days."

[sections.2]
title = "Exceptions"
text = "Nothing else is refunded."

[categories.seat]
billing = ["monthly"]

[[categories.seat.rows]]
when = { facts = { used = false }, within_days = 10 }
outcome = "approved"
amount = "full"
cite = ["1"]
because = "unused seats are refunded within 10 days"

[[categories.seat.rows]]
outcome = "denied"
cite = ["2"]
'''


def test_every_shipped_policy_passes_check():
    code, lines = check(None, POLICIES)
    assert code == 0, lines
    assert all(line.startswith("ok: ") for line in lines)
    # one line per policy file and one per cases file beside it (every shipped policy has one)
    assert len(lines) == 2 * len(SHIPPED) and sum("cases pass" in line for line in lines) == len(SHIPPED)
    for name in SHIPPED:
        code, lines = check([str(POLICIES / f"{name}.toml")], POLICIES)
        assert code == 0 and name in lines[0]


def test_registry_lists_the_policies():
    registry = PolicyRegistry.load(POLICIES)
    assert registry.ids() == SHIPPED and len(registry) == 5 and "mittrik" in registry
    listed = {p["id"]: p for p in registry.list()}
    assert listed["mittrik"]["version"] == "2025-04-10"
    assert listed["mittrik"]["categories"] == ["addon", "plan"]
    assert listed["micromastery"]["version"] == "2025-07-26"
    assert "license" in listed["software-mor"]["categories"] and len(listed["software-mor"]["categories"]) == 11


def test_hash_is_the_sha256_of_the_file_bytes():
    for name in SHIPPED:
        path = POLICIES / f"{name}.toml"
        assert load_policy(path).hash == hashlib.sha256(path.read_bytes()).hexdigest()


def test_chargeback_license_and_overlay_settings():
    mor, mittrik, micro = (load_policy(POLICIES / f"{n}.toml") for n in ("software-mor", "mittrik", "micromastery"))
    assert (mor.chargeback.while_open, mor.chargeback.when_lost, mor.chargeback.scope) == ("restrict_account", "revoke", "account")
    assert (mittrik.chargeback.while_open, mittrik.chargeback.when_lost) == ("restrict_account", "revoke_account")
    assert [c.section for c in mittrik.chargeback.cite] == ["6"]
    assert (micro.chargeback.while_open, micro.chargeback.scope) == ("suspend_order", "order")
    assert all(p.refund.license_action == "revoke" for p in (mor, mittrik, micro))
    assert [c.section for c in mor.refund.cite] == ["7"]
    assert mittrik.refund.confirm_within_business_days == 7
    assert mor.overlay.enabled and not mittrik.overlay.enabled and not micro.overlay.enabled
    assert {"DE", "FR", "NO", "IS", "LI", "GB"} <= mor.overlay.countries and "US" not in mor.overlay.countries
    assert mor.fees.deducts and not mittrik.fees.deducts and not micro.fees.deducts
    assert mor.bundle is not None and mittrik.bundle is None and micro.bundle is None


def test_clause_texts_quote_the_seeds():
    # The merchants' published policies (copies of ../shared/seeds, kept in the repository so
    # that any checkout runs this): a missing copy fails here, never skips.
    seeds = ROOT / "tests" / "fixtures" / "seeds"
    assert seeds.is_dir(), f"seed documents not found at {seeds}"
    texts = {p.name[:3]: " ".join(p.read_text(encoding="utf-8").split()) for p in seeds.iterdir()}
    for name, seed in (("micromastery", "000"), ("software-mor", "002")):
        policy = load_policy(POLICIES / f"{name}.toml")
        for number, section in policy.sections.items():
            if number.isdigit():
                assert " ".join(section.text.split()) in texts[seed], (name, number)
                for row in section.rows.values():
                    assert " ".join(row.text.split()) in texts[seed], (name, number, row.key)


# -- broken files ----------------------------------------------------------------------------

BROKEN = [
    # id, (old, new) replacement in MINIMAL (or an append), expected key, words in the problem
    ("unknown top-level key", ("id = \"acme\"", "id = \"acme\"\ncolour = \"red\""), "colour", "unknown key"),
    ("unknown key in a row", ("because = \"unused seats", "becuase = \"x\"\nbecause = \"unused seats"),
     "categories.seat.rows[0].becuase", "unknown key"),
    ("unknown condition", ("within_days = 10 }", "within_days = 10, weekday = 1 }"),
     "categories.seat.rows[0].when.weekday", "unknown key"),
    ("bad outcome", ("outcome = \"denied\"", "outcome = \"rejected\""), "categories.seat.rows[1].outcome",
     "'rejected' is not one of approved, denied, review"),
    ("approved without an amount", ("amount = \"full\"\n", ""), "categories.seat.rows[0].amount", "needs an amount"),
    ("unknown category in a row", ("within_days = 10 }", "within_days = 10, category = [\"sofa\"] }"),
     "categories.seat.rows[0].when.category[0]", "unknown category 'sofa'"),
    ("missing section text", ("text = \"Nothing else is refunded.\"\n", ""), "sections.2.text", "missing required key"),
    ("empty section text", ("text = \"Nothing else is refunded.\"", "text = \"  \""), "sections.2.text", "must not be empty"),
    ("wrong type: string days", ("within_days = 10", "within_days = \"10\""),
     "categories.seat.rows[0].when.within_days", "expected an integer, got a string"),
    ("wrong type: reason not an array", ("when = { facts", "when = { reason = \"changed_mind\", facts"),
     "categories.seat.rows[0].when.reason", "expected an array"),
    ("unknown reason", ("when = { facts", "when = { reason = [\"bored\"], facts"),
     "categories.seat.rows[0].when.reason[0]", "unknown reason 'bored'"),
    ("unknown fact", ("used = false", "usd = false"), "categories.seat.rows[0].when.facts.usd", "unknown fact"),
    ("money fact as boolean", ("used = false", "third_party_cost_amount = false"),
     "categories.seat.rows[0].when.facts.third_party_cost_amount", "money fact"),
    ("cite of an undefined section", ("cite = [\"2\"]", "cite = [\"9\"]"), "categories.seat.rows[1].cite[0]",
     "section '9'"),
    ("bad billing", ("billing = [\"monthly\"]", "billing = [\"weekly\"]"), "categories.seat.billing[0]",
     "unknown billing 'weekly'"),
    ("missing id", ("id = \"acme\"\n", ""), "id", "missing required key"),
    ("bad effective date", ("effective_date = 2026-01-01", "effective_date = \"soon\""), "effective_date",
     "expected a date"),
    ("unreachable row", ("outcome = \"denied\"\ncite = [\"2\"]", "outcome = \"denied\"\ncite = [\"2\"]\n\n"
     "[[categories.seat.rows]]\noutcome = \"review\"\ncite = [\"2\"]"), "categories.seat.rows[2]", "unreachable"),
    ("bad chargeback action", ("[sections.1]", "[chargeback]\nwhile_open = \"freeze\"\nwhen_lost = \"revoke\"\n\n[sections.1]"),
     "chargeback.while_open", "'freeze' is not one of suspend_order, restrict_account"),
    ("fee deduction without a clause", ("[categories.seat]", "[fees]\ndeduct = \"proportional\"\n\n[categories.seat]"),
     "fees.cite", "missing required key"),
]


@pytest.mark.parametrize("case", BROKEN, ids=[c[0] for c in BROKEN])
def test_broken_files_name_file_key_and_problem(tmp_path, case):
    _, (old, new), key, words = case
    assert old in MINIMAL
    path = tmp_path / "acme.toml"
    path.write_text(MINIMAL.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(PolicyFileError) as err:
        load_policy(path)
    assert err.value.path == str(path)
    assert err.value.key == key, str(err.value)
    assert words in err.value.problem, str(err.value)
    code, lines = check([str(path)], tmp_path)
    assert code == 1 and lines == [f"error: {path}: {key}: {err.value.problem}"]


def test_not_toml_and_missing_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("id = \n", encoding="utf-8")
    with pytest.raises(PolicyFileError) as err:
        load_policy(path)
    assert err.value.path == str(path) and "not valid TOML" in err.value.problem and "line 1" in err.value.problem
    code, lines = check([str(tmp_path / "nope.toml")], tmp_path)
    assert code == 1 and "file not found" in lines[0]
    code, lines = check(None, tmp_path / "empty")
    assert code == 1


def test_check_directory_reports_every_file(tmp_path):
    shutil.copy(POLICIES / "mittrik.toml", tmp_path / "mittrik.toml")
    (tmp_path / "acme.toml").write_text(MINIMAL.replace("outcome = \"denied\"", "outcome = \"nope\""), encoding="utf-8")
    code, lines = check(None, tmp_path)
    assert code == 1
    assert lines[0].startswith(f"error: {tmp_path / 'acme.toml'}: categories.seat.rows[1].outcome")
    assert lines[1].startswith("ok: ")


def test_duplicate_ids_in_a_directory(tmp_path):
    (tmp_path / "a.toml").write_text(MINIMAL, encoding="utf-8")
    (tmp_path / "b.toml").write_text(MINIMAL, encoding="utf-8")
    with pytest.raises(PolicyFileError) as err:
        PolicyRegistry.load(tmp_path)
    assert err.value.key == "id" and "duplicate" in err.value.problem
    assert check(None, tmp_path)[0] == 1


# -- a fourth merchant is a fourth file ------------------------------------------------------

def test_a_fourth_policy_needs_no_code(tmp_path):
    shutil.copy(POLICIES / "software-mor.toml", tmp_path)
    (tmp_path / "acme.toml").write_text(MINIMAL, encoding="utf-8")
    registry = PolicyRegistry.load(tmp_path)
    order = {"currency": "EUR", "items": [{"item_id": "s1", "category": "seat", "billing": "monthly",
                                           "amount": 1500, "paid_at": "2026-05-01T00:00:00Z"}]}
    d = registry.evaluate("acme", {"order": order, "request": {"reason": "changed_mind",
                                                               "requested_at": "2026-05-11T00:00:00Z"}}, NOW)
    assert (d.outcome, d.refund_amount, [c.section for c in d.clauses]) == ("approved", 1500, ["1"])
    d = registry.evaluate("acme", {"order": order, "request": {"reason": "changed_mind",
                                                               "requested_at": "2026-05-11T00:00:01Z"}}, NOW)
    assert (d.outcome, [c.section for c in d.clauses]) == ("denied", ["2"])
    assert d.explanation.startswith("We cannot refund this purchase because")


def test_overlay_can_be_switched_on_by_data(tmp_path):
    text = (POLICIES / "micromastery.toml").read_text(encoding="utf-8")
    path = tmp_path / "micromastery.toml"
    path.write_text(text.replace("enabled = false", "enabled = true", 1), encoding="utf-8")
    registry = PolicyRegistry.load(tmp_path)
    order = {"currency": "EUR", "customer": {"country": "AT"},
             "items": [{"item_id": "t", "category": "training", "amount": 9900, "paid_at": "2026-05-01T00:00:00Z"}]}
    d = registry.evaluate("micromastery", {"order": order, "request": {"reason": "changed_mind",
                                                                       "requested_at": "2026-05-05T00:00:00Z"}}, NOW)
    assert d.outcome == "review" and {c.section for c in d.clauses} == {"2", "statutory"}


# -- CLI functions ---------------------------------------------------------------------------

def test_evaluate_file(tmp_path):
    data = {"policy": "software-mor",
            "order": {"currency": "USD", "customer": {"country": "US"},
                      "items": [{"item_id": "li_1", "category": "license", "amount": 4900, "fee": 172,
                                 "paid_at": "2026-03-01T10:00:00Z"}]},
            "request": {"reason": "not_satisfied", "requested_at": "2026-03-20T10:00:00Z"}}
    path = tmp_path / "req.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    out = evaluate_file(path, POLICIES, NOW)
    assert (out["outcome"], out["refund_amount"], out["fee_deducted"]) == ("approved", 4728, 172)
    assert out["policy"]["id"] == "software-mor"
    json.dumps(out)                                            # plain JSON all the way down
    del data["policy"]
    data["order"]["policy"] = "software-mor"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert evaluate_file(path, POLICIES, NOW)["refund_amount"] == 4728
    del data["order"]["policy"]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(PolicyInputError) as err:
        evaluate_file(path, POLICIES, NOW)
    assert err.value.field == "policy"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(PolicyInputError):
        evaluate_file(path, POLICIES, NOW)
    data["policy"] = "nobody"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(KeyError):
        evaluate_file(path, POLICIES, NOW)
