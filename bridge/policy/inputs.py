"""What the evaluator decides on: the order with its payment data, the facts, the request.

The dataclasses are plain values (the ledger builds them from its rows; tests and the bench
build them directly). ``parse_evaluation`` validates the JSON body of
``POST /api/v1/policies/{id}/evaluate`` (and of ``bridge policy evaluate FILE.json``) into them,
raising :class:`PolicyInputError` with the path of the offending field.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Optional

from bridge.domain.money import normalize_currency

from .errors import PolicyInputError
from .vocab import BILLINGS, FACT_TYPES, PURCHASES, REASONS

_EMPTY: Mapping[str, Any] = {}


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


# -- scalar validators ------------------------------------------------------------------------

def parse_time(value: Any, where: str) -> datetime:
    """ISO 8601 with ``Z`` or an offset, as an aware UTC datetime."""
    if not isinstance(value, str):
        raise PolicyInputError(where, f"expected an ISO 8601 time string, got {_kind(value)}")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise PolicyInputError(where, f"not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise PolicyInputError(where, f"time {value!r} has no time zone (add Z or an offset)")
    return parsed.astimezone(timezone.utc)


def _money(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyInputError(where, f"expected an integer amount in minor units, got {_kind(value)}")
    if value < 0:
        raise PolicyInputError(where, "must not be negative")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise PolicyInputError(where, f"expected true or false, got {_kind(value)}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PolicyInputError(where, f"expected a non-empty string, got {_kind(value)}")
    return value


def _choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise PolicyInputError(where, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise PolicyInputError(where, f"expected an object, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def parse_facts(value: Any, where: str, types: Optional[Mapping[str, str]] = None,
                strict: bool = True) -> dict[str, Any]:
    """Facts by name: booleans, money (int >= 0 or null = unknown), times (ISO time or null).

    ``types`` is the fact table of the order's policy (``Policy.fact_types``,
    ``PolicyRegistry.fact_types(id)``: the standard facts of spec/policies.md and the ones the
    policy declares); without it, the standard facts. Unknown names are an error, unless
    ``strict`` is false (facts stored under an earlier version of the policy: skipped)."""
    if value is None:
        return {}
    if types is None:
        types = FACT_TYPES
    data = _object(value, where)
    out: dict[str, Any] = {}
    for name, raw in data.items():
        kind = types.get(name)
        key = f"{where}.{name}"
        if kind is None:
            if not strict:
                continue
            raise PolicyInputError(key, f"unknown fact {name!r} (known: {', '.join(types)})")
        if kind == "bool":
            out[name] = _bool(raw, key)
        elif raw is None:
            continue                     # money or time explicitly not known
        elif kind == "money":
            out[name] = _money(raw, key)
        else:
            out[name] = parse_time(raw, key)
    return out


# -- the order and the request ----------------------------------------------------------------

def parse_order(value: Any, where: str = "order", facts: Optional[Mapping[str, str]] = None) -> Order:
    """``facts``: the fact table of the policy that decides it (standard facts when None)."""
    types = facts
    data = _object(value, where)
    currency_raw = data.get("currency")
    try:
        currency = normalize_currency(currency_raw if isinstance(currency_raw, str) else "")
    except ValueError:
        raise PolicyInputError(f"{where}.currency",
                               f"expected an ISO 4217 currency code, got {_kind(currency_raw)}") from None
    policy = data.get("policy")
    if policy is not None:
        policy = _text(policy, f"{where}.policy")
    order_id = data.get("order_id")
    if order_id is not None:
        order_id = _text(order_id, f"{where}.order_id")
    bundle = _bool(data.get("bundle", False), f"{where}.bundle")

    customer = data.get("customer")
    cwhere = f"{where}.customer"
    if customer is None:
        customer, cwhere = data, where   # country / business on the order itself
    else:
        customer = _object(customer, cwhere)
    country = customer.get("country")
    if country is not None:
        if not isinstance(country, str) or len(country.strip()) != 2 or not country.strip().isalpha():
            raise PolicyInputError(f"{cwhere}.country",
                                   f"expected a two-letter country code, got {_kind(country)}")
        country = country.strip().upper()
    business = customer.get("business", False)
    business = False if business is None else _bool(business, f"{cwhere}.business")

    facts = parse_facts(data.get("facts"), f"{where}.facts", types)
    raw_items = data.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise PolicyInputError(f"{where}.items", "expected a non-empty array of items")
    items = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_items):
        item = parse_item(raw, f"{where}.items[{i}]", types)
        if item.item_id in seen:
            raise PolicyInputError(f"{where}.items[{i}].item_id", f"duplicate item id {item.item_id!r}")
        seen.add(item.item_id)
        items.append(item)
    item_facts = data.get("item_facts")
    if item_facts is not None:     # the shape of POST /orders/{id}/facts, stored with the order
        items = _merge_item_facts(items, item_facts, f"{where}.item_facts", types)
    return Order(currency=currency, items=tuple(items), policy=policy, order_id=order_id,
                 bundle=bundle, country=country, business=business, facts=facts)


def _merge_item_facts(items: list[OrderItem], value: Any, where: str,
                      types: Optional[Mapping[str, str]] = None) -> list[OrderItem]:
    data = _object(value, where)
    by_id = {item.item_id: item for item in items}
    for item_id in data:
        if item_id not in by_id:
            raise PolicyInputError(f"{where}.{item_id}", f"no item {item_id!r} in the order")
    out = []
    for item in items:
        extra = parse_facts(data.get(item.item_id), f"{where}.{item.item_id}", types)
        if extra:
            item = replace(item, facts={**item.facts, **extra})
        out.append(item)
    return out


def parse_item(value: Any, where: str, types: Optional[Mapping[str, str]] = None) -> OrderItem:
    data = _object(value, where)
    item_id = _text(data.get("item_id"), f"{where}.item_id")
    category = _text(data.get("category"), f"{where}.category")
    if "amount" not in data:
        raise PolicyInputError(f"{where}.amount", "required")
    amount = _money(data["amount"], f"{where}.amount")
    billing = data.get("billing")
    if billing is not None:
        billing = _choice(billing, f"{where}.billing", BILLINGS)
    purchase = data.get("purchase")
    purchase = "initial" if purchase is None else _choice(purchase, f"{where}.purchase", PURCHASES)
    fee = data.get("fee")
    if fee is not None:
        fee = _money(fee, f"{where}.fee")
    if data.get("paid_at") is None:
        raise PolicyInputError(f"{where}.paid_at", "required: the time of the payment that bought the item")
    paid_at = parse_time(data["paid_at"], f"{where}.paid_at")
    period_start = data.get("period_start")
    if period_start is not None:
        period_start = parse_time(period_start, f"{where}.period_start")
    period_end = data.get("period_end")
    if period_end is not None:
        period_end = parse_time(period_end, f"{where}.period_end")
        if period_end <= (period_start or paid_at):
            raise PolicyInputError(f"{where}.period_end",
                                   "must be after period_start (or paid_at when no period_start)")
    already = data.get("already_refunded")
    already = 0 if already is None else _money(already, f"{where}.already_refunded")
    if already > amount:
        raise PolicyInputError(f"{where}.already_refunded", f"{already} exceeds the amount {amount}")
    fee_kept = data.get("fee_kept")
    fee_kept = 0 if fee_kept is None else _money(fee_kept, f"{where}.fee_kept")
    if fee_kept and (fee is None or fee_kept > fee):
        raise PolicyInputError(f"{where}.fee_kept", f"{fee_kept} exceeds the item's fee {fee}")
    if fee_kept > already:
        raise PolicyInputError(f"{where}.fee_kept", f"{fee_kept} exceeds already_refunded {already} "
                                                    "(a kept fee is part of what earlier refunds settled)")
    duplicate = data.get("duplicate_charge", False)
    duplicate = False if duplicate is None else _bool(duplicate, f"{where}.duplicate_charge")
    facts = parse_facts(data.get("facts"), f"{where}.facts", types)
    sku = data.get("sku")
    if sku is not None and not isinstance(sku, str):
        raise PolicyInputError(f"{where}.sku", f"expected a string, got {_kind(sku)}")
    return OrderItem(item_id=item_id, category=category, amount=amount, paid_at=paid_at,
                     billing=billing, purchase=purchase, fee=fee, period_start=period_start,
                     period_end=period_end, already_refunded=already, fee_kept=fee_kept,
                     duplicate_charge=duplicate,
                     facts=facts, sku=sku or None)


def parse_request(value: Any, order: Order, now: datetime, where: str = "request",
                  facts: Optional[Mapping[str, str]] = None,
                  reasons: Optional[Iterable[str]] = None,
                  allow_future: bool = False) -> RefundRequest:
    """The refund request, checked against its order and the current time ``now``.

    ``facts`` / ``reasons``: the fact table and reasons of the order's policy (standard ones
    when None); ``allow_future``: the simulator's hypothetical requests may be dated later
    than ``now``."""
    data = _object(value, where)
    reason = data.get("reason")
    known_reasons = REASONS if reasons is None else tuple(reasons)
    if not isinstance(reason, str) or reason not in known_reasons:
        raise PolicyInputError(f"{where}.reason",
                               f"must be one of {', '.join(known_reasons)}, got {_kind(reason)}")
    ids = {item.item_id: item for item in order.items}
    items = data.get("items")
    if items is not None:
        if not isinstance(items, list) or not items:
            raise PolicyInputError(f"{where}.items", "expected a non-empty array of item ids (omit it for the whole order)")
        seen: set[str] = set()
        for i, item_id in enumerate(items):
            if not isinstance(item_id, str) or item_id not in ids:
                raise PolicyInputError(f"{where}.items[{i}]", f"no item {item_id!r} in the order")
            if item_id in seen:
                raise PolicyInputError(f"{where}.items[{i}]", f"item {item_id!r} is listed twice")
            seen.add(item_id)
        items = tuple(items)
    raw_at = data.get("requested_at")
    if raw_at is None:
        requested_at = _utc(now)
    else:
        requested_at = parse_time(raw_at, f"{where}.requested_at")
    check_requested_at(order, items, requested_at, now, f"{where}.requested_at", allow_future)
    types = facts
    facts = parse_facts(data.get("facts"), f"{where}.facts", types)
    item_facts: dict[str, dict[str, Any]] = {}
    raw_item_facts = data.get("item_facts")
    if raw_item_facts is not None:
        for item_id, raw in _object(raw_item_facts, f"{where}.item_facts").items():
            if item_id not in ids:
                raise PolicyInputError(f"{where}.item_facts.{item_id}", f"no item {item_id!r} in the order")
            item_facts[item_id] = parse_facts(raw, f"{where}.item_facts.{item_id}", types)
    return RefundRequest(reason=reason, requested_at=requested_at, items=items, facts=facts,
                         item_facts=item_facts)


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
    data = _object(body, "body")
    if "order" not in data:
        raise PolicyInputError("order", "required")
    order = parse_order(data["order"], "order", facts)
    if "request" not in data:
        raise PolicyInputError("request", "required")
    request = parse_request(data["request"], order, now, "request", facts, reasons, allow_future)
    return order, request


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise TypeError("now must be an aware datetime")
    return moment.astimezone(timezone.utc)
