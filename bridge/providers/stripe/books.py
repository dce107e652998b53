"""Stripe's own record, read for ``bridge sync`` (``base.ProviderBooks``).

- Events: ``GET /v1/events`` filtered to the types the bridge handles (payouts apart: they are
  listed themselves, ``payouts.py``) and ``created[gte]``,
  newest first, 100 a page, walked with ``starting_after`` (the cursor). Stripe keeps 30 days.
- Older history: ``GET /v1/charges`` (with ``expand[]=data.balance_transaction``: the fee comes
  with the charge), ``/v1/refunds`` and ``/v1/disputes`` by ``created`` range, each object
  turned into the event(s) a webhook would have carried, so that it takes the same path:
  a succeeded charge -> ``charge.succeeded``; a refund -> ``refund.updated`` in its current
  status; a dispute -> ``charge.dispute.funds_withdrawn`` / ``.funds_reinstated`` from its
  balance transactions, and its current status. Lists show current state, not history
  (reference/payouts.md S3): a refund that failed after succeeding is one ``failed`` refund.
- Events are rendered in the API version of their creation; the parser reads the current shape
  and the pre-basil fallbacks (events.py), so older events parse too.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from bridge.providers.base import BookPage
from bridge.providers.stripe.events import HANDLED_TYPES
from bridge.providers.stripe.payouts import EVENT_TYPES as PAYOUT_TYPES

PAGE = 100
OBJECT_KINDS = ("charges", "refunds", "disputes")
API_VERSION = "2026-10-28.endive"
# Stripe filters on at most 20 exact types; more, and the list is taken whole (the worker
# ignores the rest). Payouts are not read from the Events list: sync lists them whole
# (``GET /v1/payouts``), in their current status.
_BOOK_TYPES = HANDLED_TYPES - frozenset(PAYOUT_TYPES)
_TYPES = sorted(_BOOK_TYPES) if len(_BOOK_TYPES) <= 20 else None


def _ts(when: datetime) -> int:
    return int(when.timestamp())


def events_params(since: datetime, cursor: Optional[str]) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": PAGE, "created": {"gte": _ts(since)}}
    if _TYPES:
        params["types"] = _TYPES
    if cursor:
        params["starting_after"] = cursor
    return params


def events_page(rows: list[dict], has_more: bool) -> BookPage:
    return BookPage(tuple(rows), rows[-1]["id"] if has_more and rows else None)


def objects_params(kind: str, since: datetime, until: datetime, cursor: Optional[str]) -> dict[str, Any]:
    if kind not in OBJECT_KINDS:
        raise ValueError(f"Stripe has no object kind {kind!r} for sync")
    params: dict[str, Any] = {"limit": PAGE, "created": {"gte": _ts(since), "lt": _ts(until)}}
    if kind == "charges":
        params["expand"] = ["data.balance_transaction"]
    if cursor:
        params["starting_after"] = cursor
    return params


def _event(event_id: str, event_type: str, created: int, obj: dict) -> dict:
    return {"id": event_id, "object": "event", "type": event_type, "created": created,
            "api_version": API_VERSION, "livemode": bool(obj.get("livemode")), "pending_webhooks": 0,
            "request": {"id": None, "idempotency_key": None}, "data": {"object": obj}}


def as_events(kind: str, obj: dict) -> list[dict]:
    """The event-shaped documents of one listed object (none for a charge that took no money)."""
    oid = obj["id"]
    created = int(obj.get("created") or 0)
    if kind == "charges":
        if obj.get("status") != "succeeded" or obj.get("captured") is False:
            return []
        return [_event(f"sync_{oid}_succeeded", "charge.succeeded", created, obj)]
    if kind == "refunds":
        return [_event(f"sync_{oid}_{obj.get('status')}", "refund.updated", created, obj)]
    out = []
    bts = [bt for bt in obj.get("balance_transactions") or [] if isinstance(bt, dict)]
    withdrawn = [bt for bt in bts if int(bt.get("amount") or 0) < 0]
    reinstated = [bt for bt in bts if int(bt.get("amount") or 0) > 0]
    status = obj.get("status")
    if withdrawn:
        at = max(int(bt.get("created") or created) for bt in withdrawn)
        moment = {**obj, "balance_transactions": withdrawn,
                  "status": status if status in ("needs_response", "under_review") else "under_review"}
        out.append(_event(f"sync_{oid}_withdrawn", "charge.dispute.funds_withdrawn", at, moment))
    if reinstated:
        at = max(int(bt.get("created") or created) for bt in reinstated)
        out.append(_event(f"sync_{oid}_reinstated", "charge.dispute.funds_reinstated", at,
                          {**obj, "balance_transactions": bts}))
    last = max([created] + [int(bt.get("created") or created) for bt in bts])
    closed = status in ("won", "lost", "warning_closed", "prevented")
    out.append(_event(f"sync_{oid}_{status}", "charge.dispute.closed" if closed else "charge.dispute.updated",
                      last, obj))
    return out


def objects_page(kind: str, rows: list[dict], has_more: bool) -> BookPage:
    docs = [doc for obj in rows for doc in as_events(kind, obj)]
    return BookPage(tuple(docs), rows[-1]["id"] if has_more and rows else None)
