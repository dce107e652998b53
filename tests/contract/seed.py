"""A small shop's state for contract tests: a registered, paid order (a signed Stripe charge
through the real intake and worker), a refund request in review, tokens for every scope."""
from __future__ import annotations

from datetime import datetime, timezone

from tests.conftest import STRIPE_SECRET
from tests.fixtures import stripe_payloads as sp
from tests.support.api import auth, token
from tests.support.signing import body_of, stripe_headers

from bridge.ledger.tokens import SCOPES
PAID_AT = int(datetime(2026, 3, 1, 10, tzinfo=timezone.utc).timestamp())

ORDER = {"order_id": "ord_seed", "policy": "software-mor", "currency": "USD", "bundle": False,
         "customer": {"id": "cus_seed", "email": "buyer@example.com", "country": "US"},
         "items": [{"item_id": "li_1", "sku": "pro-license", "category": "license",
                    "billing": "one_time", "amount": 4900, "price_id": "pri_seed"},
                   {"item_id": "li_2", "sku": "setup", "category": "custom_development",
                    "billing": "one_time", "amount": 20000}]}


def tokens(runtime) -> dict[str, str]:
    """One token per scope, holding only that scope."""
    return {scope: token(runtime, scope, name=f"contract-{scope}") for scope in SCOPES}


def seed(runtime, client, worker) -> dict:
    admin = auth(token(runtime, "admin", name="seed"))
    assert client.post("/api/v1/orders", json=ORDER, headers=admin).status_code == 201
    bt = sp.balance_transaction(bt_id="txn_seed", amount=24900, fee=752, source="ch_seed", created=PAID_AT + 60)
    payload = sp.charge_succeeded(event_id="evt_pay_seed", charge_id="ch_seed", payment_intent_id="pi_seed",
                                  amount=24900, customer="cus_seed", metadata={"order_id": "ord_seed"},
                                  balance_transaction=bt, created=PAID_AT)
    body = body_of(payload)
    r = client.post("/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET))
    assert r.status_code == 200, r.data
    worker.drain()
    # Custom work started with its milestones unknown: software-mor sends it to review.
    rr = client.post("/api/v1/refund-requests", headers=admin, json={
        "order_id": "ord_seed", "reason": "not_satisfied", "items": ["li_2"], "requested_at": "2026-03-05T10:00:00Z",
        "item_facts": {"li_2": {"work_started": True}}})
    assert rr.status_code == 201 and rr.json["status"] == "review", rr.json
    return {"order_id": "ord_seed", "refund_request_id": rr.json["id"],
            "license_id": (client.get("/api/v1/licenses?order_id=ord_seed", headers=admin).json["licenses"]
                           or [{}])[0].get("license_id")}
