"""Payouts and their lines: stored from the provider's record (its payout events, and what
``bridge sync`` lists), and read for finance (the API and the console call these). Breakdowns and the link of each line to its ledger entry are SQL
over indexed tables (``payout_lines.source_ref`` = ``ledger_entries.provider_ref``)."""
from __future__ import annotations

from datetime import datetime
from typing import Optional, Sequence

from sqlalchemy import and_, case, delete, func, select
from sqlalchemy.orm import Session, aliased

from bridge.domain.follow_ups import ITEMIZE_PAYOUT
from bridge.ledger.jobs import enqueue
from bridge.ledger.models import LedgerEntry, Order, Payout, PayoutLine

BREAKDOWN = ("gross", "fees", "tax", "refunds", "chargebacks", "chargeback_fees", "adjustments", "fx", "other")


# A payout's statuses only move forward (Stripe: pending -> in_transit -> paid, and a paid one
# may still fail; Paddle: unpaid -> paid): a late or replayed event of an earlier status, or a
# sync that listed it before the event came, never takes a payout back.
STATUS_RANK = {"pending": 0, "in_transit": 1, "paid": 2, "failed": 3, "canceled": 3}


def find_payout(session: Session, provider: str, payout_id: str) -> Optional[Payout]:
    return session.execute(select(Payout).where(Payout.provider == provider, Payout.payout_id == payout_id)
                           ).scalar_one_or_none()


def upsert_payout(session: Session, provider: str, rec, now: datetime) -> Payout:
    """The payout as the provider now says (a status may move from paid to failed, never back).
    ``rec`` has the fields of ``PayoutUpdated`` (a ``PayoutRecord`` from sync has them too)."""
    row = find_payout(session, provider, rec.payout_id)
    if row is None:
        row = Payout(provider=provider, payout_id=rec.payout_id, itemized=False, status=rec.status)
        session.add(row)
    row.amount, row.currency = rec.amount, rec.currency
    if STATUS_RANK.get(rec.status, 0) >= STATUS_RANK.get(row.status, 0):
        row.status = rec.status
    row.reference = getattr(rec, "reference", None) or row.reference
    # Paddle says when through its events: keep the earliest seen as the payout's creation.
    created = rec.created if row.created is None else min(row.created, rec.created)
    row.arrival_date = rec.arrival_date or row.arrival_date
    row.created, row.automatic, row.updated_at = created, rec.automatic, now
    session.flush()
    return row


def apply_payout(session: Session, ev, now: datetime) -> Payout:
    """A payout event (``PayoutUpdated``): the payout stored as it says, and, when its provider
    can now list what is in it and that was not stored yet, one job to fetch its lines (the
    worker runs it through the provider, outside this transaction)."""
    row = upsert_payout(session, ev.provider, ev, now)
    if ev.itemizable and not row.itemized:
        enqueue(session, ITEMIZE_PAYOUT, str(row.id), now, dedupe_key=f"{ITEMIZE_PAYOUT}:{row.provider}:{row.payout_id}")
    return row


def replace_lines(session: Session, payout: Payout, lines: Sequence) -> None:
    """The payout's movements, all of them at once (a re-itemized payout replaces its lines)."""
    session.execute(delete(PayoutLine).where(PayoutLine.payout_pk == payout.id))
    session.add_all(PayoutLine(
        payout_pk=payout.id, provider_ref=l.provider_ref, kind=l.kind, gross=l.gross, fee=l.fee, amount=l.amount,
        currency=l.currency, original_amount=l.original_amount, original_currency=l.original_currency,
        exchange_rate=l.exchange_rate, source_ref=l.source_ref) for l in lines)
    payout.itemized = True


def _net_per_payout():
    return (select(PayoutLine.payout_pk, func.coalesce(func.sum(PayoutLine.amount), 0).label("net"),
                   func.count(PayoutLine.id).label("n"))
            .group_by(PayoutLine.payout_pk).subquery())


def list_payouts(session: Session, start: datetime, end: datetime, provider: Optional[str] = None) -> list[dict]:
    net = _net_per_payout()
    q = (select(Payout, func.coalesce(net.c.net, 0), func.coalesce(net.c.n, 0))
         .outerjoin(net, net.c.payout_pk == Payout.id)
         .where(Payout.created >= start, Payout.created < end).order_by(Payout.created, Payout.id))
    if provider:
        q = q.where(Payout.provider == provider)
    out = []
    for p, explained, n in session.execute(q).all():
        out.append({"provider": p.provider, "payout_id": p.payout_id, "amount": p.amount, "currency": p.currency,
                    "status": p.status, "arrival_date": p.arrival_date, "explained": int(explained),
                    "unexplained": p.amount - int(explained), "lines": int(n), "itemized": p.itemized})
    return out


def payout_detail(session: Session, payout_id: str) -> Optional[dict]:
    p = session.execute(select(Payout).where(Payout.payout_id == payout_id)).scalars().first()
    if p is None:
        return None
    k = PayoutLine.kind
    # Every line gives its gross to its category and its fee to fees (chargeback fees apart):
    # the categories add up to ``net`` by construction, and ``unexplained`` is what is left.
    cb = k.in_(("chargeback", "chargeback_reversal"))

    def gross_of(*kinds):
        return func.coalesce(func.sum(case((k.in_(kinds), PayoutLine.gross), else_=0)), 0)

    sums = session.execute(select(
        gross_of("sale"),
        func.coalesce(func.sum(case((cb, 0), else_=-PayoutLine.fee)), 0) + gross_of("fee"),
        gross_of("tax"), gross_of("refund", "refund_reversal"), gross_of("chargeback", "chargeback_reversal"),
        func.coalesce(func.sum(case((cb, -PayoutLine.fee), else_=0)), 0),
        gross_of("adjustment"), gross_of("fx"), gross_of("other"),
        func.coalesce(func.sum(PayoutLine.amount), 0),
    ).where(PayoutLine.payout_pk == p.id)).one()
    breakdown = dict(zip(BREAKDOWN, (int(v) for v in sums[:9])))
    net = int(sums[9])
    # One pass: each line joined to the ledger entry of the same kind and provider id (unique
    # by effect key), and that entry's order; plain columns, no ORM objects per line. The
    # original entry only: its corrections (same kind and id) would list the line again.
    entry = aliased(LedgerEntry)
    lines = session.execute(
        select(PayoutLine.provider_ref, PayoutLine.source_ref, PayoutLine.kind, PayoutLine.amount, PayoutLine.gross,
               PayoutLine.fee, PayoutLine.currency, PayoutLine.original_amount, PayoutLine.original_currency,
               PayoutLine.exchange_rate, Order.order_id, entry.id)
        .outerjoin(entry, and_(entry.provider == p.provider, entry.provider_ref == PayoutLine.source_ref,
                               entry.kind == PayoutLine.kind, entry.corrects.is_(None)))
        .outerjoin(Order, Order.id == entry.order_pk)
        .where(PayoutLine.payout_pk == p.id).order_by(PayoutLine.id)).all()
    return {
        "provider": p.provider, "payout_id": p.payout_id, "amount": p.amount, "currency": p.currency,
        "status": p.status, "arrival_date": p.arrival_date, "itemized": p.itemized,
        "breakdown": {**breakdown, "net": net, "amount": p.amount, "unexplained": p.amount - net},
        "lines": [{"provider_ref": ref, "source_ref": source, "kind": kind, "amount": amount, "gross": gross,
                   "fee": fee, "currency": currency, "original_amount": o_amount, "original_currency": o_currency,
                   "exchange_rate": rate, "order_id": order_id, "ledger": entry_id is not None}
                  for ref, source, kind, amount, gross, fee, currency, o_amount, o_currency, rate, order_id, entry_id
                  in lines],
    }
