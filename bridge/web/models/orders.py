"""``/api/v1/orders``: the registration body, the facts body, and the order as read back."""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bridge.domain.fields import Email, FieldProblem, Flag, Id, Money, Text, id_type
from bridge.policy.input_models import CURRENCY, Customer, RawFacts, currency_code
from bridge.policy.vocab import BILLINGS
from bridge.web.models.common import Out, Timestamp
from bridge.web.models.refund_requests import RefundRequestOut

Billing = Literal[BILLINGS]  # type: ignore[valid-type]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderItemIn(_In):
    item_id: Id
    category: id_type(64) = Field(description="a category of the order's policy")  # type: ignore[valid-type]
    billing: Billing
    amount: Optional[Money] = Field(default=None, description="minor units")
    sku: Optional[Text] = None
    price_id: Optional[Text] = Field(default=None, description="the provider's price id")
    product_id: Optional[Text] = None
    license_id: Optional[Id] = Field(default=None, description="unique across all orders")


class OrderCreate(_In):
    """``POST /api/v1/orders``: idempotent on ``order_id``."""
    order_id: Id
    policy: Id = Field(description="id of a loaded policy (GET /api/v1/policies)")
    currency: str = Field(description="ISO 4217", examples=["USD"], json_schema_extra={"pattern": CURRENCY})
    bundle: Flag = False
    customer: Optional[Customer] = None
    items: list[OrderItemIn] = Field(min_length=1)

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, v: Any) -> Any:
        return currency_code(v)

    @model_validator(mode="after")
    def _unique_items(self) -> "OrderCreate":
        seen: set[str] = set()
        licenses: set[str] = set()
        for i, item in enumerate(self.items):
            if item.item_id in seen:
                raise FieldProblem(f"items[{i}].item_id", f"duplicate item id {item.item_id!r}")
            seen.add(item.item_id)
            if item.license_id is not None:
                if item.license_id in licenses:
                    raise FieldProblem(f"items[{i}].license_id", f"duplicate license id {item.license_id!r}")
                licenses.add(item.license_id)
        return self


class FactsUpdate(_In):
    """``POST /api/v1/orders/{order_id}/facts``: facts of the order and of its items (merged
    into what was recorded before), by the names and kinds of the order's policy."""
    facts: Optional[RawFacts] = None
    item_facts: Optional[dict[Id, RawFacts]] = None


class CustomerOut(Out):
    id: Optional[str] = None
    email: Optional[Email] = None
    country: Optional[str] = None
    business: bool


class OrderItemOut(Out):
    item_id: str
    sku: Optional[str] = None
    category: Optional[str] = None
    billing: Optional[str] = None
    amount: Optional[int] = None
    price_id: Optional[str] = None
    facts: dict[str, Any]


class PaymentLineOut(Out):
    provider_item_id: Optional[str] = None
    price_id: Optional[str] = None
    amount: int
    tax: Optional[int] = None


class PaymentOut(Out):
    provider: str
    amount: Optional[int] = None
    tax: Optional[int] = None
    fee: Optional[int] = None
    net: Optional[int] = None
    currency: Optional[str] = None
    paid_at: Optional[Timestamp] = None
    purchase: Optional[str] = None
    period_start: Optional[Timestamp] = None
    period_end: Optional[Timestamp] = None
    duplicate_charge: bool
    provider_ids: dict[str, str]
    items: list[PaymentLineOut]


class RefundOut(Out):
    provider: str
    provider_refund_id: Optional[str] = None
    amount: int
    currency: str
    status: str
    refund_request_id: Optional[str] = None
    failure_reason: Optional[str] = None
    updated_at: Optional[Timestamp] = None


class DisputeOut(Out):
    provider: str
    provider_dispute_id: str
    order_id: Optional[str] = None
    amount: int
    currency: str
    reason: Optional[str] = None
    status: str
    provider_status: Optional[str] = None
    evidence_due_by: Optional[Timestamp] = None
    funds_withdrawn: Optional[int] = None
    funds_reinstated: Optional[int] = None
    fee: Optional[int] = None
    restriction: Optional[str] = None
    opened_at: Optional[Timestamp] = None
    updated_at: Optional[Timestamp] = None


class LicenseOut(Out):
    license_id: str
    order_id: Optional[str] = None
    item_id: str
    status: Literal["active", "suspended", "revoked", "expired"]
    reason: Optional[str] = None
    changed_at: Optional[Timestamp] = None
    expires_at: Optional[Timestamp] = None


class OrderOut(Out):
    """The order with everything the bridge knows about it."""
    order_id: str
    policy: Optional[str] = None
    currency: Optional[str] = None
    bundle: bool
    status: str
    source: str
    customer: CustomerOut
    items: list[OrderItemOut]
    facts: dict[str, Any]
    payments: list[PaymentOut]
    refund_requests: list[RefundRequestOut]
    refunds: list[RefundOut]
    disputes: list[DisputeOut]
    licenses: list[LicenseOut]
    created_at: Timestamp
    updated_at: Timestamp
