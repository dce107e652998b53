"""Reconciliation for finance: totals per provider and currency as SQL aggregates over the
ledger, the ledger lines themselves, and the discrepancies that need a person.

Amounts in totals are magnitudes net of their reversals (refunds = refunds - refund reversals),
and ``net`` is the signed sum of every entry: what the merchant kept.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterator, Optional

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from bridge.domain.money import format_amount
from bridge.ledger.holds import EXCEEDS_CAPTURED, HOLD_KINDS
from bridge.ledger.models import Job, LedgerEntry, Order, OrderItem, Payment, Refund, WebhookEvent

# A refund the provider has not confirmed after this long is a discrepancy (mittrik promises
# 5-7 business days; 7 business days is at most 11 calendar days).
UNCONFIRMED_AFTER = timedelta(days=11)


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    provider: Optional[str] = None
    currency: Optional[str] = None

    def entries_filter(self):
        conds = [LedgerEntry.occurred_at >= self.start, LedgerEntry.occurred_at < self.end]
        if self.provider:
            conds.append(LedgerEntry.provider == self.provider)
        if self.currency:
            conds.append(LedgerEntry.currency == self.currency)
        return and_(*conds)


def totals(session: Session, period: Period) -> list[dict]:
    rows = session.execute(
        select(LedgerEntry.provider, LedgerEntry.currency, LedgerEntry.kind, func.sum(LedgerEntry.amount),
               func.count(LedgerEntry.id))
        .where(period.entries_filter())
        .group_by(LedgerEntry.provider, LedgerEntry.currency, LedgerEntry.kind)
        .order_by(LedgerEntry.provider, LedgerEntry.currency)).all()
    out: dict[tuple[str, str], dict] = {}
    for provider, currency, kind, total, count in rows:
        t = out.setdefault((provider, currency), {"provider": provider, "currency": currency, "gross": 0, "fees": 0,
                                                  "refunds": 0, "chargebacks": 0, "chargeback_fees": 0, "net": 0,
                                                  "counts": {}})
        total = int(total)
        t["net"] += total
        t["counts"][kind] = int(count)
        if kind == "sale":
            t["gross"] += total
        elif kind == "fee":
            t["fees"] -= total
        elif kind in ("refund", "refund_reversal"):
            t["refunds"] -= total
        elif kind in ("chargeback", "chargeback_reversal"):
            t["chargebacks"] -= total
        elif kind in ("chargeback_fee", "chargeback_fee_reversal"):
            t["chargeback_fees"] -= total
    return list(out.values())


def lines(session: Session, period: Period) -> Iterator[tuple]:
    q = (select(LedgerEntry.occurred_at, LedgerEntry.provider, LedgerEntry.kind, LedgerEntry.amount,
                LedgerEntry.currency, Order.order_id, LedgerEntry.provider_ref, LedgerEntry.effect_key)
         .outerjoin(Order, Order.id == LedgerEntry.order_pk)
         .where(period.entries_filter()).order_by(LedgerEntry.occurred_at, LedgerEntry.id))
    yield from session.execute(q)


def discrepancies(session: Session, period: Period, now: datetime) -> list[dict]:
    out: list[dict] = []

    def add(kind, order_id, provider, detail):
        out.append({"kind": kind, "order_id": order_id, "provider": provider, "detail": detail})

    def prov(col):
        return [col == period.provider] if period.provider else []

    in_period = lambda col: [col >= period.start, col < period.end]  # noqa: E731
    for p in session.execute(select(Payment).where(Payment.order_pk.is_(None), Payment.captured.is_(True),
                                                   *in_period(Payment.paid_at), *prov(Payment.provider))).scalars():
        ref = p.transaction_id or p.charge_id or p.payment_intent_id
        add("unmatched_payment", p.order_ref, p.provider, f"payment {ref} of {format_amount(p.amount, p.currency)} matches no order"
            + (f" ({p.match_note})" if p.match_note else ""))
    refund_q = (select(Refund, Order.order_id).join(Payment, Payment.id == Refund.payment_pk)
                .outerjoin(Order, Order.id == Payment.order_pk))
    for r, order_id in session.execute(refund_q.where(Refund.refund_request_id.is_(None), Refund.status == "succeeded",
                                                      *in_period(Refund.succeeded_at), *prov(Refund.provider))):
        add("refund_without_decision", order_id, r.provider,
            f"refund {r.provider_refund_id} of {format_amount(r.amount, r.currency)} was not decided by the bridge")
    for r, order_id in session.execute(refund_q.where(Refund.refund_request_id.is_not(None), Refund.status == "pending",
                                                      Refund.submitted_at < now - UNCONFIRMED_AFTER, *prov(Refund.provider))):
        add("refund_unconfirmed", order_id, r.provider,
            f"refund {r.provider_refund_id or '(not submitted)'} of {format_amount(r.amount, r.currency)} for request "
            f"{r.refund_request_id} unconfirmed since {r.submitted_at:%Y-%m-%d}")
    for r, order_id in session.execute(refund_q.where(Refund.status.in_(("failed", "canceled")),
                                                      *in_period(Refund.updated_at), *prov(Refund.provider))):
        add("refund_failed", order_id, r.provider,
            f"refund {r.provider_refund_id or '(refused)'} of {format_amount(r.amount, r.currency)} {r.status}: {r.failure_reason}")
    # An order registered with item amounts whose first payment differs from them. Only orders
    # paid in the period can qualify, so the sums are taken over those alone (over the whole
    # history they cost seconds on a large ledger; payments are indexed by paid_at).
    paid_in_period = (select(Payment.order_pk).where(Payment.captured.is_(True), Payment.order_pk.is_not(None),
                                                     *in_period(Payment.paid_at), *prov(Payment.provider)))
    item_sums = (select(OrderItem.order_pk, func.sum(OrderItem.amount).label("items_total"),
                        func.count(OrderItem.id).label("n"), func.count(OrderItem.amount).label("known"))
                 .where(OrderItem.order_pk.in_(paid_in_period))
                 .group_by(OrderItem.order_pk).subquery())
    first = (select(Payment.order_pk, func.min(Payment.paid_at).label("first_at"))
             .where(Payment.captured.is_(True), Payment.order_pk.in_(paid_in_period))
             .group_by(Payment.order_pk).subquery())
    mism = (select(Order.order_id, Payment.provider, Payment.amount, Payment.currency, item_sums.c.items_total)
            .join(item_sums, item_sums.c.order_pk == Order.id)
            .join(first, first.c.order_pk == Order.id)
            .join(Payment, and_(Payment.order_pk == Order.id, Payment.paid_at == first.c.first_at))
            .where(Order.source == "api", item_sums.c.n == item_sums.c.known, Payment.amount != item_sums.c.items_total,
                   *in_period(Payment.paid_at), *prov(Payment.provider)))
    for order_id, provider, paid, currency, expected in session.execute(mism):
        add("amount_mismatch", order_id, provider,
            f"paid {format_amount(paid, currency)}, the order's items sum to {format_amount(int(expected), currency)}")
    for ev in session.execute(select(WebhookEvent).where(WebhookEvent.status.in_(("failed", "parked")),
                                                         *prov(WebhookEvent.provider))).scalars():
        add("event_failed", None, ev.provider, f"event {ev.provider_event_id} ({ev.event_type}) {ev.status}: {ev.error}")
    # Events that carried a provider value the bridge does not know (a new dispute status, a
    # new adjustment action): applied as far as it could, the value kept for a person to map.
    for ev in session.execute(select(WebhookEvent).where(WebhookEvent.status.in_(("processed", "ignored")),
                                                         WebhookEvent.error.like("unknown provider value:%"),
                                                         *prov(WebhookEvent.provider))).scalars():
        add("unknown_provider_value", ev.order_ref, ev.provider,
            f"event {ev.provider_event_id} ({ev.event_type}): {ev.error}")
    # Events whose amounts cannot be true, held unapplied (bridge/ledger/holds.py): the kind is
    # the hold's (amount_exceeds_captured, negative_fee, currency_mismatch).
    for ev in session.execute(select(WebhookEvent).where(WebhookEvent.status == "held",
                                                         *prov(WebhookEvent.provider))).scalars():
        kind, _, detail = (ev.error or "").partition(": ")
        if kind not in HOLD_KINDS:
            kind, detail = EXCEEDS_CAPTURED, ev.error or ""
        add(kind, ev.order_ref, ev.provider, f"event {ev.provider_event_id} ({ev.event_type}) held: {detail}")
    for job in session.execute(select(Job).where(Job.state == "dead")).scalars():
        add("event_failed", None, None, f"job {job.kind} {job.ref_id} dead after {job.attempts} attempts: {job.last_error}")
    return out
