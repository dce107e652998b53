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

from sqlalchemy import and_, exists, func, select
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
    # A line is booked when the ledger has the entry of its kind for the same provider id.
    booked = exists().where(and_(LedgerEntry.provider == Payout.provider,
                                 LedgerEntry.provider_ref == PayoutLine.source_ref,
                                 LedgerEntry.kind == PayoutLine.kind))
    missing = (select(Payout.provider, Payout.payout_id, PayoutLine.provider_ref, PayoutLine.source_ref,
                      PayoutLine.kind, PayoutLine.gross, PayoutLine.currency)
               .join(Payout, Payout.id == PayoutLine.payout_pk)
               .where(*in_period, PayoutLine.kind.in_(_LEDGER_KINDS), ~booked))
    for provider, payout_id, bt, source, kind, gross, currency in session.execute(missing):
        add("missing_in_ledger", None, provider,
            f"{kind} {source} ({bt}) of {gross} {currency} in payout {payout_id} is not in the ledger")

    fee = aliased(LedgerEntry)
    sale = aliased(LedgerEntry)
    fees = (select(Payout.provider, Order.order_id, PayoutLine.source_ref, PayoutLine.fee,
                   func.coalesce(-fee.amount, 0), PayoutLine.currency)
            .join(Payout, Payout.id == PayoutLine.payout_pk)
            .join(sale, and_(sale.provider == Payout.provider, sale.provider_ref == PayoutLine.source_ref,
                             sale.kind == "sale"))
            .outerjoin(fee, and_(fee.provider == Payout.provider, fee.provider_ref == PayoutLine.source_ref,
                                 fee.kind == "fee"))
            .outerjoin(Order, Order.id == sale.order_pk)
            .where(*in_period, PayoutLine.kind == "sale", sale.currency == PayoutLine.currency,
                   PayoutLine.fee != func.coalesce(-fee.amount, 0)))
    for provider, order_id, source, provider_fee, ledger_fee, currency in session.execute(fees):
        add("fee_mismatch", order_id, provider,
            f"{source}: the provider's fee is {provider_fee} {currency}, the ledger's {ledger_fee} {currency}")

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

    # Both aggregates only over the lines of the period's payouts.
    sums = (select(PayoutLine.payout_pk, func.sum(PayoutLine.amount).label("net"))
            .join(Payout, Payout.id == PayoutLine.payout_pk).where(*in_period)
            .group_by(PayoutLine.payout_pk).subquery())
    unbooked = (select(PayoutLine.payout_pk, func.count().label("n"), func.sum(PayoutLine.amount).label("amt"))
                .join(Payout, Payout.id == PayoutLine.payout_pk)
                .where(*in_period, PayoutLine.kind.in_(_LEDGER_KINDS), ~booked)
                .group_by(PayoutLine.payout_pk).subquery())
    q = (select(Payout, func.coalesce(sums.c.net, 0), func.coalesce(unbooked.c.n, 0), func.coalesce(unbooked.c.amt, 0))
         .outerjoin(sums, sums.c.payout_pk == Payout.id).outerjoin(unbooked, unbooked.c.payout_pk == Payout.id)
         .where(*in_period))
    for p, net, n_unbooked, unbooked_amount in session.execute(q):
        if not p.itemized:
            add("payout_unexplained", None, p.provider,
                f"payout {p.payout_id} of {p.amount} {p.currency}: its lines are not listed yet")
        elif net != p.amount or n_unbooked:
            add("payout_unexplained", None, p.provider,
                f"payout {p.payout_id} of {p.amount} {p.currency}: unexplained {p.amount - net + unbooked_amount}"
                f" ({n_unbooked} line(s) not in the ledger)")
    return out
