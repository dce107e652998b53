"""Paddle's payout reconciliation report, read into payout lines (reference/payouts.md P3).

The report is asked for by the payout's ``remittance_reference`` (``POST /reports``, type
``payout_reconciliation``, filter ``remittance_reference`` with operator null and the reference
as a one-element array; the other primary filters are mutually exclusive with it, so none is
sent). Its CSV has one row per balance movement of the payout, and
Σ ``balance_movement_in_balance_currency`` is the payout's amount (``rebate`` and ``swift_fee``
rows included).

Columns are read by header name, never by position (Paddle adds columns). The documented ones
used: ``balance_movement_type``, ``balance_movement_in_balance_currency`` (the line's signed
effect on the balance), ``paddle_fee_in_balance_currency``, ``fx_fee_in_balance_currency``,
``chargeback_fee_in_balance_currency`` (0 on rows without one). The ones the reference names
only as "gross, tax, ids" are read under these names and are optional:
``transaction_id``, ``adjustment_id``, ``balance_currency_code``,
``tax_in_balance_currency``, ``transaction_currency_code``, ``gross_in_transaction_currency``.
Amounts are decimal strings in major units of their currency ("49.00", JPY "4900"), converted
exactly to minor units (a fraction finer than the currency's is refused, never rounded).

Each row becomes a line in the payout currency: ``amount`` the balance movement, ``fee`` the
fees on it (positive when taken, negative when given back on a refund), ``gross`` = amount + fee
(what the sale, refund or chargeback was worth in the balance currency). Tax Paddle keeps as
merchant of record is a line of its own (kind ``tax``), so that a sale's gross is what the
buyer paid, as the ledger books it. The presentment amount and currency (``original_*``) are
the report's transaction-currency figures when the row was converted; no rate is computed.
"""
from __future__ import annotations

import csv
import io
from decimal import Decimal, InvalidOperation
from typing import Optional

from bridge.domain.money import check_minor, exponent, normalize_currency
from bridge.providers.base import PayoutLineRecord
from bridge.providers.paddle.events import dispute_case

REPORT_TYPE = "payout_reconciliation"
REFERENCE_FILTER = "remittance_reference"

# balance_movement_type -> (line kind, what the ledger keys it by: the transaction, the
# adjustment, the chargeback case, or nothing the ledger books).
_KINDS = {
    "sale": ("sale", "transaction"),
    "refund": ("refund", "adjustment"),
    "credit": ("adjustment", "adjustment"),
    "chargeback": ("chargeback", "case"),
    "chargeback_reverse": ("chargeback_reversal", "case"),
    "chargeback_warning": ("chargeback", "case"),
    "chargeback_warning_reverse": ("chargeback_reversal", "case"),
    "rebate": ("adjustment", None),
    "swift_fee": ("fee", None),
}
_FEES = ("paddle_fee_in_balance_currency", "fx_fee_in_balance_currency", "chargeback_fee_in_balance_currency")
REQUIRED = ("balance_movement_type", "balance_movement_in_balance_currency")


class ReportUnreadable(ValueError):
    """The CSV is not a payout reconciliation report the bridge can read (a column missing, an
    amount that is not one): nothing of it is stored."""


def is_report_for(report: dict, reference: str) -> bool:
    """A listed report (``GET /reports``) of this payout: our type, and exactly our filter."""
    if report.get("type") != REPORT_TYPE:
        return False
    filters = report.get("filters") or []
    return (len(filters) == 1 and filters[0].get("name") == REFERENCE_FILTER
            and [str(v) for v in (filters[0].get("value") or [])] == [str(reference)])


def _amount(row: dict, column: str, currency: str, line: int) -> int:
    raw = (row.get(column) or "").strip()
    if not raw:
        return 0
    try:
        value = Decimal(raw) * (10 ** exponent(currency))
    except (InvalidOperation, ValueError):
        raise ReportUnreadable(f"row {line}: {column} is not an amount: {raw[:40]!r}") from None
    if not value.is_finite():   # "NaN", "Infinity": Decimal reads them
        raise ReportUnreadable(f"row {line}: {column} is not an amount: {raw[:40]!r}")
    if value != value.to_integral_value():
        raise ReportUnreadable(f"row {line}: {column} {raw[:40]!r} is finer than {currency}'s minor unit")
    try:
        return check_minor(int(value), column)
    except ValueError as err:
        raise ReportUnreadable(f"row {line}: {err}") from None


def payout_lines(text: str, payout_currency: str) -> tuple[PayoutLineRecord, ...]:
    """The lines of a payout from its report's CSV. Raises :class:`ReportUnreadable`."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or ())]
    if missing:
        raise ReportUnreadable(f"the report has no column {', '.join(missing)}")
    currency = normalize_currency(payout_currency)
    lines: list[PayoutLineRecord] = []
    refs: set[str] = set()
    for n, row in enumerate(reader, start=2):
        balance_currency = (row.get("balance_currency_code") or "").strip().upper()
        if balance_currency and balance_currency != currency:
            raise ReportUnreadable(f"row {n}: balance currency {balance_currency[:8]}, payout in {currency}")
        movement = (row.get("balance_movement_type") or "").strip()
        kind, keyed_by = _KINDS.get(movement, ("other", None))
        txn = (row.get("transaction_id") or "").strip() or None
        adj = (row.get("adjustment_id") or "").strip() or None
        source: Optional[str] = {"transaction": txn, "adjustment": adj,
                                 "case": dispute_case(txn) if txn else None}.get(keyed_by or "")
        amount = _amount(row, "balance_movement_in_balance_currency", currency, n)
        fee = sum(_amount(row, column, currency, n) for column in _FEES)
        tax = _amount(row, "tax_in_balance_currency", currency, n)
        ref = _unique(f"{adj or txn or 'row'}:{movement or 'unknown'}", refs)
        original_amount = original_currency = None
        txn_currency = (row.get("transaction_currency_code") or "").strip().upper()
        if txn_currency and txn_currency != currency and (row.get("gross_in_transaction_currency") or "").strip():
            original_currency = normalize_currency(txn_currency)
            original_amount = _amount(row, "gross_in_transaction_currency", original_currency, n)
        # The tax Paddle kept on this movement is its own line; the movement's gross is then
        # what the buyer paid (or got back), tax included.
        lines.append(PayoutLineRecord(
            provider_ref=ref, kind=kind, gross=amount + fee + tax, fee=fee, amount=amount + tax, currency=currency,
            original_amount=original_amount, original_currency=original_currency, exchange_rate=None,
            source_ref=source))
        if tax:
            lines.append(PayoutLineRecord(
                provider_ref=_unique(f"{ref}:tax", refs), kind="tax", gross=-tax, fee=0, amount=-tax,
                currency=currency, original_amount=None, original_currency=None, exchange_rate=None,
                source_ref=None))
    return tuple(lines)


def _unique(ref: str, seen: set[str]) -> str:
    out, k = ref, 1
    while out in seen:
        k += 1
        out = f"{ref}:{k}"
    seen.add(out)
    return out
