"""GET /metrics in one process: the scope, the counters of webhook intake (stored, duplicate,
rejected by reason), the figures read from the database at scrape time, job run time, provider
API calls and sync age; and BRIDGE_METRICS=off."""
import json
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.ledger.jobs import enqueue
from bridge.ledger.models import Job
from bridge.metrics import record_sync_success
from bridge.providers.outcomes import OutcomeUnknown, PermanentProviderError, TransientProviderError
from bridge.providers.retry import RetryPolicy, call_with_retry
from tests.conftest import STRIPE_SECRET
from tests.support.api import auth, token
from tests.support.signing import stripe_headers

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def samples(text: str) -> dict:
    """{(sample name, frozenset(labels)): value}"""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def scrape(client, tok) -> dict:
    r = client.get("/metrics", headers=auth(tok))
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.content_type.startswith("text/plain")
    return samples(r.get_data(as_text=True))


def stripe_event(client, event_id: str, secret: str = STRIPE_SECRET):
    body = json.dumps({"id": event_id, "object": "event", "type": "customer.updated", "created": 1767000000,
                       "data": {"object": {"id": "cus_1", "object": "customer"}}}).encode()
    return client.post("/webhooks/stripe", data=body, headers=stripe_headers(body, secret))


def test_scope_is_needed(client, runtime):
    assert client.get("/metrics").status_code == 401
    r = client.get("/metrics", headers=auth(token(runtime, "read")))
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    assert client.get("/metrics", headers=auth(token(runtime, "admin"))).status_code == 200


def test_webhook_outcomes_are_counted(client, runtime):
    tok = token(runtime, "metrics")
    for n in range(3):
        assert stripe_event(client, f"evt_m_{n}").status_code == 200
    assert stripe_event(client, "evt_m_0").json == {"received": True, "duplicate": True}
    assert stripe_event(client, "evt_m_bad", secret="whsec_other").status_code == 400
    r = client.post("/webhooks/stripe", data=b"{}", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    found = scrape(client, tok)
    total = "bridge_webhooks_received_total"
    assert value(found, total, provider="stripe", outcome="stored", reason="") == 3
    assert value(found, total, provider="stripe", outcome="duplicate", reason="") == 1
    assert value(found, total, provider="stripe", outcome="rejected", reason="invalid_signature") == 1
    assert value(found, total, provider="stripe", outcome="rejected", reason="unsupported_media_type") == 1
    assert value(found, "bridge_webhook_intake_seconds_count", provider="stripe") == 6
    assert value(found, "bridge_webhook_intake_seconds_bucket", provider="stripe", le="+Inf") == 6
    assert value(found, "bridge_webhook_intake_seconds_sum", provider="stripe") > 0
    # Three stored events wait for the worker.
    assert value(found, "bridge_jobs", kind="process_event", state="ready") == 3
    assert value(found, "bridge_metrics_database_up") == 1


def test_database_figures_and_job_run_time(client, runtime, worker):
    tok = token(runtime, "metrics")
    runtime.clock = lambda: T0
    with runtime.sessions.begin() as s:
        enqueue(s, "no_such_kind", "x", T0 - timedelta(seconds=90), max_attempts=1)
        enqueue(s, "no_such_kind", "later", T0 + timedelta(hours=1))
    found = scrape(client, tok)
    assert value(found, "bridge_jobs", kind="no_such_kind", state="ready") == 2
    assert value(found, "bridge_jobs_oldest_ready_age_seconds") == 90, "the job due in an hour is not waiting"
    assert worker.run_once()  # no handler: the job fails its only attempt and is dead
    found = scrape(client, tok)
    assert value(found, "bridge_jobs", kind="no_such_kind", state="dead") == 1
    assert value(found, "bridge_jobs", kind="no_such_kind", state="ready") == 1
    assert value(found, "bridge_jobs_oldest_ready_age_seconds") == 0
    assert value(found, "bridge_job_run_seconds_count", kind="no_such_kind", outcome="dead") == 1
    with runtime.reads() as s:
        assert s.query(Job).filter_by(state="dead").count() == 1
    assert value(found, "bridge_notices_undelivered") == 0


def test_provider_calls_are_observed():
    seen = []
    answers = [TransientProviderError("busy", http_status=503), TransientProviderError("reset"), "ok"]

    def fn():
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a
    assert call_with_retry(fn, RetryPolicy.for_tests(), sleep=lambda _: None, operation="stripe get_refund",
                           observe=lambda op, status: seen.append((op, status))) == "ok"
    assert seen == [("stripe get_refund", "503"), ("stripe get_refund", "network_error"), ("stripe get_refund", "ok")]
    seen.clear()
    for exc, status in ((PermanentProviderError("charge_already_refunded", "no", http_status=400), "400"),
                        (OutcomeUnknown("timeout after sending"), "outcome_unknown")):
        def fail(exc=exc):
            raise exc
        with pytest.raises(type(exc)):
            call_with_retry(fail, RetryPolicy.for_tests(), sleep=lambda _: None, operation="paddle create_refund",
                            observe=lambda op, st: seen.append((op, st)))
        assert seen.pop() == ("paddle create_refund", status)


def test_provider_calls_and_refunds_in_the_exposition(client, runtime):
    tok = token(runtime, "metrics")
    runtime.metrics.provider_call("stripe create_refund", "ok")
    runtime.metrics.provider_call("stripe create_refund", "429")
    runtime.metrics.refund("stripe", "submitted")
    record_sync_success(runtime.metrics, "paddle", datetime.now(timezone.utc) - timedelta(seconds=30))
    found = scrape(client, tok)
    calls = "bridge_provider_api_calls_total"
    assert value(found, calls, provider="stripe", operation="create_refund", status="ok") == 1
    assert value(found, calls, provider="stripe", operation="create_refund", status="429") == 1
    assert value(found, "bridge_refund_submissions_total", provider="stripe", outcome="submitted") == 1
    assert 29 <= value(found, "bridge_sync_age_seconds", provider="paddle") < 120


def test_metrics_can_be_switched_off(settings):
    from bridge.app import create_app
    from bridge.runtime import Runtime
    rt = Runtime.build(settings.with_(metrics_enabled=False))
    try:
        client = create_app(runtime=rt).test_client()
        assert stripe_event(client, "evt_off").status_code == 200
        r = client.get("/metrics", headers=auth(token(rt, "metrics")))
        assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    finally:
        rt.engine.dispose()
