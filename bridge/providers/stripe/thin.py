"""Stripe thin events (``v1.*`` event notifications, ``object: "v2.core.event"``).

A thin event carries only ``related_object {id, type, url}``: the object's current state is
fetched and wrapped as the snapshot event of the same type (``v1.charge.refunded`` ->
``charge.refunded`` with the fetched charge as ``data.object``), which ``events.parse`` then
reads like any snapshot. Its id stays the thin event's id (dedupe), its time the thin event's
``created`` (an RFC 3339 string, unlike a snapshot's unix seconds). Thin types whose snapshot
type the bridge does not handle are left as they are (the parser ignores them).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Optional

from bridge.providers.payload_errors import PayloadError

THIN_OBJECT = "v2.core.event"

# related_object.type -> the snapshot's data.object "object" value (they are the same names).
FETCHABLE = frozenset({"charge", "payment_intent", "checkout.session", "invoice", "invoice_payment",
                       "refund", "dispute", "subscription", "radar.early_fraud_warning", "payout"})


def is_thin(doc: dict) -> bool:
    return isinstance(doc, dict) and doc.get("object") == THIN_OBJECT


def created_at(doc: dict) -> Optional[datetime]:
    """A thin event's ``created`` (RFC 3339), None when absent or unreadable."""
    raw = doc.get("created")
    if not isinstance(raw, str):
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def snapshot_type(doc: dict, handled: frozenset) -> Optional[str]:
    """The snapshot type a thin event stands for, when the bridge handles it."""
    event_type = doc.get("type")
    if not isinstance(event_type, str) or not event_type.startswith("v1."):
        return None
    base = event_type[3:]
    return base if base in handled else None


def expand(doc: dict, handled: frozenset, fetch: Callable[[str, str], dict]) -> dict:
    """The snapshot event a handled thin event stands for (``fetch(type, id)`` gets the object
    from the API); any other document unchanged. Raises PayloadError for a thin event whose
    ``related_object`` or ``created`` cannot be read."""
    if not is_thin(doc):
        return doc
    base = snapshot_type(doc, handled)
    if base is None:
        return doc
    related = doc.get("related_object")
    if not isinstance(related, dict):
        raise PayloadError("related_object", "missing or not an object")
    kind, obj_id = related.get("type"), related.get("id")
    if kind not in FETCHABLE:
        raise PayloadError("related_object.type", f"cannot fetch a {kind!r}")
    if not isinstance(obj_id, str) or not obj_id:
        raise PayloadError("related_object.id", "missing or not a string")
    created = created_at(doc)
    if created is None:
        raise PayloadError("created", "missing or not an RFC 3339 time")
    obj = fetch(kind, obj_id)
    return {"id": doc.get("id"), "object": "event", "type": base, "created": int(created.timestamp()),
            "livemode": bool(doc.get("livemode")), "data": {"object": obj},
            "thin": {"type": doc.get("type"), "related_object": related}}
