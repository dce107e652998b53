"""Stripe's webhook signature: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]``, an
HMAC-SHA256 of ``t.body`` (the shared scheme is :mod:`bridge.providers.signatures`)."""
from __future__ import annotations

from typing import Sequence

from bridge.providers.signatures import sign_hmac, verify_hmac

HEADER = "Stripe-Signature"


def verify_stripe(payload: bytes, header: str | None, secrets: Sequence[str], *, now: float,
                  tolerance: int = 300) -> int:
    """Verify ``header`` for ``payload`` against any of ``secrets``. Returns the signed timestamp."""
    return verify_hmac(payload, header, secrets, now, tolerance, ",", "t", "v1", b".")


def sign_stripe(payload: bytes, secret: str, timestamp: int) -> str:
    """The header Stripe would send (used by the fake providers and the demo)."""
    return f"t={timestamp},v1={sign_hmac(payload, secret, timestamp, b'.')}"
