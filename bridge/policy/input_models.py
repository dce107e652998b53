"""The pydantic models of what the policy engine accepts as JSON: facts, an order with its
payment data, a refund request, and the evaluate body ``{"order", "request"}``.

Their fields are derived from the engine's own vocabulary (``vocab.py``: fact names and kinds,
reasons, billings, purchases), so a fact or a reason added there is accepted here and documented
in the OpenAPI document without a second list. ``to_engine()`` turns a validated model into the
plain dataclasses of ``inputs.py`` that the evaluator reads (and the bench builds directly), so
validation never sits on the evaluator's path.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal, Mapping, Optional

from pydantic import (BaseModel, ConfigDict, Field, Strict, WithJsonSchema, create_model,
                      field_validator, model_validator)

from bridge.domain.fields import Email, FieldProblem as _at, Flag, Id, Money, Text, UtcTime
from bridge.domain.money import normalize_currency

from .vocab import BILLINGS, FACT_TYPES, PURCHASES, REASONS

# One JSON type per kind of fact (policies.md): a kind added to the vocabulary gets a line here.
FACT_KIND_TYPES: dict[str, Any] = {
    "bool": Flag,               # true / false; null is not "unknown" for a yes/no fact
    "money": Optional[Money],   # minor units; null = not known
    "time": Optional[UtcTime],  # ISO 8601; null = not known
}

COUNTRY = r"^\s*[A-Za-z]{2}\s*$"
CURRENCY = r"^\s*[A-Za-z]{3}\s*$"

Billing = Literal[BILLINGS]          # type: ignore[valid-type]
Purchase = Literal[PURCHASES]        # type: ignore[valid-type]
Reason = Literal[REASONS]            # type: ignore[valid-type]


class _Strict(BaseModel):
    """Unknown keys are refused (a typo such as ``ammount`` is named, not ignored)."""
    model_config = ConfigDict(extra="forbid", frozen=True)


class _FactsBase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    __fact_names__: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _known_names(cls, data: Any) -> Any:
        if isinstance(data, dict) and not cls.__fact_names__.issuperset(data):
            name = next(n for n in data if n not in cls.__fact_names__)
            raise _at(str(name), f"unknown fact {name!r} (known: {', '.join(cls.model_fields)})")
        return data


def _no_default(schema: dict) -> None:
    schema.pop("default", None)


@lru_cache(maxsize=64)
def _facts_model(fact_types: tuple[tuple[str, str], ...]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name, kind in fact_types:
        # No default in the JSON schema: an absent fact is "not told", not a null value.
        fields[name] = (FACT_KIND_TYPES[kind], Field(default=None, json_schema_extra=_no_default))
    model = create_model("Facts", __base__=_FactsBase, **fields)
    model.__fact_names__ = frozenset(fields)
    return model


def facts_model(fact_types: Mapping[str, str] = FACT_TYPES) -> type[BaseModel]:
    """The model of a facts object for a table of fact name -> kind (the engine's own table by
    default; a policy that declares more facts passes its own)."""
    return _facts_model(tuple(fact_types.items()))


Facts = facts_model()


def _facts_schema() -> dict:
    """The facts object in the OpenAPI document: the standard facts, and room for the ones a
    policy declares (a bridge's own document names those of its loaded policies)."""
    schema = Facts.model_json_schema()
    return {"type": "object", "title": "Facts",
            "description": "Facts by name (policies.md): true/false, an amount in minor units, or an "
                           "ISO 8601 time; null = not known. A policy may declare facts of its own.",
            "properties": schema.get("properties", {}),
            "additionalProperties": {"type": ["boolean", "integer", "string", "null"]}}


# Facts as they arrive: their names and kinds depend on the policy that decides (the standard
# table, plus what the policy declares), so they are checked against its table on conversion
# (``inputs.parse_facts``), not by the shape of the body.
RawFacts = Annotated[dict[str, Any], WithJsonSchema(_facts_schema())]
# A reason: the standard ones (vocab.REASONS) or one the order's policy declares; checked
# against the policy's list on conversion.
ReasonName = Annotated[str, Strict(), Field(min_length=1, max_length=64,
                                            description="one of the policy's reasons",
                                            examples=["not_satisfied"])]


def fact_table(policies: Any, policy_id: Optional[str]) -> Mapping[str, str]:
    """The fact table of ``policy_id`` in a registry: its own when the registry declares
    facts per policy (``PolicyRegistry.fact_types``), else the standard table."""
    getter = getattr(policies, "fact_types", None)
    if getter is not None and policy_id is not None and policy_id in policies:
        return getter(policy_id)
    return FACT_TYPES


def reason_list(policies: Any, policy_id: Optional[str]) -> tuple[str, ...]:
    """The reasons ``policy_id`` accepts (``PolicyRegistry.reasons`` when the registry has
    it), else the standard ones."""
    getter = getattr(policies, "reasons", None)
    if getter is not None and policy_id is not None and policy_id in policies:
        return tuple(getter(policy_id))
    return REASONS


def facts_dict(model: Optional[BaseModel]) -> dict[str, Any]:
    """The facts that were given: a null money or time fact means "not known" and is left out."""
    if model is None:
        return {}
    given = model.model_fields_set
    return {k: v for k, v in model.__dict__.items() if v is not None and k in given}


class Customer(_Strict):
    id: Optional[Text] = None
    email: Optional[Email] = None
    country: Optional[str] = Field(default=None, description="ISO 3166 two-letter country code",
                                   examples=["DE"], json_schema_extra={"pattern": COUNTRY})
    business: Optional[Flag] = False

    @field_validator("country", mode="before")
    @classmethod
    def _country(cls, v: Any) -> Any:
        return country_code(v)


def country_code(v: Any) -> Any:
    if v is None:
        return None
    if not isinstance(v, str) or len(v.strip()) != 2 or not v.strip().isascii() or not v.strip().isalpha():
        raise ValueError("expected a two-letter country code")
    return v.strip().upper()


def currency_code(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("expected an ISO 4217 currency code")
    try:
        code = normalize_currency(v)
    except ValueError:
        raise ValueError(f"expected an ISO 4217 currency code, got {v!r}") from None
    if not code.isascii():
        raise ValueError(f"expected an ISO 4217 currency code, got {v!r}")
    return code


class PaidItem(_Strict):
    """One line of a hypothetical order, with the payment that bought it."""
    item_id: Id
    category: Id
    amount: Money
    paid_at: UtcTime
    billing: Optional[Billing] = None
    purchase: Optional[Purchase] = "initial"
    fee: Optional[Money] = None
    period_start: Optional[UtcTime] = None
    period_end: Optional[UtcTime] = None
    already_refunded: Optional[Money] = 0
    fee_kept: Optional[Money] = Field(default=0, description="of fee, what earlier refunds of the item kept")
    duplicate_charge: Optional[Flag] = False
    facts: Optional[RawFacts] = None
    sku: Optional[Text] = None
    price_id: Optional[Text] = None
    product_id: Optional[Text] = None
    license_id: Optional[Text] = None

    @model_validator(mode="after")
    def _consistent(self) -> "PaidItem":
        if self.period_end is not None and self.period_end <= (self.period_start or self.paid_at):
            raise _at("period_end", "must be after period_start (or paid_at when no period_start)")
        if (self.already_refunded or 0) > self.amount:
            raise _at("already_refunded", f"{self.already_refunded} exceeds the amount {self.amount}")
        kept = self.fee_kept or 0
        if kept and (self.fee is None or kept > self.fee):
            raise _at("fee_kept", f"{kept} exceeds the item's fee {self.fee}")
        if kept > (self.already_refunded or 0):
            raise _at("fee_kept", f"{kept} exceeds already_refunded {self.already_refunded or 0} "
                                  "(a kept fee is part of what earlier refunds settled)")
        return self


class HypotheticalOrder(_Strict):
    """The order of ``POST /policies/{id}/evaluate``: order fields plus payment data per item."""
    currency: str = Field(description="ISO 4217", examples=["USD"], json_schema_extra={"pattern": CURRENCY})
    items: list[PaidItem] = Field(min_length=1)
    order_id: Optional[Id] = None
    policy: Optional[Id] = None
    bundle: Optional[Flag] = False
    customer: Optional[Customer] = None
    # country / business may also sit on the order itself (older callers).
    country: Optional[str] = Field(default=None, json_schema_extra={"pattern": COUNTRY})
    business: Optional[Flag] = None
    facts: Optional[RawFacts] = None
    item_facts: Optional[dict[Id, RawFacts]] = None

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, v: Any) -> Any:
        return currency_code(v)

    @field_validator("country", mode="before")
    @classmethod
    def _country(cls, v: Any) -> Any:
        return country_code(v)

    @model_validator(mode="after")
    def _consistent(self) -> "HypotheticalOrder":
        seen: set[str] = set()
        for i, item in enumerate(self.items):
            if item.item_id in seen:
                raise _at(f"items[{i}].item_id", f"duplicate item id {item.item_id!r}")
            seen.add(item.item_id)
        for item_id in self.item_facts or {}:
            if item_id not in seen:
                raise _at(f"item_facts.{item_id}", f"no item {item_id!r} in the order")
        return self


class RefundRequestFields(_Strict):
    """What a refund request says (the order is known separately)."""
    reason: ReasonName
    items: Optional[list[Id]] = Field(default=None, min_length=1,
                                      description="item ids; omit for the whole order")
    requested_at: Optional[UtcTime] = Field(default=None, description="default: now")
    facts: Optional[RawFacts] = None
    item_facts: Optional[dict[Id, RawFacts]] = None


class EvaluationRequest(RefundRequestFields):
    # The evaluate body's request may repeat the order id (the shape of a refund request).
    order_id: Optional[Id] = None


class Evaluation(_Strict):
    """``{"order": {...}, "request": {...}}`` (``policy``: the CLI file's policy id)."""
    order: HypotheticalOrder
    request: EvaluationRequest
    policy: Optional[Id] = None
