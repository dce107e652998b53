"""The comparison with the provider's record (bridge/ledger/provider_reconciliation.py) on
ledger entries and payouts written by the ledger's own functions: a corrected refund counts
once, and ``missing_at_provider`` finds a sale in no payout whether the payout that holds the
others lies in the period or after it."""
from __future__ import annotations

from datetime import datetime, timezone

from bridge.ledger import entries, payouts, provider_reconciliation
from bridge.ledger.reconciliation import Period
from bridge.providers.base import PayoutLineRecord, PayoutRecord

MARCH = Period(datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 4, 1, tzinfo=timezone.utc), "stripe")


def at(day: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, 12, tzinfo=timezone.utc)


def line(ref: str, kind: str, gross: int, fee: int, source: str) -> PayoutLineRecord:
    return PayoutLineRecord(provider_ref=ref, kind=kind, gross=gross, fee=fee, amount=gross - fee, currency="USD",
                            original_amount=None, original_currency=None, exchange_rate=None, source_ref=source)


def pay_out(session, payout_id: str, created: datetime, lines: list[PayoutLineRecord]) -> None:
    rec = PayoutRecord(payout_id=payout_id, amount=sum(x.amount for x in lines), currency="USD", status="paid",
                       arrival_date=None, created=created, automatic=True, itemizable=True)
    payouts.replace_lines(session, payouts.upsert_payout(session, "stripe", rec, created), lines)


def sale(session, charge: str, when: datetime, fee: int = 172) -> None:
    entries.post(session, provider="stripe", kind="sale", magnitude=4900, currency="USD", occurred_at=when,
                 effect_key=f"sale:{charge}", now=when, provider_ref=charge)
    entries.post(session, provider="stripe", kind="fee", magnitude=fee, currency="USD", occurred_at=when,
                 effect_key=f"fee:{charge}", now=when, provider_ref=charge)


def test_corrected_refund_counts_once_and_unpaid_sales_are_found(runtime):
    with runtime.sessions.begin() as s:
        sale(s, "ch_1", at(2))
        # Refunded in full, then the provider says 2000 only: the ledger books a correction.
        for amount, day in ((4900, 4), (2000, 6)):
            entries.settle(s, provider="stripe", kind="refund", magnitude=amount, currency="USD", occurred_at=at(day),
                           effect_key="refund:re_1", now=at(day), provider_ref="re_1")
        sale(s, "ch_2", at(20))   # paid out in April's first payout, after the period
        sale(s, "ch_3", at(5))    # in no payout at all
        sale(s, "ch_4", at(30))   # too recent to be expected in a payout yet
        pay_out(s, "po_mar", at(15), [line("txn_1", "sale", 4900, 172, "ch_1"),
                                      line("txn_re_1", "refund", -2000, 0, "re_1")])
        pay_out(s, "po_apr", at(2, 4), [line("txn_2", "sale", 4900, 172, "ch_2")])
    with runtime.reads() as s:
        found = provider_reconciliation.discrepancies(s, MARCH)
        detail = payouts.payout_detail(s, "po_mar")
    assert [(d["kind"], d["detail"]) for d in found] == [
        ("missing_at_provider", "sale ch_3 of 49.00 USD is in no payout of the provider's record")]
    assert [x["provider_ref"] for x in detail["lines"]] == ["txn_1", "txn_re_1"]
    assert detail["breakdown"]["unexplained"] == 0 and all(x["ledger"] for x in detail["lines"])


def test_fee_mismatch_and_a_movement_the_ledger_lacks(runtime):
    with runtime.sessions.begin() as s:
        sale(s, "ch_1", at(2), fee=172)
        pay_out(s, "po_mar", at(10), [line("txn_1", "sale", 4900, 180, "ch_1"),
                                      line("txn_9", "sale", 1500, 74, "ch_stray")])
    with runtime.reads() as s:
        found = provider_reconciliation.discrepancies(s, MARCH)
    assert [(d["kind"], d["detail"]) for d in found] == [
        ("missing_in_ledger", "sale ch_stray (txn_9) of 15.00 USD in payout po_mar is not in the ledger"),
        ("fee_mismatch", "ch_1: the provider's fee is 1.80 USD, the ledger's 1.72 USD"),
        ("payout_unexplained", "payout po_mar: unexplained 14.26 USD (1 line(s) not in the ledger)"),
    ]
