"""Amounts that cannot be true are held, not booked.

A signed event is the provider's word, but a refund of 999,999 on a 4,900 charge, a dispute
for more than is left of its payment, a negative fee or a fee above the payment's amount cannot
be true of any real payment: a bug at the provider, a misconfigured endpoint or a leaked
secret. Applying one blindly would book money that never moved, revoke a license and make the
net negative. The ledger raises :class:`AmountHeld` instead; the worker rolls the event's
effects back (nothing booked, no license or notice touched), marks it ``held`` with the reason,
and reconciliation reports it (``amount_exceeds_captured`` and friends) for a person to judge.
``bridge events replay`` applies it again once the facts around it changed.
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from bridge.domain.money import format_amount
from bridge.ledger.models import Dispute, Order, Payment, Refund
from bridge.ledger import reads
from bridge.ledger.reads import read

# Discrepancy kinds of held events (api.md, reconciliation).
EXCEEDS_CAPTURED = "amount_exceeds_captured"
NEGATIVE_FEE = "negative_fee"
CURRENCY_MISMATCH = "currency_mismatch"
HOLD_KINDS = (EXCEEDS_CAPTURED, NEGATIVE_FEE, CURRENCY_MISMATCH)


class AmountHeld(Exception):
    """The event reports an amount no real payment can have: hold it."""

    def __init__(self, kind: str, detail: str, order_id: Optional[str] = None):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.order_id = order_id


def _order_id(session: Session, payment: Payment) -> Optional[str]:
    if payment.order_pk is None:
        return payment.order_ref
    order = reads.get(session, Order, payment.order_pk)
    return order.order_id if order is not None else payment.order_ref


def _ref(payment: Payment) -> str:
    return payment.transaction_id or payment.charge_id or payment.payment_intent_id or f"#{payment.id}"


# Built once; ``x``: the refund or dispute being judged, left out (0 when none: ids start at 1).
_REFUNDED = (select(func.coalesce(func.sum(Refund.amount), 0))
             .where(Refund.payment_pk == bindparam("p"), Refund.status == "succeeded", Refund.id != bindparam("x")))
_DISPUTED = (select(func.coalesce(func.sum(Dispute.funds_withdrawn - Dispute.funds_reinstated), 0))
             .where(Dispute.payment_pk == bindparam("p"), Dispute.id != bindparam("x")))


def refundable(session: Session, payment: Payment, except_refund: Optional[int] = None) -> int:
    """What is left to refund of a captured payment: its amount less the refunds that
    succeeded (the one being judged excluded)."""
    refunded = read(session, _REFUNDED, {"p": payment.id, "x": except_refund or 0}).scalar_one()
    return int(payment.amount) - int(refunded)


def disputable(session: Session, payment: Payment, except_dispute: Optional[int] = None) -> int:
    """What is left to dispute of a captured payment: its amount less what other disputes
    withdrew and did not give back.

    Refunds are not subtracted: a buyer can be refunded and still win a chargeback (Paddle's
    "duplicate" cases; a refund after the dispute opened), so a refund and a dispute of the
    whole amount together are possible, and holding either would depend on which came first."""
    disputed = read(session, _DISPUTED, {"p": payment.id, "x": except_dispute or 0}).scalar_one()
    return int(payment.amount) - max(0, int(disputed))


def check_currency(session: Session, payment: Payment, currency: Optional[str], what: str) -> None:
    if currency is not None and payment.currency is not None and currency != payment.currency:
        raise AmountHeld(CURRENCY_MISMATCH, f"{what} in {currency} on payment {_ref(payment)} in {payment.currency}",
                         _order_id(session, payment))


def check_within(session: Session, payment: Payment, left: int, amounts: dict[str, Optional[int]],
                 currency: str, what: str) -> None:
    """Hold when any of ``amounts`` (a refund's amount; a dispute's amount and withdrawal) is
    larger than ``left`` of ``payment`` (see :func:`refundable`, :func:`disputable`)."""
    check_currency(session, payment, currency, what)
    for name, value in amounts.items():
        if value is not None and value > left:
            raise AmountHeld(EXCEEDS_CAPTURED,
                             f"{what}: {name} {format_amount(value, currency)} is more than the "
                             f"{format_amount(left, payment.currency)} left of payment {_ref(payment)} of "
                             f"{format_amount(payment.amount, payment.currency)}", _order_id(session, payment))


def check_fee(fee: Optional[int], amount: Optional[int], what: str, order_id: Optional[str] = None) -> None:
    """A processing fee is never negative, nor more than the payment it was charged on."""
    if fee is None:
        return
    if fee < 0:
        raise AmountHeld(NEGATIVE_FEE, f"{what}: fee {fee} is negative", order_id)
    if amount is not None and fee > amount:
        raise AmountHeld(EXCEEDS_CAPTURED, f"{what}: fee {fee} is more than its amount {amount}", order_id)
