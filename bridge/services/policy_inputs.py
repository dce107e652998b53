"""The policy engine's view of a stored order: each item with the payment that bought it
(for a renewal, the renewal payment), its fee share, and what was already refunded."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.ledger.models import Order, OrderItem, Payment, PaymentItem, Refund, RefundRequest
from bridge.policy import Order as PolicyOrder, OrderItem as PolicyItem
from bridge.policy.inputs import parse_facts

# Refund requests whose approved amounts count as refunded (or about to be).
COMMITTED = ("approved", "refunding", "refunded")


@dataclass(frozen=True)
class ItemPayment:
    """Where the money for one order item came from."""
    item: OrderItem
    payment: Payment
    line: Optional[PaymentItem]
    amount: int
    fee: Optional[int]


def _fee_share(payment: Payment, amount: int) -> Optional[int]:
    if payment.fee is None or not payment.amount:
        return None
    if amount == payment.amount:
        return payment.fee
    return -(-payment.fee * amount // payment.amount)  # a deduction rounds up: merchant's favour


def item_payments(session: Session, order: Order) -> dict[str, ItemPayment]:
    items = session.execute(select(OrderItem).where(OrderItem.order_pk == order.id).order_by(OrderItem.id)).scalars().all()
    # Only payments whose money was seen: an invoice or session row not yet linked to its
    # charge cannot be refunded (it names nothing a provider could refund).
    pays = session.execute(select(Payment).where(Payment.order_pk == order.id, Payment.captured.is_(True),
                                                 Payment.amount.is_not(None))
                           .order_by(Payment.paid_at, Payment.id)).scalars().all()
    out: dict[str, ItemPayment] = {}
    if not pays:
        return out
    lines = session.execute(select(PaymentItem).where(PaymentItem.payment_pk.in_([p.id for p in pays]))).scalars().all()
    by_payment = {p.id: p for p in pays}
    for item in items:
        mine = [li for li in lines if li.order_item_pk == item.id]
        if mine:
            line = max(mine, key=lambda li: (by_payment[li.payment_pk].paid_at, li.payment_pk))
            pay = by_payment[line.payment_pk]
            out[item.item_id] = ItemPayment(item, pay, line, line.amount, _fee_share(pay, line.amount))
            continue
        # A payment without lines (a plain Stripe charge): the latest one pays the whole order.
        pay = [p for p in pays if not any(li.payment_pk == p.id for li in lines)]
        if not pay:
            continue
        pay = pay[-1]
        if len(items) == 1:
            amount = pay.amount
        elif item.amount is not None:
            amount = item.amount
        else:
            continue
        out[item.item_id] = ItemPayment(item, pay, None, amount, _fee_share(pay, amount))
    return out


def already_refunded(session: Session, order: Order, exclude_request: Optional[str] = None) -> dict[str, int]:
    """Per item: what our committed refund requests settled: the amount given back plus the
    processing fee kept under the policy (that part of the item is settled too, or a second
    request would refund the kept fee minus a fee share again)."""
    out: dict[str, int] = {}
    q = select(RefundRequest).where(RefundRequest.order_pk == order.id, RefundRequest.status.in_(COMMITTED))
    for rr in session.execute(q).scalars():
        if rr.id == exclude_request:
            continue
        for it in (rr.decision or {}).get("items", []):
            settled = int(it.get("refund_amount") or 0) + int(it.get("fee_deducted") or 0)
            out[it["item_id"]] = out.get(it["item_id"], 0) + settled
    return out


def external_refunds(session: Session, order: Order) -> int:
    """Refunds at the provider that none of our requests made (still pending or succeeded)."""
    total = session.execute(select(Refund.amount).join(Payment, Refund.payment_pk == Payment.id).where(
        Payment.order_pk == order.id, Refund.refund_request_id.is_(None),
        Refund.status.in_(("pending", "succeeded")))).scalars().all()
    return sum(total)


def _facts(raw: dict, where: str) -> dict:
    return parse_facts(raw or {}, where)


def policy_order(session: Session, order: Order, exclude_request: Optional[str] = None) -> tuple[PolicyOrder, dict[str, ItemPayment]]:
    paid = item_payments(session, order)
    refunded = already_refunded(session, order, exclude_request)
    external = external_refunds(session, order)
    items = []
    for item_id, ip in paid.items():
        done = refunded.get(item_id, 0)
        if external:  # apportion money refunded outside the bridge, in item order
            take = min(external, ip.amount - done)
            done += take
            external -= take
        items.append(PolicyItem(
            item_id=item_id, category=ip.item.category or "", amount=ip.amount, paid_at=ip.payment.paid_at,
            billing=ip.item.billing, purchase=ip.payment.purchase or "initial", fee=ip.fee,
            period_start=ip.payment.period_start, period_end=ip.payment.period_end, already_refunded=min(done, ip.amount),
            duplicate_charge=ip.payment.duplicate_of is not None,
            facts=_facts(ip.item.facts, f"items.{item_id}.facts"), sku=ip.item.sku))
    return PolicyOrder(currency=order.currency or "", items=tuple(items), policy=order.policy, order_id=order.order_id,
                       bundle=order.bundle, country=order.customer_country, business=order.customer_business,
                       facts=_facts(order.facts, "facts")), paid


def paid_and_remaining(order: PolicyOrder) -> tuple[int, int]:
    paid = sum(i.amount for i in order.items)
    return paid, paid - sum(i.already_refunded for i in order.items)

