"""The ``Provider`` protocol: everything the bridge asks of a payment provider, in neutral terms.

One implementation per provider package (``bridge/providers/stripe/``, ``.../paddle/``), found
by name through :mod:`bridge.providers.registry`. The layers above (web, worker, services) hold
a ``Provider`` and never branch on the provider's name; the ledger never sees one (it asks for
follow-up fetches through its effects, see ``bridge.ledger.effects``). Nothing an SDK defines
crosses this interface: in go bytes, dicts and the dataclasses below, out come
``bridge.domain`` events and ``bridge.providers.outcomes`` results and errors.

A third provider is one new package implementing :class:`Provider` plus one registry line.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional, Protocol, Sequence, runtime_checkable

from bridge.domain.events import ParsedEvent
from bridge.domain.follow_ups import FollowUp, FollowUpCause, PaymentFacts
from bridge.providers.outcomes import RefundResult


@dataclass(frozen=True)
class Envelope:
    """What intake reads of a verified body before storing it: the provider's event id and
    type, and when the provider says it happened (None when it does not say or says it badly:
    the worker reports a malformed payload, intake keeps the bytes)."""
    event_id: object
    event_type: object
    occurred_at: Optional[datetime]


@dataclass(frozen=True)
class RefundCall:
    """One planned provider refund, as the refund job asks for it."""
    refund_id: int                  # our refund row: Stripe's Idempotency-Key is refund-<id>
    request_id: str                 # our refund request (rr_...), findable again at the provider
    amount: int                     # minor units of ``currency``
    currency: str
    items: tuple[dict, ...]         # [{"item_id", "provider_item_id", "amount", "line_amount"}]
    full_transaction: bool          # the whole payment, nothing refunded before
    transaction_id: Optional[str]
    charge_id: Optional[str]
    payment_intent_id: Optional[str]
    order_id: str
    reason: str
    # The call may have reached the provider before (a crash after ``submitted_at`` was
    # committed, or an unknown outcome): the provider resolves that its own way before
    # anything new is created (Stripe: the same idempotency key; Paddle: list and adopt).
    may_exist: bool


@dataclass(frozen=True)
class RefundRef:
    """A refund the provider created (its id) and the payment it belongs to."""
    provider_refund_id: str
    transaction_id: Optional[str]
    charge_id: Optional[str]
    payment_intent_id: Optional[str]


@runtime_checkable
class Provider(Protocol):
    """A payment provider, bound to this process's settings (API clients built on first use)."""

    name: str                   # "stripe": the ``provider`` column and ``/webhooks/<name>``
    signature_header: str       # the request header that carries the webhook signature
    # Paddle keeps one refund awaiting approval per transaction: the refund job must wait for
    # ours to be decided before it submits the next one for the same payment.
    one_pending_refund_per_payment: bool

    # -- intake (web) -------------------------------------------------------------------------
    @property
    def webhooks_configured(self) -> bool:
        """A webhook secret is set (intake fails closed with 503 while it is not)."""

    def verify(self, body: bytes, header: Optional[str], *, now: float) -> int:
        """Check the signature ``header`` of the raw ``body`` against the configured secrets
        (several during a rotation) and timestamp window; returns the signed timestamp, raises
        ``bridge.providers.signatures.SignatureError`` (whose ``reason`` is safe to log)."""

    def envelope(self, doc: dict) -> Envelope:
        """The id, type and time of a verified, ``json.loads``-ed body (no validation beyond)."""

    # -- the worker ------------------------------------------------------------------------------
    def parse(self, payload: dict) -> ParsedEvent:
        """A verified body as neutral events; raises ``PayloadError`` for a handled type it
        cannot read, gives ``Ignored`` for anything else."""

    def follow_ups(self, payment: PaymentFacts, *, after: FollowUpCause) -> Sequence[FollowUp]:
        """The fetches this booked payment still needs (none when its events told everything)."""

    def fetch_fee(self, payment: PaymentFacts) -> Optional[tuple[int, str]]:
        """``(fee, currency)`` of the payment from the provider's API, None while unknown."""

    def link_payment(self, payment: PaymentFacts, now: datetime) -> Optional[ParsedEvent]:
        """The event linking an invoice-like payment to the provider payment that paid it
        (None: this provider's payments name themselves, nothing to link); raises LookupError
        while the provider names none yet (the job retries)."""

    def create_refund(self, call: RefundCall) -> RefundResult:
        """Refund at the provider, exactly once; raises ``PermanentProviderError``,
        ``TransientProviderError`` or ``OutcomeUnknown`` (see ``bridge.providers.outcomes``)."""

    def poll_refund(self, refund: RefundRef) -> Optional[RefundResult]:
        """The provider's current word on a refund it created (None if it cannot be found)."""

    def dispute_lost_before_won(self, provider_status: Optional[str]) -> bool:
        """A dispute now won whose provider status says its money was first taken back (a
        Paddle ``chargeback_reverse``): it counts as lost, then won. Needs no settings: the
        implementations make it a static method, asked through ``registry.provider_class``."""


# -- the provider's own books (bridge sync) -------------------------------------------------------
# Declared here so that the sync work (issue 9, item 2) has its interface; no provider
# implements it yet and nothing calls it. ``Provider`` gains these once both providers do.

@dataclass(frozen=True)
class BookPage:
    """One page of the provider's record: raw documents, each shaped as its webhook body would
    be (so ``Provider.parse`` reads them and intake stores them), and the cursor to go on."""
    items: tuple[dict, ...]
    cursor: Optional[str]       # None when the listing is finished


@runtime_checkable
class ProviderBooks(Protocol):
    """The listing calls ``bridge sync`` needs (added by the sync work)."""

    events_window: timedelta    # how far back the Events list reaches (Stripe 30 days, Paddle 90)

    def list_events(self, since: datetime, cursor: Optional[str]) -> BookPage:
        """Events created at or after ``since``, oldest first, from ``cursor`` on."""

    def list_objects(self, kind: str, since: datetime, cursor: Optional[str]) -> BookPage:
        """Objects of ``kind`` (payments, refunds, disputes, payouts...) created at or after
        ``since``, for history older than the events window, as event-shaped documents."""
