"""Payouts from the provider's record, brought in by ``bridge sync`` for providers whose API
lists them (``base.ProviderPayouts``: Stripe). Each payout is stored as the provider now says
(status included: Stripe can move a paid payout to failed); one that can be itemized and was
not yet gets all its lines, listed to the end and written in one transaction."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from bridge.ledger import payouts as store
from bridge.providers.base import ProviderPayouts


def import_payouts(rt, name: str, since: datetime) -> dict:
    books = rt.providers[name]
    if not isinstance(books, ProviderPayouts):
        return {}
    seen = itemized = 0
    cursor: Optional[str] = None
    while True:
        records, cursor = books.list_payouts(since, cursor)
        for rec in records:
            seen += 1
            with rt.sessions.begin() as session:
                row = store.upsert_payout(session, name, rec, rt.clock())
                needs_lines = rec.itemizable and not row.itemized
            if needs_lines:
                lines, page = [], None
                while True:  # all pages first: a payout is stored whole or not at all
                    got, page = books.payout_lines(rec.payout_id, page)
                    lines.extend(got)
                    if page is None:
                        break
                with rt.sessions.begin() as session:
                    row = store.upsert_payout(session, name, rec, rt.clock())
                    store.replace_lines(session, row, lines)
                itemized += 1
        if cursor is None:
            return {"payouts": seen, "itemized": itemized}
