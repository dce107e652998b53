"""Webhook intake through the Flask app: T10 (forgeries store nothing), T11 (bad bodies are
4xx, never 5xx), duplicates, fail-closed without a secret, 503 when the database is gone.

Deliveries are answered by two routes (bridge/web/webhooks.py): the WSGI fast path for a body
with a Content-Length, and the Flask view for a body without one (chunked); the ``post``
fixture runs the decisive tests through both."""
import io
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import func, select

from bridge.ledger.models import Job, WebhookEvent
from tests.conftest import PADDLE_SECRET, STRIPE_SECRET
from tests.support.signing import paddle_headers, stripe_headers


def stripe_event(event_id="evt_1", type_="charge.succeeded"):
    return {"id": event_id, "object": "event", "type": type_, "created": int(time.time()),
            "api_version": "2026-10-28.endive", "data": {"object": {"id": "ch_1", "amount": 4900}}}


def paddle_event(event_id="evt_01hpaddle", type_="transaction.completed"):
    return {"event_id": event_id, "event_type": type_, "occurred_at": "2026-03-01T10:00:00.123456Z",
            "notification_id": "ntf_01h", "data": {"id": "txn_1"}}


PROVIDERS = {
    "stripe": ("/webhooks/stripe", stripe_event, lambda b, **k: stripe_headers(b, STRIPE_SECRET, **k),
               "Stripe-Signature", STRIPE_SECRET),
    "paddle": ("/webhooks/paddle", paddle_event, lambda b, **k: paddle_headers(b, PADDLE_SECRET, **k),
               "Paddle-Signature", PADDLE_SECRET),
}


@pytest.fixture(params=sorted(PROVIDERS))
def prov(request):
    return PROVIDERS[request.param]


@pytest.fixture(params=["fast", "flask"])
def post(request, client):
    """``post(path, body, headers)`` through one of the two intake routes."""
    def fast(path, body, headers):
        return client.post(path, data=body, headers=headers)

    def flask(path, body, headers):
        # No Content-Length: the fast path steps aside and Flask reads the chunked body.
        return client.post(path, input_stream=io.BytesIO(body), headers={**headers, "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    return fast if request.param == "fast" else flask


def test_both_routes_are_exercised(client, runtime, monkeypatch):
    from bridge.web import webhooks
    seen = []
    real = webhooks.receive
    monkeypatch.setattr(webhooks, "receive", lambda *a, **k: seen.append(1) or real(*a, **k))
    real_view = webhooks._flask_receive
    monkeypatch.setattr(webhooks, "_flask_receive", lambda name: seen.append("flask") or real_view(name))
    body = json.dumps(stripe_event("evt_route")).encode()
    headers = stripe_headers(body, STRIPE_SECRET)
    assert client.post("/webhooks/stripe", data=body, headers=headers).json["duplicate"] is False
    assert seen == [1]
    r = client.post("/webhooks/stripe", input_stream=io.BytesIO(body),
                    headers={**headers, "Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})
    assert r.status_code == 200 and r.json["duplicate"] is True
    assert seen == [1, "flask", 1]


def counts(runtime):
    with runtime.reads() as s:
        return (s.scalar(select(func.count()).select_from(WebhookEvent)),
                s.scalar(select(func.count()).select_from(Job)))


def test_valid_event_is_stored_with_its_job(post, runtime, prov):
    path, make, sign, header_name, _ = prov
    body = json.dumps(make()).encode()
    r = post(path, body, sign(body))
    assert r.status_code == 200, r.json
    assert r.json == {"received": True, "duplicate": False}
    with runtime.reads() as s:
        ev = s.execute(select(WebhookEvent)).scalar_one()
        assert ev.body == body  # the raw bytes, untouched
        assert header_name in ev.headers and ev.status == "received"
        job = s.execute(select(Job)).scalar_one()
        assert (job.kind, job.ref_id, job.state) == ("process_event", str(ev.id), "ready")
        assert ev.occurred_at is not None


def test_duplicate_is_200_and_stored_once(client, runtime, prov):
    path, make, sign, *_ = prov
    body = json.dumps(make()).encode()
    assert client.post(path, data=body, headers=sign(body)).status_code == 200
    r = client.post(path, data=body, headers=sign(body))
    assert r.status_code == 200 and r.json["duplicate"] is True
    assert counts(runtime) == (1, 1)


def test_same_event_id_for_both_providers_is_two_events(client, runtime):
    b1 = json.dumps(stripe_event("evt_same")).encode()
    b2 = json.dumps(paddle_event("evt_same")).encode()
    assert client.post("/webhooks/stripe", data=b1, headers=stripe_headers(b1, STRIPE_SECRET)).status_code == 200
    assert client.post("/webhooks/paddle", data=b2, headers=paddle_headers(b2, PADDLE_SECRET)).status_code == 200
    assert counts(runtime) == (2, 2)


def forgeries(prov):
    path, make, sign, header_name, secret = prov
    body = json.dumps(make("evt_forged")).encode()
    good = sign(body)[header_name]
    sep = "," if header_name.startswith("Stripe") else ";"
    ts_part, sig_part = good.split(sep)[0], good.split(sep)[1]
    # A minute past the 300 s window each way: the cases are sent one after another, and a
    # loaded machine must not let "too new" drift back inside the window before it is sent.
    now = int(time.time())
    yield "missing", body, {}
    yield "empty", body, {header_name: ""}
    yield "no timestamp", body, {header_name: sig_part}
    yield "no signature", body, {header_name: ts_part}
    yield "non-numeric ts", body, {header_name: "t=abc" + sep + sig_part if sep == "," else "ts=abc;" + sig_part}
    yield "wrong secret", body, (stripe_headers(body, "whsec_wrong") if sep == "," else paddle_headers(body, "pdl_wrong"))
    yield "one byte changed", body.replace(b"evt_forged", b"evt_forgee"), {header_name: good}
    yield "reserialised", json.dumps(json.loads(body), separators=(",", ":")).encode(), {header_name: good}
    yield "short", body, {header_name: good[:-10]}
    yield "too old", body, sign(body, ts=now - 360)
    yield "too new", body, sign(body, ts=now + 360)


def test_forged_requests_are_400_and_store_nothing(post, runtime, prov):
    path = prov[0]
    for name, body, headers in forgeries(prov):
        headers = {"Content-Type": "application/json", **headers}
        r = post(path, body, headers)
        assert r.status_code == 400, (name, r.status_code, r.json)
        assert r.json["error"]["code"] == "invalid_signature", name
    assert counts(runtime) == (0, 0)


def test_window_edges_and_multi_signature_controls_pass(client, runtime, prov):
    path, make, sign, header_name, secret = prov
    now = int(time.time())
    for i, ts in enumerate((now - 295, now + 295)):
        body = json.dumps(make(f"evt_edge_{i}")).encode()
        assert client.post(path, data=body, headers=sign(body, ts=ts)).status_code == 200
    body = json.dumps(make("evt_multi")).encode()
    h = sign(body)
    sep = "," if header_name.startswith("Stripe") else ";"
    key = "v1" if sep == "," else "h1"
    h[header_name] = h[header_name] + f"{sep}{key}=" + "0" * 64
    assert client.post(path, data=body, headers=h).status_code == 200
    assert counts(runtime) == (3, 3)


def test_missing_secret_is_503_never_acceptance(db_url, tmp_path):
    from bridge.app import create_app
    from tests.conftest import test_settings
    app = create_app(test_settings(db_url, tmp_path, stripe_webhook_secrets=(), paddle_webhook_secrets=()))
    c = app.test_client()
    for path, make, sign in (("/webhooks/stripe", stripe_event, lambda b: stripe_headers(b, STRIPE_SECRET)),
                             ("/webhooks/paddle", paddle_event, lambda b: paddle_headers(b, PADDLE_SECRET))):
        body = json.dumps(make()).encode()
        r = c.post(path, data=body, headers=sign(body))
        assert r.status_code == 503 and r.json["error"]["code"] == "webhook_secret_missing"
        r = c.post(path, input_stream=io.BytesIO(body), headers={**sign(body), "Transfer-Encoding": "chunked"},
                   environ_overrides={"wsgi.input_terminated": True})
        assert r.status_code == 503 and r.json["error"]["code"] == "webhook_secret_missing"
    rt = app.extensions["bridge"]
    assert counts(rt) == (0, 0)
    rt.engine.dispose()


def test_bad_bodies_are_4xx_never_5xx(post, runtime, prov):
    """T11: malformed bodies, correctly signed, get 400; nothing is stored."""
    path, make, sign, *_ = prov
    deep = b"[" * 100_000 + b"]" * 100_000
    bodies = [b"", b"\xff\xfe\xfa", b"not json", deep, b"[1,2]", b'"a string"', b"42", b"null",
              b"{}", json.dumps({"data": {}}).encode(),
              json.dumps({"id": 5, "type": "x", "event_id": 5, "event_type": "x"}).encode(),
              json.dumps({"id": "", "type": "", "event_id": "", "event_type": ""}).encode(),
              json.dumps({"id": "e" * 300, "type": "x", "event_id": "e" * 300, "event_type": "x"}).encode()]
    for body in bodies:
        r = post(path, body, sign(body))
        assert r.status_code == 400, (body[:40], r.status_code)
        assert "error" in r.json
    assert counts(runtime) == (0, 0)


def test_wrong_method_and_content_type(client, prov):
    path, make, sign, *_ = prov
    for method in ("get", "put", "delete", "patch"):
        r = getattr(client, method)(path)
        assert r.status_code == 405 and r.json["error"]["code"] == "method_not_allowed"
    body = json.dumps(make()).encode()
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        headers = {**sign(body), "Content-Type": ctype}
        r = client.post(path, data=body, headers=headers)
        assert r.status_code == 415, ctype
    headers = sign(body)
    del headers["Content-Type"]
    assert client.post(path, data=body, headers=headers).status_code == 415


def test_oversized_body_is_413(client, runtime, prov):
    path, make, sign, *_ = prov
    big = b'{"id": "evt_big", "type": "x", "pad": "' + b"a" * (1024 * 1024) + b'"}'
    r = client.post(path, data=big, headers=sign(big))
    assert r.status_code == 413
    assert r.json["error"]["code"] == "request_entity_too_large"
    assert counts(runtime) == (0, 0)


def test_database_unavailable_is_503(client, runtime, prov, monkeypatch):
    """T9 in miniature: a store that fails answers 503 with Retry-After, never 2xx."""
    from sqlalchemy.exc import OperationalError
    path, make, sign, *_ = prov

    def down(*a, **k):
        raise OperationalError("INSERT", {}, Exception("connection refused"))
    monkeypatch.setattr(runtime.inbox, "store", down)
    body = json.dumps(make()).encode()
    r = client.post(path, data=body, headers=sign(body))
    assert r.status_code == 503 and r.headers["Retry-After"]


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=400), ctype=st.sampled_from(["application/json", "text/plain", "application/json; charset=utf-8"]),
       header=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
       signed=st.booleans())
def test_fuzzed_requests_never_500(client, body, ctype, header, signed):
    for path, sign in (("/webhooks/stripe", lambda b: stripe_headers(b, STRIPE_SECRET)),
                       ("/webhooks/paddle", lambda b: paddle_headers(b, PADDLE_SECRET))):
        headers = sign(body) if signed else {"Stripe-Signature": header, "Paddle-Signature": header}
        headers["Content-Type"] = ctype
        r = client.post(path, data=body, headers=headers)
        assert r.status_code < 500, (r.status_code, r.data[:200])
