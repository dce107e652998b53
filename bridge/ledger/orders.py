"""Orders: registration by the merchant's app, creation from a transaction, matching a payment
to its order, facts, and the order's derived status."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from bridge.domain.events import PaymentSucceeded
from bridge.domain.ids import id_problem, license_id_for
from bridge.domain.states import order_status
from bridge.ledger import absent, fresh, reads, rows
from bridge.ledger.catalog import Catalog
from bridge.ledger.models import License, Order, OrderItem, Payment
from bridge.ledger.reads import read


class OrderConflict(Exception):
    """The same ``order_id`` registered again with different content, or a ``license_id``
    another order holds. ``field`` is the path of the differing value in the request body."""

    def __init__(self, message: str, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.field = field


_GET_ORDER = select(Order).where(Order.order_id == bindparam("order_id"))  # built once


def get_order(session: Session, order_id: str) -> Optional[Order]:
    return session.execute(_GET_ORDER, {"order_id": order_id}).scalar_one_or_none()


def items_of(session: Session, order: Order) -> list[OrderItem]:
    """The order's items in id order (an order created by this event: those in memory)."""
    known = known_items(order)
    if known is not None:
        return list(known)
    return list(session.execute(select(OrderItem).where(OrderItem.order_pk == order.id)
                                .order_by(OrderItem.id)).scalars())


def register_order(session: Session, doc: dict, now: datetime) -> tuple[Order, bool]:
    """Create an order from the API body (already validated). Idempotent on ``order_id``:
    the same body again returns the stored order; a different body is a conflict. An order the
    bridge created earlier from a payment is completed with what the merchant now tells."""
    existing = get_order(session, doc["order_id"])
    customer = doc.get("customer") or {}
    if existing is not None:
        if existing.source == "provider":
            _adopt(session, existing, doc, now)
            return existing, False
        _same_registration(session, existing, doc)
        return existing, False
    _licenses_free(session, doc, None)
    order = Order(order_id=doc["order_id"], policy=doc["policy"], currency=doc["currency"],
                  bundle=doc.get("bundle", False), customer_id=customer.get("id"),
                  customer_email=customer.get("email"), customer_country=customer.get("country"),
                  customer_business=bool(customer.get("business", False)), facts={}, source="api",
                  status="awaiting_payment", created_at=now, updated_at=now)
    session.add(order)
    session.flush()
    for it in doc["items"]:
        session.add(OrderItem(order_pk=order.id, item_id=it["item_id"], sku=it.get("sku"),
                              category=it["category"], billing=it["billing"], amount=it.get("amount"),
                              price_id=it.get("price_id"), product_id=it.get("product_id"),
                              license_id=it.get("license_id"), facts={}))
    session.flush()
    return order, True


def _differs(order_id: str, field: str, stored, sent) -> OrderConflict:
    return OrderConflict(f"order {order_id!r} exists with a different {field} ({stored!r}, not {sent!r})", field)


def _same_registration(session: Session, existing: Order, doc: dict) -> None:
    """A repeated registration must say what the first one said: each difference is a 409
    naming the field (silently keeping the old data would make the caller believe the new)."""
    oid = doc["order_id"]
    for field, stored, sent in (("policy", existing.policy, doc["policy"]),
                                ("currency", existing.currency, doc["currency"]),
                                ("bundle", existing.bundle, doc.get("bundle", False))):
        if stored != sent:
            raise _differs(oid, field, stored, sent)
    customer = doc.get("customer") or {}
    for key, stored in (("id", existing.customer_id), ("email", existing.customer_email),
                        ("country", existing.customer_country)):
        if customer.get(key) != stored:
            raise _differs(oid, f"customer.{key}", stored, customer.get(key))
    if bool(customer.get("business", False)) != bool(existing.customer_business):
        raise _differs(oid, "customer.business", existing.customer_business, customer.get("business", False))
    stored_items = {i.item_id: i for i in items_of(session, existing)}
    sent_ids = [i["item_id"] for i in doc["items"]]
    if sorted(stored_items) != sorted(sent_ids):
        raise _differs(oid, "items", sorted(stored_items), sorted(sent_ids))
    for n, it in enumerate(doc["items"]):
        row = stored_items[it["item_id"]]
        for key in ("category", "billing", "amount", "sku", "price_id", "product_id", "license_id"):
            if key == "license_id" and it.get(key) is None:
                continue   # the bridge names the license of an item the merchant did not name
            if it.get(key) != getattr(row, key):
                raise _differs(oid, f"items[{n}].{key}", getattr(row, key), it.get(key))


def _licenses_free(session: Session, doc: dict, order_pk: Optional[int]) -> None:
    """A ``license_id`` names one license: a second order claiming it is a 409 now, not a
    payment that later fails to grant it."""
    for n, it in enumerate(doc["items"]):
        lid = it.get("license_id")
        if not lid:
            continue
        q = select(OrderItem.order_pk).where(OrderItem.license_id == lid)
        if order_pk is not None:
            q = q.where(OrderItem.order_pk != order_pk)
        if session.execute(q.limit(1)).first() is not None or _license_elsewhere(session, lid, order_pk):
            raise OrderConflict(f"license_id {lid!r} belongs to another order", f"items[{n}].license_id")


def _license_elsewhere(session: Session, license_id: str, order_pk: Optional[int]) -> bool:
    lic = reads.get(session, License, license_id)
    return lic is not None and lic.order_pk != order_pk


def _adopt(session: Session, order: Order, doc: dict, now: datetime) -> None:
    """The merchant registers an order the bridge had created from its payment: its word on
    policy, customer and item classification wins."""
    customer = doc.get("customer") or {}
    _licenses_free(session, doc, order.id)
    order.policy = doc["policy"]
    order.currency = doc["currency"]
    order.bundle = doc.get("bundle", False)
    order.customer_id = customer.get("id") or order.customer_id
    order.customer_email = customer.get("email") or order.customer_email
    order.customer_country = customer.get("country") or order.customer_country
    order.customer_business = bool(customer.get("business", order.customer_business))
    order.source = "api"
    order.updated_at = now
    existing = {i.item_id: i for i in items_of(session, order)}
    by_price = {i.price_id: i for i in existing.values() if i.price_id}
    for it in doc["items"]:
        row = existing.get(it["item_id"]) or by_price.get(it.get("price_id"))
        if row is None:
            row = OrderItem(order_pk=order.id, item_id=it["item_id"], facts={})
            session.add(row)
        row.item_id = it["item_id"]
        row.sku, row.category, row.billing = it.get("sku"), it["category"], it["billing"]
        row.amount = it.get("amount", row.amount)
        row.price_id = it.get("price_id") or row.price_id
        row.license_id = it.get("license_id") or row.license_id
    session.flush()


def order_for_payment(session: Session, ev: PaymentSucceeded, catalog: Catalog,
                      default_policy: Optional[str], now: datetime) -> Optional[Order]:
    """Which order a payment belongs to: its order reference, else the order of an earlier
    payment of the same subscription (renewals). An unknown order reference creates the order
    from the transaction. None: the payment stays unmatched (kept, matchable later). A
    reference that is not a valid id (``id_problem``) creates no order: the API refuses such
    an id, and an order the merchant cannot address is worse than an unmatched payment."""
    if ev.order_ref and id_problem(ev.order_ref) is None:
        order = None if absent.take_order(session, ev.order_ref) else get_order(session, ev.order_ref)
        if order is None:
            order = _create_from_payment(session, ev, catalog, default_policy, now)
        elif order.source == "provider" and ev.items and not items_of(session, order):
            # Created from an event that listed no lines (a charge, a session not expanded):
            # the first event that lists them classifies the order, whichever came first.
            _add_items(session, order, ev, catalog)
        return order
    if ev.subscription_id:
        pk = session.execute(select(Payment.order_pk).where(
            Payment.provider == ev.provider, Payment.subscription_id == ev.subscription_id,
            Payment.order_pk.is_not(None)).limit(1)).scalar_one_or_none()
        if pk is not None:
            return reads.get(session, Order, pk)
    return None


def _create_from_payment(session: Session, ev: PaymentSucceeded, catalog: Catalog,
                         default_policy: Optional[str], now: datetime) -> Order:
    # The catalog's policy is known before the insert (one INSERT, not an INSERT and an UPDATE).
    order = Order(order_id=ev.order_ref, policy=_catalog_policy(ev, catalog) or default_policy,
                  currency=ev.currency, bundle=False,
                  customer_id=ev.customer_ref, customer_email=ev.customer_email,
                  customer_country=ev.customer_country, customer_business=False, facts={},
                  source="provider", created_at=now, updated_at=now,
                  # The status refresh_status will find once the payment is on it, in the INSERT
                  # (no UPDATE after it); a wrong guess (the payment was refunded before it had
                  # an order) is set right by refresh_status in this transaction.
                  status=order_status(ev.amount, 0, (), True) if ev.moves_money and ev.amount is not None
                  else "awaiting_payment")
    fresh.mark(session, order)  # created by this event: nothing refers to it yet (licenses.py)
    rows.add_now(session, order)
    _add_items(session, order, ev, catalog)
    return order


def _add_items(session: Session, order: Order, ev: PaymentSucceeded, catalog: Catalog) -> None:
    """The order's lines from the payment's, classified by the catalog (whose policy, if any,
    becomes the order's), else by the price's/product's own custom_data or metadata.

    Item ids prefer the merchant's ``item_id``, then the price id: a Paddle ``txnitm_`` or a
    Stripe line id names one transaction's line, and the order must not depend on which of its
    payments (first purchase or renewal, session or invoice) happened to arrive first."""
    policy = _catalog_policy(ev, catalog)
    if policy and order.policy != policy:
        order.policy = policy
    used = set()
    added = []
    for i, line in enumerate(ev.items):
        entry = catalog.lookup(line.price_id, line.product_id)
        item_id = line.item_ref or line.price_id or line.provider_item_id or f"line_{i + 1}"
        if item_id in used:
            item_id = f"{item_id}_{i + 1}"
        used.add(item_id)
        added.append(OrderItem(
            order_pk=order.id, item_id=item_id, sku=(entry.sku if entry else None) or line.sku,
            category=(entry.category if entry else None) or line.category,
            billing=(entry.billing if entry else None) or line.billing, amount=line.amount,
            price_id=line.price_id, product_id=line.product_id, facts={},
            # The license the payment's effects create for it in this transaction
            # (licenses.ensure_licenses), named at once: no UPDATE after the INSERT.
            license_id=license_id_for(order.order_id, item_id)))
    rows.add_all_now(session, added)
    if fresh.is_fresh(order):
        order._new_items = getattr(order, "_new_items", []) + added  # see known_items


def _catalog_policy(ev: PaymentSucceeded, catalog: Catalog) -> Optional[str]:
    for line in ev.items:
        entry = catalog.lookup(line.price_id, line.product_id)
        if entry and entry.policy:
            return entry.policy
    return None


def known_items(order: Order) -> Optional[list[OrderItem]]:
    """The items of an order created by this event (all of them are this session's
    objects, in id order): no need to read them back. None for any other order."""
    if not fresh.is_fresh(order):
        return None
    return getattr(order, "_new_items", [])


def known_payments(session: Session, order: Order) -> Optional[list[Payment]]:
    """The payments of an order created by the event being applied: all of them are this
    session's objects (no other transaction can see the order yet, and payments are linked to
    an order only through the ORM). None for any other order."""
    if not fresh.is_fresh(order):
        return None
    return [p for p in (*session.identity_map.values(), *session.new)
            if isinstance(p, Payment) and p.order_pk == order.id and p not in session.deleted]


# The three things an order's status follows, in one round trip: what was paid (and whether
# anything was), what was refunded, and each dispute's status.
_STATUS_FACTS = text("""
SELECT 'paid' AS k, coalesce(sum(amount), 0) AS v, count(id) AS n, NULL AS s FROM payments
    WHERE order_pk = :o AND captured = TRUE AND amount IS NOT NULL
UNION ALL
SELECT 'refunded', coalesce(sum(r.amount), 0), 0, NULL FROM refunds r JOIN payments p ON r.payment_pk = p.id
    WHERE p.order_pk = :o AND r.status = 'succeeded'
UNION ALL
SELECT 'dispute', 0, 0, status FROM disputes WHERE order_pk = :o
""")


def refresh_status(session: Session, order: Order, now: datetime, only_payments: bool = False) -> str:
    """Derive the order's status from its payments, refunds and disputes (never from the
    order in which events arrived). ``only_payments``: the event applied only payments and
    fees, so a new order whose payments are all new has no refund or dispute yet, and its
    facts are the payments in memory."""
    paid = refunded = payments_n = 0
    disputes = []
    pays = known_payments(session, order) if only_payments else None
    if fresh.all_fresh(pays):
        captured = [p.amount for p in pays if p.captured and p.amount is not None]
        rows = [("paid", sum(captured), len(captured), None)]
    else:
        rows = read(session, _STATUS_FACTS, {"o": order.id})
    for k, v, n, st in rows:
        if k == "paid":
            paid, payments_n = int(v), int(n)
        elif k == "refunded":
            refunded = int(v)
        else:
            disputes.append(st)
    status = order_status(paid, refunded, disputes, payments_n > 0)
    if status != order.status:
        order.status, order.updated_at = status, now
    return status
