"""Provider API clients built from the settings, once per process."""
from __future__ import annotations

import threading

from bridge.providers.paddle_api import PaddleApi
from bridge.providers.retry import RateLimiter, RetryPolicy
from bridge.providers.stripe_api import StripeApi
from bridge.runtime import Runtime

_lock = threading.Lock()
_cache: dict = {}


def _policy(rt: Runtime) -> RetryPolicy:
    s = rt.settings
    return RetryPolicy(attempts=s.provider_attempts, multiplier=s.provider_backoff_multiplier,
                       max_wait=s.provider_backoff_max_seconds)


def stripe_api(rt: Runtime) -> StripeApi:
    key = ("stripe", id(rt))
    with _lock:
        if key not in _cache:
            s = rt.settings
            if not s.stripe_api_key:
                raise RuntimeError("STRIPE_API_KEY is not set: cannot call Stripe")
            _cache[key] = StripeApi(s.stripe_api_key, base_url=s.stripe_api_base, timeout=s.provider_timeout_seconds,
                                    connect_timeout=min(5.0, s.provider_timeout_seconds), retry=_policy(rt),
                                    limiter=RateLimiter(s.stripe_calls_per_second), observe=rt.metrics.provider_call)
        return _cache[key]


def paddle_api(rt: Runtime) -> PaddleApi:
    key = ("paddle", id(rt))
    with _lock:
        if key not in _cache:
            s = rt.settings
            if not s.paddle_api_key:
                raise RuntimeError("PADDLE_API_KEY is not set: cannot call Paddle")
            _cache[key] = PaddleApi(s.paddle_api_key, environment=s.paddle_environment, base_url=s.paddle_api_base,
                                    timeout=s.provider_timeout_seconds,
                                    connect_timeout=min(5.0, s.provider_timeout_seconds), retry=_policy(rt),
                                    limiter=RateLimiter(s.paddle_calls_per_second), observe=rt.metrics.provider_call)
        return _cache[key]
