"""The manual review queue as the console shows it: each request in ``review`` with the items
and clauses that sent it there, and the most a reviewer may approve (what remains unrefunded
on its items, the same limit ``refund_requests.review`` enforces)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.ledger.models import Order, RefundRequest
from bridge.services.policy_inputs import policy_order

LIMIT = 100


@dataclass
class Pending:
    request: RefundRequest
    order_id: str
    currency: str
    reviews: list[dict]        # decision items in review: item_id, clauses, rule, explanation, missing
    policy_allows: int         # what the policy itself approved on the other items (minor units)
    max_amount: int            # the most a review may approve


def review_limit(session: Session, rr: RefundRequest, order: Order) -> int:
    """What remains unrefunded on the request's items, others' refunds counted (as in review)."""
    p_order, _ = policy_order(session, order, exclude_request=rr.id)
    return sum(max(0, i.amount - i.already_refunded) for i in p_order.items if i.item_id in rr.items)


def pending(session: Session, limit: int = LIMIT) -> list[Pending]:
    rows = session.execute(select(RefundRequest, Order).join(Order, Order.id == RefundRequest.order_pk)
                           .where(RefundRequest.status == "review")
                           .order_by(RefundRequest.created_at, RefundRequest.id).limit(limit)).all()
    out = []
    for rr, order in rows:
        items = (rr.decision or {}).get("items", [])
        reviews = [it for it in items if it.get("outcome") == "review"]
        allows = sum(int(it.get("refund_amount") or 0) for it in items if it.get("outcome") == "approved")
        out.append(Pending(rr, order.order_id, rr.currency or order.currency or "", reviews, allows,
                           review_limit(session, rr, order)))
    return out
