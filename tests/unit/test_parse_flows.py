"""Parsing the event types of issue 12: manual capture, invoice payments, early fraud warnings,
thin events (Stripe) and paid/updated transactions (Paddle)."""
from __future__ import annotations

import pytest

from bridge.domain.events import FraudWarning, Ignored, PaymentSucceeded
from bridge.providers.paddle import events as paddle
from bridge.providers.payload_errors import PayloadError
from bridge.providers.stripe import events as stripe, thin
from tests.fixtures import paddle_payloads as pp, stripe_payloads as sp

T0 = 1_772_359_200


def test_charge_captured_books_what_was_captured():
    obj = dict(sp.charge_object(charge_id="ch_m", payment_intent_id="pi_m", amount=4900, created=T0),
               amount_captured=3900)
    [pay] = [e for e in stripe.parse(sp.event("charge.captured", obj, created=T0 + 60)).events
             if isinstance(e, PaymentSucceeded)]
    assert (pay.amount, pay.charge_id, pay.payment_intent_id) == (3900, "ch_m", "pi_m")
    authorized = stripe.parse(sp.charge_succeeded(charge_id="ch_m", captured=False))
    assert [type(e) for e in authorized.events] == [Ignored]


def _invoice_payment(**kw):
    obj = {"id": "inpay_1", "object": "invoice_payment", "amount_paid": 2900, "currency": "usd", "invoice": "in_1",
           "status": "paid", "payment": {"type": "payment_intent", "payment_intent": "pi_1"},
           "status_transitions": {"paid_at": T0 + 5}}
    obj.update(kw)
    return sp.event("invoice_payment.paid", obj, created=T0 + 6)


def test_invoice_payment_paid_is_a_link_not_money():
    [link] = stripe.parse(_invoice_payment()).events
    assert isinstance(link, PaymentSucceeded)
    assert (link.invoice_id, link.payment_intent_id, link.amount, link.currency) == ("in_1", "pi_1", 2900, "USD")
    assert link.paid_at.timestamp() == T0 + 5
    assert isinstance(stripe.parse(_invoice_payment(status="open")).events[0], Ignored)
    with pytest.raises(PayloadError, match="data.object.invoice"):
        stripe.parse(_invoice_payment(invoice=None))


def _warning(**kw):
    obj = {"id": "issfr_1", "object": "radar.early_fraud_warning", "actionable": True, "charge": "ch_1",
           "created": T0, "fraud_type": "made_with_stolen_card", "livemode": False, "payment_intent": "pi_1"}
    obj.update(kw)
    return sp.event("radar.early_fraud_warning.created", obj, created=T0 + DAY)


DAY = 86_400


def test_early_fraud_warning():
    [w] = stripe.parse(_warning()).events
    assert w == FraudWarning("stripe", w.occurred_at, "issfr_1", "ch_1", "pi_1", "made_with_stolen_card")
    assert isinstance(stripe.parse(_warning(actionable=False)).events[0], Ignored)
    with pytest.raises(PayloadError):
        stripe.parse(_warning(charge=None, payment_intent=None))


def _thin(event_type="v1.charge.succeeded", **kw):
    doc = {"id": "evt_thin", "object": "v2.core.event", "type": event_type, "created": "2026-03-01T10:00:00.000Z",
           "livemode": False, "related_object": {"id": "ch_1", "type": "charge", "url": "/v1/charges/ch_1"}}
    doc.update(kw)
    return doc


def test_thin_event_expands_to_its_snapshot():
    asked = []

    def fetch(kind, obj_id):
        asked.append((kind, obj_id))
        return sp.charge_object(charge_id=obj_id, created=T0)

    snap = thin.expand(_thin(), stripe.HANDLED_TYPES, fetch)
    assert asked == [("charge", "ch_1")]
    parsed = stripe.parse(snap)
    assert (parsed.provider_event_id, parsed.event_type, parsed.occurred_at.timestamp()) == (
        "evt_thin", "charge.succeeded", T0)
    assert isinstance(parsed.events[0], PaymentSucceeded) and parsed.events[0].charge_id == "ch_1"
    # Unhandled thin types and snapshots pass through without a fetch.
    assert thin.expand(_thin("v1.charge.expired"), stripe.HANDLED_TYPES, fetch) == _thin("v1.charge.expired")
    snapshot = sp.charge_succeeded(charge_id="ch_2")
    assert thin.expand(snapshot, stripe.HANDLED_TYPES, fetch) is snapshot
    assert len(asked) == 1
    assert isinstance(stripe.parse(_thin("v1.charge.expired")).events[0], Ignored)


def test_thin_event_errors_are_named():
    never = lambda kind, obj_id: pytest.fail("fetched")  # noqa: E731
    with pytest.raises(PayloadError, match="related_object"):
        thin.expand(_thin(related_object=None), stripe.HANDLED_TYPES, never)
    with pytest.raises(PayloadError, match="related_object.type"):
        thin.expand(_thin(related_object={"id": "x", "type": "customer"}), stripe.HANDLED_TYPES, never)
    with pytest.raises(PayloadError, match="created"):
        thin.expand(_thin(created=12), stripe.HANDLED_TYPES, never)
    with pytest.raises(PayloadError, match="not fetched"):
        stripe.parse(_thin())  # a handled thin type never reaches the parser unfetched silently


def _txn(event_type, status, fee):
    data = pp.transaction_entity(txn_id="txn_1", status=status, fee=fee, subscription_id=None, billing_period=None,
                                 items=[{"price_id": "pri_1", "product_id": "pro_1", "amount": 4900, "tax": 0}])
    return pp.notification(event_type, data, occurred_at="2026-03-01T10:00:05Z")


@pytest.mark.parametrize("event_type", ["transaction.paid", "transaction.updated"])
def test_paddle_paid_transaction_is_the_payment(event_type):
    [pay] = paddle.parse(_txn(event_type, "paid", None)).events
    assert (pay.transaction_id, pay.amount, pay.fee) == ("txn_1", 4900, None)
    [done] = paddle.parse(_txn(event_type, "completed", 245)).events
    assert done.fee == 245


@pytest.mark.parametrize("status", ["draft", "ready", "billed", "past_due", "canceled"])
def test_paddle_transaction_without_money_is_ignored(status):
    assert isinstance(paddle.parse(_txn("transaction.updated", status, None)).events[0], Ignored)
