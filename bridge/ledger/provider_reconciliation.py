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

from sqlalchemy import (BigInteger, String, and_, case, cast, exists, func, literal, null, or_, select, text,
                        union_all)
from sqlalchemy.orm import Session, aliased

from bridge.domain.money import format_amount
from bridge.ledger.models import LedgerEntry, Order, Payout, PayoutLine

# Stripe makes a charge's money available in days (2 to 7 by account); a sale older than this
# before an itemized payout that does not contain it is missing at the provider.
PAYOUT_LAG = timedelta(days=7)
# Payout line kinds that are ledger entry kinds of the same name.
_LEDGER_KINDS = ("sale", "refund", "refund_reversal", "chargeback", "chargeback_reversal")


# The order of the kinds in the answer (then by provider, payout and provider id).
_ORDER = {"missing_in_ledger": 0, "fee_mismatch": 1, "payout_unexplained": 2, "missing_at_provider": 3}


def discrepancies(session: Session, period) -> list[dict]:
    out: list[dict] = []

    def add(kind, order_id, provider, detail):
        out.append({"kind": kind, "order_id": order_id, "provider": provider, "detail": detail})

    if session.get_bind().dialect.name == "postgresql":
        # The statement below is a few hundred milliseconds of index probes whose estimated
        # cost grows with the month's lines: past jit_above_cost PostgreSQL spends most of a
        # second compiling it (measured: 0.87 s JIT for 0.38 s of work at 50,000 lines).
        session.execute(text("SET LOCAL jit = off"))
    prov = [Payout.provider == period.provider] if period.provider else []
    in_period = [Payout.created >= period.start, Payout.created < period.end, *prov]
    latest = session.execute(select(Payout.provider, func.max(Payout.created))
                             .where(Payout.itemized.is_(True), *prov).group_by(Payout.provider)).all()
    # One pass over the period's payout lines (a CTE, materialized once, narrow): each line
    # with the ledger entry of its kind under the same provider id and, for a sale, the
    # ledger's fee, each found by an index probe. Originals only: a correction (same kind and
    # provider id, ``corrects`` set) changes the booked sum, not whether the movement is booked,
    # and joining it would count the line twice. Fees are posted once, never corrected.
    entry, fee = aliased(LedgerEntry), aliased(LedgerEntry)
    ml = (select(Payout.id.label("payout_pk"), PayoutLine.provider_ref, PayoutLine.source_ref, PayoutLine.kind,
                 PayoutLine.gross, PayoutLine.fee, PayoutLine.amount, PayoutLine.currency,
                 entry.id.label("entry_id"), entry.currency.label("entry_currency"), entry.order_pk,
                 fee.amount.label("ledger_fee"))
          .select_from(Payout)
          .outerjoin(PayoutLine, PayoutLine.payout_pk == Payout.id)
          .outerjoin(entry, and_(entry.provider == Payout.provider, entry.provider_ref == PayoutLine.source_ref,
                                 entry.kind == PayoutLine.kind, entry.corrects.is_(None)))
          .outerjoin(fee, and_(PayoutLine.kind == "sale", fee.provider == Payout.provider,
                               fee.provider_ref == PayoutLine.source_ref, fee.kind == "fee", fee.corrects.is_(None)))
          .where(*in_period)).cte("month_lines")
    ledger_kind = ml.c.kind.in_(_LEDGER_KINDS)
    unbooked = and_(ledger_kind, ml.c.entry_id.is_(None))
    ledger_fee = func.coalesce(-ml.c.ledger_fee, 0)
    no_text, no_int = cast(null(), String), cast(null(), BigInteger)  # typed NULLs for the UNION
    missing = (select(literal("missing_in_ledger").label("what"), Payout.provider, Payout.payout_id, ml.c.source_ref,
                      ml.c.provider_ref, ml.c.kind, ml.c.gross.label("a"), no_int.label("b"), ml.c.currency,
                      no_int.label("order_pk"))
               .join(Payout, Payout.id == ml.c.payout_pk).where(unbooked))
    fees = (select(literal("fee_mismatch"), Payout.provider, Payout.payout_id, ml.c.source_ref, ml.c.provider_ref,
                   ml.c.kind, ml.c.fee, ledger_fee, ml.c.currency, ml.c.order_pk)
            .join(Payout, Payout.id == ml.c.payout_pk)
            .where(ml.c.kind == "sale", ml.c.entry_id.is_not(None), ml.c.entry_currency == ml.c.currency,
                   ml.c.fee != ledger_fee))
    # Per payout: the signed sum of its lines, and how many (and how much) the ledger lacks.
    sums = (select(ml.c.payout_pk, func.coalesce(func.sum(ml.c.amount), 0).label("net"),
                   func.sum(case((unbooked, 1), else_=0)).label("n_unbooked"),
                   func.coalesce(func.sum(case((unbooked, ml.c.amount), else_=0)), 0).label("unbooked_amount"))
            .group_by(ml.c.payout_pk).subquery())
    payouts = (select(literal("payout_unexplained"), Payout.provider, Payout.payout_id, no_text, no_text,
                      case((Payout.itemized.is_(True), "itemized"), else_="not_itemized"),
                      Payout.amount - sums.c.net + sums.c.unbooked_amount, sums.c.n_unbooked, Payout.currency, no_int)
               .join(sums, sums.c.payout_pk == Payout.id)
               .where(or_(Payout.itemized.is_(False), sums.c.net != Payout.amount, sums.c.n_unbooked > 0)))
    parts = [missing, fees, payouts]
    if latest:
        # Sales of the period older than the provider's latest itemized payout less the lag,
        # in no payout. Most are in a payout of the period (the CTE linked them: an anti-join
        # on its entry ids); only the rest, the period's last days, are looked up among every
        # payout line, one index probe each, so the cost follows the month, not the history.
        unlinked = (select(LedgerEntry.provider, LedgerEntry.provider_ref, LedgerEntry.amount, LedgerEntry.currency,
                           LedgerEntry.order_pk)
                    .where(LedgerEntry.kind == "sale", period.entries_filter(),
                           or_(*(and_(LedgerEntry.provider == provider, LedgerEntry.occurred_at < at - PAYOUT_LAG)
                                 for provider, at in latest)),
                           ~exists().where(ml.c.entry_id == LedgerEntry.id))
                    # Materialized so that the probe below runs on its rows only (PostgreSQL
                    # would otherwise hash every payout line ever stored).
                    .cte("unlinked_sales").prefix_with("MATERIALIZED", dialect="postgresql"))
        in_a_payout = (select(func.count()).select_from(PayoutLine).join(Payout, Payout.id == PayoutLine.payout_pk)
                       .where(PayoutLine.source_ref == unlinked.c.provider_ref, Payout.provider == unlinked.c.provider)
                       .scalar_subquery())
        parts.append(select(literal("missing_at_provider"), unlinked.c.provider, no_text, unlinked.c.provider_ref,
                            no_text, literal("sale"), unlinked.c.amount, no_int, unlinked.c.currency,
                            unlinked.c.order_pk).where(in_a_payout == 0))
    found = union_all(*parts).subquery()
    order_id = select(Order.order_id).where(Order.id == found.c.order_pk).scalar_subquery()
    rows = session.execute(select(found, order_id)).all()
    rows.sort(key=lambda r: (_ORDER[r[0]], r[1], r[2] or "", r[3] or "", r[4] or ""))
    for what, provider, payout_id, source, bt, kind, a, b, currency, _, order_id in rows:
        # Sums come back as NUMERIC from PostgreSQL: integers of minor units again.
        a, b = (None if a is None else int(a)), (None if b is None else int(b))
        if what == "missing_in_ledger":
            add(what, None, provider, f"{kind} {source} ({bt}) of {format_amount(a, currency)} in payout {payout_id} "
                                      "is not in the ledger")
        elif what == "fee_mismatch":
            add(what, order_id, provider,
                f"{source}: the provider's fee is {format_amount(a, currency)}, the ledger's {format_amount(b, currency)}")
        elif what == "missing_at_provider":
            add(what, order_id, provider, f"sale {source} of {format_amount(a, currency)} is in no payout of the provider's record")
        elif kind == "not_itemized":
            add(what, None, provider, f"payout {payout_id} of {format_amount(a, currency)}: its lines are not listed yet")
        else:
            add(what, None, provider, f"payout {payout_id}: unexplained {format_amount(a, currency)} ({b} line(s) not in the ledger)")
    return out
