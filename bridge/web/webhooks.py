"""``POST /webhooks/stripe`` and ``POST /webhooks/paddle``: verify, store, answer.

Nothing else happens inside the request (architecture.md): the raw bytes are verified, the
envelope's id and type are read, the delivery and its job are committed, and only then 200.
No SDK object is built here (performance.md: that alone costs more than the rest).
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Callable, Optional

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import DBAPIError

from bridge.ledger.inbox import Delivery
from bridge.providers.signatures import SignatureError, verify_paddle, verify_stripe
from bridge.web.errors import error_response

log = logging.getLogger("bridge.webhooks")

bp = Blueprint("webhooks", __name__)

# Headers kept with the raw body: enough to re-verify or audit a delivery later.
_KEPT_HEADERS = ("Content-Type", "User-Agent", "Stripe-Signature", "Paddle-Signature")


def _envelope_stripe(doc: dict) -> tuple[object, object, Optional[datetime]]:
    created = doc.get("created")
    occurred = None
    if isinstance(created, int) and not isinstance(created, bool) and 0 < created < 2**40:
        occurred = datetime.fromtimestamp(created, timezone.utc)
    return doc.get("id"), doc.get("type"), occurred


def _envelope_paddle(doc: dict) -> tuple[object, object, Optional[datetime]]:
    occurred = None
    raw = doc.get("occurred_at")
    if isinstance(raw, str):
        try:
            occurred = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if occurred.tzinfo is None:
                occurred = occurred.replace(tzinfo=timezone.utc)
        except ValueError:
            occurred = None  # the worker reports a malformed payload; intake keeps the bytes
    return doc.get("event_id"), doc.get("event_type"), occurred


def _receive(provider: str, header_name: str, secrets, tolerance: int, verify: Callable,
             envelope: Callable):
    rt = current_app.extensions["bridge"]
    if not secrets:
        # Fail closed: an unconfigured provider is never accepted unverified.
        return error_response(503, "webhook_secret_missing",
                              f"{provider} webhooks are not configured on this bridge")
    mimetype = request.mimetype
    if mimetype != "application/json":
        return error_response(415, "unsupported_media_type", "the body must be application/json")
    body = request.get_data(cache=False)  # MAX_CONTENT_LENGTH turns an oversized body into 413
    try:
        verify(body, request.headers.get(header_name), secrets, now=rt.wall(), tolerance=tolerance)
    except SignatureError as err:
        log.info("%s webhook rejected: %s", provider, err.reason)
        return error_response(400, "invalid_signature", err.reason)
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return error_response(400, "invalid_json", "the body is not valid JSON")
    if not isinstance(doc, dict):
        return error_response(400, "invalid_event", "the body is not a JSON object")
    event_id, event_type, occurred_at = envelope(doc)
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        return error_response(400, "invalid_event", "the event has no id")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 128:
        return error_response(400, "invalid_event", "the event has no type")
    headers = {h: request.headers[h] for h in _KEPT_HEADERS if h in request.headers}
    delivery = Delivery(provider, event_id, event_type, body, headers, occurred_at)
    try:
        new = rt.inbox.store(delivery, rt.clock())
    except DBAPIError as err:
        log.warning("%s event %s not stored: database unavailable (%s)", provider, event_id,
                    type(err.orig).__name__)
        return error_response(503, "database_unavailable", "the event could not be stored; retry",
                              headers={"Retry-After": "5"})
    log.info("%s event %s %s (%s)", provider, event_id, "stored" if new else "duplicate", event_type)
    return jsonify({"received": True, "duplicate": not new})


@bp.post("/webhooks/stripe")
def stripe_webhook():
    s = current_app.extensions["bridge"].settings
    return _receive("stripe", "Stripe-Signature", s.stripe_webhook_secrets,
                    s.stripe_tolerance_seconds, verify_stripe, _envelope_stripe)


@bp.post("/webhooks/paddle")
def paddle_webhook():
    s = current_app.extensions["bridge"].settings
    return _receive("paddle", "Paddle-Signature", s.paddle_webhook_secrets,
                    s.paddle_tolerance_seconds, verify_paddle, _envelope_paddle)
