"""The services one process shares: settings, engine, sessions, clock, the providers. Built
once per app or worker, never at import time."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bridge.ledger.db import make_engine, make_session_factory, read_only
from bridge.ledger.inbox import Inbox
from bridge.metrics import NullMetrics, for_settings
from bridge.providers.registry import Providers
from bridge.settings import Settings


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    inbox: Inbox
    reads: sessionmaker[Session] = None  # read-only sessions (never wait for SQLite's write lock)
    clock: Callable[[], datetime] = utcnow
    wall: Callable[[], float] = time.time
    metrics: NullMetrics = field(default_factory=NullMetrics)
    _policies: object = field(default=None, repr=False)
    _providers: Providers = field(default=None, repr=False)

    @classmethod
    def build(cls, settings: Settings, engine: Engine | None = None) -> "Runtime":
        engine = engine or make_engine(settings)
        return cls(settings=settings, engine=engine, sessions=make_session_factory(engine),
                   inbox=Inbox(engine, settings.job_max_attempts),
                   reads=make_session_factory(read_only(engine)), metrics=for_settings(settings))

    @property
    def policies(self):
        """The policy registry, loaded on first use (a broken file fails loudly, by name)."""
        if self._policies is None:
            from bridge.policy import PolicyRegistry  # noqa: WPS433 - loaded lazily
            self._policies = PolicyRegistry.load(self.settings.config_dir / "policies")
        return self._policies

    def __post_init__(self) -> None:
        if self._providers is None:  # built here, not on first use: threads share one set
            # Every provider API call is counted (bridge_provider_api_calls_total).
            self._providers = Providers(self.settings, observe=self.metrics.provider_call)

    @property
    def providers(self) -> Providers:
        """Every provider, bound to these settings (``bridge.providers.registry``). Their API
        clients live as long as this runtime, so every thread of a worker shares them."""
        return self._providers
