"""The fake providers themselves: raw HTTP behaviour, fault plans, signed webhooks."""
from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

import pytest
import requests
import stripe
from flask import Flask, request
from paddle_billing.Entities.Notifications import NotificationEvent
from paddle_billing.Notifications import Secret, Verifier
from werkzeug.serving import make_server

from bridge.fakes import FakePaddle, FakeStripe, Fault, FaultPlan
from bridge.providers.paddle.signature import verify_paddle
from bridge.providers.stripe.signature import verify_stripe

STRIPE_SECRET = "whsec_test_fake"
PADDLE_SECRET = "pdl_ntfset_test_fake"
AUTH = {"Authorization": "Bearer sk_test_fake"}


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records the raw deliveries."""

    def __init__(self):
        self.got: list[tuple[dict, bytes]] = []
        self.arrived = threading.Condition()
        app = Flask("receiver")

        @app.post("/hook")
        def hook():
            with self.arrived:
                self.got.append((dict(request.headers), request.get_data()))
                self.arrived.notify_all()
            return "", 200

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def events(self):
        return [json.loads(body) for _, body in self.got]


@pytest.fixture
def receiver():
    rx = Receiver()
    yield rx
    rx.stop()


def post_refund(fake, key=None, **form):
    headers = dict(AUTH, **({"Idempotency-Key": key} if key else {}))
    return requests.post(f"{fake.url}/v1/refunds", data=form, headers=headers, timeout=5)


# --- Stripe fake: idempotency as Stripe documents it -------------------------------------------

@pytest.fixture
def stripe_fake():
    with FakeStripe(seed=3) as fake:
        fake.add_charge("ch_1", "pi_1", amount=1000, currency="eur", fee=59)
        yield fake


def test_stripe_fake_replays_errors_for_the_same_key(stripe_fake):
    first = post_refund(stripe_fake, key="k1", charge="ch_1", amount="5000")
    again = post_refund(stripe_fake, key="k1", charge="ch_1", amount="5000")
    assert first.status_code == again.status_code == 400
    assert first.json()["error"]["code"] == "amount_too_large"
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    other = post_refund(stripe_fake, key="k1", charge="ch_1", amount="500")
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    assert stripe_fake.applied == []


def test_stripe_fake_does_not_save_validation_errors(stripe_fake):
    bad = post_refund(stripe_fake, key="k2", charge="ch_1", amount="100", reason="because")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "reason"
    good = post_refund(stripe_fake, key="k2", charge="ch_1", amount="100")
    assert good.status_code == 200 and good.json()["object"] == "refund"


def test_stripe_fake_saved_500_is_replayed(stripe_fake):
    stripe_fake.faults.script(Fault.http(500, saved=True))
    assert post_refund(stripe_fake, key="k3", charge="ch_1").status_code == 500
    replay = post_refund(stripe_fake, key="k3", charge="ch_1")
    assert replay.status_code == 500 and replay.headers["Idempotent-Replayed"] == "true"
    assert post_refund(stripe_fake, key="k4", charge="ch_1").status_code == 200


def test_stripe_fake_shapes_and_listing(stripe_fake):
    made = [post_refund(stripe_fake, key=f"k{n}", charge="ch_1", amount="100",
                        **{"metadata[order_id]": "ord_1"}).json() for n in range(3)]
    assert made[0]["metadata"] == {"order_id": "ord_1"} and made[0]["currency"] == "eur"
    page = requests.get(f"{stripe_fake.url}/v1/refunds", params={"charge": "ch_1", "limit": 2},
                        headers=AUTH, timeout=5).json()
    assert page["has_more"] and [r["id"] for r in page["data"]] == [made[2]["id"], made[1]["id"]]
    rest = requests.get(f"{stripe_fake.url}/v1/refunds",
                        params={"charge": "ch_1", "starting_after": made[1]["id"]},
                        headers=AUTH, timeout=5).json()
    assert [r["id"] for r in rest["data"]] == [made[0]["id"]] and not rest["has_more"]
    charge = requests.get(f"{stripe_fake.url}/v1/charges/ch_1",
                          params={"expand[0]": "balance_transaction"}, headers=AUTH, timeout=5).json()
    assert charge["amount_refunded"] == 300 and charge["refunded"] is False
    assert charge["balance_transaction"]["fee"] == 59
    assert requests.get(f"{stripe_fake.url}/v1/refunds", headers={}, timeout=5).status_code == 401


# --- fault plans ------------------------------------------------------------------------------

def test_fault_plan_scripts_match_method_and_path():
    plan = FaultPlan()
    plan.script(Fault.http(503), None, Fault.reset(), method="POST", path="/v1/refunds")
    assert plan.draw("GET", "/v1/refunds") is None
    assert plan.draw("POST", "/v1/charges") is None
    assert plan.draw("POST", "/v1/refunds") == Fault.http(503)
    assert plan.draw("POST", "/v1/refunds") is None
    assert plan.pending() == 1
    assert plan.draw("POST", "/v1/refunds/re_1/cancel") == Fault.reset()
    assert plan.draw("POST", "/v1/refunds") is None and plan.pending() == 0


def test_fault_plan_random_draws_are_reproducible():
    weights = {Fault.http(500): 0.2, Fault.timeout(): 0.1, Fault.applied_lost(): 0.05}
    runs = []
    for _ in range(2):
        plan = FaultPlan(seed=42)
        plan.randomize(weights, method=None)
        runs.append([plan.draw("POST", "/adjustments") for _ in range(200)])
    assert runs[0] == runs[1]
    hits = [f for f in runs[0] if f is not None]
    assert 40 <= len(hits) <= 100 and {f.kind for f in hits} == {"http", "timeout", "applied_lost"}
    with pytest.raises(ValueError):
        FaultPlan().randomize({Fault.http(500): 0.7, Fault.reset(): 0.5})


def test_dropped_connections_look_like_resets_to_a_client(stripe_fake):
    stripe_fake.faults.script(Fault.reset(), Fault.applied_lost())
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            post_refund(stripe_fake, key="k-drop", charge="ch_1", amount="100")
    assert [c.status for c in stripe_fake.calls] == [None, None]
    assert len(stripe_fake.applied) == 1  # only applied_lost applied it


# --- webhooks ---------------------------------------------------------------------------------

def test_send_webhook_signs_like_stripe(receiver):
    fake = FakeStripe()
    event = {"id": "evt_1", "object": "event", "type": "charge.refunded", "data": {"object": {}}}
    assert fake.send_webhook(event, receiver.url, STRIPE_SECRET) == 200
    [(headers, body)] = receiver.got
    parsed = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], STRIPE_SECRET)
    assert parsed.id == "evt_1"
    verify_stripe(body, headers["Stripe-Signature"], [STRIPE_SECRET], now=time.time())


def test_send_webhook_signs_like_paddle(receiver):
    fake = FakePaddle()
    event = {"event_id": "evt_01", "event_type": "adjustment.updated", "data": {}}
    assert fake.send_webhook(event, receiver.url, PADDLE_SECRET) == 200
    [(headers, body)] = receiver.got
    sdk_request = SimpleNamespace(headers=headers, body=body)
    assert Verifier().verify(sdk_request, Secret(PADDLE_SECRET)) is True
    verify_paddle(body, headers["Paddle-Signature"], [PADDLE_SECRET], now=time.time())


def test_stripe_fake_emits_refund_events(receiver):
    with FakeStripe(webhook_url=receiver.url, webhook_secret=STRIPE_SECRET) as fake:
        fake.add_charge("ch_1", "pi_1", amount=1000)
        fake.refund_status_on_create = "pending"
        refund = post_refund(fake, key="k1", charge="ch_1", amount="400",
                             reason="requested_by_customer").json()
        fake.settle_refund(refund["id"], "failed")
        assert fake.wait_webhooks(5)
    types = [e["type"] for e in receiver.events()]
    assert types == ["refund.created", "charge.refunded", "refund.updated", "refund.failed"]
    created, charge, updated, _ = receiver.events()
    assert created["api_version"] == "2026-10-28.endive" and created["request"]["idempotency_key"] == "k1"
    assert created["data"]["object"]["status"] == "pending"
    assert charge["data"]["object"]["amount_refunded"] == 400
    assert updated["data"]["object"]["failure_reason"] == "declined"
    assert updated["data"]["previous_attributes"] == {"status": "pending"}
    for headers, body in receiver.got:
        stripe.Webhook.construct_event(body, headers["Stripe-Signature"], STRIPE_SECRET)
    assert [d.status for d in fake.webhooks] == [200] * 4


def test_paddle_fake_emits_adjustment_events(receiver):
    with FakePaddle(webhook_url=receiver.url, webhook_secret=PADDLE_SECRET) as fake:
        fake.add_transaction("txn_1", "GBP", [("txnitm_1", 1200)], fee=80)
        made = requests.post(f"{fake.url}/adjustments", headers=AUTH, timeout=5, json={
            "action": "refund", "type": "full", "transaction_id": "txn_1", "reason": "r"}).json()
        fake.decide(made["data"]["id"], "approved")
        assert fake.wait_webhooks(5)
    created, updated = receiver.events()
    assert (created["event_type"], updated["event_type"]) == ("adjustment.created", "adjustment.updated")
    assert created["data"]["status"] == "pending_approval" and updated["data"]["status"] == "approved"
    assert created["data"]["id"] == updated["data"]["id"] == made["data"]["id"]
    for headers, body in receiver.got:
        sdk_request = SimpleNamespace(headers=headers, body=body)
        assert Verifier().verify(sdk_request, Secret(PADDLE_SECRET)) is True
        event = NotificationEvent.from_request(sdk_request)
        assert type(event.data).__name__ == "Adjustment" and event.data.totals.total == "1200"


def test_paddle_fake_one_pending_refund_and_error_shape():
    with FakePaddle() as fake:
        fake.add_transaction("txn_1", "USD", [("txnitm_1", 1000)])
        body = {"action": "refund", "type": "partial", "transaction_id": "txn_1", "reason": "r",
                "items": [{"item_id": "txnitm_1", "type": "partial", "amount": "100"}]}
        assert requests.post(f"{fake.url}/adjustments", json=body, headers=AUTH, timeout=5).status_code == 201
        second = requests.post(f"{fake.url}/adjustments", json=body, headers=AUTH, timeout=5)
        assert second.status_code == 400
        error = second.json()
        assert error["error"]["code"] == "adjustment_pending_refund_request"
        assert set(error["error"]) >= {"type", "code", "detail", "documentation_url"}
        assert error["meta"]["request_id"]
        assert requests.post(f"{fake.url}/adjustments", json=body, timeout=5).status_code == 403
