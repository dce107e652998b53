"""The condition vocabulary of a rule row, compiled once at load time into predicates.

A row's ``when`` table holds any of these keys; all must hold for the row to apply:

==================  ===========================================================================
``reason``          the request's reason is one of the list (standard or the policy's own)
``category``        the item's category is one of the list (for rows common to all categories;
                    resolved at load time)
``billing``         the item's billing is one of the list (``one_time``, ``monthly``, ``annual``)
``purchase``        ``initial`` or ``renewal`` (payment data)
``duplicate_charge``  the payment is (true) / is not (false) flagged as a duplicate charge
``facts``           a table of boolean facts and the value each must have (absent = false)
``any_fact``        at least one of these boolean facts is true
``within_days``     and the other windows of ``windows.py`` (``within_months``,
``after_days``      ``within_business_days``, ``within_month_end``, their ``after_*``): at most
                    one ``within_*`` and one ``after_*`` per row
``clock``           what the windows count from: ``paid_at`` (default), ``period_start`` or a
                    time fact
``measured_at``     which instant the windows measure: ``requested_at`` (default) or a time
                    fact (``problem_reported_at`` absent = ``requested_at``)
``known``           every one of these amounts (money facts, ``fee``) or time facts is known
``unknown``         at least one of these is unknown
==================  ===========================================================================

The evaluator hands each predicate a :class:`Context`; nothing here reads a clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping, Optional

from .vocab import FEE
from .windows import Window

Check = Callable[["Context"], bool]


class Context:
    """What the conditions of one item look at."""
    __slots__ = ("reason", "billing", "purchase", "duplicate", "facts", "fee", "paid_at",
                 "requested_at", "period_start", "since_paid", "since_problem", "tier")

    def __init__(self, reason: str, billing: str, purchase: str, duplicate: bool,
                 facts: Mapping[str, Any], fee: Optional[int], paid_at: datetime,
                 requested_at: datetime, period_start: Optional[datetime] = None) -> None:
        self.reason = reason
        self.billing = billing
        self.purchase = purchase
        self.duplicate = duplicate
        self.facts = facts
        self.fee = fee
        self.paid_at = paid_at
        self.requested_at = requested_at
        self.period_start = period_start
        self.since_paid = requested_at - paid_at
        reported = facts.get("problem_reported_at")
        self.since_problem = self.since_paid if reported is None else reported - paid_at
        # ``tier`` is set by a tiered row's condition when it holds (read only for that row)

    def money(self, name: str) -> Optional[int]:
        if name == FEE:
            return self.fee
        return self.facts.get(name)

    def instant(self, name: str) -> Optional[datetime]:
        """A clock or measured instant by name; None when it is a time fact not given."""
        if name == "paid_at":
            return self.paid_at
        if name == "requested_at":
            return self.requested_at
        if name == "period_start":
            return self.period_start or self.paid_at
        value = self.facts.get(name)
        if value is None and name == "problem_reported_at":
            return self.requested_at
        return value

    def window_end(self, window: Window) -> Optional[datetime]:
        start = self.instant(window.clock)
        return None if start is None else window.end(start)


@dataclass(frozen=True, slots=True)
class Compiled:
    """A ``when`` table compiled: every predicate, and apart the time windows (for the
    deadline of a decision: the end of the window that applied)."""
    checks: tuple[Check, ...]          # all of them, in the order they are tried
    plain: tuple[Check, ...]           # those that are not time windows
    within: tuple[Window, ...]
    after: tuple[Window, ...]


def window_check(window: Window, within: bool) -> Check:
    """A predicate for one window; the common ones (days from the payment) are a timedelta
    comparison on values the context computed once."""
    if window.unit == "days" and window.clock == "paid_at" and window.measured in (
            "requested_at", "problem_reported_at"):
        limit = timedelta(days=window.n)
        if window.measured == "requested_at":
            if within:
                return lambda c: c.since_paid <= limit
            return lambda c: c.since_paid > limit
        if within:
            return lambda c: c.since_problem <= limit
        return lambda c: c.since_problem > limit

    def check(c: Context) -> bool:
        start = c.instant(window.clock)
        measured = c.instant(window.measured)
        if start is None or measured is None:
            return False
        end = window.end(start)
        return measured <= end if within else measured > end
    return check


def compile_when(when: Mapping[str, Any]) -> Compiled:
    """Predicates for a validated ``when`` table (``category`` is handled by the loader;
    the loader puts the windows, as :class:`Window`, under ``_within`` / ``_after``)."""
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
    if "known" in when:
        known = tuple(when["known"])
        checks.append(lambda c: all(_value(c, n) is not None for n in known))
    if "unknown" in when:
        unknown = tuple(when["unknown"])
        checks.append(lambda c: any(_value(c, n) is None for n in unknown))
    plain = tuple(checks)
    within = tuple(when.get("_within", ()))
    after = tuple(when.get("_after", ()))
    for w in within:
        checks.append(window_check(w, True))
    for w in after:
        checks.append(window_check(w, False))
    return Compiled(tuple(checks), plain, within, after)


def _value(c: Context, name: str) -> Any:
    if name == FEE:
        return c.fee
    return c.facts.get(name)
