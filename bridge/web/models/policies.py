"""``/api/v1/policies``: the loaded policies, and the decision object of api.md."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from bridge.policy.vocab import OUTCOMES
from bridge.web.models.common import Out

Outcome = Literal[OUTCOMES]  # type: ignore[valid-type]


class PolicySummary(Out):
    id: str
    version: str
    effective_date: Optional[str] = None
    name: Optional[str] = None
    hash: str
    categories: list[str]


class PolicyList(Out):
    policies: list[PolicySummary]


class ClauseOut(Out):
    section: str
    title: Optional[str] = None
    text: Optional[str] = None


class PolicyRef(Out):
    id: str
    version: str


class ItemDecisionOut(Out):
    item_id: str
    outcome: str
    refund_amount: int = Field(ge=0)
    fee_deducted: Optional[int] = Field(default=None, ge=0)
    clauses: list[ClauseOut] = []


class DecisionOut(Out):
    """The ``decision`` object: outcome, amounts in minor units, the clauses applied."""
    outcome: Outcome
    refund_amount: int = Field(ge=0)
    fee_deducted: int = Field(ge=0)
    currency: str
    policy: PolicyRef
    clauses: list[ClauseOut]
    explanation: str
    items: list[ItemDecisionOut]
