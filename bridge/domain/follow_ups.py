"""Follow-up fetches: what the ledger must ask a provider after it booked a payment.

A provider says which fetches a payment needs (a fee only its API knows, the payment that
paid an invoice); the ledger writes them as jobs in the same transaction; the worker runs
them through the provider. The ledger only ever sees these neutral names.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Optional, Protocol

# Job kinds (the job table's ``kind``). Their ``ref_id`` is the payment's primary key.
FETCH_FEE = "fetch_fee"          # the payment's processing fee, from the provider's API
LINK_PAYMENT = "link_invoice"    # which provider payment paid this (invoice) payment

# Why the ledger asks: a payment event was applied, or a fee report for a known payment.
FollowUpCause = Literal["payment", "fee_reported"]


@dataclass(frozen=True)
class FollowUp:
    kind: str          # FETCH_FEE | LINK_PAYMENT
    dedupe_key: str    # one job per thing to fetch, however many events ask for it


class PaymentFacts(Protocol):
    """What a provider may read of a booked payment (the ledger's payment row has these)."""

    @property
    def id(self) -> int: ...
    @property
    def provider(self) -> str: ...
    @property
    def amount(self) -> Optional[int]: ...
    @property
    def currency(self) -> Optional[str]: ...
    @property
    def fee(self) -> Optional[int]: ...
    @property
    def paid_at(self) -> Optional[datetime]: ...
    @property
    def order_ref(self) -> Optional[str]: ...
    @property
    def purchase(self) -> Optional[str]: ...
    @property
    def transaction_id(self) -> Optional[str]: ...
    @property
    def charge_id(self) -> Optional[str]: ...
    @property
    def payment_intent_id(self) -> Optional[str]: ...
    @property
    def invoice_id(self) -> Optional[str]: ...
    @property
    def subscription_id(self) -> Optional[str]: ...
    @property
    def balance_transaction_id(self) -> Optional[str]: ...
