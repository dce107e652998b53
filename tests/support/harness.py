"""An end-to-end shop: the bridge served over real HTTP (werkzeug, threaded) with a worker
we can drain, the fake providers, and a license-notice receiver that verifies signatures."""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone

import requests
from flask import Flask, request
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from werkzeug.serving import make_server

from bridge.app import create_app
from bridge.ledger.models import Job, LedgerEntry
from bridge.runtime import Runtime
from bridge.worker.handlers import all_handlers
from bridge.worker.runner import Worker
from tests.conftest import PADDLE_SECRET, STRIPE_SECRET
from tests.support.api import auth, token
from tests.support.signing import paddle_headers, stripe_headers


class ServedApp:
    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)


class Receiver:
    """The merchant's app: verifies Standard Webhooks signatures, records webhook-ids, and can
    be told to answer 503 (down)."""

    def __init__(self, secret: str):
        self.secret = secret
        self.verifier = Webhook(secret)
        self.down = False
        self.received: list[dict] = []
        self.bad_signatures = 0
        app = Flask("receiver")

        @app.post("/hooks")
        def hook():
            if self.down:
                return "down", 503
            body = request.get_data()
            # Verified with the Standard Webhooks reference library, not with the bridge's own
            # signer: a mistake shared by signer and checker would pass unnoticed.
            try:
                self.verifier.verify(body, {k.lower(): v for k, v in request.headers.items()})
            except WebhookVerificationError:
                self.bad_signatures += 1
                return "bad signature", 401
            self.received.append({"id": request.headers["webhook-id"], **json.loads(body)})
            return "", 204

        self.served = ServedApp(app)
        self.url = self.served.url + "/hooks"

    def ids(self) -> set[str]:
        return {m["id"] for m in self.received}

    def by_license(self, license_id: str) -> list[str]:
        seen, out = set(), []
        for m in self.received:
            if m["license_id"] == license_id and m["id"] not in seen:
                seen.add(m["id"])
                out.append(m["type"])
        return out


class Shop:
    def __init__(self, settings):
        self.rt = Runtime.build(settings)
        self.app = create_app(runtime=self.rt)
        self.served = ServedApp(self.app)
        self.url = self.served.url
        self.worker = Worker(self.rt, all_handlers(self.rt), worker_id="shop-worker")
        self.token = token(self.rt, "admin")

    def close(self):
        self.served.stop()
        self.rt.engine.dispose()

    # -- providers ------------------------------------------------------------------------
    def stripe(self, payload: dict) -> requests.Response:
        body = json.dumps(payload).encode()
        r = requests.post(self.url + "/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET), timeout=30)
        assert r.status_code == 200, r.text
        return r

    def paddle(self, payload: dict) -> requests.Response:
        body = json.dumps(payload).encode()
        r = requests.post(self.url + "/webhooks/paddle", data=body, headers=paddle_headers(body, PADDLE_SECRET), timeout=30)
        assert r.status_code == 200, r.text
        return r

    def send(self, provider: str, payload: dict):
        return self.stripe(payload) if provider == "stripe" else self.paddle(payload)

    # -- API ------------------------------------------------------------------------------
    def api(self, method: str, path: str, json_body=None, expect=None, headers=None):
        r = requests.request(method, self.url + "/api/v1" + path, json=json_body,
                             headers={**auth(self.token), **(headers or {})}, timeout=30)
        if expect is not None:
            assert r.status_code == expect, (r.status_code, r.text)
        return r

    def order(self, order_id: str) -> dict:
        return self.api("GET", f"/orders/{order_id}", expect=200).json()

    # -- the worker -----------------------------------------------------------------------
    def drain(self, timeout: float = 60.0, until=None) -> None:
        """Run jobs until none is left to run soon (jobs waiting far in the future, like the
        confirmation poll, are left), or ``until()`` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until is not None and until():
                return
            if self.worker.run_once():
                continue
            with self.rt.reads() as s:
                soon = s.scalar(select(func.count()).select_from(Job).where(
                    Job.state.in_(("ready", "running")),
                    Job.run_at < datetime.now(timezone.utc).replace(microsecond=0) + _SOON))
            if not soon and until is None:
                return
            time.sleep(0.02)
        if until is not None:
            raise AssertionError("condition not reached before the timeout")
        raise AssertionError("jobs still pending after the timeout")

    def ledger(self, order_id: str | None = None) -> list[tuple]:
        """The ledger as comparable tuples (kind, amount, currency, occurred_at, provider_ref)."""
        from bridge.ledger.models import Order
        with self.rt.reads() as s:
            q = select(LedgerEntry.kind, LedgerEntry.amount, LedgerEntry.currency, LedgerEntry.occurred_at,
                       LedgerEntry.provider_ref)
            if order_id:
                q = q.join(Order, Order.id == LedgerEntry.order_pk).where(Order.order_id == order_id)
            return sorted(s.execute(q).all())


from datetime import timedelta  # noqa: E402

_SOON = timedelta(seconds=30)
