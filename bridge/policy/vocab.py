"""The standard vocabulary shared by policy files and inputs (spec/policies.md).

Every policy accepts these facts and reasons; a policy file may declare more of its own
(``[facts.NAME]``, ``[reasons.NAME]``), so adding one is not a code change.
"""
from __future__ import annotations

REASONS = (
    "not_satisfied", "changed_mind", "technical_issue", "duplicate_charge",
    "charged_by_mistake", "purchased_by_mistake", "cancellation", "downgrade", "other",
)
BILLINGS = ("one_time", "monthly", "annual")
PURCHASES = ("initial", "renewal")
OUTCOMES = ("approved", "denied", "review")
AMOUNT_RULES = ("full", "pro_rated", "amount_minus", "percent", "tiered")
FACT_KINDS = ("bool", "money", "time")

BOOL_FACTS = (
    "content_accessed", "technical_issue", "technical_issue_resolved", "used",
    "materially_used", "irreversible_delivery", "work_started", "project_completed",
    "incompatibility_confirmed", "support_request_submitted", "provisioning_started",
    "service_provided",
)
MONEY_FACTS = ("delivered_milestones_amount", "documented_effort_amount", "third_party_cost_amount")
TIME_FACTS = ("problem_reported_at",)

FACT_TYPES: dict[str, str] = {
    **{name: "bool" for name in BOOL_FACTS},
    **{name: "money" for name in MONEY_FACTS},
    **{name: "time" for name in TIME_FACTS},
}

# Money a rule can depend on: the money facts plus the payment's processing fee.
FEE = "fee"
MONEY_NAMES = (*MONEY_FACTS, FEE)

# How a missing amount is named to the buyer (and the support agent).
MONEY_LABELS = {
    "delivered_milestones_amount": "the value of the milestones already delivered",
    "documented_effort_amount": "the documented effort on work not yet delivered",
    "third_party_cost_amount": "the non-recoverable third-party cost",
    FEE: "the processing fee of the payment",
}

# The standard facts as a reviewer reads them (spec/policies.md, "Facts").
FACT_LABELS = {
    "content_accessed": "the buyer opened paid content",
    "technical_issue": "a technical problem on the seller's side prevented access or use",
    "technical_issue_resolved": "the seller has fixed that problem",
    "problem_reported_at": "when the buyer first reported the problem",
    "used": "the add-on was used or activated, or its credits consumed",
    "materially_used": "the license was used beyond reasonable evaluation",
    "irreversible_delivery": "an irreversible delivery or customization was completed",
    "work_started": "the seller's people started the work",
    "project_completed": "the whole project or all milestones were delivered",
    "incompatibility_confirmed": "the software cannot be installed, confirmed, with no alternative",
    "support_request_submitted": "the buyer submitted a support request under the plan",
    "provisioning_started": "third-party provisioning started",
    "service_provided": "the specialist provided the service in whole or in part",
    **{k: v for k, v in MONEY_LABELS.items() if k != FEE},
}

REASON_LABELS = {
    "not_satisfied": "not satisfied", "changed_mind": "changed their mind",
    "technical_issue": "a technical issue", "duplicate_charge": "charged twice",
    "charged_by_mistake": "charged by mistake", "purchased_by_mistake": "purchased by mistake",
    "cancellation": "forgot to cancel", "downgrade": "a downgrade", "other": "another reason",
}

# What an early fraud warning does (api.md): review is the default.
FRAUD_WARNING_ACTIONS = ("review", "refund", "ignore")
FRAUD_WARNING_REASON = "fraud_warning"

CHARGEBACK_WHILE_OPEN = ("suspend_order", "restrict_account")
# revoke: the disputed order's licenses; revoke_account: every license of the customer (termination)
CHARGEBACK_WHEN_LOST = ("revoke", "revoke_account", "none")
LICENSE_ACTIONS = ("revoke", "none")
FEE_TREATMENTS = ("none", "proportional")
BUNDLE_RULES = ("whole_order_only",)
