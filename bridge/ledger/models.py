"""The bridge's tables: inbox, jobs, orders, payments, refunds, disputes, ledger, licenses.

Money is ``BigInteger`` minor units with a ``currency`` beside it. Every effect that must
happen once has a unique key in its table, so a retried job cannot do it twice.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, LargeBinary, MetaData,
                        String, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bridge.ledger.types import JSONDoc, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only


# The CHECK constraints below are migration 0003_money's (which, on SQLite, enforces them with
# triggers: SQLite cannot add a CHECK to an existing table). Keep the two in step.
def one_of(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def non_negative(*columns: str) -> str:
    return " AND ".join(f"({c} IS NULL OR {c} >= 0)" for c in columns)


WEBHOOK_STATUSES = ("received", "processed", "ignored", "parked", "failed", "held")
LEDGER_KINDS = ("sale", "fee", "refund", "refund_reversal", "chargeback", "chargeback_fee", "chargeback_reversal",
                "chargeback_fee_reversal")


class WebhookEvent(Base):
    """The inbox: every verified delivery, raw bytes and all, once per provider event id."""
    __tablename__ = "webhook_events"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    provider_event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(128))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict] = mapped_column(JSONDoc, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    occurred_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    # received | processed | ignored | parked | failed | held (an amount that cannot be true)
    status: Mapped[str] = mapped_column(String(16), default="received")
    processed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    # Our order id, when the event was held on an order (reconciliation names it).
    order_ref: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    # webhook (delivered to us) | sync (read from the provider's Events list or objects by
    # ``bridge sync``): the same event either way, stored once.
    source: Mapped[str] = mapped_column(String(16), default="webhook", server_default="webhook")
    __table_args__ = (UniqueConstraint("provider", "provider_event_id"),
                      CheckConstraint(one_of("status", WEBHOOK_STATUSES), name="status"),
                      Index("ix_webhook_events_status", "status"))  # the console's failed work


class Job(Base):
    """The queue (architecture.md invariant 5). ``dedupe_key`` makes an effect's job unique."""
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    ref_id: Mapped[str] = mapped_column(String(255))
    dedupe_key: Mapped[Optional[str]] = mapped_column(String(255), nullable=True, unique=True)
    state: Mapped[str] = mapped_column(String(16), default="ready")  # ready|running|done|dead
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=12)
    locked_by: Mapped[Optional[str]] = mapped_column(String(128), nullable=True)
    lease_token: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    locked_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    # The claim takes the due jobs in (run_at, id) order: read off this index in that order,
    # without sorting the whole backlog (a sync's thousands of events share one run_at).
    __table_args__ = (Index("ix_jobs_state_run_at_id", "state", "run_at", "id"),
                      CheckConstraint(one_of("state", ("ready", "running", "done", "dead")), name="state"),
                      CheckConstraint(non_negative("attempts", "max_attempts"), name="attempts"))


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list] = mapped_column(JSONDoc, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)


class ApiAudit(Base):
    """One row per call to ``/api/v1``, metadata only: never the token, a header, the query
    string or a body. The failure throttle counts its 401 rows per client IP, so the limit holds
    across processes."""
    __tablename__ = "api_audit"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    client_ip: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(512))
    status: Mapped[int] = mapped_column(Integer)
    # The api_tokens row id. No foreign key: the trail must outlive a deleted token.
    token_id: Mapped[Optional[int]] = mapped_column(Id, nullable=True)
    scope: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    # The throttle's query (one IP, status 401, newest first within the window) reads only
    # this index, and at most ``auth_failure_limit`` entries of it.
    __table_args__ = (Index("ix_api_audit_client_ip_status_created_at", "client_ip", "status", "created_at"),)


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(255), unique=True)
    policy: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    currency: Mapped[Optional[str]] = mapped_column(String(3), nullable=True)
    bundle: Mapped[bool] = mapped_column(Boolean, default=False)
    customer_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True, index=True)
    # Indexed for the console's search (it looks up the address as typed and lower-cased).
    customer_email: Mapped[Optional[str]] = mapped_column(String(320), nullable=True, index=True)
    customer_country: Mapped[Optional[str]] = mapped_column(String(2), nullable=True)
    customer_business: Mapped[bool] = mapped_column(Boolean, default=False)
    facts: Mapped[dict] = mapped_column(JSONDoc, default=dict)
    source: Mapped[str] = mapped_column(String(16), default="api")  # api | provider
    status: Mapped[str] = mapped_column(String(32), default="awaiting_payment")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Row version (migration 0005_scale): an update from a stale read fails (locks.py).
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    __table_args__ = (
        CheckConstraint(one_of("status", ("awaiting_payment", "paid", "partially_refunded", "refunded", "disputed",
                                          "charged_back")), name="status"),
        CheckConstraint(one_of("source", ("api", "provider")), name="source"),
    )
    __mapper_args__ = {"version_id_col": version}


class OrderItem(Base):
    __tablename__ = "order_items"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_pk: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[str] = mapped_column(String(255))
    sku: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    category: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    billing: Mapped[Optional[str]] = mapped_column(String(16), nullable=True)
    amount: Mapped[Optional[int]] = mapped_column(BigInteger, nullable=True)
    price_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    product_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    license_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    facts: Mapped[dict] = mapped_column(JSONDoc, default=dict)
    __table_args__ = (UniqueConstraint("order_pk", "item_id"),
                      CheckConstraint(non_negative("amount"), name="amount"))


class Payment(Base):
    """One captured payment. Provider ids are unique per provider so that every event about
    the same payment lands on the same row, whichever arrives first."""
    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    order_pk: Mapped[Optional[int]] = mapped_column(ForeignKey("orders.id"), nullable=True, index=True)
    order_ref: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    customer_ref: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    amount: Mapped[Optional[int]] = mapped_column(BigInteger, nullable=True)
    tax: Mapped[Optional[int]] = mapped_column(BigInteger, nullable=True)
    fee: Mapped[Optional[int]] = mapped_column(BigInteger, nullable=True)  # None = unknown
    currency: Mapped[Optional[str]] = mapped_column(String(3), nullable=True)
    paid_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True, index=True)
    purchase: Mapped[Optional[str]] = mapped_column(String(16), nullable=True)
    period_start: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    period_end: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    transaction_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    charge_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    payment_intent_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    invoice_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    checkout_session_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    subscription_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True, index=True)
    balance_transaction_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    duplicate_of: Mapped[Optional[int]] = mapped_column(ForeignKey("payments.id"), nullable=True)
    # True once an event about the money itself (a charge, a Paddle transaction) was applied:
    # from then on amount and paid_at come from such events only.
    captured: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="succeeded")
    # Why the payment could not be matched to an order (an order reference that is no valid id).
    match_note: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    __table_args__ = (
        UniqueConstraint("provider", "transaction_id"),
        UniqueConstraint("provider", "charge_id"),
        UniqueConstraint("provider", "payment_intent_id"),
        UniqueConstraint("provider", "invoice_id"),
        UniqueConstraint("provider", "checkout_session_id"),
        # A customer's other payments (duplicate charges), without reading every payment.
        Index("ix_payments_provider_customer_ref", "provider", "customer_ref"),
        CheckConstraint(one_of("status", ("succeeded",)), name="status"),
        CheckConstraint(non_negative("amount", "tax", "fee"), name="amounts"),
    )


# The provider ids of a payment, any one of which names it (matching events to it, its locks).
PAYMENT_ID_FIELDS = ("transaction_id", "charge_id", "payment_intent_id", "invoice_id", "checkout_session_id")


class PaymentItem(Base):
    __tablename__ = "payment_items"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    payment_pk: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"), index=True)
    order_item_pk: Mapped[Optional[int]] = mapped_column(ForeignKey("order_items.id"), nullable=True)
    provider_item_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    price_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    product_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    tax: Mapped[int] = mapped_column(BigInteger, default=0)


class RefundRequest(Base):
    __tablename__ = "refund_requests"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # rr_...
    order_pk: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    idempotency_key: Mapped[Optional[str]] = mapped_column(String(255), nullable=True, unique=True)
    request_hash: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    # approved | denied | review | refunding | refunded | failed
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(String(64))
    items: Mapped[list] = mapped_column(JSONDoc, default=list)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    facts: Mapped[dict] = mapped_column(JSONDoc, default=dict)
    item_facts: Mapped[dict] = mapped_column(JSONDoc, default=dict)
    decision: Mapped[dict] = mapped_column(JSONDoc, default=dict)
    refund_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    fee_deducted: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[Optional[str]] = mapped_column(String(3), nullable=True)
    policy_id: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    policy_version: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    policy_hash: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    review: Mapped[Optional[dict]] = mapped_column(JSONDoc, nullable=True)
    error_code: Mapped[Optional[str]] = mapped_column(String(128), nullable=True)
    error_detail: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, server_default="1")  # as Order.version
    __table_args__ = (
        CheckConstraint(one_of("status", ("approved", "denied", "review", "refunding", "refunded", "failed")),
                        name="status"),
        CheckConstraint(non_negative("refund_amount", "fee_deducted"), name="amounts"),
    )
    __mapper_args__ = {"version_id_col": version}


class Refund(Base):
    """A refund at the provider (ours, or one made in a dashboard / by Paddle itself)."""
    __tablename__ = "refunds"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    provider_refund_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    payment_pk: Mapped[Optional[int]] = mapped_column(ForeignKey("payments.id"), nullable=True, index=True)
    refund_request_id: Mapped[Optional[str]] = mapped_column(ForeignKey("refund_requests.id"), nullable=True, index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))  # pending | succeeded | failed | canceled
    status_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    # Provider time at which it was seen succeeded (kept if it later fails: the ledger then
    # holds the refund and its reversal, whatever order the events came in).
    succeeded_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    # Our own refunds: when the provider call was first sent (a re-send after an unknown
    # outcome must reconcile first), and the provider's code when it refused.
    submitted_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    reason: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    failure_reason: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    items: Mapped[list] = mapped_column(JSONDoc, default=list)
    # Provider ids seen on the refund before its payment was known (parked matching).
    transaction_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    charge_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    payment_intent_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    __table_args__ = (
        UniqueConstraint("provider", "provider_refund_id"),
        # One provider refund per payment of a refund request (plan_refunds writes one per
        # payment; the refund worker and the webhooks adopt it rather than add a second).
        Index("uq_refunds_refund_request_id_payment_pk", "refund_request_id", "payment_pk", unique=True),
        CheckConstraint(one_of("status", ("pending", "succeeded", "failed", "canceled")), name="status"),
        CheckConstraint(non_negative("amount"), name="amount"),
    )


class Dispute(Base):
    __tablename__ = "disputes"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    provider_dispute_id: Mapped[str] = mapped_column(String(255))
    payment_pk: Mapped[Optional[int]] = mapped_column(ForeignKey("payments.id"), nullable=True, index=True)
    order_pk: Mapped[Optional[int]] = mapped_column(ForeignKey("orders.id"), nullable=True, index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16))        # warning | open | won | lost
    provider_status: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    status_at: Mapped[datetime] = mapped_column(UTCDateTime)
    evidence_due_by: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    funds_withdrawn: Mapped[int] = mapped_column(BigInteger, default=0)
    funds_reinstated: Mapped[int] = mapped_column(BigInteger, default=0)
    fee: Mapped[int] = mapped_column(BigInteger, default=0)
    restriction: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    transaction_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    charge_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    payment_intent_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Paddle: the chargeback adjustment this case booked, and the reversal that undid it
    # (a reversal names no case: it is paired with a chargeback of its transaction).
    adjustment_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    reversed_by: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    __table_args__ = (
        UniqueConstraint("provider", "provider_dispute_id"),
        # A Paddle adjustment's case (disputes._case_key): by the adjustment that charged it
        # back or reversed it, or by the transaction's open chargebacks.
        Index("ix_disputes_provider_adjustment_id", "provider", "adjustment_id"),
        Index("ix_disputes_provider_reversed_by", "provider", "reversed_by"),
        Index("ix_disputes_provider_transaction_id", "provider", "transaction_id"),
        CheckConstraint(one_of("status", ("warning", "open", "won", "lost")), name="status"),
        CheckConstraint(non_negative("amount", "funds_withdrawn", "funds_reinstated", "fee"), name="amounts"),
    )


class LedgerEntry(Base):
    """Append-only movements of money, signed from the merchant's side (sale +, refund -).

    ``effect_key`` is unique: applying the same provider fact twice writes one entry.
    A correction is a new entry whose ``corrects`` points at the old one.
    """
    __tablename__ = "ledger_entries"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    # sale | fee | refund | refund_reversal | chargeback | chargeback_fee | chargeback_reversal
    # | chargeback_fee_reversal
    kind: Mapped[str] = mapped_column(String(32))
    # active_history: the append-only guard must see the link's old value even when the
    # attribute was not loaded before it was set (filled once from empty, never moved).
    # (its index is the first column of ix_ledger_entries_order_pk_occurred_at)
    order_pk: Mapped[Optional[int]] = mapped_column(ForeignKey("orders.id"), nullable=True, active_history=True)
    payment_pk: Mapped[Optional[int]] = mapped_column(ForeignKey("payments.id"), nullable=True, index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    provider_ref: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    effect_key: Mapped[str] = mapped_column(String(255), unique=True)
    corrects: Mapped[Optional[int]] = mapped_column(ForeignKey("ledger_entries.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # An order's movements newest first (the console's order story) without scanning by time;
    # the comparison with the provider's record finds an entry by the provider's id of the money.
    # Append-only: see bridge/ledger/append_only.py (and the triggers of migration 0003_money).
    __table_args__ = (Index("ix_ledger_entries_order_pk_occurred_at", "order_pk", "occurred_at", "id"),
                      Index("ix_ledger_entries_provider_provider_ref", "provider", "provider_ref"),
                      # An entry's corrections (the amount an original stands at now).
                      Index("ix_ledger_entries_corrects", "corrects"),
                      CheckConstraint(one_of("kind", LEDGER_KINDS), name="kind"))


class License(Base):
    __tablename__ = "licenses"
    license_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    order_pk: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    item_id: Mapped[str] = mapped_column(String(255))
    customer_id: Mapped[Optional[str]] = mapped_column(String(255), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    reason: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    holds: Mapped[list] = mapped_column(JSONDoc, default=list)  # dispute keys holding it suspended
    # Its last notice (services/notices.py): the next one is numbered seq + 1.
    seq: Mapped[int] = mapped_column(Integer, default=0)
    last_notice_id: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    last_notice_type: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    __table_args__ = (
        Index("uq_licenses_order_pk_item_id", "order_pk", "item_id", unique=True),
        CheckConstraint(one_of("status", ("active", "suspended", "revoked", "expired")), name="status"),
    )


class OutboundMessage(Base):
    """Outbox of license notices to the merchant's app (Standard Webhooks)."""
    __tablename__ = "outbound_messages"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # msg_... = webhook-id
    license_id: Mapped[str] = mapped_column(String(255), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    __table_args__ = (UniqueConstraint("license_id", "seq"),)


class EventOrder(Base):
    """Which orders a processed webhook event touched: the provider events of an order's story
    in the console, found by index instead of by searching raw bodies."""
    __tablename__ = "event_orders"
    event_pk: Mapped[int] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"), primary_key=True)
    order_pk: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True)
    __table_args__ = (Index("ix_event_orders_order_pk", "order_pk"),)


class SyncCursor(Base):
    """Where ``bridge sync`` is in one listing of a provider's record (``stream``: ``events``,
    or ``objects:<kind>`` for history older than the events window). ``position`` is the
    provider's page cursor of a listing under way (None: none under way), ``lower`` the
    listing's lower time bound, ``watermark`` the time up to which the stream is complete."""
    __tablename__ = "sync_cursors"
    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[Optional[str]] = mapped_column(String(1024), nullable=True)
    lower: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    upper: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    # Where a later listing goes on from (Paddle's ``after``); None: from its time bound.
    resume: Mapped[Optional[str]] = mapped_column(String(1024), nullable=True)
    watermark: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SyncStatus(Base):
    """One row per provider: the last sync run and the last successful one (what a metric
    "time since the last successful sync" and the month's reconciliation read), and the lease
    that keeps the worker processes from syncing one provider at the same time."""
    __tablename__ = "sync_status"
    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_started_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    last_success_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    last_result: Mapped[dict] = mapped_column(JSONDoc, default=dict)
    lease_owner: Mapped[Optional[str]] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)


class Payout(Base):
    """A payout to the merchant's bank as the provider records it (``bridge sync`` brings it
    in). ``amount`` is what reaches the bank, in the payout (settlement) currency."""
    __tablename__ = "payouts"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    payout_id: Mapped[str] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))          # pending | in_transit | paid | failed | canceled
    arrival_date: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    automatic: Mapped[bool] = mapped_column(Boolean, default=True)
    # The provider's reference on the remittance advice, when it has one (Paddle's
    # ``remittance_reference``: its payout reconciliation report is asked for by it).
    reference: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    # True once every balance movement of it was listed (Stripe: reconciliation completed).
    itemized: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    __table_args__ = (UniqueConstraint("provider", "payout_id"),)


class PayoutLine(Base):
    """One balance movement in a payout: ``amount`` its signed effect on the balance (net of
    its fee) in the payout currency, ``gross`` and ``fee`` beside it, ``source_ref`` the
    provider's id of what moved the money (charge, refund, dispute), which is the ledger
    entry's ``provider_ref``."""
    __tablename__ = "payout_lines"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    payout_pk: Mapped[int] = mapped_column(ForeignKey("payouts.id", ondelete="CASCADE"))
    provider_ref: Mapped[str] = mapped_column(String(255))   # the balance transaction
    kind: Mapped[str] = mapped_column(String(32))            # sale | refund | chargeback | ...
    gross: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    original_amount: Mapped[Optional[int]] = mapped_column(BigInteger, nullable=True)
    original_currency: Mapped[Optional[str]] = mapped_column(String(3), nullable=True)
    exchange_rate: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    source_ref: Mapped[Optional[str]] = mapped_column(String(255), nullable=True, index=True)
    __table_args__ = (UniqueConstraint("payout_pk", "provider_ref"),)
