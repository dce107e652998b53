"""Provider-neutral results and errors of the outbound provider calls (refunds, fees).

Everything ``bridge.providers.stripe.api`` and ``bridge.providers.paddle.api`` return or raise is
defined here: no SDK object and no SDK exception leaves ``bridge/providers/``. The caller (the
refund job) branches on three error classes, which say what it may do next:

- :class:`PermanentProviderError`: the provider refused the request (already refunded, amount
  above what remains, a refund pending, invalid request, bad credentials). It was called exactly
  once; calling again cannot help. The refund request goes to ``failed``/``review``.
- :class:`TransientProviderError`: the provider did not take the request (network error before
  sending, 429, 5xx), and the retry policy gave up. Retry later; ``retry_after`` is the least
  delay the provider asked for, when it said.
- :class:`OutcomeUnknown`: the request may have been applied (timeout or dropped connection
  after sending). Never send a fresh request: Stripe, re-send with the *same* idempotency key;
  Paddle, list the transaction's adjustments and adopt ours (matched by our request id).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

STRIPE = "stripe"
PADDLE = "paddle"

RefundStatus = Literal["pending", "succeeded", "failed", "canceled"]
REFUND_STATUSES: frozenset[str] = frozenset({"pending", "succeeded", "failed", "canceled"})


@dataclass(frozen=True)
class RefundResult:
    """A refund as the provider holds it, in neutral terms.

    ``status`` is the neutral state; ``raw_status`` the provider's own word (Stripe
    ``requires_action`` is ``pending``; Paddle ``pending_approval``/``approved``/``rejected``
    are ``pending``/``succeeded``/``failed``). ``amount`` is in minor units of ``currency``
    (upper-case ISO 4217).
    """
    provider: str
    provider_refund_id: str
    amount: int
    currency: str
    status: RefundStatus
    reason: Optional[str]
    raw_status: str
    payment_id: Optional[str] = None      # Stripe charge id / Paddle transaction id
    request_id: Optional[str] = None      # our refund-request id, when the provider object carries it
    failure_reason: Optional[str] = None  # Stripe failure_reason, when failed


class ProviderError(Exception):
    """Base of the errors a provider client raises. ``attempts`` is how many HTTP calls the
    retry policy made for the operation before raising."""

    attempts: int = 1

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class PermanentProviderError(ProviderError):
    """A 4xx that must not be retried. ``code`` is the provider's error code
    (``charge_already_refunded``, ``adjustment_total_amount_above_remaining_allowed``, ...),
    or the error type when the provider gave no code."""

    def __init__(self, code: str, message: str, *, http_status: Optional[int] = None,
                 param: Optional[str] = None):
        super().__init__(message)
        self.code = code
        self.http_status = http_status
        self.param = param

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class TransientProviderError(ProviderError):
    """The provider did not take the request; retrying later is safe. Raised once the retry
    policy gave up (or at once when the provider asks for a longer wait than the policy allows:
    then ``retry_after`` says how long, in seconds)."""

    def __init__(self, message: str, retry_after: Optional[float] = None, *,
                 http_status: Optional[int] = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.http_status = http_status


class OutcomeUnknown(ProviderError):
    """The request may have been applied: the connection timed out or was dropped after the
    request was sent. Not a failure and not a success: reconcile before anything else."""
