"""Signatures cross-checked against the providers' own code, not the bridge's: a mistake shared
by the bridge's signer and its verifier (a wrong separator, the wrong bytes hashed, hex vs
base64) would pass every test that signs with the bridge's own function.

- Stripe: ``stripe.WebhookSignature.generate_signature_header`` (the pinned SDK) signs, the
  bridge's intake verifies; and what the test helpers sign passes ``stripe.Webhook.construct_event``.
- Paddle: the Paddle SDK's ``Verifier`` accepts what the test helpers sign, and the SDK's own
  HMAC (``PaddleSignature.calculate_hmac``) signs what the bridge's intake accepts.
- License notices: the bridge's outbound signature passes the Standard Webhooks reference
  library (``standardwebhooks``) that a merchant's app would use, and fails it when tampered.
"""
from __future__ import annotations

import json
import time

import pytest
import stripe
from paddle_billing.Notifications import Secret, Verifier
from paddle_billing.Notifications.PaddleSignature import PaddleSignature
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bridge.services.notices import sign as sign_notice
from tests.conftest import LICENSE_SECRET, PADDLE_SECRET, STRIPE_SECRET
from tests.support.signing import paddle_headers, stripe_headers


def _event(event_id: str) -> bytes:
    return json.dumps({"id": event_id, "event_id": event_id, "object": "event", "type": "customer.created",
                       "event_type": "customer.created", "created": int(time.time()),
                       "occurred_at": "2026-03-01T10:00:00Z", "data": {"object": {"id": "cus_1"}}}).encode()


# --- Stripe ------------------------------------------------------------------------------------------

def test_the_bridge_accepts_what_stripes_sdk_signs(client):
    body = _event("evt_sdk_signed")
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), STRIPE_SECRET, int(time.time()))
    r = client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": header,
                                                            "Content-Type": "application/json"})
    assert r.status_code == 200, r.json


def test_the_bridge_refuses_what_stripes_sdk_signs_with_another_secret(client):
    body = _event("evt_sdk_wrong")
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), "whsec_other", int(time.time()))
    r = client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": header,
                                                            "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json["error"]["code"] == "invalid_signature"


def test_what_the_tests_sign_for_stripe_passes_stripes_sdk():
    body = _event("evt_helper")
    headers = stripe_headers(body, STRIPE_SECRET)
    event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], STRIPE_SECRET)
    assert event["id"] == "evt_helper"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body + b" ", headers["Stripe-Signature"], STRIPE_SECRET)


# --- Paddle ------------------------------------------------------------------------------------------

class _Request:
    """What the Paddle SDK's Verifier reads: ``headers.get`` and ``body``."""

    def __init__(self, headers: dict, body: bytes):
        self.headers = headers
        self.body = body


def test_what_the_tests_sign_for_paddle_passes_paddles_sdk_verifier(monkeypatch):
    monkeypatch.delenv("TEST_MODE", raising=False)  # it would switch the SDK's time check
    body = _event("evt_paddle_helper")
    headers = paddle_headers(body, PADDLE_SECRET)
    assert Verifier().verify(_Request(headers, body), Secret(PADDLE_SECRET)) is True
    assert Verifier().verify(_Request(headers, body + b" "), Secret(PADDLE_SECRET)) is False
    assert Verifier().verify(_Request(headers, body), Secret("pdl_ntfset_other")) is False


def test_the_bridge_accepts_what_paddles_sdk_hmac_signs(client):
    body = _event("evt_paddle_sdk")
    ts = int(time.time())
    h1 = PaddleSignature.calculate_hmac(PADDLE_SECRET, f"{ts}:{body.decode()}".encode()).hexdigest()
    r = client.post("/webhooks/paddle", data=body, headers={"Paddle-Signature": f"ts={ts};h1={h1}",
                                                            "Content-Type": "application/json"})
    assert r.status_code == 200, r.json
    forged = PaddleSignature.calculate_hmac("pdl_ntfset_other", f"{ts}:{body.decode()}".encode()).hexdigest()
    r = client.post("/webhooks/paddle", data=_event("evt_paddle_forged"),
                    headers={"Paddle-Signature": f"ts={ts};h1={forged}", "Content-Type": "application/json"})
    assert r.status_code == 400


# --- license notices (Standard Webhooks) ----------------------------------------------------------------

def test_license_notices_pass_the_standard_webhooks_library():
    body = json.dumps({"type": "license.revoked", "license_id": "lic_1", "order_id": "ord_1", "item_id": "li_1",
                       "reason": "refunded", "occurred_at": "2026-03-01T10:00:00Z"}).encode()
    ts = int(time.time())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(ts),
               "webhook-signature": sign_notice(LICENSE_SECRET, "msg_1", ts, body)}
    assert Webhook(LICENSE_SECRET).verify(body, headers)["license_id"] == "lic_1"
    for tampered in ({**headers, "webhook-id": "msg_2"}, {**headers, "webhook-timestamp": str(ts + 1)}):
        with pytest.raises(WebhookVerificationError):
            Webhook(LICENSE_SECRET).verify(body, tampered)
    with pytest.raises(WebhookVerificationError):
        Webhook(LICENSE_SECRET).verify(body.replace(b"lic_1", b"lic_2"), headers)
