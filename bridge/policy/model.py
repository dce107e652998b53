"""A loaded policy file: immutable dataclasses, rows already compiled for the evaluator.

``loader.py`` builds these from TOML; ``evaluator.py`` only reads them. Nothing here knows any
particular merchant: a policy is data.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Callable, Mapping, Optional

from .vocab import FACT_LABELS, FACT_TYPES, REASON_LABELS
from .windows import Window


@dataclass(frozen=True, slots=True)
class Clause:
    """A cited passage of the merchant's policy document.

    ``section`` is the document's own section number ("3"); ``row`` names a row of a table in
    that section (software-mor section 3: "Software licenses / one-time purchases").
    """
    section: str
    title: str
    text: str
    row: Optional[str] = None

    def to_dict(self) -> dict[str, str]:
        out = {"section": self.section, "title": self.title, "text": self.text}
        if self.row is not None:
            out["row"] = self.row
        return out


def dedupe_clauses(clauses: tuple[Clause, ...]) -> tuple[Clause, ...]:
    """Each (section, row) once, in first-cited order."""
    seen = set()
    out = []
    for clause in clauses:
        key = (clause.section, clause.row)
        if key not in seen:
            seen.add(key)
            out.append(clause)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class SectionRow:
    key: str
    label: str
    text: str


@dataclass(frozen=True, slots=True)
class Section:
    number: str
    title: str
    text: str
    rows: Mapping[str, SectionRow] = field(default_factory=dict)


# A compiled condition: a predicate on the evaluator's per-item context.
Check = Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class Tier:
    """One step of a tiered amount: within ``window`` (the row's clock and measured instant),
    ``numerator / denominator`` of the price (a percentage, kept exact)."""
    window: Window
    check: Check
    numerator: int
    denominator: int
    percent: str                      # as written, for explanations: "75", "12.5"
    because: Optional[str] = None


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a rule table: conditions (``when``) and what follows when they all hold.

    ``cite`` here is already the full list for the row's category (row cites, then the
    category's own cites); ``cite_fee`` adds the fee clause for a fee deduction.
    """
    id: str
    key: str                          # where it is in the file: categories.license.rows[1]
    when: Mapping[str, Any]           # the raw conditions, for display
    checks: tuple[Check, ...]
    outcome: str                      # approved | denied | review
    amount: Optional[str]             # full | pro_rated | amount_minus | percent | tiered
    minus: tuple[str, ...]            # money names subtracted by amount_minus
    waive_fee: bool                   # the merchant's error: no fee deduction
    unknown: tuple[str, ...]          # the row's "unknown" condition: amounts to name in a review
    because: str                      # explanation fragment for the buyer
    cite: tuple[Clause, ...] = ()
    cite_fee: tuple[Clause, ...] = ()
    plain: tuple[Check, ...] = ()     # the checks that are not time windows
    within: tuple[Window, ...] = ()   # its within_* windows (the deadline when it decides)
    after: tuple[Window, ...] = ()    # its after_* windows
    guards: tuple["Row", ...] = ()    # earlier rows of the category with an after_* window:
                                      # when they would apply later, they end this row's time
    percent: Optional[Tier] = None    # amount = "percent": the share of the price (no window)
    tiers: tuple[Tier, ...] = ()      # amount = "tiered": the first tier whose window holds
    deadline_delta: Optional[timedelta] = None   # the common case, precomputed: one within_days
                                      # window from paid_at and nothing else ending the row
    has_deadline: bool = False        # some window can end this row (within, guards, tiers)

    def matches(self, ctx: Any) -> bool:
        for check in self.checks:
            if not check(ctx):
                return False
        return True


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    label: str
    billing: frozenset[str]
    rows: tuple[Row, ...]             # common rows first, then the category's own, in order
    cite: tuple[Clause, ...]
    default_billing: Optional[str]    # when an item does not say: one_time if allowed
    early_fraud_warning: Optional[str] = None   # overrides the policy's action for this category


@dataclass(frozen=True, slots=True)
class FeeRule:
    treatment: str                    # none | proportional
    cite: tuple[Clause, ...] = ()

    @property
    def deducts(self) -> bool:
        return self.treatment == "proportional"


@dataclass(frozen=True, slots=True)
class BundleRule:
    rule: str                         # whole_order_only
    cite: tuple[Clause, ...]
    because: str


@dataclass(frozen=True, slots=True)
class StatutoryOverlay:
    enabled: bool
    days: int
    countries: frozenset[str]
    cite: tuple[Clause, ...]
    because: str

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.days)


@dataclass(frozen=True, slots=True)
class ChargebackRule:
    while_open: str                   # suspend_order | restrict_account
    when_lost: str                    # revoke | revoke_account | none
    cite: tuple[Clause, ...] = ()

    @property
    def scope(self) -> str:
        """``order`` (that order's licenses) or ``account`` (every license of the customer)."""
        return "account" if self.while_open == "restrict_account" else "order"


@dataclass(frozen=True, slots=True)
class RefundRule:
    license_action: str               # revoke | none: what a refund does to the refunded items
    cite: tuple[Clause, ...] = ()
    confirm_within_business_days: Optional[int] = None


@dataclass(frozen=True, slots=True)
class FraudWarningRule:
    """What a card issuer's early fraud warning does to an order (api.md): ``review`` (a
    refund request in review), ``refund`` (the rest of the order refunded in full at once,
    no fee kept: it heads off the chargeback and its fee) or ``ignore``."""
    action: str
    cite: tuple[Clause, ...] = ()
    because: str = ""


@dataclass(frozen=True, slots=True)
class FactDef:
    """A fact the merchant's systems report: standard (spec/policies.md) or declared by the
    policy file (``[facts.NAME]``)."""
    name: str
    type: str                         # bool | money | time
    label: str
    declared: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    id: str
    version: str
    effective_date: Optional[date]
    name: str
    path: str
    hash: str                         # sha256 hex of the file bytes
    sections: Mapping[str, Section]
    categories: Mapping[str, Category]
    fees: FeeRule
    bundle: Optional[BundleRule]
    overlay: StatutoryOverlay
    chargeback: ChargebackRule
    refund: RefundRule
    fraud_warning: FraudWarningRule = FraudWarningRule("review")
    facts: Mapping[str, FactDef] = field(default_factory=lambda: standard_facts())  # all it accepts
    reasons: Mapping[str, str] = field(default_factory=lambda: dict(REASON_LABELS))  # reason -> label
    source: Optional[str] = None

    @property
    def fact_types(self) -> dict[str, str]:
        """Fact name -> ``bool`` | ``money`` | ``time``: what requests and the facts API
        accept for orders under this policy."""
        return {name: f.type for name, f in self.facts.items()}

    def label(self, name: str) -> str:
        fact = self.facts.get(name)
        return fact.label if fact is not None else name.replace("_", " ")

    def early_fraud_warning_rule(self, category: Optional[str] = None) -> FraudWarningRule:
        """The rule for an item of ``category`` (its category's override, else the policy's)."""
        cat = self.categories.get(category) if category is not None else None
        if cat is not None and cat.early_fraud_warning is not None:
            return FraudWarningRule(cat.early_fraud_warning, self.fraud_warning.cite,
                                    self.fraud_warning.because)
        return self.fraud_warning

    def summary(self) -> dict[str, Any]:
        """What ``GET /api/v1/policies`` lists."""
        return {
            "id": self.id,
            "version": self.version,
            "effective_date": self.effective_date.isoformat() if self.effective_date else None,
            "name": self.name,
            "hash": self.hash,
            "categories": list(self.categories),
        }


def standard_facts() -> dict[str, FactDef]:
    return {n: FactDef(n, t, FACT_LABELS.get(n, n.replace("_", " "))) for n, t in FACT_TYPES.items()}
