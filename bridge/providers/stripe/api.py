"""Outbound Stripe calls (refunds, fees) through the real SDK, behind neutral types.

- ``StripeClient(max_network_retries=0)``: the SDK never retries; :mod:`bridge.providers.retry`
  is the only retry layer, so one operation makes at most ``RetryPolicy.attempts`` HTTP calls.
- Every refund carries the caller's deterministic ``Idempotency-Key`` (e.g.
  ``refund-<refund id>``), and every retry of it re-sends the same key. A timeout or a dropped
  connection after sending is therefore retried too (Stripe replays the first answer); if the
  retries run out after such a failure the caller gets :class:`OutcomeUnknown`: re-send with the
  same key (within Stripe's 24 h key lifetime) or look the refund up with :meth:`list_refunds`.
- Stripe exceptions are translated here; none leaves the module.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Optional, TypeVar

import stripe

from bridge.domain.money import normalize_currency
from bridge.providers.outcomes import (
    STRIPE,
    OutcomeUnknown,
    PermanentProviderError,
    ProviderError,
    RefundResult,
    TransientProviderError,
)
from bridge.providers.retry import (
    RateLimiter,
    RetryAfterGate,
    RetryPolicy,
    call_with_retry,
    parse_retry_after,
    request_maybe_sent,
)

T = TypeVar("T")

STRIPE_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
# Our refund-request reasons (spec/policies.md) that have a Stripe counterpart; every other
# reason is the customer's request.
_REASON_MAP = {"duplicate_charge": "duplicate", "fraud": "fraudulent", "fraudulent": "fraudulent"}

# Stripe refund status -> neutral status. ``requires_action`` waits on the customer: pending.
_STATUS_MAP = {
    "pending": "pending",
    "requires_action": "pending",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
}

REQUEST_ID_METADATA_KEY = "refund_request_id"
MAX_IDEMPOTENCY_KEY_LEN = 255


def stripe_reason(reason: Optional[str]) -> Optional[str]:
    """Stripe's ``reason`` for one of ours: ``duplicate_charge`` -> ``duplicate``, a Stripe value
    passes through, anything else -> ``requested_by_customer``. None stays None (no reason)."""
    if reason is None:
        return None
    if reason in STRIPE_REASONS:
        return reason
    return _REASON_MAP.get(reason, "requested_by_customer")


def _header(headers: Optional[Mapping[str, str]], name: str) -> Optional[str]:
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _translate(exc: stripe.StripeError, *, mutating: bool) -> ProviderError:
    """A Stripe SDK exception as a neutral error."""
    if isinstance(exc, stripe.APIConnectionError):
        cause = exc.__cause__
        if mutating and (cause is None or request_maybe_sent(cause)):
            return OutcomeUnknown(f"no answer from Stripe after sending: {type(cause).__name__}")
        return TransientProviderError(f"could not reach Stripe: {type(cause).__name__}")

    status = exc.http_status
    headers = exc.headers
    err = exc.error
    err_type = getattr(err, "type", None) if err is not None else None
    param = getattr(err, "param", None) if err is not None else None
    message = exc.user_message or f"Stripe answered HTTP {status}"
    should_retry = _header(headers, "Stripe-Should-Retry")

    if isinstance(exc, stripe.RateLimitError):
        return TransientProviderError(message, parse_retry_after(_header(headers, "Retry-After")),
                                      http_status=status)
    if isinstance(exc, stripe.IdempotencyError):
        return PermanentProviderError("idempotency_error", message, http_status=status)
    if should_retry == "true" or (
        should_retry != "false" and (status is None or status == 409 or status >= 500)
    ):
        return TransientProviderError(message, parse_retry_after(_header(headers, "Retry-After")),
                                      http_status=status)
    code = exc.code or err_type or f"http_{status}"
    return PermanentProviderError(code, message, http_status=status, param=param)


def _plain(obj: Any) -> dict[str, Any]:
    """A Stripe object's data as plain dicts (16.x objects are no longer dicts)."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _refund_result(obj: Any) -> RefundResult:
    refund = _plain(obj)
    charge = refund.get("charge")
    if charge is not None and not isinstance(charge, str):
        charge = charge.get("id")
    raw_status = refund.get("status") or ""
    metadata = refund.get("metadata") or {}
    return RefundResult(
        provider=STRIPE,
        provider_refund_id=refund["id"],
        amount=int(refund["amount"]),
        currency=normalize_currency(refund["currency"]),
        # An unknown status is treated as not final: never as success or failure.
        status=_STATUS_MAP.get(raw_status, "pending"),  # type: ignore[arg-type]
        reason=refund.get("reason"),
        raw_status=raw_status,
        payment_id=charge,
        request_id=metadata.get(REQUEST_ID_METADATA_KEY),
        failure_reason=refund.get("failure_reason"),
    )


class StripeApi:
    """Stripe refund and fee calls. Thread-safe (the SDK's requests client keeps one session
    per thread); one instance per process is enough."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: Optional[str] = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        limiter: Optional[RateLimiter] = None,
        observe: Optional[Callable[[str, str], None]] = None,
    ):
        if not api_key:
            raise ValueError("a Stripe API key is required")
        http_client = stripe.RequestsClient(timeout=(connect_timeout, timeout))
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": base_url.rstrip("/")} if base_url else None,
            max_network_retries=0,
            http_client=http_client,
        )
        self._retry = retry
        self._sleep = sleep
        self._gate = RetryAfterGate(sleep=sleep)
        self._limiter = limiter
        self._observe = observe  # told of every HTTP call (the metrics)

    def _once(self, fn: Callable[[], T], *, mutating: bool) -> T:
        """One call; every failure as a neutral error."""
        if self._limiter is not None:
            self._limiter.acquire()
        try:
            return fn()
        except stripe.StripeError as exc:
            raise _translate(exc, mutating=mutating) from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # A 2xx whose body we cannot read: for a refund, it was made.
            if mutating:
                raise OutcomeUnknown(f"Stripe's answer was unreadable: {type(exc).__name__}: {exc}") from None
            raise PermanentProviderError("unreadable_response", f"{type(exc).__name__}: {exc}") from None

    def _run(self, fn: Callable[[], T], *, operation: str) -> T:
        """A read, retried on transient errors."""
        return call_with_retry(lambda: self._once(fn, mutating=False), self._retry, gate=self._gate,
                               sleep=self._sleep, operation=operation, observe=self._observe)

    # --- refunds ---------------------------------------------------------------------------

    def create_refund(
        self,
        *,
        charge_id: Optional[str] = None,
        payment_intent_id: Optional[str] = None,
        amount: Optional[int],
        reason: Optional[str],
        metadata: Optional[Mapping[str, str]] = None,
        idempotency_key: str,
        request_id: Optional[str] = None,
    ) -> RefundResult:
        """``POST /v1/refunds`` for ``amount`` minor units (None: the unrefunded remainder).

        ``request_id`` (our refund-request id) is stored in the refund's metadata and read back
        into :attr:`RefundResult.request_id`. Retries (timeouts and dropped connections too)
        re-send ``idempotency_key``. Raises PermanentProviderError (e.g.
        ``charge_already_refunded``, ``amount_too_large``, ``idempotency_error``),
        TransientProviderError, or OutcomeUnknown when the last failures left the outcome open.
        """
        if (charge_id is None) == (payment_intent_id is None):
            raise ValueError("give exactly one of charge_id and payment_intent_id")
        if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY_LEN:
            raise ValueError("idempotency_key must be 1-255 characters")
        if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)
                                   or amount <= 0):
            raise ValueError("amount must be a positive integer of minor units")

        params: dict[str, Any] = {}
        if charge_id is not None:
            params["charge"] = charge_id
        else:
            params["payment_intent"] = payment_intent_id
        if amount is not None:
            params["amount"] = amount
        mapped = stripe_reason(reason)
        if mapped is not None:
            params["reason"] = mapped
        meta = {str(k): str(v) for k, v in (metadata or {}).items()}
        if request_id is not None:
            meta[REQUEST_ID_METADATA_KEY] = request_id
        if meta:
            params["metadata"] = meta

        maybe_applied = False

        def send() -> RefundResult:
            nonlocal maybe_applied
            try:
                return self._once(lambda: _refund_result(self._client.v1.refunds.create(
                    params, {"idempotency_key": idempotency_key})), mutating=True)
            except OutcomeUnknown:
                maybe_applied = True
                raise

        try:
            # OutcomeUnknown is retried as well: the same key makes a re-send safe.
            return call_with_retry(send, self._retry, gate=self._gate,
                                   retry_on=(TransientProviderError, OutcomeUnknown),
                                   sleep=self._sleep, operation="stripe create_refund", observe=self._observe)
        except TransientProviderError as exc:
            if maybe_applied:
                unknown = OutcomeUnknown(
                    f"Stripe refund outcome unknown after {exc.attempts} attempts "
                    f"(last: {exc.message}); re-send with the same idempotency key")
                unknown.attempts = exc.attempts
                raise unknown from exc
            raise

    def list_refunds(self, *, charge_id: Optional[str] = None,
                     payment_intent_id: Optional[str] = None) -> list[RefundResult]:
        """Every refund of a charge or payment intent (all pages), newest first."""
        if (charge_id is None) == (payment_intent_id is None):
            raise ValueError("give exactly one of charge_id and payment_intent_id")
        params: dict[str, Any] = {"limit": 100}
        if charge_id is not None:
            params["charge"] = charge_id
        else:
            params["payment_intent"] = payment_intent_id

        def fetch() -> list[RefundResult]:
            page = self._client.v1.refunds.list(params)
            return [_refund_result(r) for r in page.auto_paging_iter()]

        return self._run(fetch, operation="stripe list_refunds")

    def get_refund(self, refund_id: str) -> RefundResult:
        return self._run(lambda: _refund_result(self._client.v1.refunds.retrieve(refund_id)),
                         operation="stripe get_refund")

    # --- invoices --------------------------------------------------------------------------

    def invoice_payment_intents(self, invoice_id: str) -> list[str]:
        """The payment intents that paid an invoice (``GET /v1/invoice_payments``). Since the
        basil API an invoice names no charge or payment intent itself, and a subscription's
        charge carries no metadata: this is the link between the two."""
        def fetch() -> list[str]:
            page = self._client.v1.invoice_payments.list({"invoice": invoice_id, "limit": 100})
            out = []
            for obj in page.auto_paging_iter():
                row = _plain(obj)
                payment = row.get("payment") or {}
                pi = payment.get("payment_intent")
                pi = pi.get("id") if isinstance(pi, dict) else pi
                if row.get("status") == "paid" and pi:
                    out.append(pi)
            return out
        return self._run(fetch, operation="stripe invoice_payments")

    # --- fees ------------------------------------------------------------------------------

    def get_balance_transaction(self, bt_id: str) -> tuple[int, str]:
        """``(fee, currency)`` of a balance transaction, fee in minor units."""
        def fetch() -> tuple[int, str]:
            bt = _plain(self._client.v1.balance_transactions.retrieve(bt_id))
            return int(bt["fee"]), normalize_currency(bt["currency"])

        return self._run(fetch, operation="stripe get_balance_transaction")

    def get_charge_fee(self, charge_id: str) -> Optional[int]:
        """The processing fee of a charge (its balance transaction's ``fee``, in the balance
        transaction's currency), or None while Stripe has not created the balance transaction
        yet (``capture_method=automatic_async``)."""
        def fetch() -> Optional[Any]:
            charge = self._client.v1.charges.retrieve(charge_id, {"expand": ["balance_transaction"]})
            return _plain(charge).get("balance_transaction")

        bt = self._run(fetch, operation="stripe get_charge_fee")
        if bt is None:
            return None
        if isinstance(bt, str):  # not expanded (should not happen): fetch it
            return self.get_balance_transaction(bt)[0]
        return int(bt["fee"])
