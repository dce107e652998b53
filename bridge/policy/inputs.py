"""What the evaluator decides on: the order with its payment data, the facts, the request.

The dataclasses are plain values (the ledger builds them from its rows; tests and the bench
build them directly). ``parse_evaluation`` validates the JSON body of
``POST /api/v1/policies/{id}/evaluate`` (and of ``bridge policy evaluate FILE.json``) with the
pydantic models of ``input_models.py`` and converts it into them, raising
:class:`PolicyInputError` with the path of the offending field.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Optional

from pydantic import BaseModel, ValidationError

from bridge.domain.fields import first_error, kind, parse_utc

from .errors import PolicyInputError
from .input_models import (Evaluation, EvaluationRequest, HypotheticalOrder, RefundRequestFields,
                           facts_dict, facts_model)
from .vocab import FACT_TYPES


@dataclass(frozen=True, slots=True)
class OrderItem:
    """One paid line of an order, with the payment data that bought it."""
    item_id: str
    category: str
    amount: int                          # what the buyer paid for the item, minor units
    paid_at: datetime                    # aware UTC; for a renewal the renewal payment
    billing: Optional[str] = None        # one_time | monthly | annual; None = category default
    purchase: str = "initial"            # initial | renewal
    fee: Optional[int] = None            # provider processing fee; None = not known
    period_start: Optional[datetime] = None
    period_end: Optional[datetime] = None
    already_refunded: int = 0
    duplicate_charge: bool = False       # payment-data flag: a second charge in one period
    facts: Mapping[str, Any] = field(default_factory=dict)
    sku: Optional[str] = None            # only to name the item in explanations


@dataclass(frozen=True, slots=True)
class Order:
    currency: str
    items: tuple[OrderItem, ...]
    policy: Optional[str] = None
    order_id: Optional[str] = None
    bundle: bool = False
    country: Optional[str] = None        # customer's ISO country code, upper case
    business: bool = False               # the customer is a business, not a consumer
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RefundRequest:
    reason: str
    requested_at: datetime               # aware UTC
    items: Optional[tuple[str, ...]] = None   # None = the whole order
    facts: Mapping[str, Any] = field(default_factory=dict)
    item_facts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


# -- JSON -> the dataclasses above (validated by the models of input_models.py) ----------------

def _validate(model: type[BaseModel], value: Any, where: str) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as err:
        field, message = first_error(err, where)
        raise PolicyInputError(field, message) from None


def parse_time(value: Any, where: str) -> datetime:
    """ISO 8601 with ``Z`` or an offset, as an aware UTC datetime."""
    try:
        return parse_utc(value)
    except ValueError as err:
        raise PolicyInputError(where, str(err)) from None


def parse_facts(value: Any, where: str, fact_types: Mapping[str, str] = FACT_TYPES) -> dict[str, Any]:
    """Facts by name (spec/policies.md): booleans, money (int >= 0 or null = unknown), and
    times (ISO or null). Unknown names are an error."""
    if value is None:
        return {}
    if isinstance(value, BaseModel):
        return facts_dict(value)
    if not isinstance(value, dict):
        raise PolicyInputError(where, f"expected an object, got {kind(value)}")
    return facts_dict(_validate(facts_model(fact_types), value, where))


def order_from_model(data: HypotheticalOrder) -> Order:
    customer = data.customer
    country = customer.country if customer is not None else data.country
    business = customer.business if customer is not None else data.business
    item_facts = data.item_facts or {}
    items = []
    for item in data.items:
        facts = facts_dict(item.facts)
        extra = facts_dict(item_facts.get(item.item_id))
        if extra:   # the shape of POST /orders/{id}/facts, stored with the order
            facts = {**facts, **extra}
        items.append(OrderItem(
            item_id=item.item_id, category=item.category, amount=item.amount, paid_at=item.paid_at,
            billing=item.billing, purchase=item.purchase or "initial", fee=item.fee,
            period_start=item.period_start, period_end=item.period_end,
            already_refunded=item.already_refunded or 0, duplicate_charge=bool(item.duplicate_charge),
            facts=facts, sku=item.sku or None))
    return Order(currency=data.currency, items=tuple(items), policy=data.policy, order_id=data.order_id,
                 bundle=bool(data.bundle), country=country, business=bool(business),
                 facts=facts_dict(data.facts))


def parse_order(value: Any, where: str = "order") -> Order:
    return order_from_model(_validate(HypotheticalOrder, value, where))


def request_from_model(data: RefundRequestFields, order: Order, now: datetime,
                       where: str = "request") -> RefundRequest:
    """The validated request, checked against its order and the current time ``now``."""
    ids = {item.item_id for item in order.items}
    items = None
    if data.items is not None:
        seen: set[str] = set()
        for i, item_id in enumerate(data.items):
            if item_id not in ids:
                raise PolicyInputError(f"{where}.items[{i}]", f"no item {item_id!r} in the order")
            if item_id in seen:
                raise PolicyInputError(f"{where}.items[{i}]", f"item {item_id!r} is listed twice")
            seen.add(item_id)
        items = tuple(data.items)
    requested_at = _utc(now) if data.requested_at is None else data.requested_at
    check_requested_at(order, items, requested_at, now, f"{where}.requested_at")
    item_facts: dict[str, dict[str, Any]] = {}
    for item_id, facts in (data.item_facts or {}).items():
        if item_id not in ids:
            raise PolicyInputError(f"{where}.item_facts.{item_id}", f"no item {item_id!r} in the order")
        item_facts[item_id] = facts_dict(facts)
    return RefundRequest(reason=data.reason, requested_at=requested_at, items=items,
                         facts=facts_dict(data.facts), item_facts=item_facts)


def parse_request(value: Any, order: Order, now: datetime, where: str = "request") -> RefundRequest:
    """The refund request (a JSON object or a validated model), checked against its order."""
    data = value if isinstance(value, RefundRequestFields) else _validate(EvaluationRequest, value, where)
    return request_from_model(data, order, now, where)


def check_requested_at(order: Order, items: Optional[tuple[str, ...]], requested_at: datetime,
                       now: datetime, where: str = "request.requested_at") -> None:
    """Never in the future, never before the payment of a requested item (spec: both a 422)."""
    if requested_at > _utc(now):
        raise PolicyInputError(where, f"{requested_at.isoformat()} is in the future")
    wanted = None if items is None else set(items)
    for item in order.items:
        if (wanted is None or item.item_id in wanted) and requested_at < item.paid_at:
            raise PolicyInputError(where, f"is before the payment of item {item.item_id!r} "
                                          f"(paid_at {item.paid_at.isoformat()})")


def parse_evaluation(body: Any, now: datetime) -> tuple[Order, RefundRequest]:
    """``{"order": {...}, "request": {...}}`` as validated values."""
    data = body if isinstance(body, Evaluation) else _validate(Evaluation, body, "")
    order = order_from_model(data.order)
    return order, request_from_model(data.request, order, now, "request")


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise TypeError("now must be an aware datetime")
    return moment.astimezone(timezone.utc)
