"""What applying an event asks of the rest of the bridge: the ledger's explicit dependencies.

``apply_parsed`` takes an object with this shape (the services build it: see
``bridge.services.effects``) instead of reading module-level hooks. Everything here runs in
the caller's transaction and writes its own rows and jobs there.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional, Protocol, Sequence

from sqlalchemy.orm import Session

from bridge.domain.events import SubscriptionCanceled
from bridge.domain.follow_ups import FollowUp, FollowUpCause
from bridge.ledger.catalog import Catalog
from bridge.ledger.models import Dispute, Order, Payment, Refund


class LedgerEffects(Protocol):
    @property
    def catalog(self) -> Catalog:
        """The merchant's product catalog (orders created from payments)."""

    @property
    def default_policy(self) -> Optional[str]:
        """The policy of an order the bridge creates from a payment."""

    def follow_ups(self, payment: Payment, after: FollowUpCause) -> Sequence[FollowUp]:
        """The provider fetches this payment still needs (asked of its provider)."""

    def on_payment(self, session: Session, payment: Payment, order: Order, now: datetime) -> None: ...

    def on_refund(self, session: Session, refund: Refund, now: datetime) -> None: ...

    def on_dispute(self, session: Session, dispute: Dispute, before: Optional[str], now: datetime) -> None: ...

    def on_subscription_canceled(self, session: Session, event: SubscriptionCanceled, now: datetime) -> None: ...
