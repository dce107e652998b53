"""Stripe payouts and what is in them (reference/payouts.md S1-S2): the ``payout.*`` webhooks
(``payout_event``: the payout as the event's snapshot says; the worker then asks for its lines
through the same ``payout_lines`` sync uses), ``GET /v1/payouts`` by ``created``, and for an
automatic payout whose ``reconciliation_status`` is ``completed``,
``GET /v1/balance_transactions?payout=<id>&expand[]=data.source`` (newest first, 100 a page),
without the payout's own ``type=payout`` row. Kinds come from ``reporting_category`` (what
Stripe recommends for accounting), amounts are the balance transaction's (the settlement
currency); a converted charge keeps its presentment amount and currency from its source."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from bridge.domain.events import STRIPE, PayoutUpdated
from bridge.domain.money import normalize_currency
from bridge.providers.base import PayoutLineRecord, PayoutRecord
from bridge.providers.payload_errors import opt_bool, opt_str, opt_unix, req_amount, req_currency, req_str, req_unix

_KINDS = {"charge": "sale", "refund": "refund", "refund_failure": "refund_reversal",
          "partial_capture_reversal": "refund", "dispute": "chargeback",
          "dispute_reversal": "chargeback_reversal", "fee": "fee", "network_cost": "fee",
          "tax": "tax", "other_adjustment": "adjustment", "payout_reversal": "adjustment"}
_OWN = ("payout", "payout_cancel", "payout_failure")


# Stripe sends these for a payout's life; ``payout.reconciliation_completed`` is when an
# automatic payout's balance transactions can all be listed (S2).
EVENT_TYPES = ("payout.created", "payout.updated", "payout.paid", "payout.failed", "payout.canceled",
               "payout.reconciliation_completed")
STATUSES = ("pending", "in_transit", "paid", "failed", "canceled")
_OBJ = "data.object"


def payout_event(ctx, po: dict) -> list:
    """A ``payout.*`` event: the payout as its snapshot says (a status the bridge does not
    know is noted, never a parse failure: the payout keeps the status it had)."""
    status = req_str(po, "status", _OBJ)
    if status not in STATUSES:
        return [ctx.unknown(f"{_OBJ}.status", status)]
    automatic = bool(opt_bool(po, "automatic", _OBJ))
    return [PayoutUpdated(
        provider=STRIPE, occurred_at=ctx.occurred_at, payout_id=req_str(po, "id", _OBJ),
        amount=req_amount(po, "amount", _OBJ), currency=req_currency(po, "currency", _OBJ), status=status,
        created=req_unix(po, "created", _OBJ), automatic=automatic,
        # Manual and Instant payouts cannot be itemized; an automatic one once reconciled.
        itemizable=automatic and opt_str(po, "reconciliation_status", _OBJ) == "completed",
        arrival_date=opt_unix(po, "arrival_date", _OBJ))]


def _when(ts: Any) -> Optional[datetime]:
    return datetime.fromtimestamp(int(ts), timezone.utc) if ts else None


def payouts_params(since: datetime, cursor: Optional[str]) -> dict:
    params: dict[str, Any] = {"limit": 100, "created": {"gte": int(since.timestamp())}}
    if cursor:
        params["starting_after"] = cursor
    return params


def payout_record(p: dict) -> PayoutRecord:
    return PayoutRecord(
        payout_id=p["id"], amount=int(p["amount"]), currency=normalize_currency(p["currency"]),
        status=str(p.get("status") or "pending"), arrival_date=_when(p.get("arrival_date")),
        created=_when(p.get("created")) or datetime.now(timezone.utc),
        automatic=bool(p.get("automatic")),
        itemizable=bool(p.get("automatic")) and p.get("reconciliation_status") == "completed")


def lines_params(payout_id: str, cursor: Optional[str]) -> dict:
    params: dict[str, Any] = {"limit": 100, "payout": payout_id, "expand": ["data.source"]}
    if cursor:
        params["starting_after"] = cursor
    return params


def line_record(bt: dict) -> Optional[PayoutLineRecord]:
    if bt.get("type") in _OWN:
        return None
    currency = normalize_currency(bt["currency"])
    source = bt.get("source")
    source_id = source.get("id") if isinstance(source, dict) else source
    original_amount = original_currency = None
    if isinstance(source, dict) and source.get("currency") and source.get("amount") is not None:
        src_currency = normalize_currency(source["currency"])
        if src_currency != currency:
            original_amount, original_currency = abs(int(source["amount"])), src_currency
            if int(bt["amount"]) < 0:
                original_amount = -original_amount
    rate = bt.get("exchange_rate")
    return PayoutLineRecord(
        provider_ref=bt["id"], kind=_KINDS.get(str(bt.get("reporting_category")), "other"),
        gross=int(bt["amount"]), fee=int(bt.get("fee") or 0), amount=int(bt["net"]), currency=currency,
        original_amount=original_amount, original_currency=original_currency,
        exchange_rate=None if rate is None else str(rate), source_ref=source_id)
