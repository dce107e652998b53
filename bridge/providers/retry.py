"""The one retry layer of the outbound provider calls (tenacity), shared by Stripe and Paddle.

Both SDKs are built with their own retries off (``StripeClient(max_network_retries=0)``,
Paddle ``Client(retry_count=0)`` and a plain HTTPS adapter), so an operation makes at most
``RetryPolicy.attempts`` HTTP calls, never attempts x SDK retries.

- Retried: :class:`TransientProviderError` (and whatever else the client passes in
  ``retry_on``, e.g. Stripe's :class:`OutcomeUnknown`, safe there because the retry carries the
  same Idempotency-Key), with full-jitter exponential backoff capped at ``max_wait``.
- ``Retry-After`` is honoured: the next call waits at least that long. The wait is enforced per
  client by :class:`RetryAfterGate`, so no other operation of the same client calls the provider
  before it has elapsed either. A Retry-After longer than ``max_retry_after`` ends the loop at
  once with ``TransientProviderError(retry_after=...)``: the job scheduler should come back then,
  a worker should not sleep for minutes.
- Never retried: :class:`PermanentProviderError` (called exactly once), and
  :class:`OutcomeUnknown` unless the client opts in.
"""
from __future__ import annotations

import logging
import threading
import time
from email.utils import parsedate_to_datetime
from dataclasses import dataclass
from typing import Callable, Optional, TypeVar

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
    wait_random_exponential,
)
from urllib3.exceptions import NewConnectionError

from bridge.providers.outcomes import (OutcomeUnknown, PermanentProviderError, ProviderError,
                                       TransientProviderError)

T = TypeVar("T")
log = logging.getLogger("bridge.providers.retry")


@dataclass(frozen=True)
class RetryPolicy:
    """Settings of the retry loop. ``attempts`` counts every call, the first included."""
    attempts: int = 5
    multiplier: float = 0.5        # seconds; backoff n is uniform(0, min(max_wait, multiplier * 2**(n-1)))
    max_wait: float = 8.0          # cap of one backoff sleep (a Retry-After may be longer)
    max_retry_after: float = 60.0  # a longer Retry-After is handed to the caller instead of slept

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.multiplier < 0 or self.max_wait < 0 or self.max_retry_after < 0:
            raise ValueError("waits must not be negative")

    @classmethod
    def for_tests(cls, attempts: int = 4) -> "RetryPolicy":
        """Millisecond backoffs; Retry-After up to 5 s is still honoured in full."""
        return cls(attempts=attempts, multiplier=0.01, max_wait=0.05, max_retry_after=5.0)


class RetryAfterGate:
    """The "not before" time of one client, set by a provider's Retry-After. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._not_before = 0.0

    def hold(self, seconds: float) -> None:
        """No call for ``seconds`` from now (an earlier, longer hold stays)."""
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + seconds)

    def remaining(self) -> float:
        with self._lock:
            return max(0.0, self._not_before - self._clock())

    def wait(self, limit: float) -> None:
        """Sleep until the hold has elapsed; a hold longer than ``limit`` raises instead."""
        remaining = self.remaining()
        if remaining > limit:
            raise TransientProviderError(
                f"rate limited: Retry-After has {remaining:.1f} s to run", retry_after=remaining)
        while remaining > 0:
            self._sleep(remaining)
            remaining = self.remaining()


class RateLimiter:
    """At most ``per_second`` calls in any one-second window, for one process (the providers'
    own limits: Stripe 25/s in sandbox and 100/s live, Paddle 240/min). Thread-safe; a caller
    sleeps until its call fits. Several worker processes each get their own budget."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self._n = max(1, int(per_second))
        # A little wider than the provider's window: requests reach it with some jitter.
        self._window = self._n / per_second * 1.05
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._sent: list[float] = []

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._sent = [t for t in self._sent if now - t < self._window]
                if len(self._sent) < self._n:
                    self._sent.append(now)
                    return
                wait = self._window - (now - self._sent[0])
            self._sleep(max(wait, 0.001))


def _retry_after(state: RetryCallState) -> Optional[float]:
    exc = state.outcome.exception() if state.outcome else None
    return getattr(exc, "retry_after", None)


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    gate: Optional[RetryAfterGate] = None,
    retry_on: tuple[type[BaseException], ...] = (TransientProviderError,),
    sleep: Callable[[float], None] = time.sleep,
    operation: str = "provider call",
    observe: Optional[Callable[[str, str], None]] = None,
) -> T:
    """Run ``fn`` under ``policy``. ``fn`` raises only provider-neutral errors.

    On giving up, re-raises the last error with ``attempts`` set to the number of calls made.
    ``observe(operation, status)`` is told of every call made (the metrics): ``ok``, the
    HTTP status of an error answer, ``network_error``, ``outcome_unknown`` or ``error``.
    """
    attempts = 0
    backoff = wait_random_exponential(multiplier=policy.multiplier, max=policy.max_wait)

    def wait(state: RetryCallState) -> float:
        return max(backoff(state), _retry_after(state) or 0.0)

    def retry_after_too_long(state: RetryCallState) -> bool:
        ra = _retry_after(state)
        return ra is not None and ra > policy.max_retry_after

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info("%s: attempt %d failed (%s: %s); retrying in %.3f s", operation,
                 state.attempt_number, type(exc).__name__, exc,
                 state.next_action.sleep if state.next_action else 0.0)

    def attempt() -> T:
        nonlocal attempts
        if gate is not None:
            gate.wait(policy.max_retry_after)
        attempts += 1
        try:
            result = fn()
        except TransientProviderError as exc:
            if observe is not None:
                observe(operation, call_status(exc))
            if gate is not None and exc.retry_after:
                gate.hold(exc.retry_after)
            raise
        except Exception as exc:
            if observe is not None:
                observe(operation, call_status(exc))
            raise
        if observe is not None:
            observe(operation, "ok")
        return result

    retrying = Retrying(
        stop=stop_any(stop_after_attempt(policy.attempts), retry_after_too_long),
        wait=wait,
        retry=retry_if_exception_type(retry_on),
        reraise=True,
        sleep=sleep,
        before_sleep=before_sleep,
    )
    try:
        return retrying(attempt)
    except ProviderError as exc:
        exc.attempts = attempts
        if not isinstance(exc, PermanentProviderError):
            log.warning("%s: gave up after %d attempt(s): %s: %s", operation, attempts,
                        type(exc).__name__, exc)
        raise


def call_status(exc: BaseException) -> str:
    """The status label of a failed call: the HTTP status when the provider answered."""
    status = getattr(exc, "http_status", None)
    if isinstance(status, int):
        return str(status)
    if isinstance(exc, OutcomeUnknown):
        return "outcome_unknown"
    if isinstance(exc, TransientProviderError):
        return "network_error"
    return "error"


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent
    or unreadable."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    if seconds != seconds or seconds == float("inf"):
        return None
    return max(0.0, seconds)


def request_maybe_sent(exc: BaseException) -> bool:
    """Whether a failed ``requests`` call may have reached the provider (both SDKs use
    requests). False only when the connection was never made (connect timeout, refused,
    DNS failure, TLS handshake); a read timeout or a connection dropped mid-exchange may follow a request
    the provider has applied."""
    if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError)):
        return False
    if isinstance(exc, requests.exceptions.ConnectionError):
        inner = exc.args[0] if exc.args else None
        if isinstance(getattr(inner, "reason", None), NewConnectionError):
            return False
    return True
