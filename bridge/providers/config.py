"""What every provider client takes from the settings: the retry policy and the timeouts."""
from __future__ import annotations

from bridge.providers.retry import RetryPolicy


def retry_policy(settings) -> RetryPolicy:
    return RetryPolicy(attempts=settings.provider_attempts, multiplier=settings.provider_backoff_multiplier,
                       max_wait=settings.provider_backoff_max_seconds)


def timeouts(settings) -> dict:
    """``timeout`` and ``connect_timeout`` keyword arguments of the API clients."""
    return {"timeout": settings.provider_timeout_seconds,
            "connect_timeout": min(5.0, settings.provider_timeout_seconds)}
