"""The files in ``examples/`` do what the README says: each is posted and its answer checked,
the payment in between sent by the same signed sample ``bridge webhooks send-sample`` posts."""
from __future__ import annotations

import json
import time

from bridge.fakes.samples import paddle_sample, signed, stripe_sample
from bridge.settings import PROJECT_ROOT
from tests.conftest import PADDLE_SECRET, STRIPE_SECRET
from tests.support.api import auth, token

EXAMPLES = PROJECT_ROOT / "examples"


def _load(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def test_order_payment_and_refund_request_examples(client, runtime, worker):
    tok = auth(token(runtime, "orders:write", "refunds:write", "read"))
    order = client.post("/api/v1/orders", json=_load("order.json"), headers=tok)
    assert order.status_code == 201, order.json
    assert order.json["order_id"] == "ord_1001" and order.json["status"] == "awaiting_payment"
    now = int(time.time())
    body, headers = signed("stripe", stripe_sample("ord_1001", 4900, "USD", 172, now), STRIPE_SECRET, now)
    assert client.post("/webhooks/stripe", data=body, headers=headers).status_code == 200
    worker.drain()
    paid = client.get("/api/v1/orders/ord_1001", headers=tok).json
    assert paid["status"] == "paid" and paid["payments"][0]["fee"] == 172, paid
    quote = client.post("/api/v1/refund-quotes", json=_load("refund-request.json"), headers=tok)
    assert quote.status_code == 200, quote.json
    assert (quote.json["outcome"], quote.json["refund_amount"]) == ("approved", 4728)
    assert client.get("/api/v1/orders/ord_1001", headers=tok).json["refund_requests"] == []   # nothing stored
    rr = client.post("/api/v1/refund-requests", json=_load("refund-request.json"), headers=tok)
    assert rr.status_code == 201, rr.json
    decision = rr.json["decision"]
    # software-mor: within 30 days, a license is refunded less the processing fee.
    assert (rr.json["status"], decision["refund_amount"], decision["fee_deducted"]) == ("approved", 4728, 172)
    assert decision["clauses"] and decision["explanation"]
    again = client.get(f"/api/v1/refund-requests/{rr.json['id']}", headers=tok)
    assert again.status_code == 200 and again.json["decision"]["refund_amount"] == 4728


def test_policy_evaluation_example(client, runtime):
    tok = auth(token(runtime, "read"))
    r = client.post("/api/v1/policies/software-mor/evaluate", json=_load("policy-evaluation.json"), headers=tok)
    assert r.status_code == 200, r.json
    assert (r.json["outcome"], r.json["refund_amount"], r.json["fee_deducted"]) == ("approved", 4728, 172)


def test_paddle_sample_is_accepted_and_books_the_payment(client, runtime, worker):
    tok = auth(token(runtime, "orders:write", "read"))
    assert client.post("/api/v1/orders", json=_load("order.json"), headers=tok).status_code == 201
    now = int(time.time())
    body, headers = signed("paddle", paddle_sample("ord_1001", 4900, "USD", 245, now), PADDLE_SECRET, now)
    assert client.post("/webhooks/paddle", data=body, headers=headers).status_code == 200
    worker.drain()
    paid = client.get("/api/v1/orders/ord_1001", headers=tok).json
    assert paid["status"] == "paid" and paid["payments"][0]["fee"] == 245, paid


def test_send_sample_verb_posts_a_verified_event(app, runtime, worker, capsys):
    from bridge.cli import main
    from tests.support.harness import ServedApp
    served = ServedApp(app)
    try:
        tok = auth(token(runtime, "orders:write", "read"))
        assert app.test_client().post("/api/v1/orders", json=_load("order.json"), headers=tok).status_code == 201
        code = main(["webhooks", "send-sample", "stripe", "--url", served.url, "--order", "ord_1001",
                     "--secret", STRIPE_SECRET])
        out = capsys.readouterr().out
        assert code == 0 and "HTTP 200" in out, out
        assert main(["webhooks", "send-sample", "stripe", "--url", served.url, "--order", "ord_1001",
                     "--secret", "whsec_wrong"]) == 1   # a wrong secret is refused by the bridge
        assert "HTTP 400" in capsys.readouterr().out
    finally:
        served.stop()
    worker.drain()
    paid = app.test_client().get("/api/v1/orders/ord_1001", headers=tok).json
    assert paid["status"] == "paid" and paid["payments"][0]["amount"] == 4900
