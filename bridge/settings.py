"""Settings: read from the environment once, at start-up, into an immutable object.

Nothing else in the bridge reads ``os.environ``; tests build a ``Settings`` directly.
"""
from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Optional

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_instance_dir() -> Path:
    return PROJECT_ROOT / "instance"


class ConfigError(ValueError):
    """A variable that cannot work. ``str()`` is the one line a command prints before it
    stops with exit status 2: the variable's name and what is wrong, never its value when the
    value may hold a credential."""

    def __init__(self, variable: str, problem: str):
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


def _int(env: Mapping[str, str], key: str, default: int, minimum: Optional[int] = None) -> int:
    raw = env.get(key)
    if not raw:
        return default
    try:
        value = int(raw.strip(), 10)
    except ValueError:
        raise ConfigError(key, f"must be a whole number, got {raw[:40]!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(key, f"must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], key: str, default: float, minimum: Optional[float] = None) -> float:
    raw = env.get(key)
    if not raw:
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(key, f"must be a number, got {raw[:40]!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(key, f"must be a finite number, got {raw[:40]!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(key, f"must be at least {minimum:g}, got {value:g}")
    return value


def _flag(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = (env.get(key) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(key, f"must be on or off, got {raw[:40]!r}")


def _choice(env: Mapping[str, str], key: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(key)
    if not raw:
        return default
    if raw not in choices:
        raise ConfigError(key, f"must be {' or '.join(choices)}, got {raw[:40]!r}")
    return raw


def _database_url(raw: str) -> str:
    """Only PostgreSQL and SQLite are supported. The URL is never echoed: it holds a password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError
    url = normalize_database_url(raw.strip())
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError("DATABASE_URL", "is not a database URL (expected postgresql://... or sqlite:///...)") from None
    backend = parsed.get_backend_name()
    if backend not in ("postgresql", "sqlite"):
        raise ConfigError("DATABASE_URL", f"{backend!r} is not supported: use PostgreSQL (postgresql://...) "
                                          "or SQLite (sqlite:///...)")
    if backend == "postgresql" and parsed.get_driver_name() != "psycopg":
        raise ConfigError("DATABASE_URL", f"driver {parsed.get_driver_name()!r} is not installed: "
                                          "use postgresql://... (psycopg)")
    if backend == "sqlite" and parsed.get_driver_name() != "pysqlite":
        raise ConfigError("DATABASE_URL", f"driver {parsed.get_driver_name()!r} is not installed: use sqlite:///...")
    return url


def _secret_key(raw: Optional[str]) -> Optional[str]:
    """BRIDGE_SECRET_KEY signs the console's session cookies: a short one could be guessed."""
    if not raw:
        return None
    if len(raw) < 32:
        raise ConfigError("BRIDGE_SECRET_KEY", f"must be at least 32 characters, got {len(raw)}")
    return raw


def _license_secret(raw: Optional[str]) -> Optional[str]:
    """Standard Webhooks secrets are ``whsec_`` + base64 of the key (the prefix optional)."""
    if not raw:
        return None
    body = raw[len("whsec_"):] if raw.startswith("whsec_") else raw
    try:
        key = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("LICENSE_WEBHOOK_SECRET", "is not whsec_ followed by base64 (Standard Webhooks)") from None
    if len(key) < 16:
        raise ConfigError("LICENSE_WEBHOOK_SECRET", f"the key is {len(key)} bytes; at least 16 are needed")
    return raw


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
    # Quick jobs (applying an event) claimed per round trip by a running worker loop and applied
    # in one transaction (bridge/worker/batch.py); None: 8. On SQLite that transaction holds the
    # one write lock: it ends after 40 ms of work whatever the batch (250 ms on PostgreSQL,
    # batch.BUDGET_SECONDS).
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
    # How long a payment known only from a Checkout Session or an invoice waits for its charge
    # event before the bridge asks the provider for the money (most merchants get both within
    # a second; one subscribed to neither gets it from the fetch).
    payment_fetch_delay_seconds: float = 5.0
    # Finance API: after ``auth_failure_limit`` 401s from one client IP within
    # ``auth_failure_window_seconds``, that IP gets 429 until the window frees. Counted from the
    # audit rows in the database so it holds across gunicorn workers; 0 turns it off (e.g. when
    # a gateway in front already limits).
    auth_failure_limit: int = 10
    auth_failure_window_seconds: int = 60
    # Proxies in front of the app that append to X-Forwarded-For (a PaaS router: 1). 0 trusts
    # none: a client could otherwise pick its own address and dodge the failure limit.
    trusted_proxies: int = 0
    # The console's session cookies are signed with this (BRIDGE_SECRET_KEY, at least 32
    # characters; every web process must share it). Unset: a key generated once into the
    # instance folder (fine for ``bridge serve`` on one machine, not for several dynos).
    secret_key: Optional[str] = None
    console_session_hours: float = 8.0
    # ``bridge sync`` run by the worker, every so many seconds per provider whose API key is
    # set (0 turns it off).
    sync_interval_seconds: float = 900.0
    log_level: str = "INFO"
    # "text" (one line per record) or "json" (one JSON object per line, python-json-logger).
    log_format: str = "text"
    # GET /metrics and the counters behind it (BRIDGE_METRICS=off: neither, e.g. to compare).
    metrics_enabled: bool = True

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Settings":
        env = os.environ if env is None else env
        instance_dir = Path(env.get("BRIDGE_INSTANCE_DIR") or _default_instance_dir())
        url = env.get("DATABASE_URL") or f"sqlite:///{instance_dir / 'bridge.sqlite3'}"
        level = (env.get("BRIDGE_LOG_LEVEL") or "INFO").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError("BRIDGE_LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR, got {level[:40]!r}")
        return cls(
            database_url=_database_url(url),
            instance_dir=instance_dir,
            config_dir=Path(env.get("BRIDGE_CONFIG_DIR") or PROJECT_ROOT / "config"),
            stripe_api_key=env.get("STRIPE_API_KEY") or None,
            stripe_webhook_secrets=_secrets(env.get("STRIPE_WEBHOOK_SECRET")),
            stripe_api_base=env.get("STRIPE_API_BASE") or None,
            paddle_api_key=env.get("PADDLE_API_KEY") or None,
            paddle_webhook_secrets=_secrets(env.get("PADDLE_WEBHOOK_SECRET")),
            paddle_environment=_choice(env, "PADDLE_ENVIRONMENT", "sandbox", ("sandbox", "production")),
            paddle_api_base=env.get("PADDLE_API_BASE") or None,
            license_webhook_url=env.get("LICENSE_WEBHOOK_URL") or None,
            license_webhook_secret=_license_secret(env.get("LICENSE_WEBHOOK_SECRET")),
            default_policy=env.get("BRIDGE_POLICY") or None,
            stripe_tolerance_seconds=_int(env, "STRIPE_WEBHOOK_TOLERANCE", 300, minimum=1),
            paddle_tolerance_seconds=_int(env, "PADDLE_WEBHOOK_TOLERANCE", 300, minimum=1),
            max_body_bytes=_int(env, "BRIDGE_MAX_BODY_BYTES", 1024 * 1024, minimum=1),
            lease_seconds=_float(env, "BRIDGE_LEASE_SECONDS", 60.0, minimum=0.01),
            job_max_attempts=_int(env, "BRIDGE_JOB_MAX_ATTEMPTS", 12, minimum=1),
            job_backoff_base_seconds=_float(env, "BRIDGE_JOB_BACKOFF_BASE", 2.0, minimum=0),
            job_backoff_max_seconds=_float(env, "BRIDGE_JOB_BACKOFF_MAX", 3600.0, minimum=0),
            worker_poll_seconds=_float(env, "BRIDGE_WORKER_POLL", 0.5, minimum=0.001),
            worker_threads=_int(env, "BRIDGE_WORKER_THREADS", 1, minimum=1),
            worker_batch=_int(env, "BRIDGE_WORKER_BATCH", 8, minimum=1) if env.get("BRIDGE_WORKER_BATCH") else None,
            provider_attempts=_int(env, "BRIDGE_PROVIDER_ATTEMPTS", 4, minimum=1),
            provider_backoff_multiplier=_float(env, "BRIDGE_PROVIDER_BACKOFF", 0.5, minimum=0),
            provider_backoff_max_seconds=_float(env, "BRIDGE_PROVIDER_BACKOFF_MAX", 8.0, minimum=0),
            provider_timeout_seconds=_float(env, "BRIDGE_PROVIDER_TIMEOUT", 20.0, minimum=0.001),
            refund_poll_seconds=_float(env, "BRIDGE_REFUND_POLL_SECONDS", 900.0, minimum=0.001),
            payment_fetch_delay_seconds=_float(env, "BRIDGE_PAYMENT_FETCH_DELAY_SECONDS", 5.0, minimum=0.0),
            stripe_calls_per_second=_float(env, "BRIDGE_STRIPE_CALLS_PER_SECOND", 20.0, minimum=0.001),
            paddle_calls_per_second=_float(env, "BRIDGE_PADDLE_CALLS_PER_SECOND", 4.0, minimum=0.001),
            auth_failure_limit=_int(env, "BRIDGE_AUTH_FAILURE_LIMIT", 10, minimum=0),
            auth_failure_window_seconds=_int(env, "BRIDGE_AUTH_FAILURE_WINDOW", 60, minimum=0),
            trusted_proxies=_int(env, "BRIDGE_TRUSTED_PROXIES", 0, minimum=0),
            secret_key=_secret_key(env.get("BRIDGE_SECRET_KEY")),
            console_session_hours=_float(env, "BRIDGE_CONSOLE_SESSION_HOURS", 8.0, minimum=0.01),
            sync_interval_seconds=_float(env, "BRIDGE_SYNC_INTERVAL", 900.0, minimum=0),
            log_level=level,
            log_format=_choice(env, "BRIDGE_LOG_FORMAT", "text", ("text", "json")),
            metrics_enabled=_flag(env, "BRIDGE_METRICS", True),
        )

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
