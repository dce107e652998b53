"""Early fraud warnings (Stripe ``radar.early_fraud_warning.created``, api.md "Chargebacks"):
the order policy's ``early_fraud_warning`` rule decides, and its decision is stored as a refund
request with reason ``fraud_warning`` that takes the normal path from there:

- ``review`` (the default): a request in review, for a person to approve or deny;
- ``refund``: approved in full at once, its provider refunds planned and executed by the
  worker like any approved request (a refund before the chargeback heads off the dispute and
  its fee);
- ``ignore``: nothing stored.

One request per warning, ever: its ``idempotency_key`` is the warning's provider id, so a
replayed or re-delivered warning changes nothing. The decision cites the rule.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.domain.events import FraudWarning
from bridge.ledger.models import Order, Payment, RefundRequest
from bridge.policy import PolicyRegistry, fraud_warning_decision
from bridge.services.policy_inputs import policy_order
from bridge.services.refund_requests import new_request_id, plan_refunds

log = logging.getLogger("bridge.services.fraud_warnings")

REASON = "fraud_warning"  # the policy engine's FRAUD_WARNING_REASON


def warning_key(event: FraudWarning) -> str:
    return f"fraud_warning:{event.provider}:{event.provider_warning_id}"


def on_fraud_warning(session: Session, policies: PolicyRegistry, payment: Payment, event: FraudWarning,
                     now: datetime, max_attempts: int = 12) -> None:
    key = warning_key(event)
    if session.execute(select(RefundRequest.id).where(RefundRequest.idempotency_key == key)).first():
        return
    order = session.get(Order, payment.order_pk)
    if not order.policy or order.policy not in policies:
        log.warning("fraud warning on order %s: no known policy (%r), nothing decided", order.order_id, order.policy)
        return
    p_order, paid = policy_order(session, order)
    if not p_order.items:
        return
    decision = fraud_warning_decision(policies.get(order.policy), p_order, event.occurred_at)
    if decision is None:  # the policy says ignore: the dispute, if one follows, takes its course
        return
    rr = RefundRequest(
        id=new_request_id(), order_pk=order.id, idempotency_key=key, request_hash=None, status=decision.outcome,
        reason=REASON, items=[i.item_id for i in p_order.items], requested_at=event.occurred_at, facts={},
        item_facts={}, decision=decision.to_dict(), refund_amount=decision.refund_amount,
        fee_deducted=decision.fee_deducted, currency=decision.currency, policy_id=decision.policy_id,
        policy_version=decision.policy_version, policy_hash=decision.policy_hash, created_at=now, updated_at=now)
    session.add(rr)
    session.flush()
    if decision.outcome == "approved":
        amounts = {i.item_id: i.refund_amount for i in decision.items if i.refund_amount > 0}
        plan_refunds(session, rr, paid, amounts, now, max_attempts)
    log.info("fraud warning on order %s: refund request %s %s", order.order_id, rr.id, rr.status)
