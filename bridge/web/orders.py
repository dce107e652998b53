"""``/api/v1/orders``: register orders, read them back, record facts."""
from __future__ import annotations

from datetime import datetime

from flask import current_app, jsonify

from bridge.domain.money import normalize_currency
from bridge.ledger import orders as order_repo
from bridge.ledger.locks import lock_order
from bridge.ledger.views import order_view
from bridge.policy import PolicyInputError, parse_facts
from bridge.services import licenses
from bridge.web.api import bp
from bridge.web.auth import require
from bridge.web.body import as_list, invalid, json_object, opt_amount, opt_bool, opt_str, req_str
from bridge.web.errors import ApiError

BILLINGS = ("one_time", "monthly", "annual")


def _rt():
    return current_app.extensions["bridge"]


def facts_json(facts: dict) -> dict:
    """Validated facts as JSON values (times back to ISO 8601 UTC)."""
    return {k: (v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v) for k, v in facts.items()}


def _validate_order(doc: dict, policies) -> dict:
    order_id = req_str(doc, "order_id", "")
    policy_id = req_str(doc, "policy", "")
    if policy_id not in policies:
        raise invalid("policy", f"unknown policy {policy_id!r} (loaded: {', '.join(policies.ids())})")
    policy = policies.get(policy_id)
    try:
        currency = normalize_currency(doc.get("currency") if isinstance(doc.get("currency"), str) else "")
    except ValueError:
        raise invalid("currency", "an ISO 4217 currency code is required")
    customer = doc.get("customer") or {}
    if not isinstance(customer, dict):
        raise invalid("customer", "must be an object")
    country = opt_str(customer, "country", "customer.", 2)
    if country is not None and (len(country) != 2 or not country.isalpha()):
        raise invalid("customer.country", "an ISO 3166 two-letter country code is required")
    clean_customer = {"id": opt_str(customer, "id", "customer."), "email": opt_str(customer, "email", "customer.", 320),
                      "country": country.upper() if country else None,
                      "business": opt_bool(customer, "business", "customer.")}
    items = as_list(doc.get("items"), "items")
    if not items:
        raise invalid("items", "at least one item is required")
    seen, clean_items = set(), []
    for i, it in enumerate(items):
        where = f"items[{i}]."
        if not isinstance(it, dict):
            raise invalid(f"items[{i}]", "must be an object")
        item_id = req_str(it, "item_id", where)
        if item_id in seen:
            raise invalid(f"{where}item_id", f"duplicate item id {item_id!r}")
        seen.add(item_id)
        category = req_str(it, "category", where, 64)
        if category not in policy.categories:
            raise invalid(f"{where}category", f"policy {policy_id!r} has no category {category!r} "
                                              f"(it has: {', '.join(policy.categories)})")
        billing = it.get("billing")
        if billing not in BILLINGS:
            raise invalid(f"{where}billing", f"must be one of {', '.join(BILLINGS)}")
        clean_items.append({"item_id": item_id, "sku": opt_str(it, "sku", where), "category": category,
                            "billing": billing, "amount": opt_amount(it, "amount", where),
                            "price_id": opt_str(it, "price_id", where), "product_id": opt_str(it, "product_id", where),
                            "license_id": opt_str(it, "license_id", where)})
    return {"order_id": order_id, "policy": policy_id, "currency": currency,
            "bundle": opt_bool(doc, "bundle", ""), "customer": clean_customer, "items": clean_items}


@bp.post("/orders")
@require("orders:write")
def create_order():
    rt = _rt()
    clean = _validate_order(json_object(), rt.policies)
    now = rt.clock()
    with rt.sessions.begin() as session:
        lock_order(session, order_id=clean["order_id"], customers=[(clean.get("customer") or {}).get("id")])
        try:
            order, created = order_repo.register_order(session, clean, now)
        except order_repo.OrderConflict as err:
            raise ApiError(409, "order_conflict", str(err))
        licenses.on_order_registered(session, order, now, rt.policies)
        body = order_view(session, order, rt.clock())
    return jsonify(body), 201 if created else 200


@bp.get("/orders/<order_id>")
@require("read")
def get_order(order_id: str):
    rt = _rt()
    with rt.reads() as session:
        order = order_repo.get_order(session, order_id)
        if order is None:
            raise ApiError(404, "order_not_found", f"no order {order_id!r}")
        return jsonify(order_view(session, order, rt.clock()))


@bp.post("/orders/<order_id>/facts")
@require("orders:write")
def post_facts(order_id: str):
    rt = _rt()
    doc = json_object()
    unknown = set(doc) - {"facts", "item_facts"}
    if unknown:
        raise invalid(sorted(unknown)[0], "unknown key (expected facts, item_facts)")
    now = rt.clock()
    with rt.sessions.begin() as session:
        lock_order(session, order_id=order_id)
        order = order_repo.get_order(session, order_id)
        if order is None:
            raise ApiError(404, "order_not_found", f"no order {order_id!r}")
        # The facts of the order's policy: the standard ones and those it declares.
        types = rt.policies.fact_types(order.policy) if order.policy in rt.policies else None
        try:
            facts = parse_facts(doc.get("facts"), "facts", types)
            item_facts_raw = doc.get("item_facts") or {}
            if not isinstance(item_facts_raw, dict):
                raise PolicyInputError("item_facts", "must be an object of item id -> facts")
            item_facts = {k: parse_facts(v, f"item_facts.{k}", types) for k, v in item_facts_raw.items()}
        except PolicyInputError as err:
            raise ApiError(422, "invalid_field", f"{err.field}: {err.message}", field=err.field)
        items = {i.item_id: i for i in order_repo.items_of(session, order)}
        for item_id in item_facts:
            if item_id not in items:
                raise invalid(f"item_facts.{item_id}", f"order {order_id!r} has no item {item_id!r}")
        order.facts = {**(order.facts or {}), **facts_json(facts)}
        for item_id, f in item_facts.items():
            items[item_id].facts = {**(items[item_id].facts or {}), **facts_json(f)}
        order.updated_at = now
        session.flush()
        body = order_view(session, order, rt.clock())
    return jsonify(body)
