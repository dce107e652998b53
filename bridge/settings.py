"""Settings: read from the environment once, at start-up, into an immutable object.

Nothing else in the bridge reads ``os.environ``; tests build a ``Settings`` directly.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Optional

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_instance_dir() -> Path:
    return PROJECT_ROOT / "instance"


def normalize_database_url(url: str) -> str:
    """PaaS hand out ``postgres://``; SQLAlchemy wants a driver-qualified URL for psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _secrets(value: Optional[str]) -> tuple[str, ...]:
    """A webhook secret variable may hold several secrets, comma-separated, during rotation."""
    if not value:
        return ()
    return tuple(s.strip() for s in value.split(",") if s.strip())


@dataclass(frozen=True)
class Settings:
    database_url: str
    instance_dir: Path = field(default_factory=_default_instance_dir)
    config_dir: Path = PROJECT_ROOT / "config"
    stripe_api_key: Optional[str] = None
    stripe_webhook_secrets: tuple[str, ...] = ()
    stripe_api_base: Optional[str] = None
    paddle_api_key: Optional[str] = None
    paddle_webhook_secrets: tuple[str, ...] = ()
    paddle_environment: str = "sandbox"
    paddle_api_base: Optional[str] = None
    license_webhook_url: Optional[str] = None
    license_webhook_secret: Optional[str] = None
    default_policy: Optional[str] = None
    # Webhook intake.
    stripe_tolerance_seconds: int = 300
    paddle_tolerance_seconds: int = 300
    max_body_bytes: int = 1024 * 1024
    # Job queue.
    lease_seconds: float = 60.0
    job_max_attempts: int = 12
    job_backoff_base_seconds: float = 2.0
    job_backoff_max_seconds: float = 3600.0
    worker_poll_seconds: float = 0.5
    # Worker loops per ``bridge worker`` process (``--threads`` overrides). Jobs mostly wait on
    # the database and the providers, so a few threads use a process better than one.
    worker_threads: int = 1
    # Quick jobs (applying an event) claimed per round trip by a running worker loop; None: 8 on
    # PostgreSQL, 1 on SQLite (whose writers queue for one lock: a batch held by a loop that
    # waits for it delays the events in it, and whatever waits for them).
    worker_batch: Optional[int] = None
    # Outbound provider calls (tenacity inside one job attempt).
    provider_attempts: int = 4
    provider_backoff_multiplier: float = 0.5
    provider_backoff_max_seconds: float = 8.0
    provider_timeout_seconds: float = 20.0
    # Outbound calls per second per worker process (the providers' own limits: Stripe 25/s in
    # sandbox, 100/s live; Paddle 240 per minute).
    stripe_calls_per_second: float = 20.0
    paddle_calls_per_second: float = 4.0
    # How often a submitted refund is checked at the provider when no webhook confirmed it.
    refund_poll_seconds: float = 900.0
    # Finance API: after ``auth_failure_limit`` 401s from one client IP within
    # ``auth_failure_window_seconds``, that IP gets 429 until the window frees. Counted from the
    # audit rows in the database so it holds across gunicorn workers; 0 turns it off (e.g. when
    # a gateway in front already limits).
    auth_failure_limit: int = 10
    auth_failure_window_seconds: int = 60
    # Proxies in front of the app that append to X-Forwarded-For (a PaaS router: 1). 0 trusts
    # none: a client could otherwise pick its own address and dodge the failure limit.
    trusted_proxies: int = 0
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Settings":
        env = os.environ if env is None else env
        instance_dir = Path(env.get("BRIDGE_INSTANCE_DIR") or _default_instance_dir())
        url = env.get("DATABASE_URL") or f"sqlite:///{instance_dir / 'bridge.sqlite3'}"
        get_f = lambda k, d: float(env[k]) if env.get(k) else d  # noqa: E731
        get_i = lambda k, d: int(env[k]) if env.get(k) else d  # noqa: E731
        return cls(
            database_url=normalize_database_url(url),
            instance_dir=instance_dir,
            config_dir=Path(env.get("BRIDGE_CONFIG_DIR") or PROJECT_ROOT / "config"),
            stripe_api_key=env.get("STRIPE_API_KEY") or None,
            stripe_webhook_secrets=_secrets(env.get("STRIPE_WEBHOOK_SECRET")),
            stripe_api_base=env.get("STRIPE_API_BASE") or None,
            paddle_api_key=env.get("PADDLE_API_KEY") or None,
            paddle_webhook_secrets=_secrets(env.get("PADDLE_WEBHOOK_SECRET")),
            paddle_environment=env.get("PADDLE_ENVIRONMENT") or "sandbox",
            paddle_api_base=env.get("PADDLE_API_BASE") or None,
            license_webhook_url=env.get("LICENSE_WEBHOOK_URL") or None,
            license_webhook_secret=env.get("LICENSE_WEBHOOK_SECRET") or None,
            default_policy=env.get("BRIDGE_POLICY") or None,
            stripe_tolerance_seconds=get_i("STRIPE_WEBHOOK_TOLERANCE", 300),
            paddle_tolerance_seconds=get_i("PADDLE_WEBHOOK_TOLERANCE", 300),
            max_body_bytes=get_i("BRIDGE_MAX_BODY_BYTES", 1024 * 1024),
            lease_seconds=get_f("BRIDGE_LEASE_SECONDS", 60.0),
            job_max_attempts=get_i("BRIDGE_JOB_MAX_ATTEMPTS", 12),
            job_backoff_base_seconds=get_f("BRIDGE_JOB_BACKOFF_BASE", 2.0),
            job_backoff_max_seconds=get_f("BRIDGE_JOB_BACKOFF_MAX", 3600.0),
            worker_poll_seconds=get_f("BRIDGE_WORKER_POLL", 0.5),
            worker_threads=get_i("BRIDGE_WORKER_THREADS", 1),
            worker_batch=max(1, get_i("BRIDGE_WORKER_BATCH", 0)) if env.get("BRIDGE_WORKER_BATCH") else None,
            provider_attempts=get_i("BRIDGE_PROVIDER_ATTEMPTS", 4),
            provider_backoff_multiplier=get_f("BRIDGE_PROVIDER_BACKOFF", 0.5),
            provider_backoff_max_seconds=get_f("BRIDGE_PROVIDER_BACKOFF_MAX", 8.0),
            provider_timeout_seconds=get_f("BRIDGE_PROVIDER_TIMEOUT", 20.0),
            refund_poll_seconds=get_f("BRIDGE_REFUND_POLL_SECONDS", 900.0),
            stripe_calls_per_second=get_f("BRIDGE_STRIPE_CALLS_PER_SECOND", 20.0),
            paddle_calls_per_second=get_f("BRIDGE_PADDLE_CALLS_PER_SECOND", 4.0),
            auth_failure_limit=get_i("BRIDGE_AUTH_FAILURE_LIMIT", 10),
            auth_failure_window_seconds=get_i("BRIDGE_AUTH_FAILURE_WINDOW", 60),
            trusted_proxies=get_i("BRIDGE_TRUSTED_PROXIES", 0),
            log_level=env.get("BRIDGE_LOG_LEVEL") or "INFO",
        )

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
