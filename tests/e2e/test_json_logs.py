"""What ``bridge serve`` writes to stdout, in both formats, while it takes webhooks (good,
forged, and with control characters in a signed event's id and type) and API calls (with a
token, a customer e-mail, a token in the query string, a malformed request line): JSON lines
parse one by one with their fields; no secret, token, signature, query string or e-mail
appears; a control character never starts a line of its own."""
import json
import os
import socket
import time
from datetime import datetime, timezone

import pytest
import requests

from bridge.ledger import schema
from bridge.ledger.db import make_engine, make_session_factory
from bridge.ledger.tokens import create_token
from bridge.settings import Settings
from tests.conftest import LICENSE_SECRET, PADDLE_SECRET, STRIPE_SECRET
from tests.support.servers import BIN, Process, free_port
from tests.support.signing import stripe_headers

EMAIL = "jane.doe@example.com"
QUERY_SECRET = "q5ecret0123456789"


def serve(tmp_path, fmt):
    db = f"sqlite:///{tmp_path / 'bridge.sqlite3'}"
    engine = make_engine(Settings(database_url=db))
    schema.upgrade(engine)
    with make_session_factory(engine).begin() as s:
        _, tok = create_token(s, "app", ["admin"], datetime.now(timezone.utc))
    engine.dispose()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STRIPE_", "PADDLE_", "BRIDGE_", "LICENSE_", "DATABASE_URL", "PROMETHEUS_"))}
    env.update({"DATABASE_URL": db, "BRIDGE_INSTANCE_DIR": str(tmp_path), "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
                "PADDLE_WEBHOOK_SECRET": PADDLE_SECRET, "LICENSE_WEBHOOK_SECRET": LICENSE_SECRET,
                "STRIPE_API_KEY": "sk_test_bridgelogs", "BRIDGE_LOG_FORMAT": fmt, "BRIDGE_LOG_LEVEL": "DEBUG",
                "BRIDGE_WORKER_POLL": "0.05", "PYTHONUNBUFFERED": "1"})
    port = free_port()
    proc = Process([str(BIN / "bridge"), "serve", "--port", str(port)], env, tmp_path / f"serve-{fmt}.log")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url, tok
        except requests.RequestException:
            time.sleep(0.1)
    proc.stop()
    raise RuntimeError("bridge serve did not start:\n" + proc.log())


def work(url, tok) -> list[str]:
    """Traffic; returns the strings that must never reach the logs."""
    def event(event_id, event_type, secret=STRIPE_SECRET):
        body = json.dumps({"id": event_id, "object": "event", "type": event_type, "created": int(time.time()),
                           "data": {"object": {"id": "cus_1", "object": "customer", "email": EMAIL}}}).encode()
        headers = stripe_headers(body, secret)
        return requests.post(url + "/webhooks/stripe", data=body, headers=headers, timeout=10), headers

    r, good = event("evt_logs_1", "customer.updated")
    assert r.status_code == 200
    r, forged = event("evt_logs_forged", "customer.updated", secret="whsec_wrong_secret_for_test")
    assert r.status_code == 400
    r, _ = event("evt_ctl\nFORGED 2026-01-01 ERROR bridge fake line", "customer.updated\r\x1b[31m")
    assert r.status_code == 200
    bearer = {"Authorization": f"Bearer {tok}", "X-Request-ID": "req-logs-1"}
    order = {"order_id": "ord_logs", "policy": "software-mor", "currency": "USD",
             "customer": {"id": "cus_logs", "email": EMAIL, "country": "US"},
             "items": [{"item_id": "i1", "sku": "pro", "category": "license", "billing": "one_time",
                        "amount": 4900, "license_id": "lic_logs"}]}
    r = requests.post(url + "/api/v1/orders", json=order, headers=bearer, timeout=10)
    assert r.status_code in (200, 201), r.text
    assert r.headers["X-Request-ID"] == "req-logs-1"
    r = requests.get(url + f"/api/v1/orders/ord_logs?access_token={tok}", timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_in_query"
    assert requests.get(url + f"/healthz?secret={QUERY_SECRET}", timeout=10).status_code == 200
    assert requests.get(url + "/api/v1/orders/ord_logs", headers={"Authorization": "Bearer brg_wrong_guess"},
                        timeout=10).status_code == 401
    # A request line http.server cannot parse: its error message quotes the line.
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=10) as s:
        s.sendall(f"GET /x?access_token={tok}&q={QUERY_SECRET} junk HTTP/1.1\r\n\r\n".encode())
        s.recv(4096)
    return [tok, STRIPE_SECRET, PADDLE_SECRET, LICENSE_SECRET, "sk_test_bridgelogs", EMAIL, QUERY_SECRET,
            good["Stripe-Signature"].split("v1=")[1], forged["Stripe-Signature"].split("v1=")[1],
            "brg_wrong_guess", "access_token=", "Bearer "]


def wait_for(proc, text, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in proc.log():
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never logged:\n{proc.log()[-3000:]}")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_serve_logs(tmp_path, fmt):
    proc, url, tok = serve(tmp_path, fmt)
    try:
        secrets = work(url, tok)
        wait_for(proc, "evt_logs_1 (customer.updated) ignored")  # the worker thread's record
    finally:
        proc.stop()
    text = proc.log()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) > 10, text
    for secret in secrets:
        assert secret not in text, f"{secret[:10]}... reached the logs"
    assert not any(ln.lstrip().startswith("FORGED") or "\x1b" in ln or "\r" in ln for ln in lines)
    if fmt == "text":
        assert "evt_ctl\\x0aFORGED" in text, "the control character is shown escaped"
        assert '"GET /api/v1/orders/ord_logs HTTP/1.1" 401' in text, "the access log shows the path alone"
        return
    records = [json.loads(ln) for ln in lines if not ln.startswith("bridge listening on")]
    for rec in records:
        assert {"time", "level", "logger", "message"} <= set(rec), rec
        assert "\n" not in rec["message"], rec
        datetime.fromisoformat(rec["time"])
    messages = [r["message"] for r in records]
    assert any("evt_ctl\\x0aFORGED" in m for m in messages)
    access = [r for r in records if r["logger"] == "werkzeug"]
    assert any('"GET /api/v1/orders/ord_logs HTTP/1.1" 401' in r["message"] for r in access), access
    assert not any("?" in r["message"].split('"')[1] for r in access if r["message"].count('"') >= 2
                   and "query removed" not in r["message"])
    bad = [r["message"] for r in access if "Bad request syntax" in r["message"]]
    assert bad and all("GET /x?[query removed] junk HTTP/1.1" in m for m in bad), bad
    worked = [r for r in records if "evt_logs_1 (customer.updated) ignored" in r["message"]]
    assert worked and worked[0]["event_id"] == "evt_logs_1" and isinstance(worked[0]["job_id"], int)
    stored = [r for r in records if "evt_logs_1 stored" in r["message"]]
    assert stored and stored[0]["event_id"] == "evt_logs_1"


def test_request_id_on_records_logged_during_a_request(app, client):
    import io
    import logging

    from bridge.logs import make_handler

    @app.get("/_test_log")
    def _log_something():
        logging.getLogger("bridge.test").warning("inside a request")
        return {"ok": True}

    stream = io.StringIO()
    handler = make_handler("json", stream)
    root = logging.getLogger("bridge")
    root.addHandler(handler)
    try:
        r = client.get("/_test_log", headers={"X-Request-ID": "gw-42"})
        r2 = client.get("/_test_log", headers={"X-Request-ID": "bad id with spaces"})
    finally:
        root.removeHandler(handler)
    assert r.headers["X-Request-ID"] == "gw-42"
    generated = r2.headers["X-Request-ID"]
    assert len(generated) == 32 and generated.isalnum(), "an unusable id is replaced"
    records = [json.loads(ln) for ln in stream.getvalue().splitlines()]
    assert [(x["message"], x["request_id"]) for x in records] == [("inside a request", "gw-42"),
                                                                  ("inside a request", generated)]


def test_gunicorn_access_log_has_no_query_string(tmp_path, settings):
    """The Procfile's gunicorn config, with its access log switched on."""
    from tests.support.servers import bridge_env
    env = bridge_env(settings)
    port = free_port()
    proc = Process([str(BIN / "gunicorn"), "-c", "python:bridge.gunicorn_conf", "-w", "1", "-k", "sync",
                    "-b", f"127.0.0.1:{port}", "--access-logfile", "-", "bridge.app:create_app()"],
                   env, tmp_path / "gunicorn-access.log")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, proc.log()
            time.sleep(0.1)
        tok = "brg_" + "t" * 43
        assert requests.get(url + f"/api/v1/orders/o1?access_token={tok}", timeout=10,
                            headers={"Referer": f"https://shop.example/?token={tok}"}).status_code == 401
        assert requests.get(url + f"/healthz?secret={QUERY_SECRET}", timeout=10).status_code == 200
        # A request line gunicorn refuses (no HTTP version): its error log quotes it.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(f"GET /x?access_token={tok}&q={QUERY_SECRET}\r\n\r\n".encode())
            s.recv(4096)
        time.sleep(0.5)
    finally:
        proc.stop()
    text = proc.log()
    assert '"GET /api/v1/orders/o1 HTTP/1.1" 401' in text and '"GET /healthz HTTP/1.1" 200' in text, text
    assert "Invalid request from ip=127.0.0.1" in text and "/x?[query removed]" in text, text
    assert tok not in text and QUERY_SECRET not in text and "access_token" not in text
