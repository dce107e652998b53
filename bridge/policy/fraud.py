"""An early fraud warning (Stripe ``radar.early_fraud_warning.created``, api.md) decided by the
order's policy: its ``[early_fraud_warning]`` rule (``review`` by default, ``refund`` or
``ignore``; a category may override the action). Pure: the service layer hands in the order
(as for a refund request) and the warning's time, and stores what comes back.

- ``review``: a decision in review, reason ``fraud_warning``, citing the rule's clauses.
- ``refund``: approved for everything that remains unrefunded on every item, with no fee kept
  (a refund of the whole charge is what heads off the chargeback and its dispute fee; a fee
  kept would leave an amount the buyer can still dispute).
- ``ignore``: ``None`` (nothing to store; the dispute, if one follows, takes its course).

An order whose items' categories ask for different actions is reviewed unless they all say
``refund`` (or all ``ignore``): a person decides a mixed case.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from .decision import Decision, ItemDecision
from .explain import sentence
from .inputs import Order
from .model import FraudWarningRule, Policy, dedupe_clauses
from .vocab import FRAUD_WARNING_REASON

RULE = "early_fraud_warning"


def early_fraud_warning_rule(policy: Policy, order: Optional[Order] = None) -> FraudWarningRule:
    """The rule that applies to ``order`` (or the policy's own rule without one)."""
    if order is None or not order.items:
        return policy.fraud_warning
    rules = [policy.early_fraud_warning_rule(item.category) for item in order.items]
    actions = {r.action for r in rules}
    if len(actions) == 1:
        return rules[0]
    base = policy.fraud_warning
    return FraudWarningRule("review", base.cite, _REVIEW_MIXED)


_REVIEW_MIXED = ("the card issuer reported this payment as possibly fraudulent, and the items of "
                 "this order call for different handling, so our team reviews it")


def fraud_warning_decision(policy: Policy, order: Order, at: datetime) -> Optional[Decision]:
    """What the warning received at ``at`` does to ``order`` under ``policy`` (see above)."""
    rule = early_fraud_warning_rule(policy, order)
    if rule.action == "ignore":
        return None
    items = []
    for item in order.items:
        label = item.sku or item.item_id
        remaining = item.amount - item.already_refunded
        if rule.action == "refund" and remaining > 0:
            items.append(ItemDecision(item.item_id, "approved", remaining, 0, rule.cite, RULE,
                                      rule.because, label, full=True, facts=item.facts))
        elif rule.action == "refund":
            items.append(ItemDecision(item.item_id, "denied", 0, 0, (), "already_refunded",
                                      "it has already been refunded in full", label, facts=item.facts))
        else:
            items.append(ItemDecision(item.item_id, "review", 0, 0, rule.cite, RULE, rule.because,
                                      label, facts=item.facts))
    refund = sum(i.refund_amount for i in items)
    if rule.action == "refund":
        outcome = "approved" if refund > 0 else "denied"
    else:
        outcome = "review"
    return Decision(outcome=outcome, refund_amount=refund, fee_deducted=0, currency=order.currency,
                    policy_id=policy.id, policy_version=policy.version, policy_hash=policy.hash,
                    clauses=dedupe_clauses(tuple(c for i in items for c in i.clauses)),
                    explanation=sentence(items, order.currency), items=tuple(items),
                    reason=FRAUD_WARNING_REASON, requested_at=at, deadline=None)
