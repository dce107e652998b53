"""Provider-neutral events: what a Stripe or Paddle webhook means to the bridge.

The providers' parsers (``bridge.providers``) turn a verified payload into one of these; the
ledger applies them. Every event carries the provider's own time (``occurred_at``) so that the
ledger judges state changes by it, never by arrival order. Amounts are integer minor units.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional, Union

STRIPE = "stripe"
PADDLE = "paddle"


@dataclass(frozen=True)
class LineItem:
    """One line of a paid transaction."""
    provider_item_id: Optional[str]  # Paddle txnitm_...; Stripe invoice line id or None
    price_id: Optional[str]
    product_id: Optional[str]
    amount: int                      # what the buyer paid for the line, tax included
    tax: int = 0
    quantity: int = 1
    # From the price's / product's own custom_data or metadata, when present.
    category: Optional[str] = None
    billing: Optional[str] = None    # one_time | monthly | annual
    sku: Optional[str] = None
    item_ref: Optional[str] = None   # merchant's own item id, from custom_data/metadata "item_id"


@dataclass(frozen=True)
class PaymentSucceeded:
    """Money was captured. Several Stripe events describe the same payment; the ledger merges
    them by any of the provider ids they share (payment intent, charge, invoice, session)."""
    provider: str
    occurred_at: datetime
    amount: Optional[int]            # None when the event does not say (e.g. a session without totals)
    currency: Optional[str]
    paid_at: datetime
    order_ref: Optional[str] = None  # our order id from custom_data/metadata/client_reference_id
    customer_ref: Optional[str] = None
    customer_email: Optional[str] = None
    customer_country: Optional[str] = None
    tax: Optional[int] = None
    fee: Optional[int] = None        # None = not known yet, never 0 by default
    purchase: Optional[str] = None   # initial | renewal; None when this event cannot tell
    period_start: Optional[datetime] = None
    period_end: Optional[datetime] = None
    # Provider ids a refund or a later event will need.
    transaction_id: Optional[str] = None     # Paddle txn_...
    charge_id: Optional[str] = None          # Stripe ch_/py_
    payment_intent_id: Optional[str] = None  # Stripe pi_
    invoice_id: Optional[str] = None         # Stripe in_
    checkout_session_id: Optional[str] = None
    subscription_id: Optional[str] = None    # Stripe sub_ / Paddle sub_
    balance_transaction_id: Optional[str] = None
    items: tuple[LineItem, ...] = ()

    @property
    def moves_money(self) -> bool:
        """About the money movement itself (a charge / payment intent, a Paddle transaction),
        as opposed to a Checkout Session or an invoice that only describe it."""
        return self.transaction_id is not None or (self.charge_id is not None and self.invoice_id is None
                                                   and self.checkout_session_id is None)


@dataclass(frozen=True)
class FeeReported:
    """The provider's processing fee for a payment became known (Stripe balance transaction)."""
    provider: str
    occurred_at: datetime
    charge_id: Optional[str]
    payment_intent_id: Optional[str]
    balance_transaction_id: Optional[str]
    fee: Optional[int]               # None: the event names a balance transaction to fetch
    currency: Optional[str] = None


@dataclass(frozen=True)
class RefundItem:
    provider_item_id: str            # Paddle txnitm_...
    amount: int


@dataclass(frozen=True)
class RefundUpdated:
    """A refund seen at the provider (ours or not): Stripe refund, Paddle refund adjustment."""
    provider: str
    occurred_at: datetime
    provider_refund_id: Optional[str]  # re_... / adj_...; None for a charge.refunded without list
    amount: int
    currency: str
    # pending | succeeded | failed | canceled; None: the provider sent a status the bridge does
    # not know (the refund's state stays where it was; the event notes the raw value).
    status: Optional[str]
    transaction_id: Optional[str] = None
    charge_id: Optional[str] = None
    payment_intent_id: Optional[str] = None
    reason: Optional[str] = None
    failure_reason: Optional[str] = None
    refund_request_id: Optional[str] = None  # ours, from metadata or the Paddle reason text
    items: tuple[RefundItem, ...] = ()
    # charge.refunded reports the running total; the ledger uses it to cross-check.
    charge_amount_refunded: Optional[int] = None


@dataclass(frozen=True)
class DisputeUpdated:
    """A chargeback case. Stripe: charge.dispute.*; Paddle: chargeback* adjustments.

    ``status`` is ours: ``warning`` (inquiry / chargeback_warning), ``open``,
    ``won``, ``lost``; None when the provider sent a status the bridge does not know (a new
    Stripe status such as ``prevented``): the case's state stays where it was, its money is
    still booked, and the event notes the raw value. ``funds_withdrawn``/``funds_reinstated``
    report money moved by this event.
    """
    provider: str
    occurred_at: datetime
    provider_dispute_id: str
    amount: int
    currency: str
    status: Optional[str]
    reason: Optional[str] = None
    transaction_id: Optional[str] = None
    charge_id: Optional[str] = None
    payment_intent_id: Optional[str] = None
    evidence_due_by: Optional[datetime] = None
    funds_withdrawn: Optional[int] = None
    funds_reinstated: Optional[int] = None
    fee: Optional[int] = None
    provider_status: Optional[str] = None
    # A dispute fee given back with a reinstatement (Stripe ``dispute_reversal`` balance
    # transaction with a negative fee), as a positive amount; ``fee`` is only ever a fee charged.
    fee_reinstated: Optional[int] = None
    # The provider's times of the money movements (Stripe: the balance transactions'
    # ``created``), so that the ledger dates them the same whichever event reported them first.
    withdrawn_at: Optional[datetime] = None
    reinstated_at: Optional[datetime] = None
    # Paddle: the adjustment this event is (a chargeback, a reversal): two chargebacks of one
    # transaction are two cases, and a reversal names no case, only the transaction.
    adjustment_id: Optional[str] = None


@dataclass(frozen=True)
class SubscriptionCanceled:
    provider: str
    occurred_at: datetime
    subscription_id: str
    canceled_at: Optional[datetime] = None
    access_ends_at: Optional[datetime] = None  # end of the paid period
    order_ref: Optional[str] = None


@dataclass(frozen=True)
class FraudWarning:
    """A card issuer reported a payment as possibly fraudulent (Stripe
    ``radar.early_fraud_warning.created``): what the order's policy says to do about it is the
    services' business; the ledger only finds the payment."""
    provider: str
    occurred_at: datetime
    provider_warning_id: str          # issfr_...
    charge_id: Optional[str] = None
    payment_intent_id: Optional[str] = None
    fraud_type: Optional[str] = None  # e.g. made_with_stolen_card, unauthorized_use_of_card


@dataclass(frozen=True)
class PayoutUpdated:
    """A payout to the merchant's bank as the provider now reports it (Stripe ``payout.*``,
    Paddle ``payout.created``/``payout.paid``). ``status`` is ours: ``pending``,
    ``in_transit``, ``paid``, ``failed``, ``canceled``. ``itemizable``: the provider can now
    say which movements of money make it up (the ledger then asks for them)."""
    provider: str
    occurred_at: datetime
    payout_id: str
    amount: int                      # what reaches the bank, minor units of ``currency``
    currency: str
    status: str
    created: datetime
    automatic: bool
    itemizable: bool
    arrival_date: Optional[datetime] = None
    reference: Optional[str] = None  # on the remittance advice (Paddle ``remittance_reference``)


@dataclass(frozen=True)
class Ignored:
    """Stored but nothing to do: an event type we do not handle, or one that carries no news."""
    provider: str
    occurred_at: Optional[datetime]
    event_type: str
    why: str = "unhandled event type"
    # A value of a provider enum the bridge does not know (``data.object.status='prevented'``,
    # a new Paddle adjustment action): kept as a note on the event, which finance sees as an
    # ``unknown_provider_value`` discrepancy; never a parse failure.
    unknown_value: Optional[str] = None


NeutralEvent = Union[PaymentSucceeded, FeeReported, RefundUpdated, DisputeUpdated,
                     SubscriptionCanceled, FraudWarning, PayoutUpdated, Ignored]


@dataclass(frozen=True)
class ParsedEvent:
    """What a parser returns: zero or more neutral events from one provider event.

    One provider event can mean several things (a Stripe ``charge.refunded`` carries its
    refunds list; a Paddle ``transaction.completed`` is a payment with its fee)."""
    provider: str
    provider_event_id: str
    event_type: str
    occurred_at: Optional[datetime]
    events: tuple[NeutralEvent, ...] = field(default_factory=tuple)
