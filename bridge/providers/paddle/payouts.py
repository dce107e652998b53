"""Paddle payouts (reference/payouts.md P2): Paddle has no payout API; its payouts are the
``payout.created`` / ``payout.paid`` notifications, which the Events list keeps for 90 days.
A payout is read from there (the entity has no timestamps: the event's ``occurred_at`` is
when), its ``remittance_reference`` kept as a string (it arrives as a number in
``payout.paid``). Itemizing one needs Paddle's payout reconciliation report (a report first
pending, then ready, then a CSV behind a 3-minute link): not read yet, so Paddle payouts are
stored without lines (``itemizable`` False) and reconciliation names them unexplained."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from bridge.domain.money import normalize_currency, parse_minor
from bridge.providers.base import PayoutRecord

EVENT_TYPES = "payout.created,payout.paid"


def payouts_request(cursor: Optional[str]) -> tuple[str, Optional[dict]]:
    if cursor:
        return cursor, None
    return "/events", {"order_by": "id[ASC]", "per_page": "200", "event_type": EVENT_TYPES}


def payout_records(rows: list[dict], since: datetime) -> tuple[PayoutRecord, ...]:
    latest: dict[str, tuple[datetime, dict]] = {}
    created: dict[str, datetime] = {}
    for event in rows:
        data = event.get("data") or {}
        try:
            when = datetime.fromisoformat(str(event.get("occurred_at")).replace("Z", "+00:00"))
        except ValueError:
            continue
        pid = data.get("id")
        if not pid or when < since:
            continue
        created[pid] = min(created.get(pid, when), when)
        if pid not in latest or latest[pid][0] <= when:
            latest[pid] = (when, data)
    return tuple(PayoutRecord(
        payout_id=pid, amount=parse_minor(str(data["amount"])), currency=normalize_currency(data["currency_code"]),
        status="paid" if data.get("status") == "paid" else "pending", arrival_date=None, created=created[pid],
        automatic=True, itemizable=False) for pid, (_, data) in latest.items())
