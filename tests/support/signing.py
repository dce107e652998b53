"""Sign payloads at test time, the way each provider does."""
from __future__ import annotations

import json
import time

from bridge.providers.paddle.signature import sign_paddle
from bridge.providers.stripe.signature import sign_stripe


def body_of(payload) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def stripe_headers(body: bytes, secret: str, ts: int | None = None) -> dict:
    ts = int(time.time()) if ts is None else ts
    return {"Stripe-Signature": sign_stripe(body, secret, ts),
            "Content-Type": "application/json; charset=utf-8"}


def paddle_headers(body: bytes, secret: str, ts: int | None = None) -> dict:
    ts = int(time.time()) if ts is None else ts
    return {"Paddle-Signature": sign_paddle(body, secret, ts), "Content-Type": "application/json"}
