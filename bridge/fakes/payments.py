"""Payments at the fake providers, announced to the bridge the way the providers do: a Stripe
``charge.succeeded`` naming its balance transaction (the bridge fetches the fee through the
API), a Paddle ``transaction.completed`` with its totals and line items; and what may follow a
Stripe payment: a dispute's events, an early fraud warning. For the demo and for trying the
bridge by hand; payloads follow the documented shapes."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Optional, Sequence

from bridge.fakes.paddle_server import FakePaddle
from bridge.fakes.stripe_server import API_VERSION, FakeStripe


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stripe_charge(fake: FakeStripe, *, charge_id: str, amount: int, currency: str, fee: int, order_id: str,
                  customer: str, email: Optional[str] = None, country: Optional[str] = None,
                  created: Optional[int] = None) -> dict:
    """Register the charge at the fake and emit ``charge.succeeded`` to its webhook URL."""
    pi = "pi_" + charge_id.removeprefix("ch_")
    charge = fake.add_charge(charge_id, pi, amount, currency, fee, metadata={"order_id": order_id})
    created = created or int(fake.time())
    obj = {
        "id": charge_id, "object": "charge", "amount": amount, "amount_captured": amount, "amount_refunded": 0,
        "balance_transaction": charge.balance_transaction, "captured": True, "created": created,
        "currency": currency.lower(), "customer": customer, "disputed": False, "livemode": False,
        "metadata": {"order_id": order_id}, "paid": True, "payment_intent": pi, "refunded": False,
        "status": "succeeded", "billing_details": {"email": email, "address": {"country": country}},
        "refunds": {"object": "list", "data": [], "has_more": False, "url": f"/v1/charges/{charge_id}/refunds"},
    }
    event = {"id": fake.new_id("evt_", 24), "object": "event", "api_version": API_VERSION, "created": created,
             "data": {"object": obj}, "livemode": False, "pending_webhooks": 1,
             "request": {"id": None, "idempotency_key": None}, "type": "charge.succeeded"}
    fake.emit(event)
    return event


def paddle_transaction(fake: FakePaddle, *, txn_id: str, currency: str, lines: Sequence[tuple[str, int]],
                       fee: int, order_id: str, customer_id: str, origin: str = "web",
                       paid_at: Optional[float] = None) -> dict:
    """Register a completed transaction at the fake and emit ``transaction.completed``.
    ``lines``: (price id, amount with tax) pairs."""
    item_ids = [f"txnitm_{txn_id.removeprefix('txn_')}{i}" for i in range(len(lines))]
    fake.add_transaction(txn_id, currency, list(zip(item_ids, [a for _, a in lines])), fee,
                         customer_id=customer_id, custom_data={"order_id": order_id})
    paid = _iso(paid_at or fake.time())
    total = sum(a for _, a in lines)
    totals = {"subtotal": str(total), "discount": "0", "tax": "0", "total": str(total), "credit": "0",
              "credit_to_balance": "0", "balance": "0", "grand_total": str(total), "fee": str(fee),
              "earnings": str(total - fee), "currency_code": currency}
    data = {
        "id": txn_id, "status": "completed", "customer_id": customer_id, "address_id": None, "business_id": None,
        "custom_data": {"order_id": order_id}, "currency_code": currency, "origin": origin, "subscription_id": None,
        "invoice_id": None, "invoice_number": None, "collection_mode": "automatic", "discount_id": None,
        "billing_details": None, "billing_period": None, "created_at": paid, "updated_at": paid, "billed_at": paid,
        "items": [{"price": {"id": price, "product_id": "pro_" + price.removeprefix("pri_"), "billing_cycle": None,
                             "unit_price": {"amount": str(amount), "currency_code": currency}, "custom_data": None},
                   "quantity": 1, "proration": None} for price, amount in lines],
        "details": {
            "totals": totals, "adjusted_totals": totals,
            "payout_totals": {**totals, "exchange_rate": "1.0", "fee_rate": "0.05"},
            "line_items": [{"id": item_ids[i], "price_id": price, "quantity": 1, "tax_rate": "0",
                            "unit_totals": {"subtotal": str(a), "discount": "0", "tax": "0", "total": str(a)},
                            "totals": {"subtotal": str(a), "discount": "0", "tax": "0", "total": str(a)},
                            "product": {"id": "pro_" + price.removeprefix("pri_"), "name": price, "custom_data": None}}
                           for i, (price, a) in enumerate(lines)],
        },
        "payments": [{"payment_attempt_id": "pay_" + txn_id, "amount": str(total), "status": "captured",
                      "created_at": paid, "captured_at": paid,
                      "method_details": {"type": "card", "card": {"type": "visa", "last4": "4242"}}}],
        "checkout": None,
    }
    event = {"event_id": fake.new_id("evt_", 26), "event_type": "transaction.completed", "occurred_at": paid,
             "notification_id": fake.new_id("ntf_", 26), "data": data}
    fake.emit(event)
    return event


def _stripe_event(fake: FakeStripe, event_type: str, obj: dict, created: int) -> dict:
    return {"id": fake.new_id("evt_", 24), "object": "event", "api_version": API_VERSION, "created": created,
            "data": {"object": obj}, "livemode": False, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}, "type": event_type}


def stripe_dispute(fake: FakeStripe, *, dispute_id: str, charge_id: str, amount: int, currency: str,
                   status: str, event_type: str, fee: int = 1500, reason: str = "fraudulent",
                   created: Optional[int] = None) -> dict:
    """Emit a ``charge.dispute.*`` event for a charge of the fake: ``funds_withdrawn`` /
    ``funds_reinstated`` carry the balance transactions that moved the money (and the fee)."""
    created = created or int(time.time())
    pi = "pi_" + charge_id.removeprefix("ch_")
    bts = []
    if event_type in ("charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated") or status in ("won", "lost"):
        bts.append({"id": f"txn_w_{dispute_id}", "object": "balance_transaction", "amount": -amount, "fee": fee,
                    "currency": currency.lower(), "created": created, "type": "adjustment"})
    if status == "won":
        bts.append({"id": f"txn_r_{dispute_id}", "object": "balance_transaction", "amount": amount, "fee": -fee,
                    "currency": currency.lower(), "created": created, "type": "adjustment"})
    obj = {"id": dispute_id, "object": "dispute", "amount": amount, "currency": currency.lower(),
           "charge": charge_id, "payment_intent": pi, "created": created, "reason": reason, "status": status,
           "evidence_details": {"due_by": created + 7 * 86400, "has_evidence": False, "past_due": False,
                                "submission_count": 0},
           "balance_transactions": bts, "is_charge_refundable": False, "livemode": False, "metadata": {}}
    event = _stripe_event(fake, event_type, obj, created)
    fake.emit(event)
    return event


def stripe_fraud_warning(fake: FakeStripe, *, warning_id: str, charge_id: str,
                         fraud_type: str = "made_with_stolen_card", created: Optional[int] = None) -> dict:
    """Emit ``radar.early_fraud_warning.created`` for a charge of the fake (and serve the warning)."""
    created = created or int(time.time())
    obj = {"id": warning_id, "object": "radar.early_fraud_warning", "actionable": True, "charge": charge_id,
           "created": created, "fraud_type": fraud_type, "livemode": False,
           "payment_intent": "pi_" + charge_id.removeprefix("ch_")}
    fake.put_object(obj)
    event = _stripe_event(fake, "radar.early_fraud_warning.created", obj, created)
    fake.emit(event)
    return event
