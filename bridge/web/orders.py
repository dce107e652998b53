"""``/api/v1/orders``: register orders, read them back, record facts."""
from __future__ import annotations

from datetime import datetime

from flask import current_app

from bridge.ledger import orders as order_repo
from bridge.ledger.locks import lock_order
from bridge.ledger.views import order_view
from bridge.policy import PolicyInputError, parse_facts
from bridge.policy.input_models import fact_table
from bridge.services import licenses
from bridge.web.api import bp
from bridge.web.auth import require
from bridge.web.contract import operation, respond
from bridge.web.errors import ApiError
from bridge.web.models.orders import FactsUpdate, OrderCreate, OrderOut


def _rt():
    return current_app.extensions["bridge"]


def invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_field", f"{field}: {message}", field=field)


def facts_json(facts: dict) -> dict:
    """Validated facts as JSON values (times back to ISO 8601 UTC)."""
    return {k: (v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v) for k, v in facts.items()}


def _registration(body: OrderCreate, policies) -> dict:
    """The validated body as the ledger's registration document, checked against the policy."""
    if body.policy not in policies:
        raise invalid("policy", f"unknown policy {body.policy!r} (loaded: {', '.join(policies.ids())})")
    policy = policies.get(body.policy)
    for i, item in enumerate(body.items):
        if item.category not in policy.categories:
            raise invalid(f"items[{i}].category", f"policy {body.policy!r} has no category {item.category!r} "
                                                  f"(it has: {', '.join(policy.categories)})")
    customer = body.customer
    return {"order_id": body.order_id, "policy": body.policy, "currency": body.currency, "bundle": body.bundle,
            "customer": {"id": customer.id if customer else None, "email": customer.email if customer else None,
                         "country": customer.country if customer else None,
                         "business": bool(customer.business) if customer else False},
            "items": [item.model_dump() for item in body.items]}


_ORDER_LINKS = {"GetOrder": ("get_order", {"order_id": "$response.body#/order_id"}),
                "PostFacts": ("post_facts", {"order_id": "$response.body#/order_id"}),
                "ListLicenses": ("list_licenses", {"order_id": "$response.body#/order_id"})}


@bp.post("/orders")
@require("orders:write")
@operation(body=OrderCreate, responses={201: OrderOut, 200: OrderOut}, errors=(409,), tags=("orders",),
           links={201: _ORDER_LINKS, 200: _ORDER_LINKS})
def create_order(body: OrderCreate):
    """Register an order (idempotent on order_id: the same body again answers 200)."""
    rt = _rt()
    clean = _registration(body, rt.policies)
    now = rt.clock()
    with rt.sessions.begin() as session:
        lock_order(session, order_id=clean["order_id"], customers=[(clean.get("customer") or {}).get("id")])
        try:
            order, created = order_repo.register_order(session, clean, now)
        except order_repo.OrderConflict as err:
            raise ApiError(409, "order_conflict", str(err), field=getattr(err, "field", None))
        licenses.on_order_registered(session, order, now, rt.policies)
        out = order_view(session, order, rt.clock())
    return respond(OrderOut, out, 201 if created else 200)


@bp.get("/orders/<order_id>")
@require("read")
@operation(responses={200: OrderOut}, errors=(404,), tags=("orders",))
def get_order(order_id: str):
    """The order with its items, payments, facts, refund requests, refunds, disputes, licenses."""
    rt = _rt()
    with rt.reads() as session:
        order = order_repo.get_order(session, order_id)
        if order is None:
            raise ApiError(404, "order_not_found", f"no order {order_id!r}")
        out = order_view(session, order, rt.clock())
    return respond(OrderOut, out)


@bp.post("/orders/<order_id>/facts")
@require("orders:write")
@operation(body=FactsUpdate, responses={200: OrderOut}, errors=(404,), tags=("orders",))
def post_facts(order_id: str, body: FactsUpdate):
    """Record facts of the order and of its items (policies.md names them)."""
    rt = _rt()
    now = rt.clock()
    with rt.sessions.begin() as session:
        lock_order(session, order_id=order_id)
        order = order_repo.get_order(session, order_id)
        if order is None:
            raise ApiError(404, "order_not_found", f"no order {order_id!r}")
        # Names and kinds are those of the order's policy (standard facts and its own).
        table = fact_table(rt.policies, order.policy)
        try:
            facts = parse_facts(body.facts, "facts", table)
            item_facts = {k: parse_facts(v, f"item_facts.{k}", table) for k, v in (body.item_facts or {}).items()}
        except PolicyInputError as err:
            raise invalid(err.field, err.message) from None
        items = {i.item_id: i for i in order_repo.items_of(session, order)}
        for item_id in item_facts:
            if item_id not in items:
                raise invalid(f"item_facts.{item_id}", f"order {order_id!r} has no item {item_id!r}")
        order.facts = {**(order.facts or {}), **facts_json(facts)}
        for item_id, f in item_facts.items():
            items[item_id].facts = {**(items[item_id].facts or {}), **facts_json(f)}
        order.updated_at = now
        session.flush()
        out = order_view(session, order, rt.clock())
    return respond(OrderOut, out)
