"""Time windows of a rule row: how long, on which calendar, from which clock, measured at
which instant. Pure calendar arithmetic in UTC; the evaluator hands in every instant.

A window is ``<direction>_<unit> = N`` in a row's ``when`` (or a tier):

==========================  ================================================================
``within_days = N``         ``measured - clock <= N x 24 h`` (inclusive; spec/policies.md)
``within_months = N``       ``measured <= clock + N calendar months``; a day the target month
                            does not have is clamped to its last day (31 Jan + 1 month =
                            28/29 Feb, same time of day)
``within_business_days = N``  ``measured <= clock + N business days``: N steps forward over
                            Monday-Friday, same time of day (a Saturday purchase + 1 business
                            day = Monday); no holiday calendar
``within_month_end = N``    ``measured <=`` the last instant of the calendar month N months
                            after the clock's month (0 = "before the end of the month")
``after_*``                 the same bound, strictly exceeded
==========================  ================================================================

``clock`` (what the window counts from): ``paid_at`` (default; the payment that bought the
item), ``period_start`` (the billing period's start, ``paid_at`` when the payment has none) or
a time fact. ``measured_at`` (the instant compared): ``requested_at`` (default) or a time fact
(``problem_reported_at`` not given means ``requested_at``; any other time fact not given makes
the window's condition false: a row that must handle it uses ``unknown = ["that_fact"]``).
Months and month ends are computed in UTC.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

UNITS = ("days", "months", "business_days", "month_end")
WITHIN_KEYS = tuple(f"within_{u}" for u in UNITS)
AFTER_KEYS = tuple(f"after_{u}" for u in UNITS)
BUILTIN_CLOCKS = ("paid_at", "period_start")
BUILTIN_MEASURES = ("requested_at",)
_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Window:
    unit: str                  # days | months | business_days | month_end
    n: int
    clock: str = "paid_at"     # paid_at | period_start | a time fact
    measured: str = "requested_at"   # requested_at | a time fact

    def end(self, start: datetime) -> datetime:
        """The last instant inside the window that starts at ``start``."""
        unit = self.unit
        if unit == "days":
            return start + timedelta(days=self.n)
        if unit == "months":
            return add_months(start, self.n)
        if unit == "business_days":
            return add_business_days(start, self.n)
        return month_end(start, self.n)

    def words(self) -> str:
        """``30 days``, ``3 months``, ``5 business days``, ``the end of the month``."""
        n = self.n
        if self.unit == "month_end":
            return "the end of the month" if n == 0 else f"the end of the month, {n} later"
        unit = {"days": "day", "months": "month", "business_days": "business day"}[self.unit]
        return f"{n} {unit}{'' if n == 1 else 's'}"


    def phrase(self, clock: str) -> str:
        """``within 3 months of the payment``, ``by the end of the month after the payment``."""
        if self.unit != "month_end":
            return f"within {self.words()} of {clock}"
        if self.n == 0:
            return f"by the end of the month of {clock}"
        if self.n == 1:
            return f"by the end of the month after {clock}"
        return f"by the end of the {_ordinal(self.n)} month after {clock}"


def add_months(moment: datetime, months: int) -> datetime:
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def add_business_days(moment: datetime, days: int) -> datetime:
    out = moment
    left = days
    while left > 0:
        out += timedelta(days=1)
        if out.weekday() < 5:
            left -= 1
    return out


def month_end(moment: datetime, months: int = 0) -> datetime:
    """The last microsecond of the month ``months`` after ``moment``'s month."""
    first = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return add_months(first, months + 1) - _US


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def clock_words(name: str, labels: Optional[dict] = None) -> str:
    if name == "paid_at":
        return "the payment"
    if name == "period_start":
        return "the start of the billing period"
    if labels and name in labels:
        return labels[name]
    return name.replace("_", " ")
