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
    def expand(self, payload: dict) -> dict:
        """A verified body that only points at its object (a Stripe thin event) as the snapshot
        body it stands for, the object fetched from the API; any other body as it is. Called
        by the worker outside any transaction; raises ``PayloadError`` for a body it cannot
        read and the ``outcomes`` errors for the fetch."""

    def parse(self, payload: dict) -> ParsedEvent:
        """A verified body as neutral events; raises ``PayloadError`` for a handled type it
        cannot read, gives ``Ignored`` for anything else."""

    def follow_ups(self, payment: PaymentFacts, *, after: FollowUpCause) -> Sequence[FollowUp]:
        """The fetches this booked payment still needs (none when its events told everything)."""

    def fetch_fee(self, payment: PaymentFacts) -> Optional[tuple[int, str]]:
        """``(fee, currency)`` of the payment from the provider's API, None while unknown."""

    def fetch_payment(self, payment: PaymentFacts, now: datetime) -> Optional[ParsedEvent]:
        """The money of a payment known only from an event that describes it (a Checkout
        Session, an invoice), from the provider's API, as the event that books it (None: this
        provider's payment events always carry their money); raises LookupError while the
        provider has taken no money yet (the job retries)."""

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
# Both providers implement these (``StripeProvider``, ``PaddleProvider``); ``bridge.services.sync``
# is their caller. Kept as a protocol of its own: a provider without a readable record could
# still take webhooks and refunds.

@dataclass(frozen=True)
class BookPage:
    """One page of the provider's record: raw documents, each shaped as its webhook body would
    be (so ``Provider.envelope``/``parse`` read them and intake's inbox stores them), and where
    to go on.

    ``cursor`` is the next page of this listing (None: the listing is finished). ``resume`` is
    where a *later* listing may start to see only what is newer than this page (Paddle's
    ``after``), or None when a later listing starts again from its time bound (Stripe, whose
    lists run newest first). ``total`` is the provider's estimate of the listing's size, when
    it gives one. Cursors are opaque strings the provider alone reads."""
    items: tuple[dict, ...]
    cursor: Optional[str]
    resume: Optional[str] = None
    total: Optional[int] = None


@runtime_checkable
class ProviderBooks(Protocol):
    """The listing calls ``bridge sync`` needs."""

    name: str
    events_window: timedelta    # how far back the Events list reaches (Stripe 30 days, Paddle 90)
    # Object kinds for history older than the events window, in the order to import them
    # (payments before what refers to them).
    object_kinds: tuple[str, ...]

    @property
    def books_configured(self) -> bool:
        """An API key is set: the record can be read."""

    def list_events(self, since: datetime, cursor: Optional[str]) -> BookPage:
        """Events created at or after ``since`` (a page in the provider's own order), from
        ``cursor`` on (None: the first page)."""

    def list_objects(self, kind: str, since: datetime, until: datetime,
                     cursor: Optional[str]) -> BookPage:
        """Objects of ``kind`` created in ``[since, until)``, for history older than the
        events window, as event-shaped documents whose ids are derived from the object and
        its state (``sync_<object id>_<state>``): listing them again stores nothing new, and
        they never collide with the provider's own event ids."""


# -- payouts (issue 10) ----------------------------------------------------------------------------

@dataclass(frozen=True)
class PayoutRecord:
    """A payout as the provider records it: ``amount`` reached (or will reach) the bank."""
    payout_id: str
    amount: int
    currency: str
    status: str                       # pending | in_transit | paid | failed | canceled
    arrival_date: Optional[datetime]
    created: datetime
    automatic: bool
    itemizable: bool                  # the provider can list every movement in it now
    # The provider's reference of the payout on its remittance advice (Paddle's
    # ``remittance_reference``, as a string), when it has one.
    reference: Optional[str] = None


@dataclass(frozen=True)
class PayoutLineRecord:
    """One balance movement in a payout, in the payout currency, with the presentment amount
    beside it when the money was converted (from the provider, never computed by us)."""
    provider_ref: str                 # the provider's id of the movement (balance transaction)
    kind: str                         # sale | fee | refund | refund_reversal | chargeback | ...
    gross: int
    fee: int
    amount: int                       # signed effect on the balance: gross - fee
    currency: str
    original_amount: Optional[int]
    original_currency: Optional[str]
    exchange_rate: Optional[str]
    source_ref: Optional[str]         # what moved it (charge, refund, dispute): ledger provider_ref


class PayoutLinesNotReady(Exception):
    """The provider is still preparing what is in a payout (Paddle: its payout reconciliation
    report is pending): nothing is wrong, ask again later. The payout stays without lines."""


@runtime_checkable
class ProviderPayouts(Protocol):
    """Providers that can say which payouts they made and what is in them: Stripe lists them
    through its API; Paddle has no payout API, so its payouts come from its ``payout.*``
    notifications (the Events list) and their movements from its payout reconciliation report."""

    def list_payouts(self, since: datetime, cursor: Optional[str]
                     ) -> tuple[tuple[PayoutRecord, ...], Optional[str]]:
        """Payouts created at or after ``since``, a page at a time (None: no more)."""

    def payout_lines(self, payout: PayoutRecord, cursor: Optional[str]
                     ) -> tuple[tuple[PayoutLineRecord, ...], Optional[str]]:
        """The movements of one itemizable payout, a page at a time (the payout's own entry
        excluded). Raises :class:`PayoutLinesNotReady` while the provider is still preparing
        them, and the provider's errors (``bridge.providers.outcomes``) when it is down."""
