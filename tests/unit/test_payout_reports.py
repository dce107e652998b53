"""Paddle's payout reconciliation report read into payout lines, and the payout events of both
providers parsed into ``PayoutUpdated`` (pure: no server, no database)."""
from __future__ import annotations

import pytest

from bridge.domain.events import Ignored, PayoutUpdated
from bridge.providers.paddle import reports
from bridge.providers.paddle.events import parse as parse_paddle
from bridge.providers.payload_errors import PayloadError
from bridge.providers.stripe.events import parse as parse_stripe

HEADER = ("balance_movement_type,transaction_id,adjustment_id,balance_currency_code,transaction_currency_code,"
          "gross_in_transaction_currency,tax_in_balance_currency,paddle_fee_in_balance_currency,"
          "fx_fee_in_balance_currency,chargeback_fee_in_balance_currency,balance_movement_in_balance_currency\n")


def test_rows_become_lines_in_the_payout_currency_summing_to_the_movements():
    text = HEADER + (
        "sale,txn_1,,USD,USD,49.00,0.00,2.45,0.00,0,46.55\n"
        "refund,txn_1,adj_1,USD,USD,-10.00,0.00,-0.50,0.00,0,-9.50\n"
        "chargeback,txn_2,adj_2,USD,USD,-29.00,0.00,0.00,0.00,15.00,-44.00\n"
        "chargeback_reverse,txn_2,adj_3,USD,USD,29.00,0.00,0.00,0.00,0,29.00\n"
        "swift_fee,,,USD,,,,0,0,0,-25.00\n")
    lines = reports.payout_lines(text, "usd")
    assert [(x.kind, x.source_ref, x.gross, x.fee, x.amount) for x in lines] == [
        ("sale", "txn_1", 4900, 245, 4655), ("refund", "adj_1", -1000, -50, -950),
        ("chargeback", "paddle:txn_2", -2900, 1500, -4400), ("chargeback_reversal", "paddle:txn_2", 2900, 0, 2900),
        ("fee", None, -2500, 0, -2500)]
    assert sum(x.amount for x in lines) == 4655 - 950 - 4400 + 2900 - 2500
    assert len({x.provider_ref for x in lines}) == len(lines) and all(x.currency == "USD" for x in lines)


def test_tax_paddle_keeps_is_its_own_line_and_a_converted_row_keeps_its_original_amount():
    text = HEADER + "sale,txn_9,,USD,EUR,50.00,8.00,3.00,0.40,0,44.60\n"
    sale, tax = reports.payout_lines(text, "USD")
    # The balance moved 44.60: the buyer's 55.60 (tax in) less 3.40 fees, less the 8.00 tax.
    assert (sale.kind, sale.gross, sale.fee, sale.amount) == ("sale", 5600, 340, 5260)
    assert (sale.original_amount, sale.original_currency, sale.exchange_rate) == (5000, "EUR", None)
    assert (tax.kind, tax.amount, tax.source_ref) == ("tax", -800, None)
    assert sale.amount + tax.amount == 4460


def test_zero_decimal_currency_amounts_are_whole_units():
    text = HEADER + "sale,txn_j,,JPY,JPY,4900,0,245,0,0,4655\n"
    (line,) = reports.payout_lines(text, "JPY")
    assert (line.gross, line.fee, line.amount) == (4900, 245, 4655)


@pytest.mark.parametrize("text, why", [
    ("transaction_id,amount\ntxn_1,1.00\n", "no column"),
    (HEADER + "sale,txn_1,,USD,USD,49.00,0,2.45,0,0,46.555\n", "finer than"),
    (HEADER + "sale,txn_1,,USD,USD,49.00,0,2.45,0,0,lots\n", "not an amount"),
    (HEADER + "sale,txn_1,,USD,USD,49.00,0,2.45,0,0,Infinity\n", "not an amount"),
    (HEADER + "sale,txn_1,,USD,USD,49.00,0,2.45,0,0,NaN\n", "not an amount"),
    (HEADER + "sale,txn_1,,USD,USD,49.00,0,2.45,0,0,1e30\n", "out of range|too large|at most"),
    (HEADER + "sale,txn_1,,EUR,EUR,49.00,0,2.45,0,0,46.55\n", "balance currency EUR"),
])
def test_a_report_the_bridge_cannot_read_is_refused_whole(text, why):
    with pytest.raises(reports.ReportUnreadable, match=why):
        reports.payout_lines(text, "USD")


def test_report_matching_needs_our_type_and_exactly_our_reference():
    mine = {"type": "payout_reconciliation", "filters": [{"name": "remittance_reference", "value": ["10374"]}]}
    assert reports.is_report_for(mine, "10374")
    assert not reports.is_report_for({**mine, "type": "transactions"}, "10374")
    assert not reports.is_report_for(mine, "10375")
    assert not reports.is_report_for({**mine, "filters": mine["filters"] + [
        {"name": "balance_movement_type", "value": ["sale"]}]}, "10374")


def _paddle(event_type, data):
    return parse_paddle({"event_id": "evt_1", "event_type": event_type, "occurred_at": "2026-11-01T10:00:00.000000Z",
                         "notification_id": "ntf_1", "data": data})


def test_paddle_payout_paid_with_a_numeric_reference_is_itemizable():
    (ev,) = _paddle("payout.paid", {"id": "payout_1", "status": "paid", "amount": "177497", "currency_code": "EUR",
                                    "remittance_reference": 10374}).events
    assert isinstance(ev, PayoutUpdated)
    assert (ev.payout_id, ev.amount, ev.currency, ev.status, ev.reference, ev.itemizable) == (
        "payout_1", 177497, "EUR", "paid", "10374", True)
    assert ev.created == ev.occurred_at  # the entity has no timestamps


def test_paddle_payout_created_is_pending_and_not_yet_itemized():
    (ev,) = _paddle("payout.created", {"id": "payout_1", "status": "unpaid", "amount": "100", "currency_code": "USD",
                                       "remittance_reference": "10374"}).events
    assert (ev.status, ev.itemizable) == ("pending", False)
    (note,) = _paddle("payout.paid", {"id": "payout_1", "status": "held", "amount": "100",
                                      "currency_code": "USD"}).events
    assert isinstance(note, Ignored) and note.unknown_value
    with pytest.raises(PayloadError, match="amount"):
        _paddle("payout.paid", {"id": "payout_1", "status": "paid", "amount": "1.5", "currency_code": "USD"})


def _stripe(event_type, obj):
    return parse_stripe({"id": "evt_1", "object": "event", "type": event_type, "created": 1793000000,
                         "data": {"object": {"object": "payout", **obj}}})


def test_stripe_payout_events_say_status_and_whether_it_can_be_itemized():
    base = {"id": "po_1", "amount": 177497, "currency": "usd", "created": 1792990000, "arrival_date": 1793100000,
            "automatic": True, "reconciliation_status": "completed"}
    (paid,) = _stripe("payout.paid", {**base, "status": "paid"}).events
    assert (paid.payout_id, paid.amount, paid.currency, paid.status, paid.itemizable) == (
        "po_1", 177497, "USD", "paid", True)
    (failed,) = _stripe("payout.failed", {**base, "status": "failed"}).events
    assert failed.status == "failed"
    (manual,) = _stripe("payout.paid", {**base, "status": "paid", "automatic": False}).events
    assert manual.itemizable is False          # Stripe cannot itemize a manual payout
    (early,) = _stripe("payout.created", {**base, "status": "pending", "reconciliation_status": "in_progress"}).events
    assert early.itemizable is False
