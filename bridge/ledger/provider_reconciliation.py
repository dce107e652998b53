"""The ledger compared with the provider's own record (issue 10): discrepancies computed as SQL
over indexed tables, from what ``bridge sync`` brought in (payouts and their lines: every
balance movement the provider paid out, ``payout_lines.source_ref`` = ``ledger_entries.provider_ref``).

- ``missing_in_ledger``: a movement in a payout of the period that no ledger entry books.
- ``missing_at_provider``: a sale the ledger books that no itemized payout contains although a
  payout itemized a week or more after it (its money should have been paid out by then).
- ``fee_mismatch``: a sale whose fee the provider records differently from the ledger; both named.
- ``payout_unexplained``: a payout of the period not explained to the cent: lines not listed
  yet, lines the ledger lacks, or lines that do not add up to its amount.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import (BigInteger, String, and_, case, cast, exists, func, literal, null, or_, select,
                        union_all)
from sqlalchemy.orm import Session, aliased

from bridge.ledger.models import LedgerEntry, Order, Payout, PayoutLine

# Stripe makes a charge's money available in days (2 to 7 by account); a sale older than this
# before an itemized payout that does not contain it is missing at the provider.
PAYOUT_LAG = timedelta(days=7)
# Payout line kinds that are ledger entry kinds of the same name.
_LEDGER_KINDS = ("sale", "refund", "refund_reversal", "chargeback", "chargeback_reversal")


def discrepancies(session: Session, period) -> list[dict]:
    out: list[dict] = []

    def add(kind, order_id, provider, detail):
        out.append({"kind": kind, "order_id": order_id, "provider": provider, "detail": detail})

    prov = [Payout.provider == period.provider] if period.provider else []
    in_period = [Payout.created >= period.start, Payout.created < period.end, *prov]
    # One pass over the period's payout lines (a CTE, materialized once): each line with the
    # ledger entry of its kind for the same provider id, and for a sale the ledger's fee.
    entry, fee = aliased(LedgerEntry), aliased(LedgerEntry)
    ml = (select(Payout.id.label("payout_pk"), Payout.provider, Payout.payout_id,
                 Payout.amount.label("payout_amount"), Payout.currency.label("payout_currency"), Payout.itemized,
                 PayoutLine.provider_ref, PayoutLine.source_ref, PayoutLine.kind, PayoutLine.gross,
                 PayoutLine.fee, PayoutLine.amount, PayoutLine.currency, entry.id.label("entry_id"),
                 entry.currency.label("entry_currency"), entry.order_pk, fee.amount.label("ledger_fee"))
          .select_from(Payout)
          .outerjoin(PayoutLine, PayoutLine.payout_pk == Payout.id)
          .outerjoin(entry, and_(entry.provider == Payout.provider, entry.provider_ref == PayoutLine.source_ref,
                                 entry.kind == PayoutLine.kind))
          .outerjoin(fee, and_(PayoutLine.kind == "sale", fee.provider == Payout.provider,
                               fee.provider_ref == PayoutLine.source_ref, fee.kind == "fee"))
          .where(*in_period)).cte("month_lines")
    ledger_kind = ml.c.kind.in_(_LEDGER_KINDS)
    unbooked = and_(ledger_kind, ml.c.entry_id.is_(None))
    ledger_fee = func.coalesce(-ml.c.ledger_fee, 0)
    no_text, no_int = cast(null(), String), cast(null(), BigInteger)  # typed NULLs for the UNION
    missing = select(literal("missing_in_ledger").label("what"), ml.c.provider, ml.c.payout_id, ml.c.source_ref,
                     ml.c.provider_ref, ml.c.kind, ml.c.gross.label("a"), no_int.label("b"), ml.c.currency,
                     no_int.label("order_pk")).where(unbooked)
    fees = select(literal("fee_mismatch"), ml.c.provider, ml.c.payout_id, ml.c.source_ref, ml.c.provider_ref,
                  ml.c.kind, ml.c.fee, ledger_fee, ml.c.currency, ml.c.order_pk).where(
        ml.c.kind == "sale", ml.c.entry_id.is_not(None), ml.c.entry_currency == ml.c.currency, ml.c.fee != ledger_fee)
    net = func.coalesce(func.sum(ml.c.amount), 0)
    n_unbooked = func.sum(case((unbooked, 1), else_=0))
    unbooked_amount = func.coalesce(func.sum(case((unbooked, ml.c.amount), else_=0)), 0)
    payouts = (select(literal("payout_unexplained"), ml.c.provider, ml.c.payout_id, no_text, no_text,
                      case((ml.c.itemized.is_(True), "itemized"), else_="not_itemized"),
                      ml.c.payout_amount - net + unbooked_amount, n_unbooked, ml.c.payout_currency, no_int)
               .group_by(ml.c.payout_pk, ml.c.provider, ml.c.payout_id, ml.c.payout_amount, ml.c.payout_currency,
                         ml.c.itemized)
               .having(or_(ml.c.itemized.is_(False), net != ml.c.payout_amount, n_unbooked > 0)))
    found = union_all(missing, fees, payouts).subquery()
    rows = session.execute(select(found, Order.order_id).outerjoin(Order, Order.id == found.c.order_pk)).all()
    for what, provider, payout_id, source, bt, kind, a, b, currency, _, order_id in rows:
        if what == "missing_in_ledger":
            add(what, None, provider, f"{kind} {source} ({bt}) of {a} {currency} in payout {payout_id} "
                                      "is not in the ledger")
        elif what == "fee_mismatch":
            add(what, order_id, provider,
                f"{source}: the provider's fee is {a} {currency}, the ledger's {b} {currency}")
        elif kind == "not_itemized":
            add(what, None, provider, f"payout {payout_id} of {a} {currency}: its lines are not listed yet")
        else:
            add(what, None, provider, f"payout {payout_id}: unexplained {a} {currency} ({b} line(s) not in the ledger)")

    latest = session.execute(select(Payout.provider, func.max(Payout.created))
                             .where(Payout.itemized.is_(True), *prov).group_by(Payout.provider)).all()
    paid_out = exists().where(and_(PayoutLine.source_ref == LedgerEntry.provider_ref,
                                   Payout.id == PayoutLine.payout_pk, Payout.provider == LedgerEntry.provider))
    for provider, at in latest:
        at_provider = (select(Order.order_id, LedgerEntry.provider_ref, LedgerEntry.amount, LedgerEntry.currency)
                       .outerjoin(Order, Order.id == LedgerEntry.order_pk)
                       .where(LedgerEntry.provider == provider, LedgerEntry.kind == "sale", period.entries_filter(),
                              LedgerEntry.occurred_at < at - PAYOUT_LAG, ~paid_out))
        for order_id, ref, amount, currency in session.execute(at_provider):
            add("missing_at_provider", order_id, provider,
                f"sale {ref} of {amount} {currency} is in no payout of the provider's record")
    return out
