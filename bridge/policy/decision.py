"""The evaluator's answer: a :class:`Decision` with one :class:`ItemDecision` per item.

``Decision.to_dict()`` is the ``decision`` object of spec/api.md (section "Refunds"), with a few
extra keys that make a decision reproducible (the rule row applied, the facts used, the amounts
a review is waiting for).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Optional

from .explain import item_sentence
from .model import Clause


@dataclass(frozen=True, slots=True)
class ItemDecision:
    item_id: str
    outcome: str                       # approved | denied | review
    refund_amount: int
    fee_deducted: int
    clauses: tuple[Clause, ...]
    rule: str                          # the row id that decided, or an engine rule (see below)
    because: str                       # explanation fragment for the buyer
    label: str                         # how the buyer knows the item (sku, else item id)
    missing: tuple[str, ...] = ()      # amounts a review is waiting for (money fact names, "fee")
    full: bool = False                 # approved for everything that remains refundable
    blocked_by: tuple[str, ...] = ()   # bundle: the items that block the whole order
    statutory_overlay: bool = False    # a denial turned into a review by the overlay
    facts: Mapping[str, Any] = field(default_factory=dict)
    deadline: Optional[datetime] = None   # end of the window that gave approved/review

    # Engine rules (not rows of a policy file): "already_refunded" (nothing left to refund),
    # "no_rule" (no row applies: review), "bundle" (the bundle rule decided).

    def to_dict(self, currency: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "item_id": self.item_id,
            "outcome": self.outcome,
            "refund_amount": self.refund_amount,
            "fee_deducted": self.fee_deducted,
            "clauses": [c.to_dict() for c in self.clauses],
            "rule": self.rule,
            "explanation": item_sentence(self, currency),
            "deadline": None if self.deadline is None else _iso(self.deadline),
            "facts": {k: (v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v)
                      for k, v in sorted(self.facts.items())},
        }
        if self.missing:
            out["missing"] = list(self.missing)
        if self.blocked_by:
            out["blocked_by"] = list(self.blocked_by)
        if self.statutory_overlay:
            out["statutory_overlay"] = True
        return out


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: str                       # approved (refund_amount > 0) | denied | review
    refund_amount: int                 # approved: the total to refund; otherwise 0
    fee_deducted: int
    currency: str
    policy_id: str
    policy_version: str
    policy_hash: str
    clauses: tuple[Clause, ...]
    explanation: str
    items: tuple[ItemDecision, ...]
    reason: str = ""
    requested_at: Optional[datetime] = None
    deadline: Optional[datetime] = None   # the earliest deadline of its approved/review items

    @property
    def missing(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for item in self.items:
            for name in item.missing:
                seen.setdefault(name)
        return tuple(seen)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "outcome": self.outcome,
            "refund_amount": self.refund_amount,
            "fee_deducted": self.fee_deducted,
            "currency": self.currency,
            "policy": {"id": self.policy_id, "version": self.policy_version, "hash": self.policy_hash},
            "clauses": [c.to_dict() for c in self.clauses],
            "explanation": self.explanation,
            "deadline": None if self.deadline is None else _iso(self.deadline),
            "items": [item.to_dict(self.currency) for item in self.items],
            "reason": self.reason,
        }
        if self.requested_at is not None:
            out["requested_at"] = self.requested_at.isoformat().replace("+00:00", "Z")
        missing = self.missing
        if missing:
            out["missing"] = list(missing)
        return out


def _iso(moment: Optional[datetime]) -> Optional[str]:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
