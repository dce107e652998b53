"""The policy engine's view of a stored order: each item with the payment that bought it
(for a renewal, the renewal payment), its fee share (largest remainder over the payment's
lines), what was already refunded and how much of its fee share earlier refunds kept."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.ledger.models import Order, OrderItem, Payment, PaymentItem, Refund, RefundRequest
from bridge.policy import Order as PolicyOrder, OrderItem as PolicyItem, Policy
from bridge.policy.fees import share_fee
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


def _fee_shares(payment: Payment, amounts: dict[object, int]) -> dict[object, Optional[int]]:
    """The payment's fee shared over its parts (policies.md: in proportion to their amounts,
    largest remainder, so the shares add up to the fee exactly)."""
    if payment.fee is None or not payment.amount:
        return {k: None for k in amounts}
    keys = list(amounts)
    return dict(zip(keys, share_fee(payment.fee, [max(0, amounts[k]) for k in keys])))


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
    lines = session.execute(select(PaymentItem).where(PaymentItem.payment_pk.in_([p.id for p in pays]))
                            .order_by(PaymentItem.id)).scalars().all()
    by_payment = {p.id: p for p in pays}
    # Each payment's fee over all its lines (lines of items not in this order too: they had
    # their part of the fee), so the shares of a payment add up to its fee.
    line_share: dict[int, Optional[int]] = {}
    for pay in pays:
        mine = {li.id: li.amount for li in lines if li.payment_pk == pay.id}
        if mine:
            line_share.update(_fee_shares(pay, mine))
    unlined: list[OrderItem] = []
    for item in items:
        mine = [li for li in lines if li.order_item_pk == item.id]
        if mine:
            line = max(mine, key=lambda li: (by_payment[li.payment_pk].paid_at, li.payment_pk))
            pay = by_payment[line.payment_pk]
            out[item.item_id] = ItemPayment(item, pay, line, line.amount, line_share.get(line.id))
            continue
        unlined.append(item)
    # A payment without lines (a plain Stripe charge): the latest one pays the rest of the
    # order, its fee shared over the items it pays.
    bare = [p for p in pays if not any(li.payment_pk == p.id for li in lines)]
    if not bare or not unlined:
        return out
    pay = bare[-1]
    amounts: dict[object, int] = {}
    for item in unlined:
        if len(items) == 1:
            amounts[item.item_id] = pay.amount
        elif item.amount is not None:
            amounts[item.item_id] = item.amount
    shares = _fee_shares(pay, amounts)
    for item in unlined:
        if item.item_id in amounts:
            amount = amounts[item.item_id]
            out[item.item_id] = ItemPayment(item, pay, None, amount, shares[item.item_id])
    return out


def already_refunded(session: Session, order: Order, exclude_request: Optional[str] = None) -> dict[str, int]:
    """Per item: what our committed refund requests settled: the amount given back plus the
    processing fee kept under the policy (that part of the item is settled too, or a second
    request would refund the kept fee minus a fee share again)."""
    return settled(session, order, exclude_request)[0]


def settled(session: Session, order: Order,
            exclude_request: Optional[str] = None) -> tuple[dict[str, int], dict[str, int]]:
    """Per item, from our committed refund requests: (amount settled = given back + fee kept,
    fee kept). The engine caps the fee a new refund keeps at the item's share minus the fee
    already kept, so over all refunds of a payment the fee kept never exceeds its fee."""
    refunded: dict[str, int] = {}
    kept: dict[str, int] = {}
    q = select(RefundRequest).where(RefundRequest.order_pk == order.id, RefundRequest.status.in_(COMMITTED))
    for rr in session.execute(q).scalars():
        if rr.id == exclude_request:
            continue
        for it in (rr.decision or {}).get("items", []):
            fee = int(it.get("fee_deducted") or 0)
            item_id = it["item_id"]
            refunded[item_id] = refunded.get(item_id, 0) + int(it.get("refund_amount") or 0) + fee
            if fee:
                kept[item_id] = kept.get(item_id, 0) + fee
    return refunded, kept


def external_refunds(session: Session, order: Order) -> int:
    """Refunds at the provider that none of our requests made (still pending or succeeded)."""
    total = session.execute(select(Refund.amount).join(Payment, Refund.payment_pk == Payment.id).where(
        Payment.order_pk == order.id, Refund.refund_request_id.is_(None),
        Refund.status.in_(("pending", "succeeded")))).scalars().all()
    return sum(total)


def _facts(raw: dict, where: str, types: Optional[dict] = None) -> dict:
    # Stored facts were validated when they came in; a name the policy no longer declares
    # (a later version of the file) is skipped rather than failing every later request.
    return parse_facts(raw or {}, where, types, strict=False)


def policy_order(session: Session, order: Order, exclude_request: Optional[str] = None,
                 policy: Optional[Policy] = None) -> tuple[PolicyOrder, dict[str, ItemPayment]]:
    """``policy``: the order's policy, whose declared facts the stored facts may use."""
    types = policy.fact_types if policy is not None else None
    paid = item_payments(session, order)
    refunded, kept = settled(session, order, exclude_request)
    external = external_refunds(session, order)
    items = []
    for item_id, ip in paid.items():
        done = refunded.get(item_id, 0)
        if external:  # apportion money refunded outside the bridge, in item order
            take = min(external, ip.amount - done)
            done += take
            external -= take
        fee_kept = min(kept.get(item_id, 0), ip.fee or 0, min(done, ip.amount))
        items.append(PolicyItem(
            item_id=item_id, category=ip.item.category or "", amount=ip.amount, paid_at=ip.payment.paid_at,
            billing=ip.item.billing, purchase=ip.payment.purchase or "initial", fee=ip.fee,
            period_start=ip.payment.period_start, period_end=ip.payment.period_end, already_refunded=min(done, ip.amount),
            fee_kept=fee_kept,
            duplicate_charge=ip.payment.duplicate_of is not None,
            facts=_facts(ip.item.facts, f"items.{item_id}.facts", types), sku=ip.item.sku))
    return PolicyOrder(currency=order.currency or "", items=tuple(items), policy=order.policy, order_id=order.order_id,
                       bundle=order.bundle, country=order.customer_country, business=order.customer_business,
                       facts=_facts(order.facts, "facts", types)), paid


def paid_and_remaining(order: PolicyOrder) -> tuple[int, int]:
    paid = sum(i.amount for i in order.items)
    return paid, paid - sum(i.already_refunded for i in order.items)

