"""The console's search: orders by order id, customer id or e-mail, a provider payment id
(charge, payment intent, transaction, invoice, checkout session) or a provider refund id, or
a refund request id. Every lookup is an exact match on an indexed column."""
from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bridge.ledger.models import Order, Payment, Refund, RefundRequest

PROVIDERS = ("stripe", "paddle")
LIMIT = 100


def find_orders(session: Session, query: str) -> list[tuple[Order, str]]:
    """Orders matching ``query``, each with what matched, newest first (at most ``LIMIT``)."""
    q = query.strip()
    if not q:
        return []
    found: dict[int, str] = {}

    def add(pks, why: str):
        for pk in pks:
            if pk is not None:
                found.setdefault(pk, why)

    add(session.execute(select(Order.id).where(Order.order_id == q)).scalars(), "order id")
    add(session.execute(select(Order.id).where(Order.customer_id == q).limit(LIMIT)).scalars(), "customer id")
    if "@" in q:
        emails = {q, q.lower()}
        add(session.execute(select(Order.id).where(Order.customer_email.in_(emails)).limit(LIMIT)).scalars(),
            "customer e-mail")
    pay_cols = (Payment.charge_id, Payment.payment_intent_id, Payment.transaction_id, Payment.invoice_id,
                Payment.checkout_session_id)
    # Each arm names its provider: each is then one probe of a unique (provider, id) index (the
    # providers tested outside the OR made SQLite read every payment).
    add(session.execute(select(Payment.order_pk).where(
        or_(*[(Payment.provider == p) & (c == q) for p in PROVIDERS for c in pay_cols]))).scalars(),
        "provider payment id")
    add(session.execute(select(Payment.order_pk).join(Refund, Refund.payment_pk == Payment.id).where(
        Refund.provider.in_(PROVIDERS), Refund.provider_refund_id == q)).scalars(), "provider refund id")
    add(session.execute(select(RefundRequest.order_pk).where(RefundRequest.id == q)).scalars(), "refund request id")
    if not found:
        return []
    orders = session.execute(select(Order).where(Order.id.in_(list(found)))
                             .order_by(Order.created_at.desc(), Order.id.desc()).limit(LIMIT)).scalars()
    return [(o, found[o.id]) for o in orders]
