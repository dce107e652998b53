"""Parsing of Paddle Billing notifications (bridge.providers.paddle.events) on factory payloads."""
from __future__ import annotations

import copy
import json
from dataclasses import fields, is_dataclass
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bridge.domain.events import (
    PADDLE, DisputeUpdated, Ignored, ParsedEvent, PaymentSucceeded, RefundItem, RefundUpdated, SubscriptionCanceled,
)
from bridge.providers.paddle.events import HANDLED_TYPES, extract_refund_request_id, parse
from bridge.providers.payload_errors import PayloadError
from tests.fixtures import paddle_payloads as pp

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)


def only(parsed: ParsedEvent, kind: type):
    assert len(parsed.events) == 1, parsed.events
    event = parsed.events[0]
    assert isinstance(event, kind), event
    return event


# --- envelope ---------------------------------------------------------------------------------

def test_envelope_and_unknown_type():
    payload = pp.unknown_event("customer.updated", event_id="evt_01unknown", occurred_at=T0)
    parsed = parse(payload)
    assert (parsed.provider, parsed.provider_event_id, parsed.event_type) == (PADDLE, "evt_01unknown",
                                                                             "customer.updated")
    assert parsed.occurred_at == T0
    assert only(parsed, Ignored).event_type == "customer.updated"


def test_unknown_type_never_raises():
    parsed = parse({"event_id": "evt_1", "event_type": "transaction.paid", "occurred_at": 12, "data": None})
    assert only(parsed, Ignored).occurred_at is None


def test_occurred_at_with_nanoseconds_and_offset():
    payload = pp.subscription_canceled()
    payload["occurred_at"] = "2026-03-01T11:00:00.123456789+01:00"
    parsed = parse(payload)
    assert parsed.occurred_at == T0 + timedelta(microseconds=123456)
    assert parsed.occurred_at.tzinfo == timezone.utc


@pytest.mark.parametrize("payload, field", [
    ("not json object", "notification"),
    ({"event_type": "transaction.completed"}, "event_id"),
    ({"event_id": "evt_1"}, "event_type"),
])
def test_malformed_envelope(payload, field):
    with pytest.raises(PayloadError) as err:
        parse(payload)
    assert err.value.path == field


@pytest.mark.parametrize("occurred_at", [None, "2026-03-01", "2026-03-01T10:00:00", "yesterday", 1772359200])
def test_known_type_needs_an_rfc3339_time(occurred_at):
    payload = pp.transaction_completed()
    payload["occurred_at"] = occurred_at
    with pytest.raises(PayloadError, match="^occurred_at"):
        parse(payload)


def test_handled_types():
    assert {"transaction.completed", "adjustment.created", "adjustment.updated", "subscription.canceled"} \
        <= HANDLED_TYPES


# --- transaction.completed --------------------------------------------------------------------

def test_one_time_transaction():
    payload = pp.transaction_completed(
        txn_id="txn_01one", origin="web", custom_data={"order_id": "ord_1"}, currency="USD", fee=295,
        customer_id="ctm_01buyer", created_at=T0 - timedelta(minutes=1), captured_at=T0 - timedelta(seconds=30),
        occurred_at=T0, failed_attempt_first=True,
        items=[{"id": "txnitm_01a", "price_id": "pri_01a", "product_id": "pro_01a", "amount": 4900, "tax": 782,
                "custom_data": {"category": "license", "sku": "pro", "item_id": "li_1"}},
               {"id": "txnitm_01b", "price_id": "pri_01b", "product_id": "pro_01b", "amount": 1000, "tax": 160,
                "quantity": 2, "product_custom_data": {"category": "addon", "billing": "one_time"}}])
    assert payload["data"]["details"]["totals"]["total"] == "5900"  # strings of minor units
    parsed = parse(payload)
    pay = only(parsed, PaymentSucceeded)
    assert (pay.amount, pay.currency, pay.tax, pay.fee) == (5900, "USD", 942, 295)
    assert (pay.order_ref, pay.customer_ref, pay.transaction_id) == ("ord_1", "ctm_01buyer", "txn_01one")
    assert pay.customer_email is None and pay.customer_country is None  # not inline in Paddle
    assert pay.purchase == "initial"
    assert pay.subscription_id is None and pay.period_start is None and pay.period_end is None
    assert pay.paid_at == T0 - timedelta(seconds=30)  # the captured attempt, not the declined one
    assert pay.occurred_at == parsed.occurred_at == T0
    a, b = pay.items
    assert (a.provider_item_id, a.price_id, a.product_id, a.amount, a.tax, a.quantity) == \
        ("txnitm_01a", "pri_01a", "pro_01a", 4900, 782, 1)
    assert (a.category, a.billing, a.sku, a.item_ref) == ("license", "one_time", "pro", "li_1")
    assert (b.provider_item_id, b.amount, b.quantity, b.category, b.billing) == ("txnitm_01b", 1000, 2, "addon",
                                                                                "one_time")


def test_renewal_transaction():
    start, end = T0, T0 + timedelta(days=31)
    payload = pp.transaction_completed(
        origin="subscription_recurring", subscription_id="sub_01r", custom_data={"order_id": "ord_r"},
        billing_period=(start, end), items=[{"price_id": "pri_01m", "amount": 2900, "billing_cycle": "month",
                                             "custom_data": {"category": "plan"}}])
    pay = only(parse(payload), PaymentSucceeded)
    assert pay.purchase == "renewal"
    assert (pay.period_start, pay.period_end) == (start, end)
    assert pay.subscription_id == "sub_01r" and pay.order_ref == "ord_r"
    (item,) = pay.items
    assert (item.category, item.billing) == ("plan", "monthly")


@pytest.mark.parametrize("cycle, billing", [
    (None, "one_time"), ("month", "monthly"), ("year", "annual"), ({"interval": "month", "frequency": 12}, "annual"),
    ({"interval": "month", "frequency": 3}, None), ({"interval": "week", "frequency": 1}, None),
])
def test_billing_from_price_cycle(cycle, billing):
    payload = pp.transaction_completed(origin="web", items=[{"billing_cycle": cycle}])
    assert only(parse(payload), PaymentSucceeded).items[0].billing == billing


def test_custom_data_billing_wins_over_cycle_and_price_over_product():
    payload = pp.transaction_completed(items=[{"billing_cycle": "month", "custom_data": {"billing": "annual",
                                                                                         "category": "price-cat"},
                                               "product_custom_data": {"category": "product-cat", "sku": "s1"}}])
    item = only(parse(payload), PaymentSucceeded).items[0]
    assert (item.billing, item.category, item.sku) == ("annual", "price-cat", "s1")


@pytest.mark.parametrize("origin, purchase", [
    ("web", "initial"), ("api", "initial"), ("subscription_recurring", "renewal"),
    ("subscription_charge", "initial"), ("subscription_update", "initial"),
])
def test_origin_to_purchase(origin, purchase):
    assert only(parse(pp.transaction_completed(origin=origin)), PaymentSucceeded).purchase == purchase


def test_jpy_transaction():
    payload = pp.transaction_completed(currency="JPY", items=[{"amount": 5500, "tax": 500}], fee=325)
    assert payload["data"]["details"]["payout_totals"]["currency_code"] == "USD"  # JPY is not a payout currency
    pay = only(parse(payload), PaymentSucceeded)
    assert (pay.amount, pay.currency, pay.tax, pay.fee) == (5500, "JPY", 500, 325)
    assert pay.items[0].amount == 5500


def test_fee_falls_back_to_payout_totals_in_the_same_currency():
    payload = pp.transaction_completed(currency="EUR", fee=300)
    payload["data"]["details"]["totals"]["fee"] = None
    assert only(parse(payload), PaymentSucceeded).fee == 300


def test_fee_in_another_payout_currency_is_unknown():
    payload = pp.transaction_completed(currency="JPY", items=[{"amount": 5500}], fee=325)
    payload["data"]["details"]["totals"]["fee"] = None
    assert only(parse(payload), PaymentSucceeded).fee is None


def test_fee_null_before_completion_is_none_not_zero():
    payload = pp.transaction_completed(fee=None)
    assert payload["data"]["details"]["payout_totals"] is None
    assert only(parse(payload), PaymentSucceeded).fee is None


def test_paid_at_falls_back_to_billed_at_then_occurred_at():
    payload = pp.transaction_completed(billed_at=T0 - timedelta(seconds=3), occurred_at=T0)
    payload["data"]["payments"] = []
    assert only(parse(payload), PaymentSucceeded).paid_at == T0 - timedelta(seconds=3)
    payload["data"]["billed_at"] = None
    assert only(parse(payload), PaymentSucceeded).paid_at == T0


def test_null_custom_data_means_no_order_ref():
    assert only(parse(pp.transaction_completed(custom_data=None)), PaymentSucceeded).order_ref is None


def test_numeric_order_id_is_stringified():
    assert only(parse(pp.transaction_completed(custom_data={"order_id": 1234})), PaymentSucceeded).order_ref == "1234"


def test_zero_value_transaction_is_ignored():
    payload = pp.transaction_completed(origin="subscription_payment_method_change", items=[{"amount": 0}])
    only(parse(payload), Ignored)


# --- adjustments: refunds ---------------------------------------------------------------------

@pytest.mark.parametrize("paddle_status, ours", [
    ("pending_approval", "pending"), ("approved", "succeeded"), ("rejected", "failed"), ("reversed", "canceled"),
])
@pytest.mark.parametrize("event_type", ["adjustment.created", "adjustment.updated"])
def test_refund_adjustment_statuses(event_type, paddle_status, ours):
    payload = pp.adjustment_event(event_type, adjustment_id="adj_01r", action="refund", status=paddle_status,
                                  transaction_id="txn_01t", currency="USD",
                                  items=[{"item_id": "txnitm_01a", "amount": 1500, "tax": 240}],
                                  reason="Refund for request rr_01HZX9 (not satisfied)", occurred_at=T0)
    refund = only(parse(payload), RefundUpdated)
    assert refund.status == ours
    assert (refund.provider_refund_id, refund.transaction_id, refund.amount, refund.currency) == \
        ("adj_01r", "txn_01t", 1500, "USD")
    assert refund.refund_request_id == "rr_01HZX9"
    assert refund.items == (RefundItem("txnitm_01a", 1500),)
    assert refund.occurred_at == T0


def test_unsolicited_full_refund_in_jpy():
    payload = pp.adjustment_event(action="refund", status="approved", currency="JPY", total=5500, items=[],
                                  reason="buyer contacted Paddle support")
    refund = only(parse(payload), RefundUpdated)
    assert (refund.amount, refund.currency, refund.refund_request_id, refund.items) == (5500, "JPY", None, ())


def test_full_type_item_without_amount_uses_item_totals():
    payload = pp.adjustment_event(items=[{"item_id": "txnitm_01z", "amount": 700, "type": "full"}])
    payload["data"]["items"][0]["amount"] = None
    assert only(parse(payload), RefundUpdated).items == (RefundItem("txnitm_01z", 700),)


@pytest.mark.parametrize("reason, expected", [
    ("rr_abc123", "rr_abc123"),
    ("Refund rr_01J9XYZ requested; also rr_second", "rr_01J9XYZ"),
    ("refund (rr_7)", "rr_7"),
    ("xrr_abc is not ours", None),
    ("no id here", None),
    ("", None),
    (None, None),
])
def test_extract_refund_request_id(reason, expected):
    assert extract_refund_request_id(reason) == expected


def test_unknown_adjustment_status_is_a_payload_error():
    with pytest.raises(PayloadError, match=r"data\.status: unknown adjustment status"):
        parse(pp.adjustment_event(status="approved_ish"))


# --- adjustments: chargebacks -----------------------------------------------------------------

@pytest.mark.parametrize("action, status, withdrawn, reinstated, fee", [
    ("chargeback_warning", "warning", None, None, None),  # no money until the chargeback
    ("chargeback", "lost", 4900, None, 1500),
    ("chargeback_reverse", "won", None, 4900, None),
    ("chargeback_warning_reverse", "won", None, None, None),
])
def test_chargeback_actions(action, status, withdrawn, reinstated, fee):
    payload = pp.adjustment_event(action=action, transaction_id="txn_01cb", currency="USD", total=4900,
                                  occurred_at=T0)
    dispute = only(parse(payload), DisputeUpdated)
    assert dispute.provider_dispute_id == "paddle:txn_01cb"
    assert dispute.transaction_id == "txn_01cb"
    assert (dispute.status, dispute.provider_status) == (status, action)
    assert (dispute.funds_withdrawn, dispute.funds_reinstated, dispute.fee) == (withdrawn, reinstated, fee)
    assert (dispute.amount, dispute.currency) == (4900, "USD")


def test_chargeback_jpy_fee_in_payout_currency_uses_the_original_when_it_matches():
    payload = pp.adjustment_event(action="chargeback", currency="JPY", total=9800, chargeback_fee=1500,
                                  chargeback_fee_original=(2300, "JPY"))
    assert payload["data"]["payout_totals"]["currency_code"] == "USD"
    dispute = only(parse(payload), DisputeUpdated)
    assert (dispute.amount, dispute.currency, dispute.funds_withdrawn, dispute.fee) == (9800, "JPY", 9800, 2300)


def test_chargeback_fee_in_another_currency_without_original_is_unknown():
    payload = pp.adjustment_event(action="chargeback", currency="JPY", total=9800, chargeback_fee=1500)
    assert only(parse(payload), DisputeUpdated).fee is None


def test_negative_reversal_totals_are_taken_as_positive():
    payload = pp.adjustment_event(action="chargeback_reverse", total=4900)
    payload["data"]["totals"]["total"] = "-4900"
    assert only(parse(payload), DisputeUpdated).funds_reinstated == 4900


def test_chargeback_update_and_rejection_are_ignored():
    only(parse(pp.adjustment_event("adjustment.updated", action="chargeback", status="reversed")), Ignored)
    only(parse(pp.adjustment_event(action="chargeback", status="rejected")), Ignored)


@pytest.mark.parametrize("action", ["credit", "credit_reverse"])
def test_credits_are_ignored(action):
    ignored = only(parse(pp.adjustment_event(action=action, status="approved")), Ignored)
    assert action in ignored.why


def test_unknown_action_is_a_payload_error():
    with pytest.raises(PayloadError, match=r"data\.action: unknown adjustment action 'gift'"):
        parse(pp.adjustment_event(action="gift"))


# --- subscription.canceled --------------------------------------------------------------------

def test_subscription_canceled_with_current_period():
    end = T0 + timedelta(days=20)
    payload = pp.subscription_canceled(subscription_id="sub_01c", custom_data={"order_id": "ord_c"},
                                       canceled_at=T0, current_billing_period=(T0 - timedelta(days=10), end))
    cancel = only(parse(payload), SubscriptionCanceled)
    assert (cancel.subscription_id, cancel.order_ref, cancel.canceled_at, cancel.access_ends_at) == \
        ("sub_01c", "ord_c", T0, end)


def test_subscription_canceled_with_scheduled_change():
    effective = T0 + timedelta(days=3)
    payload = pp.subscription_canceled(canceled_at=T0, scheduled_change=("cancel", effective))
    assert only(parse(payload), SubscriptionCanceled).access_ends_at == effective


def test_subscription_canceled_as_paddle_sends_it():
    payload = pp.subscription_canceled(canceled_at=T0, custom_data=None)
    assert payload["data"]["current_billing_period"] is None and payload["data"]["scheduled_change"] is None
    cancel = only(parse(payload), SubscriptionCanceled)
    assert cancel.access_ends_at == cancel.canceled_at == T0 and cancel.order_ref is None


# --- malformed known payloads -----------------------------------------------------------------

@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("id"), r"^data\.id: missing"),
    (lambda d: d.update(currency_code="yens"), r"data\.currency_code: not an ISO 4217"),
    (lambda d: d["details"]["totals"].update(total="49.00", grand_total=None), r"data\.details\.totals\.total"),
    (lambda d: d["details"]["totals"].update(grand_total=4900.0), r"data\.details\.totals\.grand_total"),
    (lambda d: d["details"].pop("line_items"), r"data\.details\.line_items: missing"),
    (lambda d: d["details"]["line_items"][0].pop("id"), r"data\.details\.line_items\[0\]\.id: missing"),
    (lambda d: d.update(custom_data="ord_1"), r"data\.custom_data: expected an object"),
    (lambda d: d.update(billing_period={"starts_at": "soon", "ends_at": None}), r"data\.billing_period\.starts_at"),
    (lambda d: d["payments"][0].update(captured_at="2026-03-01 10:00"), r"data\.payments\[0\]\.captured_at"),
])
def test_malformed_transaction(mutate, message):
    payload = pp.transaction_completed()
    mutate(payload["data"])
    with pytest.raises(PayloadError, match=message):
        parse(payload)


# --- factories --------------------------------------------------------------------------------

def test_factories_deterministic_given_ids():
    kwargs = dict(event_id="evt_01same", notification_id="ntf_01same", txn_id="txn_01same", items=[{}, {}])
    assert pp.transaction_completed(**kwargs) == pp.transaction_completed(**kwargs)
    a, b = pp.transaction_completed(), pp.transaction_completed()
    assert a["event_id"] != b["event_id"] and a["data"]["id"] != b["data"]["id"]
    adj = dict(event_id="evt_01a", notification_id="ntf_01a", adjustment_id="adj_01same", items=[{}])
    assert pp.adjustment_event(**adj) == pp.adjustment_event(**adj)


def test_factory_shapes():
    for payload in _BASES:
        json.dumps(payload)
        assert set(payload) == {"event_id", "event_type", "occurred_at", "notification_id", "data"}
        assert payload["occurred_at"].endswith("Z") and len(payload["occurred_at"]) == 27
    data = pp.transaction_completed()["data"]
    assert all(isinstance(data["details"]["totals"][k], str) for k in ("total", "tax", "subtotal", "fee"))
    assert data["items"][0]["price"]["id"] == data["details"]["line_items"][0]["price_id"]


# --- hypothesis: random mutations never raise anything but PayloadError ------------------------

_BASES = [
    pp.transaction_completed(event_id="evt_01h1", notification_id="ntf_01h1", txn_id="txn_01h1",
                             custom_data={"order_id": "ord_h"}, failed_attempt_first=True,
                             items=[{"custom_data": {"category": "license"}}, {"billing_cycle": "year", "tax": 10}]),
    pp.transaction_completed(event_id="evt_01h2", notification_id="ntf_01h2", txn_id="txn_01h2",
                             origin="subscription_recurring", currency="JPY", subscription_id="sub_01h"),
    pp.adjustment_event("adjustment.updated", event_id="evt_01h3", notification_id="ntf_01h3",
                        adjustment_id="adj_01h3", status="approved", reason="rr_h3",
                        items=[{"item_id": "txnitm_01h", "amount": 100}]),
    pp.adjustment_event(event_id="evt_01h4", notification_id="ntf_01h4", adjustment_id="adj_01h4",
                        action="chargeback", currency="JPY", chargeback_fee_original=(2300, "JPY")),
    pp.adjustment_event(event_id="evt_01h5", notification_id="ntf_01h5", adjustment_id="adj_01h5",
                        action="chargeback_warning_reverse"),
    pp.subscription_canceled(event_id="evt_01h6", notification_id="ntf_01h6", subscription_id="sub_01h6",
                             custom_data={"order_id": "ord_h"}, current_billing_period=(T0, T0 + timedelta(days=30)),
                             scheduled_change=("cancel", T0)),
]

_SPECIAL = st.sampled_from([None, "", "0", "-1", "4900", "49.00", 0, -1, 1, 2**64, 1.5, True, False, [], {},
                            "USD", "jpy", "x", "2026-03-01T10:00:00Z", "2026-03-01", "9999-12-31T23:59:59-23:59",
                            "0001-01-01T00:00:00+23:59", {"order_id": "o"}, ["a"]])
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
