"""Parsing of Stripe snapshot events (bridge.providers.stripe.events) on factory payloads."""
from __future__ import annotations

import copy
import json
from dataclasses import fields, is_dataclass
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bridge.domain.events import (
    STRIPE, DisputeUpdated, FeeReported, Ignored, ParsedEvent, PaymentSucceeded, RefundUpdated,
    SubscriptionCanceled,
)
from bridge.providers.payload_errors import PayloadError
from bridge.providers.stripe.events import HANDLED_TYPES, parse
from tests.fixtures import stripe_payloads as sp

T0 = 1772359200  # 2026-03-01T10:00:00Z


def utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def only(parsed: ParsedEvent, kind: type):
    assert len(parsed.events) == 1, parsed.events
    event = parsed.events[0]
    assert isinstance(event, kind), event
    return event


# --- envelope ---------------------------------------------------------------------------------

def test_envelope_fields_and_unknown_type_ignored():
    payload = sp.unknown_event("customer.created", event_id="evt_unknown1", created=T0)
    parsed = parse(payload)
    assert parsed.provider == STRIPE
    assert parsed.provider_event_id == "evt_unknown1"
    assert parsed.event_type == "customer.created"
    assert parsed.occurred_at == utc(T0)
    ignored = only(parsed, Ignored)
    assert ignored.event_type == "customer.created" and ignored.occurred_at == utc(T0)


def test_unknown_type_never_raises_even_with_garbage():
    parsed = parse({"id": "evt_x", "type": "v1.billing.meter.error_report_triggered", "created": "yesterday",
                    "data": 5})
    assert only(parsed, Ignored).occurred_at is None
    assert parsed.occurred_at is None


@pytest.mark.parametrize("payload, field", [
    ([], "event"),
    ({"type": "charge.succeeded"}, "id"),
    ({"id": "evt_1"}, "type"),
    ({"id": "evt_1", "type": 7}, "type"),
])
def test_malformed_envelope(payload, field):
    with pytest.raises(PayloadError) as err:
        parse(payload)
    assert err.value.path == field


def test_known_type_without_data_object():
    payload = sp.charge_succeeded()
    del payload["data"]["object"]
    with pytest.raises(PayloadError, match=r"^data\.object: missing"):
        parse(payload)


def test_known_type_with_wrong_object_kind():
    payload = sp.charge_succeeded()
    payload["data"]["object"] = sp.refund_object()
    with pytest.raises(PayloadError, match=r"data\.object\.object: expected 'charge'"):
        parse(payload)


def test_handled_types_cover_the_issue():
    required = {
        "checkout.session.completed", "payment_intent.succeeded", "charge.succeeded", "charge.updated",
        "invoice.paid", "charge.refunded", "refund.created", "refund.updated", "refund.failed",
        "charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
        "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated", "customer.subscription.deleted",
    }
    assert required <= HANDLED_TYPES


# --- charges ----------------------------------------------------------------------------------

def test_charge_succeeded():
    payload = sp.charge_succeeded(charge_id="ch_1", payment_intent_id="pi_1", amount=4900, currency="usd",
                                  metadata={"order_id": "ord_1"}, customer="cus_1", email="a@example.com",
                                  country="de", created=T0, event_id="evt_1")
    parsed = parse(payload)
    pay = only(parsed, PaymentSucceeded)
    assert (pay.amount, pay.currency) == (4900, "USD")
    assert pay.paid_at == pay.occurred_at == utc(T0)
    assert pay.order_ref == "ord_1"
    assert (pay.customer_ref, pay.customer_email, pay.customer_country) == ("cus_1", "a@example.com", "DE")
    assert (pay.charge_id, pay.payment_intent_id) == ("ch_1", "pi_1")
    assert pay.purchase == "initial"  # our order id on the charge itself: a plain one-off payment
    assert pay.fee is None and pay.balance_transaction_id is None  # async capture: no fee yet
    assert pay.tax is None and pay.items == ()


def test_charge_without_our_metadata_cannot_tell_the_purchase():
    pay = only(parse(sp.charge_succeeded(metadata={})), PaymentSucceeded)
    assert pay.order_ref is None and pay.purchase is None


def test_charge_succeeded_jpy_is_zero_decimal():
    pay = only(parse(sp.charge_succeeded(amount=4980, currency="jpy")), PaymentSucceeded)
    assert (pay.amount, pay.currency) == (4980, "JPY")


def test_fee_arrives_later_by_charge_updated():
    first = parse(sp.charge_succeeded(charge_id="ch_fee", payment_intent_id="pi_fee", balance_transaction=None,
                                      created=T0))
    pay = only(first, PaymentSucceeded)
    assert pay.fee is None and pay.balance_transaction_id is None

    later = parse(sp.charge_updated(charge_id="ch_fee", payment_intent_id="pi_fee", balance_transaction="txn_fee1",
                                    charge_created=T0, created=T0 + 90))
    assert later.occurred_at == utc(T0 + 90)
    pay2, fee = later.events
    assert isinstance(pay2, PaymentSucceeded) and isinstance(fee, FeeReported)
    assert pay2.charge_id == "ch_fee" and pay2.balance_transaction_id == "txn_fee1"
    assert pay2.paid_at == utc(T0)  # the charge's own time, not the update's
    assert pay2.fee is None  # an id only: to be fetched, never 0
    assert (fee.charge_id, fee.payment_intent_id, fee.balance_transaction_id, fee.fee) == \
        ("ch_fee", "pi_fee", "txn_fee1", None)


def test_charge_updated_with_expanded_balance_transaction():
    bt = sp.balance_transaction(bt_id="txn_2", amount=4900, fee=172, currency="usd", source="ch_2")
    parsed = parse(sp.charge_updated(charge_id="ch_2", balance_transaction=bt))
    pay, fee = parsed.events
    assert pay.fee == 172 and pay.balance_transaction_id == "txn_2"
    assert (fee.fee, fee.currency) == (172, "USD")


def test_fee_in_another_settlement_currency_is_not_reported_as_the_charge_currency():
    bt = sp.balance_transaction(bt_id="txn_3", amount=3300, fee=126, currency="usd")
    pay, fee = parse(sp.charge_updated(amount=4980, currency="jpy", balance_transaction=bt)).events
    assert pay.currency == "JPY" and pay.fee is None
    assert (fee.fee, fee.currency) == (126, "USD")


def test_charge_succeeded_naming_a_balance_transaction_also_reports_the_fee_to_fetch():
    parsed = parse(sp.charge_succeeded(charge_id="ch_4", balance_transaction="txn_4"))
    pay, fee = parsed.events
    assert pay.balance_transaction_id == "txn_4"
    assert isinstance(fee, FeeReported) and fee.fee is None and fee.balance_transaction_id == "txn_4"


@pytest.mark.parametrize("kwargs, why", [
    ({"status": "pending"}, "pending"),
    ({"status": "failed"}, "failed"),
    ({"captured": False}, "not captured"),
])
def test_charge_not_captured_is_ignored(kwargs, why):
    ignored = only(parse(sp.charge_succeeded(**kwargs)), Ignored)
    assert why in ignored.why


def test_charge_updated_description_change_without_balance_transaction():
    parsed = parse(sp.charge_updated(balance_transaction=None, previous_attributes={"description": None}))
    assert [type(e) for e in parsed.events] == [PaymentSucceeded]


def test_payment_intent_succeeded():
    payload = sp.payment_intent_succeeded(payment_intent_id="pi_9", amount=12000, currency="jpy",
                                          metadata={"order_id": "ord_9"}, latest_charge="ch_9", customer="cus_9",
                                          created=T0 - 5)
    pay = only(parse(payload), PaymentSucceeded)
    assert (pay.amount, pay.currency, pay.order_ref) == (12000, "JPY", "ord_9")
    assert (pay.payment_intent_id, pay.charge_id, pay.customer_ref) == ("pi_9", "ch_9", "cus_9")
    assert pay.paid_at == utc(T0 - 5)
    assert pay.purchase == "initial" and pay.fee is None


def test_payment_intent_with_expanded_latest_charge_reads_the_fee():
    charge = sp.charge_object(charge_id="ch_x", balance_transaction=sp.balance_transaction(fee=300, currency="eur"),
                              currency="eur")
    pay = only(parse(sp.payment_intent_succeeded(currency="eur", latest_charge=charge)), PaymentSucceeded)
    assert pay.charge_id == "ch_x" and pay.fee == 300


# --- checkout sessions ------------------------------------------------------------------------

def test_checkout_session_completed_payment_mode():
    payload = sp.checkout_session_completed(session_id="cs_test_1", mode="payment", amount_total=5831,
                                            amount_tax=931, currency="eur", metadata={"order_id": "ord_meta"},
                                            client_reference_id="ord_ref", payment_intent="pi_cs", customer="cus_cs",
                                            email="b@example.com", country="FR", session_created=T0,
                                            event_id="evt_cs")
    parsed = parse(payload)
    pay = only(parsed, PaymentSucceeded)
    assert (pay.amount, pay.currency, pay.tax) == (5831, "EUR", 931)
    assert pay.order_ref == "ord_meta"  # metadata wins over client_reference_id
    assert (pay.checkout_session_id, pay.payment_intent_id) == ("cs_test_1", "pi_cs")
    assert (pay.customer_ref, pay.customer_email, pay.customer_country) == ("cus_cs", "b@example.com", "FR")
    assert pay.purchase == "initial"
    assert pay.paid_at == parsed.occurred_at == utc(T0 + 120)
    assert pay.items == ()  # line_items are expand-only


def test_checkout_session_client_reference_id_fallback_and_line_items():
    payload = sp.checkout_session_completed(
        client_reference_id="ord_cr", currency="jpy",
        line_items=[{"id": "li_a", "price_id": "price_a", "product_id": "prod_a", "amount": 5000, "tax": 500,
                     "price_metadata": {"category": "license", "sku": "pro", "item_id": "li_1"}},
                    {"id": "li_b", "price_id": "price_b", "amount": 1200, "interval": "month",
                     "metadata": {"category": "support"}}])
    pay = only(parse(payload), PaymentSucceeded)
    assert pay.order_ref == "ord_cr"
    assert (pay.amount, pay.currency, pay.tax) == (6700, "JPY", 500)
    a, b = pay.items
    assert (a.provider_item_id, a.price_id, a.product_id, a.amount, a.tax) == ("li_a", "price_a", "prod_a", 5500, 500)
    assert (a.category, a.billing, a.sku, a.item_ref) == ("license", "one_time", "pro", "li_1")
    assert (b.amount, b.category, b.billing) == (1200, "support", "monthly")


def test_checkout_session_subscription_mode():
    payload = sp.checkout_session_completed(mode="subscription", subscription="sub_cs", invoice="in_cs",
                                            metadata={"order_id": "ord_s"})
    pay = only(parse(payload), PaymentSucceeded)
    assert (pay.subscription_id, pay.invoice_id, pay.payment_intent_id) == ("sub_cs", "in_cs", None)
    assert pay.purchase == "initial"


@pytest.mark.parametrize("kwargs", [
    {"payment_status": "unpaid"},
    {"payment_status": "no_payment_required"},
    {"mode": "setup", "payment_status": "no_payment_required", "currency": None},
])
def test_checkout_session_without_payment_is_ignored(kwargs):
    only(parse(sp.checkout_session_completed(**kwargs)), Ignored)


def test_checkout_session_async_payment_succeeded():
    payload = sp.checkout_session_completed(event_type="checkout.session.async_payment_succeeded",
                                            client_reference_id="ord_async")
    assert only(parse(payload), PaymentSucceeded).order_ref == "ord_async"


# --- invoices ---------------------------------------------------------------------------------

def test_invoice_paid_first_subscription_invoice():
    payload = sp.invoice_paid(invoice_id="in_1", billing_reason="subscription_create", subscription="sub_1",
                              subscription_metadata={"order_id": "ord_sub"}, customer="cus_1", currency="usd",
                              lines=[{"id": "il_1", "price_id": "price_m", "product_id": "prod_m", "amount": 4900,
                                      "tax": 931}],
                              period_start=T0, period_end=T0 + 31 * 86400, created=T0, paid_at=T0 + 5)
    pay = only(parse(payload), PaymentSucceeded)
    assert (pay.amount, pay.currency, pay.tax) == (5831, "USD", 931)
    assert pay.purchase == "initial"
    assert (pay.invoice_id, pay.subscription_id, pay.customer_ref) == ("in_1", "sub_1", "cus_1")
    assert pay.order_ref == "ord_sub"
    assert pay.paid_at == utc(T0 + 5)
    # the first invoice's own period is zero-length: the service period comes from the line
    assert payload["data"]["object"]["period_start"] == payload["data"]["object"]["period_end"]
    assert (pay.period_start, pay.period_end) == (utc(T0), utc(T0 + 31 * 86400))
    (item,) = pay.items
    assert (item.provider_item_id, item.price_id, item.product_id, item.amount, item.tax) == \
        ("il_1", "price_m", "prod_m", 5831, 931)
    assert pay.charge_id is None and pay.payment_intent_id is None  # basil: no top-level charge/PI


def test_invoice_paid_renewal_uses_the_line_period_not_the_invoice_period():
    start, end = T0 + 31 * 86400, T0 + 59 * 86400
    payload = sp.invoice_paid(billing_reason="subscription_cycle", subscription="sub_1",
                              subscription_metadata={"order_id": "ord_sub"}, period_start=start, period_end=end,
                              created=start, currency="usd", lines=[{"amount": 4900}])
    inv = payload["data"]["object"]
    assert inv["period_end"] == start  # Stripe: the invoice period is the previous one
    pay = only(parse(payload), PaymentSucceeded)
    assert pay.purchase == "renewal"
    assert (pay.period_start, pay.period_end) == (utc(start), utc(end))
    assert pay.order_ref == "ord_sub" and pay.subscription_id == "sub_1"


def test_invoice_paid_jpy_with_inclusive_tax_and_discount():
    payload = sp.invoice_paid(currency="jpy", lines=[
        {"amount": 11000, "tax": 1000, "tax_behavior": "inclusive", "discount": 1000},
        {"amount": 3000, "tax": 300, "tax_behavior": "exclusive"},
    ])
    pay = only(parse(payload), PaymentSucceeded)
    assert pay.currency == "JPY"
    assert [i.amount for i in pay.items] == [10000, 3300]
    assert [i.tax for i in pay.items] == [1000, 300]
    assert pay.amount == 13300 and pay.tax == 1300


def test_invoice_line_catalog_fields_from_metadata_and_expanded_price():
    payload = sp.invoice_paid(lines=[
        {"metadata": {"category": "license", "billing": "annual", "sku": "pro-y", "item_id": "li_9"}},
        {"expand_price": True, "interval": "month", "price_metadata": {"category": "addon"}},
        {"price_id": "price_plain"},
    ])
    a, b, c = only(parse(payload), PaymentSucceeded).items
    assert (a.category, a.billing, a.sku, a.item_ref) == ("license", "annual", "pro-y", "li_9")
    assert (b.category, b.billing) == ("addon", "monthly")
    assert (c.price_id, c.category, c.billing) == ("price_plain", None, None)  # unknown: the catalog decides


@pytest.mark.parametrize("reason, purchase", [
    ("subscription_create", "initial"), ("subscription_cycle", "renewal"), ("subscription_update", None),
    ("manual", None), ("subscription_threshold", None),
])
def test_invoice_billing_reason_to_purchase(reason, purchase):
    assert only(parse(sp.invoice_paid(billing_reason=reason)), PaymentSucceeded).purchase == purchase


def test_invoice_order_ref_falls_back_to_invoice_metadata():
    pay = only(parse(sp.invoice_paid(billing_reason="manual", metadata={"order_id": "ord_inv"})), PaymentSucceeded)
    assert pay.order_ref == "ord_inv" and pay.subscription_id is None


def test_invoice_with_expanded_payments_names_the_payment_intent():
    pay = only(parse(sp.invoice_paid(payment_intent_id="pi_inv")), PaymentSucceeded)
    assert pay.payment_intent_id == "pi_inv"


def test_invoice_pre_basil_shape_still_parses():
    payload = sp.invoice_paid(billing_reason="subscription_cycle")
    inv = payload["data"]["object"]
    inv["parent"] = None
    inv["subscription"] = "sub_legacy"
    inv["payment_intent"] = "pi_legacy"
    inv["charge"] = "ch_legacy"
    payload["api_version"] = "2024-06-20"
    pay = only(parse(payload), PaymentSucceeded)
    assert (pay.subscription_id, pay.payment_intent_id, pay.charge_id) == ("sub_legacy", "pi_legacy", "ch_legacy")


def test_zero_amount_invoice_is_ignored():
    only(parse(sp.invoice_paid(amount_paid=0)), Ignored)


def test_invoice_payment_succeeded_is_parsed_like_invoice_paid():
    payload = sp.invoice_paid(event_type="invoice.payment_succeeded", invoice_id="in_ps")
    assert only(parse(payload), PaymentSucceeded).invoice_id == "in_ps"


# --- refunds ----------------------------------------------------------------------------------

def test_charge_refunded_without_refund_list():
    payload = sp.charge_refunded(charge_id="ch_r", payment_intent_id="pi_r", amount=4900, amount_refunded=1500,
                                 currency="usd", charge_created=T0, created=T0 + 86400)
    parsed = parse(payload)
    refund = only(parsed, RefundUpdated)
    assert refund.provider_refund_id is None
    assert (refund.amount, refund.charge_amount_refunded, refund.currency) == (1500, 1500, "USD")
    assert (refund.charge_id, refund.payment_intent_id) == ("ch_r", "pi_r")
    assert refund.status == "succeeded"
    assert refund.occurred_at == utc(T0 + 86400)


def test_charge_refunded_with_refund_list():
    payload = sp.charge_refunded(charge_id="ch_r2", amount=10000, currency="jpy", refunds=[
        {"refund_id": "re_a", "amount": 3000, "status": "succeeded", "metadata": {"refund_request_id": "rr_1"}},
        {"refund_id": "re_b", "amount": 2000, "status": "pending"},
    ])
    a, b = parse(payload).events
    assert (a.provider_refund_id, a.amount, a.status, a.refund_request_id) == ("re_a", 3000, "succeeded", "rr_1")
    assert (b.provider_refund_id, b.amount, b.status, b.refund_request_id) == ("re_b", 2000, "pending", None)
    assert a.charge_amount_refunded == b.charge_amount_refunded == 5000
    assert a.currency == "JPY" and a.charge_id == b.charge_id == "ch_r2"


@pytest.mark.parametrize("stripe_status, ours", [
    ("pending", "pending"), ("requires_action", "pending"), ("succeeded", "succeeded"),
    ("failed", "failed"), ("canceled", "canceled"),
])
@pytest.mark.parametrize("event_type", ["refund.created", "refund.updated", "charge.refund.updated"])
def test_refund_events_statuses(event_type, stripe_status, ours):
    payload = sp.refund_event(event_type, refund_id="re_1", charge_id="ch_1", payment_intent_id="pi_1",
                              amount=1200, currency="usd", status=stripe_status,
                              metadata={"refund_request_id": "rr_42"}, created=T0)
    refund = only(parse(payload), RefundUpdated)
    assert refund.status == ours
    assert (refund.provider_refund_id, refund.charge_id, refund.payment_intent_id) == ("re_1", "ch_1", "pi_1")
    assert (refund.amount, refund.currency, refund.refund_request_id) == (1200, "USD", "rr_42")
    assert refund.occurred_at == utc(T0)


def test_refund_failed():
    payload = sp.refund_event("refund.failed", amount=500, currency="jpy", failure_reason="expired_or_canceled_card")
    refund = only(parse(payload), RefundUpdated)
    assert (refund.status, refund.failure_reason, refund.amount, refund.currency) == \
        ("failed", "expired_or_canceled_card", 500, "JPY")
    assert refund.refund_request_id is None  # a refund made in the dashboard


def test_refund_unknown_status_is_a_payload_error():
    with pytest.raises(PayloadError, match=r"data\.object\.status: unknown refund status 'exploded'"):
        parse(sp.refund_event("refund.updated", status="exploded"))


# --- disputes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("stripe_status, ours", [
    ("warning_needs_response", "warning"), ("warning_under_review", "warning"), ("warning_closed", "won"),
    ("needs_response", "open"), ("under_review", "open"), ("appeal_needs_response", "open"),
    ("appeal_under_review", "open"), ("won", "won"), ("lost", "lost"), ("prevented", "won"),
])
def test_dispute_status_map(stripe_status, ours):
    payload = sp.dispute_event("charge.dispute.updated", dispute_id="du_1", charge_id="ch_1",
                               payment_intent_id="pi_1", status=stripe_status, amount=4900, currency="usd")
    dispute = only(parse(payload), DisputeUpdated)
    assert dispute.status == ours and dispute.provider_status == stripe_status
    assert (dispute.provider_dispute_id, dispute.charge_id, dispute.payment_intent_id) == ("du_1", "ch_1", "pi_1")
    assert dispute.funds_withdrawn is None and dispute.funds_reinstated is None and dispute.fee is None


def test_dispute_created():
    payload = sp.dispute_event("charge.dispute.created", amount=4900, currency="usd", reason="product_not_received",
                               created=T0, evidence_due_by=T0 + 7 * 86400)
    dispute = only(parse(payload), DisputeUpdated)
    assert (dispute.amount, dispute.currency, dispute.reason, dispute.status) == \
        (4900, "USD", "product_not_received", "open")
    assert dispute.evidence_due_by == utc(T0 + 7 * 86400)


def test_dispute_due_by_zero_means_no_response_allowed():
    dispute = only(parse(sp.dispute_event(evidence_due_by=0)), DisputeUpdated)
    assert dispute.evidence_due_by is None


def test_dispute_funds_withdrawn_jpy():
    payload = sp.dispute_event("charge.dispute.funds_withdrawn", amount=9800, currency="jpy", dispute_fee=2000)
    dispute = only(parse(payload), DisputeUpdated)
    assert (dispute.funds_withdrawn, dispute.fee, dispute.currency) == (9800, 2000, "JPY")
    assert dispute.funds_reinstated is None


def test_dispute_funds_reinstated_reads_only_the_reinstatement():
    payload = sp.dispute_event("charge.dispute.funds_reinstated", amount=4900, currency="usd", dispute_fee=1500)
    assert len(payload["data"]["object"]["balance_transactions"]) == 2
    dispute = only(parse(payload), DisputeUpdated)
    assert dispute.status == "won"
    assert (dispute.funds_reinstated, dispute.fee_reinstated, dispute.funds_withdrawn) == (4900, 1500, None)
    assert dispute.fee is None  # ``fee`` is only a fee charged


def test_dispute_won_without_the_fee_back():
    payload = sp.dispute_event("charge.dispute.funds_reinstated", amount=4900, dispute_fee_returned=False)
    dispute = only(parse(payload), DisputeUpdated)
    assert (dispute.funds_reinstated, dispute.fee_reinstated, dispute.fee) == (4900, None, None)


def test_dispute_settled_in_another_currency():
    bt = sp.balance_transaction(amount=-3300, fee=1500, currency="usd", type="adjustment")
    payload = sp.dispute_event("charge.dispute.funds_withdrawn", amount=4980, currency="jpy",
                               balance_transactions=[bt])
    dispute = only(parse(payload), DisputeUpdated)
    assert (dispute.funds_withdrawn, dispute.fee) == (4980, None)


def test_dispute_funds_withdrawn_without_a_withdrawal_is_a_payload_error():
    payload = sp.dispute_event("charge.dispute.funds_withdrawn", balance_transactions=[])
    with pytest.raises(PayloadError, match="balance_transactions"):
        parse(payload)


def test_dispute_closed_lost():
    dispute = only(parse(sp.dispute_event("charge.dispute.closed", status="lost")), DisputeUpdated)
    assert dispute.status == "lost" and dispute.funds_withdrawn is None


# --- subscriptions ----------------------------------------------------------------------------

def test_subscription_deleted():
    payload = sp.subscription_deleted(subscription_id="sub_d", metadata={"order_id": "ord_d"},
                                      current_period_start=T0, current_period_end=T0 + 30 * 86400,
                                      canceled_at=T0 + 86400, ended_at=T0 + 86400, created=T0 + 86400,
                                      items=[{}, {"current_period_end": T0 + 10 * 86400}])
    cancel = only(parse(payload), SubscriptionCanceled)
    assert cancel.subscription_id == "sub_d" and cancel.order_ref == "ord_d"
    assert cancel.canceled_at == utc(T0 + 86400)
    assert cancel.access_ends_at == utc(T0 + 30 * 86400)  # latest item period end
    assert "current_period_end" not in payload["data"]["object"]  # basil: not at top level


def test_subscription_deleted_pre_basil_period():
    payload = sp.subscription_deleted()
    sub = payload["data"]["object"]
    for item in sub["items"]["data"]:
        del item["current_period_end"]
    sub["current_period_end"] = T0 + 5
    assert only(parse(payload), SubscriptionCanceled).access_ends_at == utc(T0 + 5)


# --- malformed known payloads -----------------------------------------------------------------

@pytest.mark.parametrize("mutate, message", [
    (lambda o: (o.pop("amount_captured"), o.pop("amount")), r"data\.object\.amount: missing"),
    (lambda o: o.update(amount_captured="49.00"), r"data\.object\.amount_captured: expected an amount"),
    (lambda o: o.update(amount_captured=49.5), r"data\.object\.amount_captured"),
    (lambda o: o.update(currency="dollars"), r"data\.object\.currency: not an ISO 4217"),
    (lambda o: o.update(created="2026-03-01"), r"data\.object\.created: expected a unix timestamp"),
    (lambda o: o.update(metadata=["order_id"]), r"data\.object\.metadata: expected an object"),
    (lambda o: o.update(metadata={"order_id": {"x": 1}}), r"data\.object\.metadata\.order_id"),
    (lambda o: o.update(billing_details="x"), r"data\.object\.billing_details"),
])
def test_malformed_charge(mutate, message):
    payload = sp.charge_succeeded()
    mutate(payload["data"]["object"])
    with pytest.raises(PayloadError, match=message):
        parse(payload)


def test_malformed_invoice_line():
    payload = sp.invoice_paid(lines=[{}, {}])
    payload["data"]["object"]["lines"]["data"][1]["taxes"] = [{"amount": "lots"}]
    with pytest.raises(PayloadError, match=r"data\.object\.lines\.data\[1\]\.taxes\[0\]\.amount"):
        parse(payload)


# --- factories --------------------------------------------------------------------------------

def test_factories_are_deterministic_given_ids_and_random_otherwise():
    kwargs = dict(event_id="evt_same", charge_id="ch_same", amount=100)
    assert sp.charge_succeeded(**kwargs) == sp.charge_succeeded(**kwargs)
    a, b = sp.charge_succeeded(), sp.charge_succeeded()
    assert a["id"] != b["id"] and a["data"]["object"]["id"] != b["data"]["object"]["id"]
    inv = dict(event_id="evt_i", invoice_id="in_same", lines=[{}, {"amount": 5}])
    assert sp.invoice_paid(**inv) == sp.invoice_paid(**inv)


def test_factories_render_the_pinned_api_version_as_json():
    for payload in _BASES:
        assert payload["api_version"] == "2026-10-28.endive"
        assert payload["object"] == "event"
        json.dumps(payload)
    inv = sp.invoice_object()
    assert "subscription" not in inv and "charge" not in inv and "payment_intent" not in inv
    assert "invoice" not in sp.charge_object()


# --- hypothesis: random mutations never raise anything but PayloadError ------------------------

_BASES = [
    sp.charge_succeeded(event_id="evt_h1", charge_id="ch_h1", metadata={"order_id": "ord_h"}),
    sp.charge_updated(event_id="evt_h2", charge_id="ch_h2",
                      balance_transaction=sp.balance_transaction(bt_id="txn_h2", currency="usd")),
    sp.payment_intent_succeeded(event_id="evt_h3", payment_intent_id="pi_h3", metadata={"order_id": "ord_h"}),
    sp.checkout_session_completed(event_id="evt_h4", session_id="cs_test_h4", client_reference_id="ord_h",
                                  line_items=[{"price_id": "price_h", "product_id": "prod_h", "tax": 10,
                                               "price_metadata": {"category": "license"}}]),
    sp.invoice_paid(event_id="evt_h5", invoice_id="in_h5", billing_reason="subscription_cycle",
                    subscription="sub_h", subscription_metadata={"order_id": "ord_h"}, payment_intent_id="pi_h5",
                    lines=[{"amount": 1000, "tax": 190, "discount": 100, "expand_price": True}, {"amount": 50}]),
    sp.charge_refunded(event_id="evt_h6", charge_id="ch_h6", refunds=[{"refund_id": "re_h6", "amount": 100}]),
    sp.refund_event("refund.updated", event_id="evt_h7", refund_id="re_h7", metadata={"refund_request_id": "rr_h"}),
    sp.dispute_event("charge.dispute.funds_withdrawn", event_id="evt_h8", dispute_id="du_h8", currency="jpy"),
    sp.dispute_event("charge.dispute.funds_reinstated", event_id="evt_h9", dispute_id="du_h9"),
    sp.subscription_deleted(event_id="evt_h10", subscription_id="sub_h10", metadata={"order_id": "ord_h"}),
]

_SPECIAL = st.sampled_from([None, "", "0", "-1", "4900", "49.00", 0, -1, 1, 2**64, -2**64, 1.5, True, False,
                            [], {}, "usd", "JPY", "x", "2026-03-01T10:00:00Z", {"id": "x"}, ["a"]])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _paths(node, prefix=()):
    if prefix:
        yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, prefix + (index,))


def _check_event(event) -> None:
    assert is_dataclass(event)
    for f in fields(event):
        value = getattr(event, f.name)
        if isinstance(value, datetime):
            assert value.utcoffset() is not None and value.utcoffset().total_seconds() == 0
        elif f.name == "currency" and value is not None:
            assert isinstance(value, str) and len(value) == 3 and value.isupper()
        elif f.name in ("amount", "fee", "tax", "funds_withdrawn", "funds_reinstated") and value is not None:
            assert type(value) is int
        elif f.name == "items":
            for item in value:
                _check_event(item)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_mutations_raise_only_payload_error(data):
    payload = copy.deepcopy(data.draw(st.sampled_from(_BASES)))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        paths = list(_paths(payload))
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = payload
        for step in path[:-1]:
            parent = parent[step]
        if data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(data.draw(_SPECIAL | _JSON))
    try:
        parsed = parse(payload)
    except PayloadError as err:
        assert str(err)
        event("PayloadError")
        return
    event("parsed: " + ",".join(sorted({type(e).__name__ for e in parsed.events})))
    assert isinstance(parsed, ParsedEvent)
    for neutral in parsed.events:
        _check_event(neutral)
