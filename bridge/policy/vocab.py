"""The fixed vocabulary shared by policy files and inputs (spec/policies.md).

Policy files may only use these names; adding a fact or a reason is a code change here, adding
a policy is not.
"""
from __future__ import annotations

REASONS = (
    "not_satisfied", "changed_mind", "technical_issue", "duplicate_charge",
    "charged_by_mistake", "purchased_by_mistake", "cancellation", "downgrade", "other",
)
BILLINGS = ("one_time", "monthly", "annual")
PURCHASES = ("initial", "renewal")
OUTCOMES = ("approved", "denied", "review")
AMOUNT_RULES = ("full", "pro_rated", "amount_minus")

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

# Instants a window can measure from the payment (paid_at).
WINDOW_CLOCKS = ("requested_at", "problem_reported_at")

CHARGEBACK_WHILE_OPEN = ("suspend_order", "restrict_account")
# revoke: the disputed order's licenses; revoke_account: every license of the customer (termination)
CHARGEBACK_WHEN_LOST = ("revoke", "revoke_account", "none")
LICENSE_ACTIONS = ("revoke", "none")
FEE_TREATMENTS = ("none", "proportional")
BUNDLE_RULES = ("whole_order_only",)
