"""Paddle's webhook signature: ``Paddle-Signature: ts=<unix>;h1=<hex>[;h1=...]``, an
HMAC-SHA256 of ``ts:body`` (the shared scheme is :mod:`bridge.providers.signatures`)."""
from __future__ import annotations

from typing import Sequence

from bridge.providers.signatures import sign_hmac, verify_hmac

HEADER = "Paddle-Signature"


def verify_paddle(payload: bytes, header: str | None, secrets: Sequence[str], *, now: float,
                  tolerance: int = 300) -> int:
    """Verify ``header`` for ``payload`` against any of ``secrets``. Returns the signed timestamp."""
    return verify_hmac(payload, header, secrets, now, tolerance, ";", "ts", "h1", b":")


def sign_paddle(payload: bytes, secret: str, timestamp: int) -> str:
    """The header Paddle would send (used by the fake providers and the demo)."""
    return f"ts={timestamp};h1={sign_hmac(payload, secret, timestamp, b':')}"
