"""The condition vocabulary of a rule row, compiled once at load time into predicates.

A row's ``when`` table holds any of these keys; all must hold for the row to apply:

==================  ===========================================================================
``reason``          the request's reason is one of the list
``category``        the item's category is one of the list (for rows common to all categories;
                    resolved at load time)
``billing``         the item's billing is one of the list (``one_time``, ``monthly``, ``annual``)
``purchase``        ``initial`` or ``renewal`` (payment data)
``duplicate_charge``  the payment is (true) / is not (false) flagged as a duplicate charge
``facts``           a table of boolean facts and the value each must have (absent = false)
``any_fact``        at least one of these boolean facts is true
``within_days``     ``measured_at - paid_at <= N x 24 h`` (inclusive)
``after_days``      ``measured_at - paid_at > N x 24 h``
``measured_at``     which instant the window measures: ``requested_at`` (default) or
                    ``problem_reported_at`` (absent = ``requested_at``)
``known``           every one of these amounts is known (money facts, or ``fee``)
``unknown``         at least one of these amounts is unknown
==================  ===========================================================================

The evaluator hands each predicate a :class:`Context`; nothing here reads a clock.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable, Mapping, Optional

from .vocab import FEE

Check = Callable[["Context"], bool]


class Context:
    """What the conditions of one item look at."""
    __slots__ = ("reason", "billing", "purchase", "duplicate", "facts", "fee",
                 "since_paid", "since_problem")

    def __init__(self, reason: str, billing: str, purchase: str, duplicate: bool,
                 facts: Mapping[str, Any], fee: Optional[int], paid_at: datetime,
                 requested_at: datetime) -> None:
        self.reason = reason
        self.billing = billing
        self.purchase = purchase
        self.duplicate = duplicate
        self.facts = facts
        self.fee = fee
        self.since_paid = requested_at - paid_at
        reported = facts.get("problem_reported_at")
        self.since_problem = self.since_paid if reported is None else reported - paid_at

    def money(self, name: str) -> Optional[int]:
        if name == FEE:
            return self.fee
        return self.facts.get(name)


def compile_when(when: Mapping[str, Any]) -> tuple[Check, ...]:
    """Predicates for a validated ``when`` table (``category`` is handled by the loader)."""
    checks: list[Check] = []
    if "reason" in when:
        reasons = frozenset(when["reason"])
        checks.append(lambda c: c.reason in reasons)
    if "billing" in when:
        billings = frozenset(when["billing"])
        checks.append(lambda c: c.billing in billings)
    if "purchase" in when:
        purchase = when["purchase"]
        checks.append(lambda c: c.purchase == purchase)
    if "duplicate_charge" in when:
        flag = bool(when["duplicate_charge"])
        checks.append(lambda c: c.duplicate is flag)
    if "facts" in when:
        wanted = tuple((name, bool(value)) for name, value in when["facts"].items())

        def facts_match(c: Context, wanted=wanted) -> bool:
            get = c.facts.get
            for name, value in wanted:
                if (get(name) is True) is not value:
                    return False
            return True
        checks.append(facts_match)
    if "any_fact" in when:
        names = tuple(when["any_fact"])

        def any_fact(c: Context, names=names) -> bool:
            get = c.facts.get
            for name in names:
                if get(name) is True:
                    return True
            return False
        checks.append(any_fact)
    problem = when.get("measured_at", "requested_at") == "problem_reported_at"
    if "within_days" in when:
        limit = timedelta(days=when["within_days"])
        if problem:
            checks.append(lambda c: c.since_problem <= limit)
        else:
            checks.append(lambda c: c.since_paid <= limit)
    if "after_days" in when:
        limit_after = timedelta(days=when["after_days"])
        if problem:
            checks.append(lambda c: c.since_problem > limit_after)
        else:
            checks.append(lambda c: c.since_paid > limit_after)
    if "known" in when:
        known = tuple(when["known"])
        checks.append(lambda c: all(c.money(n) is not None for n in known))
    if "unknown" in when:
        unknown = tuple(when["unknown"])
        checks.append(lambda c: any(c.money(n) is None for n in unknown))
    return tuple(checks)
