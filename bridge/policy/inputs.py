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
from typing import Any, Iterable, Mapping, Optional

from pydantic import BaseModel, ValidationError

from bridge.domain.fields import first_error, kind, parse_utc

from .errors import PolicyInputError
from .input_models import (Evaluation, EvaluationRequest, HypotheticalOrder, RefundRequestFields,
                           facts_dict, facts_model)
from .vocab import FACT_TYPES, REASONS


@dataclass(frozen=True, slots=True)
class OrderItem:
    """One paid line of an order, with the payment data that bought it."""
    item_id: str
    category: str
    amount: int                          # what the buyer paid for the item, minor units
    paid_at: datetime                    # aware UTC; for a renewal the renewal payment
    billing: Optional[str] = None        # one_time | monthly | annual; None = category default
    purchase: str = "initial"            # initial | renewal
    fee: Optional[int] = None            # the item's share of its payment's processing fee
                                         # (policies.md: largest remainder); None = not known
    period_start: Optional[datetime] = None
    period_end: Optional[datetime] = None
    already_refunded: int = 0            # settled by earlier refunds: given back + fee kept
    fee_kept: int = 0                    # of ``fee``, what earlier refunds of the item kept
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


def parse_facts(value: Any, where: str, types: Optional[Mapping[str, str]] = None,
                strict: bool = True) -> dict[str, Any]:
    """Facts by name: booleans, money (int >= 0 or null = unknown), times (ISO time or null).

    ``types`` is the fact table of the order's policy (name -> ``bool`` | ``money`` |
    ``time``: the standard facts of spec/policies.md and the ones the policy declares); without
    it, the standard facts. Unknown names are an error, unless ``strict`` is false (facts stored
    under an earlier version of the policy: skipped)."""
    if value is None:
        return {}
    if isinstance(value, BaseModel):
        return facts_dict(value)
    if not isinstance(value, dict):
        raise PolicyInputError(where, f"expected an object, got {kind(value)}")
    table = FACT_TYPES if types is None else types
    if not strict:
        value = {k: v for k, v in value.items() if k in table}
    return facts_dict(_validate(facts_model(table), value, where))


def order_from_model(data: HypotheticalOrder, where: str = "order",
                     facts: Optional[Mapping[str, str]] = None) -> Order:
    """The validated order as the engine's value; ``facts``: the fact table of the policy
    that decides it (standard facts when None)."""
    customer = data.customer
    country = customer.country if customer is not None else data.country
    business = customer.business if customer is not None else data.business
    item_facts = data.item_facts or {}
    items = []
    for i, item in enumerate(data.items):
        own = parse_facts(item.facts, f"{where}.items[{i}].facts", facts)
        extra = parse_facts(item_facts.get(item.item_id), f"{where}.item_facts.{item.item_id}", facts)
        if extra:   # the shape of POST /orders/{id}/facts, stored with the order
            own = {**own, **extra}
        items.append(OrderItem(
            item_id=item.item_id, category=item.category, amount=item.amount, paid_at=item.paid_at,
            billing=item.billing, purchase=item.purchase or "initial", fee=item.fee,
            period_start=item.period_start, period_end=item.period_end,
            already_refunded=item.already_refunded or 0, fee_kept=item.fee_kept or 0,
            duplicate_charge=bool(item.duplicate_charge),
            facts=own, sku=item.sku or None))
    return Order(currency=data.currency, items=tuple(items), policy=data.policy, order_id=data.order_id,
                 bundle=bool(data.bundle), country=country, business=bool(business),
                 facts=parse_facts(data.facts, f"{where}.facts", facts))


def parse_order(value: Any, where: str = "order", facts: Optional[Mapping[str, str]] = None) -> Order:
    """``facts``: the fact table of the policy that decides it (standard facts when None)."""
    return order_from_model(_validate(HypotheticalOrder, value, where), where, facts)


def request_from_model(data: RefundRequestFields, order: Order, now: datetime, where: str = "request",
                       facts: Optional[Mapping[str, str]] = None, reasons: Optional[Iterable[str]] = None,
                       allow_future: bool = False) -> RefundRequest:
    """The validated request, checked against its order, the policy's reasons and facts, and
    the current time ``now``."""
    known = REASONS if reasons is None else tuple(reasons)
    if data.reason not in known:
        raise PolicyInputError(f"{where}.reason", f"must be one of {', '.join(known)}, got {kind(data.reason)}")
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
    check_requested_at(order, items, requested_at, now, f"{where}.requested_at", allow_future)
    item_facts: dict[str, dict[str, Any]] = {}
    for item_id, raw in (data.item_facts or {}).items():
        if item_id not in ids:
            raise PolicyInputError(f"{where}.item_facts.{item_id}", f"no item {item_id!r} in the order")
        item_facts[item_id] = parse_facts(raw, f"{where}.item_facts.{item_id}", facts)
    return RefundRequest(reason=data.reason, requested_at=requested_at, items=items,
                         facts=parse_facts(data.facts, f"{where}.facts", facts), item_facts=item_facts)


def parse_request(value: Any, order: Order, now: datetime, where: str = "request",
                  facts: Optional[Mapping[str, str]] = None,
                  reasons: Optional[Iterable[str]] = None,
                  allow_future: bool = False) -> RefundRequest:
    """The refund request (a JSON object or a validated model), checked against its order
    and the current time ``now``. ``facts`` / ``reasons``: the fact table and reasons of the
    order's policy (standard ones when None); ``allow_future``: the simulator's hypothetical
    requests may be dated later than ``now``."""
    data = value if isinstance(value, RefundRequestFields) else _validate(EvaluationRequest, value, where)
    return request_from_model(data, order, now, where, facts, reasons, allow_future)


def check_requested_at(order: Order, items: Optional[tuple[str, ...]], requested_at: datetime,
                       now: datetime, where: str = "request.requested_at",
                       allow_future: bool = False) -> None:
    """Never in the future (except in the simulator: ``allow_future``), never before the
    payment of a requested item (spec: both a 422)."""
    if requested_at > _utc(now) and not allow_future:
        raise PolicyInputError(where, f"{requested_at.isoformat()} is in the future")
    wanted = None if items is None else set(items)
    for item in order.items:
        if (wanted is None or item.item_id in wanted) and requested_at < item.paid_at:
            raise PolicyInputError(where, f"is before the payment of item {item.item_id!r} "
                                          f"(paid_at {item.paid_at.isoformat()})")


def parse_evaluation(body: Any, now: datetime, facts: Optional[Mapping[str, str]] = None,
                     reasons: Optional[Iterable[str]] = None,
                     allow_future: bool = False) -> tuple[Order, RefundRequest]:
    """``{"order": {...}, "request": {...}}`` as validated values (``facts`` / ``reasons``:
    those of the policy that decides; ``allow_future``: see :func:`parse_request`)."""
    data = body if isinstance(body, Evaluation) else _validate(Evaluation, body, "")
    order = order_from_model(data.order, "order", facts)
    return order, request_from_model(data.request, order, now, "request", facts, reasons, allow_future)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise TypeError("now must be an aware datetime")
    return moment.astimezone(timezone.utc)
