"""The pydantic input models follow what the engine accepts: a fact table or a reason list
given by the policy is what is validated, not a second list kept here."""
from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest

from bridge.policy import PolicyInputError, parse_evaluation, parse_facts
from bridge.policy.input_models import Facts, facts_model
from bridge.policy.vocab import FACT_TYPES, REASONS
from tests.unit.test_policy_inputs import BODY, NOW

TABLE = {**FACT_TYPES, "seats_used": "money", "beta_tester": "bool", "cancel_deadline": "time"}


def test_the_standard_facts_model_is_the_vocabulary():
    assert set(Facts.model_fields) == set(FACT_TYPES)
    assert facts_model(TABLE) is facts_model(dict(TABLE))      # one model per table, cached


def test_a_policy_fact_table_decides_which_names_and_kinds_pass():
    got = parse_facts({"seats_used": 3, "beta_tester": True, "cancel_deadline": "2026-03-02T10:00:00+01:00"},
                      "facts", TABLE)
    assert got == {"seats_used": 3, "beta_tester": True,
                   "cancel_deadline": datetime(2026, 3, 2, 9, tzinfo=timezone.utc)}
    with pytest.raises(PolicyInputError) as err:
        parse_facts({"seats_used": 3}, "facts")                    # standard table: unknown
    assert err.value.field == "facts.seats_used"
    with pytest.raises(PolicyInputError) as err:
        parse_facts({"beta_tester": "yes"}, "order.facts", TABLE)
    assert err.value.field == "order.facts.beta_tester"
    # Stored under an earlier version of the policy: unknown names are skipped, not fatal.
    assert parse_facts({"gone": True, "used": False}, "facts", FACT_TYPES, strict=False) == {"used": False}


def test_policy_reasons_facts_and_the_simulators_future():
    body = copy.deepcopy(BODY)
    body["request"]["reason"] = "forgot_to_cancel"
    body["request"]["facts"] = {"beta_tester": True}
    with pytest.raises(PolicyInputError) as err:
        parse_evaluation(body, NOW)
    assert err.value.field == "request.reason"
    order, request = parse_evaluation(body, NOW, TABLE, (*REASONS, "forgot_to_cancel"))
    assert request.reason == "forgot_to_cancel" and request.facts == {"beta_tester": True}
    later = copy.deepcopy(BODY)
    later["request"]["requested_at"] = "2026-04-02T00:00:00Z"       # after NOW
    with pytest.raises(PolicyInputError):
        parse_evaluation(later, NOW)
    assert parse_evaluation(later, NOW, allow_future=True)[1].requested_at.day == 2
