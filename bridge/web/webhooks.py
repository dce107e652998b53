"""``POST /webhooks/<provider>`` (``stripe``, ``paddle``: the registry's names): verify, store, answer.

Nothing else happens inside the request (architecture.md): the raw bytes are verified, the
envelope's id and type are read, the delivery and its job are committed, and only then 200.
No SDK object is built here (performance.md: that alone costs more than the rest).

``receive`` is the whole decision, free of any web framework. It is served two ways: by
``IntakeFastPath``, a WSGI middleware that answers the ordinary delivery (a POST with a JSON
content type and a Content-Length within the limit) without Flask's request machinery, which
costs more CPU than verifying and storing the event; and by the Flask views below, which see
every other request (no or oversized Content-Length, chunked bodies, wrong content type) and
answer them with Flask's own 405/413/415 handling. Both give the same answers. What is
provider-specific (the signature header and scheme, where the envelope keeps the event's id,
type and time) is asked of the ``Provider`` (``bridge.providers.base``).
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Optional

from flask import Blueprint, Response, abort, current_app, request
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import RequestEntityTooLarge

from bridge.ledger.inbox import Delivery
from bridge.providers.base import Provider
from bridge.providers.signatures import SignatureError
from bridge.runtime import Runtime
from bridge.web.errors import error_response

log = logging.getLogger("bridge.webhooks")

bp = Blueprint("webhooks", __name__)


def _environ_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


# Headers kept with the raw body: enough to re-verify or audit a delivery later, with the
# WSGI environ key each arrives under (both intake routes read them from the environ). Every
# provider's signature header is kept, as before, whichever route a delivery came by.
def _kept_headers(providers) -> tuple[tuple[str, str], ...]:
    return (("Content-Type", "CONTENT_TYPE"), ("User-Agent", "HTTP_USER_AGENT"),
            *((p.signature_header, _environ_key(p.signature_header)) for p in providers.values()))


_STORED = json.dumps({"received": True, "duplicate": False}).encode()
_DUPLICATE = json.dumps({"received": True, "duplicate": True}).encode()


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict = field(default_factory=dict)
    outcome: str = "stored"  # stored | duplicate | the error code (the metrics' outcome)


def _error(status: int, code: str, message: str, headers: Optional[dict] = None) -> Answer:
    return Answer(status, json.dumps({"error": {"code": code, "message": message}}).encode(),
                  headers or {}, code)


_STORED_ANSWER = Answer(200, _STORED, {}, "stored")
_DUPLICATE_ANSWER = Answer(200, _DUPLICATE, {}, "duplicate")


def _not_configured(provider: Provider) -> Answer:
    # Fail closed: an unconfigured provider is never accepted unverified.
    return _error(503, "webhook_secret_missing",
                  f"{provider.name} webhooks are not configured on this bridge")


def receive(rt: Runtime, provider: Provider, body: bytes, environ: dict) -> Answer:
    """Verify and store one delivery whose body is already read (content type checked)."""
    if not provider.webhooks_configured:
        return _not_configured(provider)
    try:
        provider.verify(body, environ.get(_environ_key(provider.signature_header)), now=rt.wall())
    except SignatureError as err:
        log.info("%s webhook rejected: %s", provider.name, err.reason)
        return _error(400, "invalid_signature", err.reason)
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return _error(400, "invalid_json", "the body is not valid JSON")
    if not isinstance(doc, dict):
        return _error(400, "invalid_event", "the body is not a JSON object")
    env = provider.envelope(doc)
    event_id, event_type, occurred_at = env.event_id, env.event_type, env.occurred_at
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        return _error(400, "invalid_event", "the event has no id")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 128:
        return _error(400, "invalid_event", "the event has no type")
    headers = {h: environ[k] for h, k in _kept_headers(rt.providers) if k in environ}
    delivery = Delivery(provider.name, event_id, event_type, body, headers, occurred_at)
    try:
        new = rt.inbox.store(delivery, rt.clock())
    except DBAPIError as err:
        log.warning("%s event %s not stored: database unavailable (%s)", provider.name, event_id,
                    type(err.orig).__name__)
        return _error(503, "database_unavailable", "the event could not be stored; retry",
                      {"Retry-After": "5"})
    log.info("%s event %s %s (%s)", provider.name, event_id, "stored" if new else "duplicate", event_type,
             extra={"event_id": event_id})
    return _STORED_ANSWER if new else _DUPLICATE_ANSWER


class IntakeFastPath:
    """WSGI middleware (``app.wsgi_app = IntakeFastPath(app.wsgi_app, rt)``) answering ordinary
    webhook deliveries itself; anything else goes on to Flask."""

    def __init__(self, wsgi_app, rt: Runtime):
        self.wsgi_app = wsgi_app
        self.rt = rt
        self.limit = rt.settings.max_body_bytes
        self.metrics = rt.metrics
        self.paths = {f"/webhooks/{name}": p for name, p in rt.providers.items()}

    def __call__(self, environ, start_response):
        provider = self.paths.get(environ.get("PATH_INFO", ""))
        if provider is None or environ.get("REQUEST_METHOD") != "POST":
            return self.wsgi_app(environ, start_response)
        length = environ.get("CONTENT_LENGTH", "")
        ctype = environ.get("CONTENT_TYPE", "")
        if (not length.isdigit() or int(length) > self.limit
                or ctype.split(";", 1)[0].strip().lower() != "application/json"
                or "HTTP_TRANSFER_ENCODING" in environ):
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        try:
            body = _read_exactly(environ["wsgi.input"], int(length))
            if body is None:
                answer = _error(400, "bad_request", "the body is shorter than its Content-Length")
            else:
                answer = receive(self.rt, provider, body, environ)
        except Exception:  # a bug: the same JSON 500 Flask's handler gives, never a bare page
            log.exception("unhandled error in webhook intake")
            answer = _error(500, "internal_error", "internal error")
        self.metrics.intake(provider.name, answer.outcome, answer.status, time.perf_counter() - started)
        start_response(_STATUS[answer.status], [
            ("Content-Type", "application/json"), ("Content-Length", str(len(answer.body))),
            *answer.headers.items()])
        return [answer.body]


_STATUS = {200: "200 OK", 400: "400 BAD REQUEST", 500: "500 INTERNAL SERVER ERROR",
           503: "503 SERVICE UNAVAILABLE"}


def _read_exactly(stream, n: int) -> Optional[bytes]:
    chunks, left = [], n
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


@bp.post("/webhooks/<name>")
def provider_webhook(name: str):
    return _flask_receive(name)


def _flask_receive(name: str):
    rt = current_app.extensions["bridge"]
    if name not in rt.providers:
        abort(404)
    provider = rt.providers[name]
    started = time.perf_counter()
    if not provider.webhooks_configured:
        answer = _not_configured(provider)
    elif request.mimetype != "application/json":
        rt.metrics.intake(name, "unsupported_media_type", 415, time.perf_counter() - started)
        return error_response(415, "unsupported_media_type", "the body must be application/json")
    else:
        try:
            body = request.get_data(cache=False)  # MAX_CONTENT_LENGTH turns an oversized body into 413
        except RequestEntityTooLarge:
            rt.metrics.intake(name, "payload_too_large", 413, time.perf_counter() - started)
            raise
        answer = receive(rt, provider, body, request.environ)
    rt.metrics.intake(name, answer.outcome, answer.status, time.perf_counter() - started)
    return _as_response(answer)


def _as_response(answer: Answer) -> Response:
    return Response(answer.body, answer.status, answer.headers, mimetype="application/json")
