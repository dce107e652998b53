"""What both fake providers share: the HTTP server thread, the fault knobs, the call log, the
effects ledger and webhook sending.

A fake is a Flask app served by ``werkzeug.serving.make_server`` in a daemon thread on
127.0.0.1 (a given port, or a free one). Tests drive it through plain methods:

- ``fake.faults.script(Fault.http(503), Fault.rate_limit(1), None, ...)``: the next matching
  calls get these faults, in order (``None`` = answer normally); ``fake.faults.randomize({...})``:
  each matching call draws a fault from a seeded RNG, so a run is reproducible from its seed.
  A rule matches by method (default ``POST``) and path prefix (default: every path).
- Faults: an HTTP error (``500/502/503``; ``429`` with ``Retry-After``), ``timeout`` (hold the
  request past the client's timeout, then drop the connection: not applied), ``reset`` (drop
  the connection without answering: not applied), ``applied_lost`` (apply the request, then drop
  the connection), ``applied_error`` (apply, then answer an error instead of the result).
- ``fake.calls``: every request received (method, path, query, monotonic and wall time,
  Idempotency-Key, the fault it got, the status answered or None when dropped).
- ``fake.applied``: every refund the fake actually created, one entry each.
- ``fake.send_webhook(payload, url, secret)`` signs like the provider and POSTs the raw bytes;
  with ``webhook_url``/``webhook_secret`` set, the fake emits its own refund events, in order,
  from a background sender (``fake.wait_webhooks()`` waits until they are out).
- The book: every event the fake emits is kept in ``fake.events`` (what its Events list
  serves), whether or not its webhook went out. ``fake.drop_webhooks(0.1, seed=7)`` leaves
  that fraction of webhooks undelivered (seeded, so a run is reproducible); ``fake.dropped``
  names them. The fake has its own clock (``fake.time()``, ticking; ``fake.set_time(ts)``,
  ``fake.advance(seconds)``): "history older than 30 days" is made by moving it.
"""
from __future__ import annotations

import json
import math
import random
import socket
import string
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional

import requests
from flask import Flask, Response, g, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

_DROP = "bridge.fake.drop"


@dataclass(frozen=True)
class Fault:
    """One injected failure. Build with the constructors below."""
    kind: str                        # http | timeout | reset | applied_lost | applied_error
    status: int = 500
    retry_after: Optional[float | str] = None  # a number is sent as whole seconds (rounded up)
    saved: bool = False              # Stripe: store the error under the Idempotency-Key (replayed)

    @staticmethod
    def http(status: int = 500, *, saved: bool = False) -> "Fault":
        return Fault("http", status=status, saved=saved)

    @staticmethod
    def rate_limit(retry_after: float | str = 1) -> "Fault":
        """429 with ``Retry-After``: a number of seconds (sent as an integer, as HTTP wants),
        or a raw header value (e.g. ``"0.5"`` or an HTTP date) to test a client's parsing."""
        return Fault("http", status=429, retry_after=retry_after)

    @property
    def retry_after_header(self) -> Optional[dict[str, str]]:
        if self.retry_after is None:
            return None
        if isinstance(self.retry_after, str):
            return {"Retry-After": self.retry_after}
        return {"Retry-After": str(math.ceil(self.retry_after))}

    @staticmethod
    def timeout() -> "Fault":
        return Fault("timeout")

    @staticmethod
    def reset() -> "Fault":
        return Fault("reset")

    @staticmethod
    def applied_lost() -> "Fault":
        return Fault("applied_lost")

    @staticmethod
    def applied_error(status: int = 500) -> "Fault":
        return Fault("applied_error", status=status)

    @property
    def applies_request(self) -> bool:
        """Whether the request is processed (and its effect kept) despite the fault."""
        return self.kind in ("applied_lost", "applied_error")

    @property
    def label(self) -> str:
        if self.kind == "http":
            return f"http_{self.status}" + (f"_ra{self.retry_after}" if self.retry_after is not None else "")
        if self.kind == "applied_error":
            return f"applied_error_{self.status}"
        return self.kind


@dataclass
class _Rule:
    method: Optional[str]
    path: Optional[str]
    queue: Optional[deque] = None
    weights: Optional[list[tuple[Fault, float]]] = None
    rng: Optional[random.Random] = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and _under(path, self.path)


def _under(path: str, prefix: Optional[str]) -> bool:
    """``path`` is ``prefix`` or below it (no prefix: every path)."""
    return prefix is None or path == prefix or path.startswith(prefix.rstrip("/") + "/")


class FaultPlan:
    """Which calls fail, and how. Scripted rules are consumed first-come; random rules keep
    drawing from their own seeded RNG."""

    def __init__(self, seed: int = 0):
        self._seed = seed
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []

    def script(self, *faults: Optional[Fault], method: Optional[str] = "POST",
               path: Optional[str] = None) -> None:
        """The next calls matching ``method``/``path`` get ``faults`` in order (None: no fault)."""
        with self._lock:
            self._rules.append(_Rule(method, path, queue=deque(faults)))

    def randomize(self, weights: Mapping[Fault, float], *, method: Optional[str] = "POST",
                  path: Optional[str] = None, seed: Optional[int] = None) -> None:
        """Each matching call gets fault F with probability ``weights[F]`` (sum <= 1)."""
        total = sum(weights.values())
        if total > 1.0 + 1e-9 or any(p < 0 for p in weights.values()):
            raise ValueError("fault probabilities must be >= 0 and sum to at most 1")
        with self._lock:
            self._rules.append(_Rule(method, path, weights=list(weights.items()),
                                     rng=random.Random(self._seed if seed is None else seed)))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def pending(self) -> int:
        """Scripted faults not yet consumed."""
        with self._lock:
            return sum(len(r.queue) for r in self._rules if r.queue is not None)

    def draw(self, method: str, path: str) -> Optional[Fault]:
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                if rule.queue is not None:
                    if rule.queue:
                        return rule.queue.popleft()
                    continue
                assert rule.weights is not None and rule.rng is not None
                x = rule.rng.random()
                for fault, p in rule.weights:
                    if x < p:
                        return fault
                    x -= p
                return None
            return None


@dataclass
class CallRecord:
    seq: int
    method: str
    path: str
    query: str
    at: float                        # time.monotonic() when the request arrived
    wall: float                      # time.time() when the request arrived
    idempotency_key: Optional[str]
    fault: Optional[str] = None      # Fault.label, when one was injected
    status: Optional[int] = None     # status answered; None when the connection was dropped
    body: bytes = b""


@dataclass(frozen=True)
class AppliedRefund:
    """One refund the fake actually created (whatever the client was told)."""
    refund_id: str
    payment_id: str                  # charge / transaction id
    amount: int
    currency: str
    at: float                        # time.monotonic()
    idempotency_key: Optional[str] = None
    reason: Optional[str] = None


@dataclass
class WebhookDelivery:
    event_id: str
    event_type: str
    url: str
    status: Optional[int]
    error: Optional[str] = None
    at: float = field(default_factory=time.monotonic)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: Any = "-", size: Any = "-") -> None:  # no access log
        pass


def _drop_connection(environ: Mapping[str, Any]) -> None:
    """End the TCP connection without an HTTP answer (RST once the handler closes it)."""
    sock: Optional[socket.socket] = environ.get("werkzeug.socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class FakeProviderServer:
    """Base of the fakes: server lifecycle, faults, call log, ledger, webhooks."""

    name = "fake"
    signature_header = ""

    def __init__(self, *, port: int = 0, seed: int = 0, api_key: Optional[str] = None,
                 webhook_url: Optional[str] = None, webhook_secret: Optional[str] = None,
                 hang_seconds: float = 2.0, clock: Optional[Callable[[], float]] = None):
        self.port = port
        # The provider's own clock (unix seconds) for the times it writes on its objects and
        # events; tests pass a fixed one so nothing depends on today's date. Signatures are
        # always made at the real time (the bridge checks their age against its own clock).
        self.clock = clock or time.time
        self.seed = seed
        self.api_key = api_key                 # None: any bearer token is accepted
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.hang_seconds = hang_seconds       # how long a ``timeout`` fault holds a request
        self.faults = FaultPlan(seed)
        self.rng = random.Random(seed)         # ids
        self.lock = threading.RLock()
        self.calls: list[CallRecord] = []
        self.applied: list[AppliedRefund] = []
        self.webhooks: list[WebhookDelivery] = []
        self._stopping = threading.Event()
        self._server: Optional[BaseWSGIServer] = None
        self._thread: Optional[threading.Thread] = None
        self._outbox: deque = deque()
        self._outbox_cv = threading.Condition()
        self._outbox_busy = 0
        self._sender: Optional[threading.Thread] = None
        self.events: list[dict] = []           # the book of events, oldest first
        self.dropped: list[str] = []           # ids of events whose webhook was never sent
        self._drop_rate = 0.0
        self._drop_rng = random.Random(seed)
        self._clock_offset = 0.0
        self.app = self._build_app()

    # --- the fake's clock ------------------------------------------------------------------

    def time(self) -> float:
        """The provider's "now" (unix seconds): the real clock moved by ``set_time``/``advance``."""
        return self.clock() + self._clock_offset

    def set_time(self, ts: float) -> None:
        """From now on the fake's clock reads ``ts`` (and keeps ticking)."""
        self._clock_offset = ts - self.clock()

    def advance(self, seconds: float) -> None:
        self._clock_offset += seconds

    def drop_webhooks(self, fraction: float, *, seed: int = 0) -> None:
        """Never deliver that fraction of the webhooks emitted from now on (seeded draw)."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        self._drop_rate = fraction
        self._drop_rng = random.Random(seed)

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> "FakeProviderServer":
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = make_server("127.0.0.1", self.port, self._wsgi, threaded=True,
                                   request_handler=_QuietHandler)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name=f"{self.name}-fake", daemon=True)
        self._thread.start()
        self._sender = threading.Thread(target=self._send_loop, name=f"{self.name}-webhooks",
                                        daemon=True)
        self._sender.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._outbox_cv:
            self._outbox_cv.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._sender is not None:
            self._sender.join(timeout=5)
            self._sender = None

    def __enter__(self) -> "FakeProviderServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not started")
        return f"http://127.0.0.1:{self.port}"

    # --- introspection ---------------------------------------------------------------------

    def calls_to(self, method: Optional[str] = None, path: Optional[str] = None) -> list[CallRecord]:
        """Calls received, optionally only of one method and path prefix."""
        with self.lock:
            return [c for c in self.calls
                    if (method is None or c.method == method) and _under(c.path, path)]

    def new_id(self, prefix: str, length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
        with self.lock:
            return prefix + "".join(self.rng.choice(alphabet) for _ in range(length))

    # --- the app ---------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask(f"{self.name}_fake")
        app.before_request(self._before)
        app.after_request(self._after)
        self._routes(app)
        return app

    def _routes(self, app: Flask) -> None:
        raise NotImplementedError

    def _error(self, status: int, code: Optional[str], message: str, *,
               headers: Optional[Mapping[str, str]] = None, **extra: Any) -> Response:
        """An error in the provider's own body shape."""
        raise NotImplementedError

    def _fault_response(self, fault: Fault) -> Response:
        raise NotImplementedError

    def _auth_ok(self) -> bool:
        if self.api_key is None:
            return request.headers.get("Authorization", "").startswith("Bearer ")
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    def _auth_error(self) -> Response:
        raise NotImplementedError

    def json_response(self, body: Any, status: int = 200,
                      headers: Optional[Mapping[str, str]] = None) -> Response:
        return Response(json.dumps(body), status=status, headers=dict(headers or {}),
                        mimetype="application/json")

    def _wsgi(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        body = self.app(environ, start_response)
        if environ.get(_DROP):
            if hasattr(body, "close"):
                body.close()
            _drop_connection(environ)
            return [b""]  # werkzeug's write now fails with a ConnectionError and gives up quietly
        return body

    def _before(self) -> Optional[Response]:
        body = request.get_data(cache=True)
        with self.lock:
            record = CallRecord(seq=len(self.calls) + 1, method=request.method, path=request.path,
                                query=request.query_string.decode("latin-1"), at=time.monotonic(),
                                wall=time.time(),
                                idempotency_key=request.headers.get("Idempotency-Key"), body=body)
            self.calls.append(record)
        g.call = record
        fault = self.faults.draw(request.method, request.path)
        g.fault = fault
        if fault is not None:
            record.fault = fault.label
            if fault.kind == "timeout":
                self._stopping.wait(self.hang_seconds)
                request.environ[_DROP] = True
                return Response(status=504)
            if fault.kind == "reset":
                request.environ[_DROP] = True
                return Response(status=502)
            if fault.kind == "http":
                return self._fault_response(fault)
        if not self._auth_ok():
            return self._auth_error()
        return None

    def _after(self, response: Response) -> Response:
        fault: Optional[Fault] = g.get("fault")
        if fault is not None and fault.applies_request:
            if fault.kind == "applied_lost":
                request.environ[_DROP] = True
            else:
                response = self._fault_response(Fault.http(fault.status))
        record: Optional[CallRecord] = g.get("call")
        if record is not None:
            record.status = None if request.environ.get(_DROP) else response.status_code
        return response

    # --- webhooks --------------------------------------------------------------------------

    def sign(self, body: bytes, secret: str, timestamp: int) -> str:
        raise NotImplementedError

    def send_webhook(self, payload: Mapping[str, Any], url: Optional[str] = None,
                     secret: Optional[str] = None, *, timestamp: Optional[int] = None,
                     timeout: float = 10.0) -> int:
        """Sign ``payload`` like the provider and POST the raw bytes; returns the HTTP status."""
        url = url or self.webhook_url
        secret = secret or self.webhook_secret
        if not url or not secret:
            raise ValueError("send_webhook needs a url and a secret")
        body = json.dumps(payload, separators=(",", ":")).encode()
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {"Content-Type": "application/json", self.signature_header: self.sign(body, secret, ts)}
        response = requests.post(url, data=body, headers=headers, timeout=timeout)
        return response.status_code

    def emit(self, payload: Mapping[str, Any]) -> None:
        """Keep the event in the book, and queue it for the configured webhook URL (unless
        none is configured, or the drop knob draws it)."""
        with self.lock:
            self.events.append(json.loads(json.dumps(payload)))
            if self._drop_rate and self._drop_rng.random() < self._drop_rate:
                self.dropped.append(self._event_id_type(payload)[0])
                return
        if not self.webhook_url or not self.webhook_secret:
            return
        with self._outbox_cv:
            self._outbox.append(payload)
            self._outbox_cv.notify_all()

    def wait_webhooks(self, timeout: float = 10.0) -> bool:
        """Wait until every emitted event has been sent (or failed); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._outbox_cv:
            while self._outbox or self._outbox_busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._outbox_cv.wait(left)
        return True

    def _event_id_type(self, payload: Mapping[str, Any]) -> tuple[str, str]:
        raise NotImplementedError

    def _send_loop(self) -> None:
        while True:
            with self._outbox_cv:
                while not self._outbox and not self._stopping.is_set():
                    self._outbox_cv.wait()
                if self._stopping.is_set():
                    return
                payload = self._outbox.popleft()
                self._outbox_busy += 1
            event_id, event_type = self._event_id_type(payload)
            url = self.webhook_url or ""
            try:
                status = self.send_webhook(payload)
                delivery = WebhookDelivery(event_id, event_type, url, status)
            except requests.RequestException as exc:
                delivery = WebhookDelivery(event_id, event_type, url, None, error=type(exc).__name__)
            with self._outbox_cv:
                self.webhooks.append(delivery)
                self._outbox_busy -= 1
                self._outbox_cv.notify_all()
