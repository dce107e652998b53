"""Refund requests: decide by the order's policy, store the decision, plan the provider
refunds and queue their execution, all in one transaction; manual review; and the request's
status following its refunds' confirmations."""
from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.ledger.locks import lock_order
from bridge.ledger.jobs import enqueue
from bridge.ledger.models import Order, Payment, Refund, RefundRequest
from bridge.ledger.orders import get_order, refresh_status
from bridge.policy import PolicyInputError, PolicyRegistry, evaluate, parse_request
from pydantic import BaseModel, ValidationError

from bridge.domain.fields import first_error
from bridge.services.models import RefundRequestCreate, ReviewIn
from bridge.services.policy_inputs import ItemPayment, paid_and_remaining, policy_order

EXECUTE_REFUND = "execute_refund"


class RequestError(Exception):
    """Maps to an HTTP answer in the web layer: ``kind`` is not_found | conflict | invalid."""

    def __init__(self, kind: str, code: str, message: str, field: Optional[str] = None):
        super().__init__(message)
        self.kind, self.code, self.message, self.field = kind, code, message, field


@dataclass
class Created:
    request: RefundRequest
    created: bool


def new_request_id() -> str:
    return "rr_" + secrets.token_hex(12)


def _hash(doc: dict) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _valid(model: type[BaseModel], doc, prefix: str = ""):
    if isinstance(doc, model):
        return doc
    try:
        return model.model_validate(doc)
    except ValidationError as err:
        field, message = first_error(err, prefix)
        raise RequestError("invalid", "invalid_field", f"{field}: {message}", field) from None


def _decide(session: Session, policies: PolicyRegistry, request: RefundRequestCreate, now: datetime):
    """What the order's policy decides on ``request`` now, with everything that decided it."""
    order_id = request.order_id
    order = get_order(session, order_id)
    if order is None:
        raise RequestError("not_found", "order_not_found", f"no order {order_id!r}")
    if not order.policy or order.policy not in policies:
        raise RequestError("conflict", "no_policy", f"order {order_id!r} has no known policy ({order.policy!r})")
    policy = policies.get(order.policy)
    p_order, paid = policy_order(session, order, policy=policy)
    if not p_order.items:
        raise RequestError("conflict", "not_paid", f"order {order_id!r} has no payment to refund")
    try:
        p_request = parse_request(request, p_order, now, where="request", facts=policy.fact_types,
                                  reasons=policy.reasons)
    except PolicyInputError as err:
        field = err.field.removeprefix("request.")
        raise RequestError("invalid", "invalid_field", f"{field}: {err.message}", field)
    requested = p_request.items or tuple(i.item_id for i in p_order.items)
    remaining = {i.item_id: i.amount - i.already_refunded for i in p_order.items}
    if all(remaining[i] <= 0 for i in requested):
        raise RequestError("conflict", "nothing_to_refund", "what was paid for these items is already settled by earlier refunds or requests")
    try:
        decision = evaluate(policy, p_order, p_request, now)
    except PolicyInputError as err:
        if err.field.startswith("request."):
            field = err.field.removeprefix("request.")
            raise RequestError("invalid", "invalid_field", f"{field}: {err.message}", field)
        # The stored order is what the policy cannot judge (an order created from a payment
        # whose lines the catalog did not classify): not the caller's request, not a 500.
        raise RequestError("conflict", "order_not_decidable",
                           f"order {order_id!r} cannot be decided by policy {order.policy!r}: {err}")
    _, left = paid_and_remaining(p_order)
    if decision.refund_amount > left:
        raise RequestError("conflict", "exceeds_remaining",
                           f"the refund {decision.refund_amount} exceeds what remains unrefunded ({left})")
    return order, p_order, paid, p_request, requested, decision


def quote(session: Session, policies: PolicyRegistry, doc, now: datetime):
    """``POST /api/v1/refund-quotes``: the decision a refund request would get now; nothing
    is stored (the merchant's app shows it to the buyer before they confirm)."""
    return _decide(session, policies, _valid(RefundRequestCreate, doc), now)[-1]


def create(session: Session, policies: PolicyRegistry, doc: dict, idempotency_key: Optional[str],
           now: datetime, max_attempts: int = 12) -> Created:
    """Decide and store a refund request; ``doc`` is the body as sent (an ``Idempotency-Key``
    replay is compared with it), validated by :class:`RefundRequestCreate`."""
    order_id = doc.get("order_id") if isinstance(doc, dict) else None
    if isinstance(order_id, str) and order_id:
        lock_order(session, order_id=order_id)  # two requests for one order must not both see it unrefunded
    if idempotency_key:
        prior = session.execute(select(RefundRequest).where(RefundRequest.idempotency_key == idempotency_key)).scalar_one_or_none()
        if prior is not None:
            if prior.request_hash != _hash(doc):
                raise RequestError("conflict", "idempotency_key_reused",
                                   "this Idempotency-Key was used with a different request body")
            return Created(prior, False)
    request = _valid(RefundRequestCreate, doc)
    order, p_order, paid, p_request, requested, decision = _decide(session, policies, request, now)
    rr = RefundRequest(
        id=new_request_id(), order_pk=order.id, idempotency_key=idempotency_key, request_hash=_hash(doc),
        status=decision.outcome, reason=p_request.reason, items=list(requested), requested_at=p_request.requested_at,
        facts=_json_facts(p_request.facts),
        item_facts={k: _json_facts(v) for k, v in p_request.item_facts.items()}, decision=decision.to_dict(),
        refund_amount=decision.refund_amount, fee_deducted=decision.fee_deducted, currency=decision.currency,
        policy_id=decision.policy_id, policy_version=decision.policy_version, policy_hash=decision.policy_hash,
        created_at=now, updated_at=now)
    session.add(rr)
    session.flush()
    if decision.outcome == "approved":
        # Money is promised: the order's row version moves, so a concurrent decision made from
        # the same (now stale) read of this order fails instead of promising it twice.
        order.updated_at = now
        amounts = {i.item_id: i.refund_amount for i in decision.items if i.refund_amount > 0}
        plan_refunds(session, rr, paid, amounts, now, max_attempts)
    return Created(rr, True)


def _json_facts(facts) -> dict:
    return {k: (v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v) for k, v in facts.items()}


def plan_refunds(session: Session, rr: RefundRequest, paid: dict[str, ItemPayment], amounts: dict[str, int],
                 now: datetime, max_attempts: int = 12) -> None:
    """One provider refund per payment involved, with its line items; then the job that
    executes them. Written with the decision, so an approved request is never lost."""
    by_payment: dict[int, list[tuple[ItemPayment, int]]] = {}
    for item_id, amount in amounts.items():
        ip = paid[item_id]
        by_payment.setdefault(ip.payment.id, []).append((ip, amount))
    for payment_pk, parts in by_payment.items():
        payment: Payment = parts[0][0].payment
        session.add(Refund(
            provider=payment.provider, provider_refund_id=None, payment_pk=payment_pk, refund_request_id=rr.id,
            amount=sum(a for _, a in parts), currency=payment.currency, status="pending", status_at=None,
            items=[{"item_id": ip.item.item_id, "provider_item_id": ip.line.provider_item_id if ip.line else None,
                    "amount": a, "line_amount": ip.amount} for ip, a in parts],
            transaction_id=payment.transaction_id, charge_id=payment.charge_id,
            payment_intent_id=payment.payment_intent_id, reason=rr.reason, created_at=now, updated_at=now))
    session.flush()
    enqueue(session, EXECUTE_REFUND, rr.id, now, dedupe_key=f"refund:{rr.id}", max_attempts=max_attempts)


def review(session: Session, policies: PolicyRegistry, rr: RefundRequest, doc, now: datetime,
           reviewer: Optional[str], max_attempts: int = 12) -> RefundRequest:
    """Decide a request in review: ``doc`` is the review body (a dict or a :class:`ReviewIn`);
    without ``refund_amount`` an approval refunds all that remains on the request's items."""
    lock_order(session, order_pk=rr.order_pk)
    session.refresh(rr)  # read before the lock was held
    if rr.status != "review":
        raise RequestError("conflict", "not_in_review", f"refund request {rr.id} is {rr.status}, not in review")
    decided = _valid(ReviewIn, doc)
    outcome, refund_amount, note = decided.outcome, decided.refund_amount, decided.note
    order = session.get(Order, rr.order_pk)
    policy = policies.get(order.policy) if order.policy in policies else None
    p_order, paid = policy_order(session, order, exclude_request=rr.id, policy=policy)
    rr.review = {"outcome": outcome, "note": note, "reviewer": reviewer, "at": now.isoformat().replace("+00:00", "Z")}
    rr.updated_at = now
    if outcome == "denied":
        rr.status, rr.refund_amount = "denied", 0
        return rr
    remaining = {i.item_id: i.amount - i.already_refunded for i in p_order.items if i.item_id in rr.items}
    left = sum(max(0, v) for v in remaining.values())
    if left <= 0:
        # Refunded meanwhile (by another request or at the provider): nothing to approve.
        raise RequestError("conflict", "nothing_to_refund",
                           "what was paid for this request's items is already refunded")
    amount = left if refund_amount is None else refund_amount
    if amount > left:
        raise RequestError("conflict", "exceeds_remaining",
                           f"refund_amount {amount} exceeds what remains unrefunded on these items ({left})")
    amounts = split(amount, remaining)
    rr.status, rr.refund_amount = "approved", amount
    order.updated_at = now  # as in create: a concurrent decision on this order fails
    decision = dict(rr.decision or {})
    decision["reviewed"] = {"outcome": "approved", "refund_amount": amount}
    decision["items"] = [{**it, "outcome": "approved" if amounts.get(it["item_id"]) else it.get("outcome"),
                          "refund_amount": amounts.get(it["item_id"], 0), "fee_deducted": 0}
                         for it in decision.get("items", [])]
    decision["fee_deducted"] = 0
    decision["outcome"], decision["refund_amount"] = "approved", amount
    rr.decision = decision
    session.flush()
    plan_refunds(session, rr, paid, {k: v for k, v in amounts.items() if v > 0}, now, max_attempts)
    return rr


def split(amount: int, remaining: dict[str, int]) -> dict[str, int]:
    """Spread a reviewed amount over the items in proportion to what remains on each (floor,
    the remainder to the items in order so the parts add up exactly)."""
    total = sum(max(0, v) for v in remaining.values())
    parts = {k: (amount * max(0, v)) // total for k, v in remaining.items()}
    short = amount - sum(parts.values())
    for k, v in remaining.items():
        if short <= 0:
            break
        room = max(0, v) - parts[k]
        take = min(room, short)
        parts[k] += take
        short -= take
    return parts


def sync_status(session: Session, rr: RefundRequest, now: datetime) -> None:
    """The request follows its provider refunds: all succeeded -> refunded; any failed ->
    failed (visible for review); otherwise refunding once submitted."""
    refunds = session.execute(select(Refund).where(Refund.refund_request_id == rr.id)).scalars().all()
    if not refunds or rr.status in ("denied", "review"):
        return
    statuses = {r.status for r in refunds}
    if statuses & {"failed", "canceled"}:
        new = "failed"
        failed = next(r for r in refunds if r.status in ("failed", "canceled"))
        rr.error_code = rr.error_code or (failed.failure_reason or "refund_failed")
    elif statuses == {"succeeded"}:
        new = "refunded"
    elif any(r.provider_refund_id for r in refunds):
        new = "refunding"
    else:
        new = rr.status
    if new != rr.status:
        rr.status, rr.updated_at = new, now
    order = session.get(Order, rr.order_pk)
    refresh_status(session, order, now)


def on_refund(session: Session, refund: Refund, now: datetime) -> None:
    """Ledger hook: a provider refund changed."""
    if refund.refund_request_id:
        rr = session.get(RefundRequest, refund.refund_request_id)
        if rr is not None:
            sync_status(session, rr, now)
