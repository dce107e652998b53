"""The ledger's effects as the services define them (``bridge.ledger.effects.LedgerEffects``).

When the ledger applies an event, the services react in the same transaction: a payment
creates its licenses, a refund moves its refund request and may revoke licenses, a dispute
suspends them, a canceled subscription sets when access ends, and the payment's provider
says which fetches it still needs. Built once per worker from its runtime and passed to
every ``apply_parsed``: no module-level hooks, every dependency visible to import-linter.
"""
from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

from sqlalchemy.orm import Session

from bridge.domain.events import SubscriptionCanceled
from bridge.domain.follow_ups import FollowUp, FollowUpCause
from bridge.ledger.catalog import Catalog
from bridge.ledger.models import Dispute, Order, Payment, Refund
from bridge.providers.base import Provider
from bridge.runtime import Runtime
from bridge.services import licenses, refund_requests


class ServiceEffects:
    def __init__(self, providers: Mapping[str, Provider], policies: Callable[[], object],
                 catalog_path: Path, default_policy: Optional[str]):
        self._providers = providers
        self._policies = policies          # read when needed: the registry loads lazily
        self._catalog_path = catalog_path
        self._catalog: Optional[Catalog] = None
        self._lock = threading.Lock()
        self.default_policy = default_policy

    @classmethod
    def of(cls, rt: Runtime) -> "ServiceEffects":
        return cls(rt.providers, lambda: rt.policies, rt.settings.config_dir / "catalog.toml",
                   rt.settings.default_policy)

    @property
    def catalog(self) -> Catalog:
        with self._lock:
            if self._catalog is None:
                self._catalog = Catalog.load(self._catalog_path)
            return self._catalog

    def follow_ups(self, payment: Payment, after: FollowUpCause) -> Sequence[FollowUp]:
        return self._providers[payment.provider].follow_ups(payment, after=after)

    def on_payment(self, session: Session, payment: Payment, order: Order, now: datetime) -> None:
        licenses.on_payment(session, payment, order, now, self._policies())

    def on_refund(self, session: Session, refund: Refund, now: datetime) -> None:
        refund_requests.on_refund(session, refund, now)
        licenses.on_refund(session, refund, self._policies(), now)

    def on_dispute(self, session: Session, dispute: Dispute, before: Optional[str], now: datetime) -> None:
        licenses.on_dispute(session, dispute, self._policies(), now)

    def on_subscription_canceled(self, session: Session, event: SubscriptionCanceled, now: datetime) -> None:
        licenses.on_subscription_canceled(session, event, now)
