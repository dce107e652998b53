"""The HMAC-SHA256 webhook signature scheme Stripe and Paddle share, on the raw request bytes.

Each provider package (``stripe/signature.py``, ``paddle/signature.py``) states its header's
shape (separators, key names, what is signed) and calls :func:`verify_hmac`.

Hand-written rather than delegated to the SDKs, for reasons found in their sources
(../shared/reference): stripe-python checks only that a timestamp is not too old (a future
timestamp passes), and the Paddle SDK's ``Verifier`` raises ``ValueError`` on unknown header
keys, raises ``ConnectionRefusedError`` for a list of secrets, and lets the ``TEST_MODE``
environment variable switch its clock check off. Both schemes are one HMAC-SHA256, so we do
exactly that: constant-time comparison, any of several signatures and secrets (rotation), a
timestamp window in both directions, and a missing secret never verifies anything.
The test suite cross-checks Stripe's scheme against ``stripe.WebhookSignature``.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Iterable, Sequence

SHA256_HEX_LEN = 64


class SignatureError(Exception):
    """The request is not provably from the provider. ``reason`` is safe to log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Parsed:
    timestamp: int
    signatures: tuple[str, ...]


def _parse(header: str, pair_sep: str, ts_key: str, sig_key: str) -> _Parsed:
    timestamp = None
    signatures = []
    for part in header.split(pair_sep):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise SignatureError("malformed signature header")
        key = key.strip()
        value = value.strip()
        if key == ts_key:
            if timestamp is not None:
                raise SignatureError("several timestamps in signature header")
            if not value.isdigit() or len(value) > 12:
                raise SignatureError("timestamp is not a number")
            timestamp = int(value)
        elif key == sig_key:
            signatures.append(value)
        # Other keys (Stripe's v0, a future h2) are ignored, as both providers document.
    if timestamp is None:
        raise SignatureError("no timestamp in signature header")
    if not signatures:
        raise SignatureError("no signature in signature header")
    return _Parsed(timestamp, tuple(signatures))


def _check_window(timestamp: int, now: float, tolerance: int) -> None:
    if abs(now - timestamp) > tolerance:
        raise SignatureError("timestamp outside the tolerance window")


def _matches(expected: Iterable[bytes], signatures: Sequence[str]) -> bool:
    # Compare every pair in full so the time taken does not tell which one was close.
    ok = False
    for exp in expected:
        for sig in signatures:
            if hmac.compare_digest(exp, sig.encode("ascii", "replace")):
                ok = True
    return ok


def verify_hmac(payload: bytes, header: str | None, secrets: Sequence[str], now: float,
                tolerance: int, pair_sep: str, ts_key: str, sig_key: str, joiner: bytes) -> int:
    """Verify a ``<ts_key>=<unix><pair_sep><sig_key>=<hex>...`` header: the HMAC-SHA256 of
    ``<timestamp><joiner><payload>`` under any secret matches any signature, inside the window.
    Returns the signed timestamp; raises :class:`SignatureError` (fail closed: no secret, no pass)."""
    if not secrets or not all(secrets):
        raise SignatureError("no webhook secret configured")
    if not header:
        raise SignatureError("missing signature header")
    parsed = _parse(header, pair_sep, ts_key, sig_key)
    _check_window(parsed.timestamp, now, tolerance)
    signed = str(parsed.timestamp).encode() + joiner + payload
    expected = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest().encode() for s in secrets]
    if not _matches(expected, parsed.signatures):
        raise SignatureError("no matching signature")
    return parsed.timestamp


def sign_hmac(payload: bytes, secret: str, timestamp: int, joiner: bytes) -> str:
    """The hex HMAC-SHA256 of ``<timestamp><joiner><payload>`` (the fakes sign with it)."""
    return hmac.new(secret.encode(), str(timestamp).encode() + joiner + payload, hashlib.sha256).hexdigest()
