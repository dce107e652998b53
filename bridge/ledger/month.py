"""The month as the console shows it: the ledger summed per day and currency (for the chart),
and the place where the providers' payouts for the month will be read from."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Date, cast, func, select
from sqlalchemy.orm import Session

from bridge.ledger.models import LedgerEntry
from bridge.ledger.reconciliation import Period

# How each ledger kind is drawn: money in (sales, reversals of money out), fees, and money
# given back (refunds and chargebacks with their fees). ``net`` is the signed sum of them all.
_BUCKET = {"sale": "gross", "fee": "fees", "refund": "refunds", "refund_reversal": "refunds",
           "chargeback": "chargebacks", "chargeback_reversal": "chargebacks",
           "chargeback_fee": "chargebacks", "chargeback_fee_reversal": "chargebacks"}


@dataclass
class Day:
    day: date
    currency: str
    gross: int = 0
    fees: int = 0       # signed as in the ledger (money out is negative)
    refunds: int = 0
    chargebacks: int = 0
    net: int = 0


def _day_expr(session: Session):
    # The UTC calendar day of the entry, whatever the connection's time zone.
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", LedgerEntry.occurred_at), Date)
    return func.date(LedgerEntry.occurred_at)  # SQLite stores naive UTC


def daily(session: Session, period: Period) -> dict[str, list[Day]]:
    """Per currency, one ``Day`` for every day of the period that has entries, in order."""
    day = _day_expr(session).label("day")
    rows = session.execute(
        select(day, LedgerEntry.currency, LedgerEntry.kind, func.sum(LedgerEntry.amount))
        .where(period.entries_filter())
        .group_by(day, LedgerEntry.currency, LedgerEntry.kind)).all()
    out: dict[tuple[str, date], Day] = {}
    for d, currency, kind, total in rows:
        d = d if isinstance(d, date) else date.fromisoformat(str(d))
        row = out.setdefault((currency, d), Day(d, currency))
        total = int(total)
        bucket = _BUCKET.get(kind)
        if bucket:
            setattr(row, bucket, getattr(row, bucket) + total)
        row.net += total
    by_currency: dict[str, list[Day]] = {}
    for (currency, _), row in sorted(out.items()):
        by_currency.setdefault(currency, []).append(row)
    return by_currency


def payouts(session: Session, period: Period) -> list[dict]:
    """The providers' payouts created in the period, in the shape of ``GET /api/v1/payouts``
    (``bridge sync`` brings them in from the providers' own books)."""
    from bridge.ledger import payouts as payout_store
    return payout_store.list_payouts(session, period.start, period.end, period.provider)
