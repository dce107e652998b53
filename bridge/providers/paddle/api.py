"""Outbound Paddle Billing calls (refund adjustments, fees) through the real SDK, behind
neutral types.

How the SDK is set up (paddle_billing 1.16.1, read in its sources):

- **Base URL.** ``Client._make_request`` joins every path onto
  ``options.environment.base_url`` and reads nothing else from the environment. For
  ``sandbox``/``production`` we pass the SDK's own ``Environment``; for a custom base (a local
  fake, ``PADDLE_API_BASE``) a small object with just that ``base_url`` attribute. The base must
  be an origin (``http://127.0.0.1:8421``): ``urljoin`` drops any path it has.
- **One retry layer.** ``Client(retry_count=0)``, and the ``https://`` adapter the SDK mounts
  (urllib3 ``Retry(total=retry_count, status_forcelist=[429, 500, 502, 503, 504])``) is
  replaced by a plain one: with ``total=0`` that ``Retry`` would still turn a 5xx on a GET into
  ``requests.exceptions.RetryError`` instead of the parsed ``ApiError``.
  :mod:`bridge.providers.retry` is the only retry loop.
- **Threads.** The SDK client keeps per-request state on itself (``payload``, ``status_code``,
  a shared session whose ``X-Transaction-ID`` header it rewrites), so each thread gets its own.

Paddle has no idempotency key for ``POST /adjustments``. So a refund is never re-posted blindly:

- our refund-request id goes into ``reason`` as ``[bridge-ref:<id>]``, and
  :meth:`PaddleApi.find_refund` / :meth:`PaddleApi.list_refund_adjustments` find it again;
- a timeout or dropped connection after sending raises :class:`OutcomeUnknown` at once (no
  retry): the caller reconciles later (the request may still be in flight at Paddle right now);
- a 5xx answer is retried, but each re-post is preceded by a lookup, and ours is adopted if
  Paddle did create it; 429 (rate limiter: nothing was processed) is retried after Retry-After;
- a caller re-running a refund job passes ``reconcile_first=True`` to look before posting.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, Callable, Mapping, Optional, Sequence, TypeVar
from urllib.parse import urlparse

import requests
from paddle_billing import Client, Environment, Options
from paddle_billing.Entities.Shared import Action, AdjustmentType
from paddle_billing.Exceptions.ApiError import ApiError
from paddle_billing.Exceptions.SdkException import SdkException
from paddle_billing.Resources.Adjustments.Operations import (
    CreateAdjustment,
    CreateAdjustmentItem,
    ListAdjustments,
)
from requests.adapters import HTTPAdapter

from bridge.domain.money import normalize_currency, parse_minor
from bridge.providers.outcomes import (
    PADDLE,
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

_STATUS_MAP = {
    "pending_approval": "pending",
    "approved": "succeeded",
    "rejected": "failed",
    "reversed": "canceled",
}
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
_MARKER_RE = re.compile(r"\[bridge-ref:([A-Za-z0-9_.\-]{1,100})\]")
_ENVIRONMENTS = {"sandbox": Environment.SANDBOX, "production": Environment.PRODUCTION}

# The SDK logs each failed request (URL and detail) at ERROR; our retry layer logs what matters.
_SDK_LOG = logging.getLogger("bridge.providers.paddle_sdk")
_SDK_LOG.addHandler(logging.NullHandler())
_SDK_LOG.propagate = False

RefundItems = Sequence[tuple[str, Optional[int]]]


def reason_with_ref(reason: str, request_id: str) -> str:
    """The ``reason`` we send: the caller's text plus our request id marker."""
    return f"{reason.strip()} [bridge-ref:{request_id}]"


def request_id_from_reason(reason: Optional[str]) -> Optional[str]:
    """Our request id from an adjustment's ``reason`` (the last marker), or None."""
    found = _MARKER_RE.findall(reason or "")
    return found[-1] if found else None


class _BaseUrl:
    """Stands in for ``paddle_billing.Environment``: the SDK reads only ``base_url``."""

    def __init__(self, base_url: str):
        parsed = urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.path not in ("", "/"):
            raise ValueError(f"PADDLE_API_BASE must be an origin like http://127.0.0.1:8421, "
                             f"got {base_url!r}")
        self.base_url = f"{parsed.scheme}://{parsed.netloc}"


def _status_of(exc: requests.RequestException) -> Optional[int]:
    response = getattr(exc, "response", None)
    return response.status_code if response is not None else None


def _translate(exc: Exception, *, mutating: bool) -> ProviderError:
    """A Paddle SDK / requests exception as a neutral error."""
    if isinstance(exc, ApiError):
        status = _status_of(exc)
        if status == 429 or exc.error_code == "too_many_requests":
            return TransientProviderError(exc.detail, exc.retry_after, http_status=status)
        if status is None or status >= 500 or status == 409:
            return TransientProviderError(f"{exc.error_code}: {exc.detail}", exc.retry_after,
                                          http_status=status)
        return PermanentProviderError(exc.error_code, exc.detail, http_status=status)
    if isinstance(exc, requests.HTTPError):  # an error answer without Paddle's JSON body
        status = _status_of(exc)
        retry_after = None
        if exc.response is not None:
            retry_after = parse_retry_after(exc.response.headers.get("Retry-After"))
        if status is None or status >= 500 or status in (409, 429):
            return TransientProviderError(f"Paddle answered HTTP {status}", retry_after,
                                          http_status=status)
        return PermanentProviderError(f"http_{status}", f"Paddle answered HTTP {status}",
                                      http_status=status)
    if isinstance(exc, requests.exceptions.RetryError):
        return TransientProviderError(f"Paddle kept failing: {exc}")
    if isinstance(exc, requests.RequestException):
        if mutating and request_maybe_sent(exc):
            return OutcomeUnknown(f"no answer from Paddle after sending: {type(exc).__name__}")
        return TransientProviderError(f"could not reach Paddle: {type(exc).__name__}")
    # A 2xx whose body the SDK could not read.
    if mutating:
        return OutcomeUnknown(f"Paddle's answer was unreadable: {type(exc).__name__}: {exc}")
    return PermanentProviderError("unreadable_response", f"{type(exc).__name__}: {exc}")


def _refund_result(adjustment: Any) -> RefundResult:
    raw_status = adjustment.status.value
    return RefundResult(
        provider=PADDLE,
        provider_refund_id=adjustment.id,
        amount=parse_minor(adjustment.totals.total),
        currency=normalize_currency(adjustment.currency_code.value),
        status=_STATUS_MAP.get(raw_status, "pending"),  # type: ignore[arg-type]
        reason=adjustment.reason,
        raw_status=raw_status,
        payment_id=adjustment.transaction_id,
        request_id=request_id_from_reason(adjustment.reason),
    )


class PaddleApi:
    """Paddle refund adjustments and fees. Thread-safe (one SDK client per thread)."""

    def __init__(
        self,
        api_key: str,
        *,
        environment: str = "sandbox",
        base_url: Optional[str] = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        limiter: Optional[RateLimiter] = None,
        observe: Optional[Callable[[str, str], None]] = None,
    ):
        if not api_key:
            raise ValueError("a Paddle API key is required")
        if base_url:
            self._environment: Any = _BaseUrl(base_url)
        elif environment in _ENVIRONMENTS:
            self._environment = _ENVIRONMENTS[environment]
        else:
            raise ValueError(f"PADDLE_ENVIRONMENT must be sandbox or production, got {environment!r}")
        self._api_key = api_key
        self._timeout = (connect_timeout, timeout)
        self._retry = retry
        self._sleep = sleep
        self._gate = RetryAfterGate(sleep=sleep)
        self._limiter = limiter
        self._observe = observe  # told of every HTTP call (the metrics)
        self._local = threading.local()

    def _sdk(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = Client(self._api_key, options=Options(self._environment), retry_count=0,
                            timeout=self._timeout,  # type: ignore[arg-type]  # requests takes a tuple
                            logger=_SDK_LOG)
            client.client.mount("https://", HTTPAdapter())  # no urllib3 status retries
            # Keep the last response: when the SDK fails to read an error answer (its ApiError
            # does int(Retry-After), so "0.5" or an HTTP date raises ValueError), we still
            # judge the call by its status and Retry-After. This replaces the SDK's own hook,
            # which logs whole response bodies at DEBUG.
            client.client.hooks["response"] = [self._remember]
            self._local.client = client
        return client

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._local.last_response = response

    def _once(self, fn: Callable[[Client], T], *, mutating: bool) -> T:
        if self._limiter is not None:
            self._limiter.acquire()
        client = self._sdk()
        self._local.last_response = None
        try:
            return fn(client)
        except requests.RequestException as exc:
            raise _translate(exc, mutating=mutating) from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            response = self._local.last_response
            if response is not None and response.status_code >= 400:
                exc = requests.HTTPError(f"unreadable error answer: {exc}", response=response)
            raise _translate(exc, mutating=mutating) from None

    def _run(self, fn: Callable[[Client], T], *, operation: str) -> T:
        return call_with_retry(lambda: self._once(fn, mutating=False), self._retry,
                               gate=self._gate, sleep=self._sleep, operation=operation, observe=self._observe)

    # --- refunds ---------------------------------------------------------------------------

    def create_refund(
        self,
        *,
        transaction_id: str,
        request_id: str,
        reason: str,
        items: Optional[RefundItems] = None,
        reconcile_first: bool = False,
    ) -> RefundResult:
        """``POST /adjustments`` (action ``refund``): ``items=None`` refunds the whole
        transaction (type ``full``); else ``[(txnitm_id, amount)]`` in minor units, tax included
        (an amount of None refunds that line in full).

        ``request_id`` is embedded in ``reason`` so the adjustment can be found again.
        ``reconcile_first``: look for ours before posting (pass it whenever this request may
        have been sent before). Raises PermanentProviderError (e.g.
        ``adjustment_total_amount_above_remaining_allowed``,
        ``adjustment_pending_refund_request``), TransientProviderError, or OutcomeUnknown
        (then: :meth:`find_refund` later, never a blind re-post).
        """
        if not _REQUEST_ID_RE.match(request_id or ""):
            raise ValueError("request_id must be 1-100 characters of [A-Za-z0-9_.-]")
        if not reason or not reason.strip():
            raise ValueError("Paddle requires a reason")
        text = reason_with_ref(reason, request_id)
        try:
            if items is None:
                operation = CreateAdjustment.full(action=Action.Refund, reason=text,
                                                  transaction_id=transaction_id)
            else:
                lines = []
                for item_id, amount in items:
                    if amount is None:
                        lines.append(CreateAdjustmentItem(item_id, AdjustmentType.Full, None))
                    elif isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
                        raise ValueError("refund item amounts must be positive integers of minor units")
                    else:
                        lines.append(CreateAdjustmentItem(item_id, AdjustmentType.Partial, str(amount)))
                operation = CreateAdjustment.partial(action=Action.Refund, items=lines, reason=text,
                                                     transaction_id=transaction_id)
        except SdkException as exc:
            raise ValueError(str(exc)) from None

        look_first = reconcile_first

        def send() -> RefundResult:
            nonlocal look_first
            if look_first:
                found = self._find_once(transaction_id, request_id)
                if found is not None:
                    return found
                look_first = False
            try:
                return self._once(lambda c: _refund_result(c.adjustments.create(operation)),
                                  mutating=True)
            except TransientProviderError as exc:
                # A 5xx came after Paddle read the request: it may have created the
                # adjustment. Look before posting again. (A 429 or a refused connection: no.)
                look_first = exc.http_status is not None and exc.http_status >= 500
                raise

        return call_with_retry(send, self._retry, gate=self._gate, sleep=self._sleep,
                               operation="paddle create_refund", observe=self._observe)

    def _list_once(self, transaction_id: str) -> list[RefundResult]:
        def fetch(client: Client) -> list[RefundResult]:
            listed = client.adjustments.list(
                ListAdjustments(transaction_ids=[transaction_id], action=Action.Refund))
            return [_refund_result(a) for a in listed]  # iterating follows every page

        return self._once(fetch, mutating=False)

    def _find_once(self, transaction_id: str, request_id: str) -> Optional[RefundResult]:
        return _pick(r for r in self._list_once(transaction_id) if r.request_id == request_id)

    def list_refund_adjustments(self, transaction_id: str, *,
                                request_id: Optional[str] = None) -> list[RefundResult]:
        """The refund adjustments of a transaction (all pages), optionally only those carrying
        our ``request_id`` marker in their reason."""
        found = call_with_retry(lambda: self._list_once(transaction_id), self._retry,
                                gate=self._gate, sleep=self._sleep,
                                operation="paddle list_refund_adjustments", observe=self._observe)
        if request_id is not None:
            found = [r for r in found if r.request_id == request_id]
        return found

    def find_refund(self, transaction_id: str, request_id: str) -> Optional[RefundResult]:
        """Our refund for ``request_id``, to adopt after an unknown outcome; None if Paddle has
        none (then it is safe to post it)."""
        return _pick(self.list_refund_adjustments(transaction_id, request_id=request_id))

    # --- fees ------------------------------------------------------------------------------

    def get_transaction_fee(self, transaction_id: str) -> Optional[tuple[int, str]]:
        """``(fee, currency)`` from ``details.totals`` (the transaction's currency), or None
        while Paddle has not set it (it is null until the transaction is completed)."""
        def fetch(client: Client) -> Optional[tuple[int, str]]:
            totals = client.transactions.get(transaction_id).details.totals
            if totals.fee is None:
                return None
            return parse_minor(totals.fee), normalize_currency(totals.currency_code.value)

        return self._run(fetch, operation="paddle get_transaction_fee")


def _pick(results: Any) -> Optional[RefundResult]:
    """Of several adjustments for one request (there should be one), the live one: pending or
    approved before rejected; the latest listed among equals."""
    best = None
    for result in results:
        if best is None or result.status != "failed" or best.status == "failed":
            best = result
    return best
