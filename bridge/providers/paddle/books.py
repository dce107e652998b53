"""Paddle's own record, read for ``bridge sync`` (``base.ProviderBooks``).

- Events: ``GET /events?order_by=id[ASC]&per_page=200&event_type=<the handled types>``,
  followed through ``meta.pagination.next`` verbatim (payout events apart: sync lists those
  on their own, payouts.py). Paddle keeps 90 days and has no date
  filter: events older than ``since`` are dropped here. The last page's ``next`` (its
  ``after`` is the newest event seen) is where the next sync starts (``BookPage.resume``).
- Older history: ``GET /transactions?status=completed&created_at[GTE]=&created_at[LT]=``
  (30 a page, Paddle's maximum) as ``transaction.completed``, and ``GET /adjustments`` (50 a
  page; it has no date filter, so the range is applied here) as ``adjustment.created`` for
  chargebacks (their money moves on creation) and ``adjustment.updated`` for refunds, in their
  current status.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from bridge.providers.base import BookPage
from bridge.providers.paddle.events import HANDLED_TYPES
from bridge.providers.paddle.payouts import EVENT_TYPES as PAYOUT_TYPES

OBJECT_KINDS = ("transactions", "adjustments")
_PAGE = {"events": 200, "transactions": 30, "adjustments": 50}


def _iso(when: datetime) -> str:
    # Paddle's SDK drops offsets instead of converting (reference/payouts.md trap 8): send UTC.
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _when(value: Optional[str]) -> Optional[datetime]:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def events_request(cursor: Optional[str]) -> tuple[str, Optional[dict]]:
    if cursor:
        return cursor, None  # a ``next`` URL: it carries the filters and ``after``
    return "/events", {"order_by": "id[ASC]", "per_page": str(_PAGE["events"]),
                       "event_type": ",".join(sorted(HANDLED_TYPES - frozenset(PAYOUT_TYPES)))}


def events_page(rows: list[dict], next_url: Optional[str], has_more: bool,
                total: Optional[int], since: datetime) -> BookPage:
    kept = []
    for row in rows:
        occurred = _when(row.get("occurred_at"))
        if occurred is None or occurred >= since:  # an unreadable time is the parser's to report
            kept.append(row)
    return BookPage(tuple(kept), next_url if has_more else None,
                    resume=next_url if rows else None, total=total)


def objects_request(kind: str, since: datetime, until: datetime,
                    cursor: Optional[str]) -> tuple[str, Optional[dict]]:
    if kind not in OBJECT_KINDS:
        raise ValueError(f"Paddle has no object kind {kind!r} for sync")
    if cursor:
        return cursor, None
    params = {"per_page": str(_PAGE[kind]), "order_by": "id[ASC]"}
    if kind == "transactions":
        params.update({"status": "completed", "created_at[GTE]": _iso(since), "created_at[LT]": _iso(until)})
    return f"/{kind}", params


def as_events(kind: str, obj: dict) -> list[dict]:
    oid = obj.get("id")
    if kind == "transactions":
        when = obj.get("billed_at") or obj.get("updated_at") or obj.get("created_at")
        return [{"event_id": f"sync_{oid}_completed", "event_type": "transaction.completed",
                 "occurred_at": when, "data": obj}]
    status = obj.get("status")
    chargeback = str(obj.get("action", "")).startswith("chargeback")
    return [{"event_id": f"sync_{oid}_{status}",
             "event_type": "adjustment.created" if chargeback else "adjustment.updated",
             "occurred_at": obj.get("created_at") if chargeback else (obj.get("updated_at") or obj.get("created_at")),
             "data": obj}]


def objects_page(kind: str, rows: list[dict], next_url: Optional[str], has_more: bool,
                 total: Optional[int], since: datetime, until: datetime) -> BookPage:
    docs = []
    for obj in rows:
        created = _when(obj.get("created_at"))
        if kind == "adjustments" and created is not None and not since <= created < until:
            continue
        docs.extend(as_events(kind, obj))
    return BookPage(tuple(docs), next_url if has_more else None, total=total)
