"""Refund policies: policy files (TOML) loaded and validated, and the pure evaluator.

Public API (what ``bridge/web``, ``bridge/worker`` and the CLI call):

- ``PolicyRegistry.load(dir)`` -> ``.get(policy_id)``, ``.list()``, ``.evaluate(policy_id, body, now)``
- ``load_policy(path)`` / ``parse_policy(bytes, path)`` -> ``Policy``
- ``evaluate(policy, order, request, now)`` -> ``Decision`` (``.to_dict()`` = api.md decision)
- ``parse_evaluation(body, now)`` -> ``(Order, RefundRequest)``; ``parse_order``, ``parse_request``,
  ``parse_facts`` (also for ``POST /orders/{id}/facts``)
- ``fraud_warning_decision(policy, order, at)`` -> ``Decision`` or None (``ignore``);
  ``early_fraud_warning_rule(policy, order)`` / ``Policy.early_fraud_warning_rule(category)``
  -> ``FraudWarningRule(action, cite, because)``
- ``PolicyRegistry.fact_types(id)`` / ``.reasons(id)``: what requests under a policy accept
- ``commands.check(paths, dir)``, ``commands.evaluate_file(path, dir, now)``
- errors: ``PolicyFileError(path, key, problem)``, ``PolicyInputError(field, message)``,
  ``UnknownPolicyError(policy_id)``, all ``PolicyError``.
"""
from .decision import Decision, ItemDecision
from .errors import PolicyError, PolicyFileError, PolicyInputError, UnknownPolicyError
from .evaluator import evaluate
from .fraud import early_fraud_warning_rule, fraud_warning_decision
from .inputs import (Order, OrderItem, RefundRequest, parse_evaluation, parse_facts, parse_order,
                     parse_request, parse_time)
from .loader import load_policy, parse_policy
from .model import Clause, FraudWarningRule, Policy
from .registry import PolicyRegistry

__all__ = [
    "Clause", "Decision", "FraudWarningRule", "ItemDecision", "Order", "OrderItem", "Policy", "PolicyError",
    "PolicyFileError", "PolicyInputError", "PolicyRegistry", "RefundRequest",
    "UnknownPolicyError", "early_fraud_warning_rule", "evaluate", "fraud_warning_decision", "load_policy", "parse_evaluation", "parse_facts",
    "parse_order", "parse_policy", "parse_request", "parse_time",
]
