"""Paddle payouts (reference/payouts.md P2): Paddle has no payout API; its payouts are the
``payout.created`` / ``payout.paid`` notifications, delivered as webhooks (``payout_event``) and
kept by the Events list for 90 days (what sync reads, ``payout_records``). The entity has no
timestamps: the event's ``occurred_at`` is when. Its ``remittance_reference`` is kept as a
string (it arrives as a number in ``payout.paid``): it is what the payout reconciliation report
is asked for by (``reports.py``), which itemizes a paid payout, every movement of money in it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from bridge.domain.events import PADDLE, PayoutUpdated
from bridge.domain.money import normalize_currency, parse_minor
from bridge.providers.base import PayoutRecord
from bridge.providers.payload_errors import PayloadError, join, req_amount, req_currency, req_str

EVENT_TYPES = ("payout.created", "payout.paid")
_STATUS = {"unpaid": "pending", "paid": "paid"}
_DATA = "data"


def _reference(data: dict) -> Optional[str]:
    raw = data.get("remittance_reference")
    if raw is None or isinstance(raw, bool) or not isinstance(raw, (str, int)):
        return None
    text = str(raw).strip()
    return text or None


def payout_event(ctx, data: dict) -> list:
    """``payout.created`` (``unpaid``: pending) / ``payout.paid``: the payout; a paid one with a
    remittance reference can be itemized through the report."""
    raw_status = req_str(data, "status", _DATA)
    if raw_status not in _STATUS:
        return [ctx.unknown(join(_DATA, "status"), raw_status)]
    status = _STATUS[raw_status]
    if data.get("remittance_reference") is not None and _reference(data) is None:
        raise PayloadError(join(_DATA, "remittance_reference"), "is not a string or a number")
    reference = _reference(data)
    return [PayoutUpdated(
        provider=PADDLE, occurred_at=ctx.occurred_at, payout_id=req_str(data, "id", _DATA),
        amount=req_amount(data, "amount", _DATA, nonneg=True), currency=req_currency(data, "currency_code", _DATA),
        status=status, created=ctx.occurred_at, automatic=True,
        itemizable=status == "paid" and reference is not None, reference=reference)]


def payouts_request(cursor: Optional[str]) -> tuple[str, Optional[dict]]:
    if cursor:
        return cursor, None
    return "/events", {"order_by": "id[ASC]", "per_page": "200", "event_type": ",".join(EVENT_TYPES)}


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
    out = []
    for pid, (_, data) in latest.items():
        paid = data.get("status") == "paid"
        reference = _reference(data)
        out.append(PayoutRecord(
            payout_id=pid, amount=parse_minor(str(data["amount"])), currency=normalize_currency(data["currency_code"]),
            status="paid" if paid else "pending", arrival_date=None, created=created[pid], automatic=True,
            itemizable=paid and reference is not None, reference=reference))
    return tuple(out)
