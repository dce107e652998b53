"""``GET /api/v1/reconciliation``: the query and the JSON answer (CSV is plain text)."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Annotated, Any, Literal, Optional

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

from bridge.domain.fields import FieldProblem, Id, parse_utc
from bridge.domain.money import is_currency
from bridge.web.models.common import Out, Query


def _day(value: Any) -> datetime:
    """A date (midnight UTC) or an ISO time with a zone."""
    if isinstance(value, str) and len(value) == 10:
        try:
            return datetime.combine(date.fromisoformat(value), time(), timezone.utc)
        except ValueError:
            raise ValueError(f"not a date: {value!r}") from None
    return parse_utc(value)


Day = Annotated[datetime, BeforeValidator(_day), WithJsonSchema({
    "type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}],
    "description": "YYYY-MM-DD (midnight UTC) or an ISO 8601 time with a zone", "examples": ["2026-03-01"]})]


def _currencies() -> list[str]:
    from babel.numbers import list_currencies
    return sorted(list_currencies())


class ReconciliationQuery(Query):
    from_: Day = Field(alias="from")
    to: Day
    provider: Optional[Id] = Field(default=None, description="a provider's name (stripe, paddle)")
    currency: Optional[str] = Field(default=None, description="ISO 4217", examples=["USD"],
                                    json_schema_extra=lambda s: s.update(enum=_currencies()))
    format: Optional[Literal["json", "csv"]] = Field(default=None, description="csv: the ledger lines")
    units: Optional[Literal["minor", "major"]] = Field(
        default=None, description="the CSV's amounts: minor (the default: integer minor units, as the JSON) or "
                                  "major (decimals by the currency's exponent: 49.00, JPY 4900, KWD 1.234)")

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, v: Any) -> Any:
        if v is None:
            return None
        if not isinstance(v, str) or not is_currency(v):
            raise ValueError(f"not an ISO 4217 currency code: {v!r}")
        return v.strip().upper()

    @model_validator(mode="after")
    def _order(self) -> "ReconciliationQuery":
        if self.to <= self.from_:
            raise FieldProblem("to", "must be after from")
        return self


class Totals(Out):
    provider: str
    currency: str
    gross: int
    fees: int
    refunds: int
    chargebacks: int
    chargeback_fees: int
    net: int
    counts: dict[str, int]


class Discrepancy(Out):
    kind: str
    order_id: Optional[str] = None
    provider: Optional[str] = None
    detail: Any = None


class Reconciliation(Out):
    from_: str = Field(alias="from")
    to: str
    totals: list[Totals]
    discrepancies: list[Discrepancy]


class ProviderRecord(Out):
    provider: str
    last_sync_at: Optional[str] = Field(description="when the last sync started (ISO 8601 UTC)")
    last_success_at: Optional[str] = Field(description="when the last successful sync started")
    last_error: Optional[str] = None


class ReconciliationWithRecord(Reconciliation):
    """The month's answer, and how fresh the provider's record is that it was compared with."""
    provider_record: list[ProviderRecord] = Field(default_factory=list)


class PayoutsQuery(Query):
    from_: Day = Field(alias="from")
    to: Day
    provider: Optional[Id] = Field(default=None, description="a provider's name (stripe, paddle)")

    @model_validator(mode="after")
    def _order(self):
        if self.to <= self.from_:
            raise FieldProblem("to", "must be after from")
        return self


class PayoutSummary(Out):
    provider: str
    payout_id: str
    amount: int = Field(description="what reached the bank, minor units of currency")
    currency: str
    status: str
    arrival_date: Optional[str]
    explained: int
    unexplained: int = Field(description="amount minus the signed sum of the lines; 0 when explained")
    lines: int = Field(description="how many balance movements the payout has")


class PayoutList(Out):
    payouts: list[PayoutSummary]


class PayoutLineOut(Out):
    provider_ref: str
    kind: str
    amount: int
    currency: str
    original_amount: Optional[int] = None
    original_currency: Optional[str] = None
    order_id: Optional[str] = None
    ledger: bool


class PayoutDetail(Out):
    provider: str
    payout_id: str
    amount: int
    currency: str
    status: str
    arrival_date: Optional[str]
    gross: int
    fees: int
    tax: int
    refunds: int
    chargebacks: int
    chargeback_fees: int
    adjustments: int
    fx: int
    other: int
    net: int
    unexplained: int
    lines: list[PayoutLineOut]
