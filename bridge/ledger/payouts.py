"""Payouts and their lines: stored from the provider's record, and read for finance (the API
and the console call these). Breakdowns and the link of each line to its ledger entry are SQL
over indexed tables (``payout_lines.source_ref`` = ``ledger_entries.provider_ref``)."""
from __future__ import annotations

from datetime import datetime
from typing import Optional, Sequence

from sqlalchemy import and_, case, delete, func, select
from sqlalchemy.orm import Session, aliased

from bridge.ledger.models import LedgerEntry, Order, Payout, PayoutLine

BREAKDOWN = ("gross", "fees", "tax", "refunds", "chargebacks", "chargeback_fees", "adjustments", "fx", "other")


def upsert_payout(session: Session, provider: str, rec, now: datetime) -> Payout:
    """The payout as the provider now says (a status may move from paid to failed)."""
    row = session.execute(select(Payout).where(Payout.provider == provider, Payout.payout_id == rec.payout_id)
                          ).scalar_one_or_none()
    if row is None:
        row = Payout(provider=provider, payout_id=rec.payout_id, itemized=False)
        session.add(row)
    row.amount, row.currency, row.status = rec.amount, rec.currency, rec.status
    # Paddle says when through its events: keep the earliest seen as the payout's creation.
    created = rec.created if row.created is None else min(row.created, rec.created)
    row.arrival_date, row.created, row.automatic, row.updated_at = rec.arrival_date, created, rec.automatic, now
    session.flush()
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
