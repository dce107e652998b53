"""The metrics of a real refund against the local fake Stripe: the refund submission, the
provider API calls (the fee fetch, the refund) and the jobs that ran are counted, and the
ledger's refund is in the database figures; as ``GET /metrics`` shows them."""
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_refund_flow import (LICENSE_ITEM, fakes, pay_stripe, register, request_refund,  # noqa: F401
                                        settle, shop)
from tests.support.api import auth, token


def scrape(shop) -> dict:
    r = requests.get(shop.url + "/metrics", headers=auth(token(shop.rt, "metrics")), timeout=10)
    assert r.status_code == 200, r.text
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(r.text) for s in f.samples}


def get(found, name, **labels):
    return found.get((name, frozenset(labels.items())), 0.0)


def test_a_refund_is_counted(shop, fakes):  # noqa: F811
    stripe, _ = fakes
    register(shop, "ord_m", "software-mor", [LICENSE_ITEM])
    pay_stripe(shop, stripe, "ord_m")
    rr = request_refund(shop, "ord_m", at="2026-03-20T10:00:00Z")
    assert settle(shop, stripe, rr["id"], "refunded")["status"] == "refunded"
    found = scrape(shop)
    assert get(found, "bridge_refund_submissions_total", provider="stripe", outcome="submitted") == 1
    calls = "bridge_provider_api_calls_total"
    assert get(found, calls, provider="stripe", operation="create_refund", status="ok") == 1
    assert sum(v for (n, labels), v in found.items() if n == calls and ("status", "ok") in labels) >= 1
    assert get(found, "bridge_refunds", provider="stripe", status="succeeded") == 1
    assert get(found, "bridge_job_run_seconds_count", kind="execute_refund", outcome="done") == 1
    assert get(found, "bridge_job_run_seconds_count", kind="process_event", outcome="done") >= 2
    # Stored by the webhook intake: the payment, and the fake's refund confirmation.
    assert get(found, "bridge_webhooks_received_total", provider="stripe", outcome="stored", reason="") >= 2
