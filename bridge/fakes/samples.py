"""``bridge webhooks send-sample stripe|paddle``: a sample payment event, signed the way the
provider signs it, posted to a running bridge (the README's quick start: no provider account
needed). The Stripe sample is a ``charge.succeeded`` with its balance transaction expanded (the
fee is in the event, so no Stripe API call is needed); the Paddle sample a
``transaction.completed`` with its totals."""
from __future__ import annotations

import json
import os
import secrets
import sys
import time
from datetime import datetime, timezone

import requests

from bridge.providers.paddle.signature import sign_paddle
from bridge.providers.stripe.signature import sign_stripe
from bridge.fakes.stripe_server import API_VERSION

_SECRET_ENV = {"stripe": "STRIPE_WEBHOOK_SECRET", "paddle": "PADDLE_WEBHOOK_SECRET"}


def _rand(n: int) -> str:
    return secrets.token_hex(n)[:n]


def stripe_sample(order_id: str, amount: int, currency: str, fee: int, now: int) -> dict:
    charge = "ch_sample_" + _rand(14)
    bt = {"id": "txn_sample_" + _rand(14), "object": "balance_transaction", "amount": amount,
          "available_on": now + 2 * 86400, "created": now, "currency": currency.lower(), "fee": fee,
          "fee_details": [{"amount": fee, "currency": currency.lower(), "description": "Stripe processing fees",
                           "type": "stripe_fee", "application": None}],
          "net": amount - fee, "reporting_category": "charge", "source": charge, "status": "available",
          "type": "charge", "description": None, "exchange_rate": None}
    obj = {"id": charge, "object": "charge", "amount": amount, "amount_captured": amount, "amount_refunded": 0,
           "balance_transaction": bt, "captured": True, "created": now, "currency": currency.lower(),
           "customer": None, "disputed": False, "livemode": False, "metadata": {"order_id": order_id}, "paid": True,
           "payment_intent": "pi_sample_" + _rand(14), "refunded": False, "status": "succeeded",
           "billing_details": {"email": None, "address": {"country": None}},
           "refunds": {"object": "list", "data": [], "has_more": False, "url": f"/v1/charges/{charge}/refunds"}}
    return {"id": "evt_sample_" + _rand(14), "object": "event", "api_version": API_VERSION, "created": now,
            "data": {"object": obj}, "livemode": False, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}, "type": "charge.succeeded"}


def paddle_sample(order_id: str, amount: int, currency: str, fee: int, now: int) -> dict:
    txn = "txn_sample" + _rand(16)
    paid = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    totals = {"subtotal": str(amount), "discount": "0", "tax": "0", "total": str(amount), "credit": "0",
              "credit_to_balance": "0", "balance": "0", "grand_total": str(amount), "fee": str(fee),
              "earnings": str(amount - fee), "currency_code": currency.upper()}
    line = {"id": "txnitm_sample" + _rand(12), "price_id": "pri_sample", "quantity": 1, "tax_rate": "0",
            "unit_totals": {"subtotal": str(amount), "discount": "0", "tax": "0", "total": str(amount)},
            "totals": {"subtotal": str(amount), "discount": "0", "tax": "0", "total": str(amount)},
            "product": {"id": "pro_sample", "name": "sample", "custom_data": None}}
    data = {"id": txn, "status": "completed", "customer_id": "ctm_sample", "address_id": None, "business_id": None,
            "custom_data": {"order_id": order_id}, "currency_code": currency.upper(), "origin": "web",
            "subscription_id": None, "invoice_id": None, "invoice_number": None, "collection_mode": "automatic",
            "discount_id": None, "billing_details": None, "billing_period": None, "created_at": paid,
            "updated_at": paid, "billed_at": paid,
            "items": [{"price": {"id": "pri_sample", "product_id": "pro_sample", "billing_cycle": None,
                                 "unit_price": {"amount": str(amount), "currency_code": currency.upper()},
                                 "custom_data": None}, "quantity": 1, "proration": None}],
            "details": {"totals": totals, "adjusted_totals": totals,
                        "payout_totals": {**totals, "exchange_rate": "1.0", "fee_rate": "0.05"}, "line_items": [line]},
            "payments": [{"payment_attempt_id": "pay_" + txn, "amount": str(amount), "status": "captured",
                          "created_at": paid, "captured_at": paid,
                          "method_details": {"type": "card", "card": {"type": "visa", "last4": "4242"}}}],
            "checkout": None}
    return {"event_id": "evt_sample" + _rand(16), "event_type": "transaction.completed", "occurred_at": paid,
            "notification_id": "ntf_sample" + _rand(16), "data": data}


def signed(provider: str, event: dict, secret: str, now: int) -> tuple[bytes, dict]:
    body = json.dumps(event, separators=(",", ":")).encode()
    if provider == "stripe":
        return body, {"Stripe-Signature": sign_stripe(body, secret, now), "Content-Type": "application/json"}
    return body, {"Paddle-Signature": sign_paddle(body, secret, now), "Content-Type": "application/json"}


def cmd_send_sample(args) -> int:
    secret = args.secret or os.environ.get(_SECRET_ENV[args.provider])
    if not secret:
        print(f"error: give --secret or set {_SECRET_ENV[args.provider]} (the bridge's own)", file=sys.stderr)
        return 2
    now = int(time.time())
    build = stripe_sample if args.provider == "stripe" else paddle_sample
    event = build(args.order, args.amount, args.currency, args.fee, now)
    body, headers = signed(args.provider, event, secret.split(",")[0].strip(), now)
    url = args.url.rstrip("/") + f"/webhooks/{args.provider}"
    try:
        r = requests.post(url, data=body, headers=headers, timeout=10)
    except requests.RequestException as err:
        print(f"error: {url}: {type(err).__name__}", file=sys.stderr)
        return 1
    event_id = event.get("id") or event.get("event_id")
    print(f"{args.provider} {event.get('type') or event.get('event_type')} {event_id} "
          f"for order {args.order}: HTTP {r.status_code} {r.text.strip()}")
    return 0 if r.ok else 1


def add_parser(sub) -> None:
    """``bridge webhooks send-sample``: hung on the CLI's subcommands."""
    webhooks = sub.add_parser("webhooks", help="webhook helpers").add_subparsers(dest="webhooks_command", required=True)
    s = webhooks.add_parser("send-sample", help="post a signed sample payment event to a running bridge")
    s.add_argument("provider", choices=["stripe", "paddle"])
    s.add_argument("--url", default="http://127.0.0.1:5000", help="the bridge (default http://127.0.0.1:5000)")
    s.add_argument("--order", required=True, help="the order id the payment is for")
    s.add_argument("--amount", type=int, default=4900, help="minor units (default 4900)")
    s.add_argument("--currency", default="USD")
    s.add_argument("--fee", type=int, default=172, help="the provider's fee, minor units (default 172)")
    s.add_argument("--secret", help="webhook secret (default: STRIPE_WEBHOOK_SECRET / PADDLE_WEBHOOK_SECRET)")
    s.set_defaults(func=cmd_send_sample)
