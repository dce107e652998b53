"""The Stripe and Paddle clients against the local fake providers.

Every test counts the HTTP calls the fake received, so a retry layer hiding in an SDK (Stripe's
``max_network_retries``, Paddle's urllib3 ``Retry``) would show up as extra calls.
"""
from __future__ import annotations

import pytest
from requests.adapters import HTTPAdapter

from bridge.fakes import FakePaddle, FakeStripe, Fault
from bridge.providers.outcomes import (
    OutcomeUnknown,
    PermanentProviderError,
    RefundResult,
    TransientProviderError,
)
from bridge.providers.paddle.api import PaddleApi, request_id_from_reason
from bridge.providers.retry import RetryPolicy
from bridge.providers.stripe.api import StripeApi, stripe_reason

POLICY = RetryPolicy.for_tests(attempts=4)
CLIENT_TIMEOUT = 0.3   # read timeout of the clients in these tests
HANG = 0.6             # how long the fakes hold a "timeout" request (> CLIENT_TIMEOUT)


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture
def stripe_fake():
    with FakeStripe(seed=7, hang_seconds=HANG) as fake:
        fake.add_charge("ch_1", "pi_1", amount=5000, currency="usd", fee=175)
        yield fake


@pytest.fixture
def stripe_api(stripe_fake):
    return StripeApi("sk_test_fake", base_url=stripe_fake.url, timeout=CLIENT_TIMEOUT,
                     connect_timeout=1.0, retry=POLICY)


@pytest.fixture
def paddle_fake():
    with FakePaddle(seed=7, hang_seconds=HANG) as fake:
        fake.add_transaction("txn_1", "USD", [("txnitm_a", 3000), ("txnitm_b", 2000)], fee=250)
        yield fake


@pytest.fixture
def paddle_api(paddle_fake):
    return PaddleApi("pdl_sdbx_apikey_fake", base_url=paddle_fake.url, timeout=CLIENT_TIMEOUT,
                     connect_timeout=1.0, retry=POLICY)


def stripe_refund(api: StripeApi, key: str = "refund-rr_1", amount: int | None = 1000,
                  **kw) -> RefundResult:
    return api.create_refund(charge_id=kw.pop("charge_id", "ch_1"), amount=amount,
                             reason=kw.pop("reason", "not_satisfied"), metadata=kw.pop("metadata", None),
                             idempotency_key=key, **kw)


def paddle_refund(api: PaddleApi, request_id: str = "rr_1", items=(("txnitm_a", 1000),),
                  **kw) -> RefundResult:
    return api.create_refund(transaction_id=kw.pop("transaction_id", "txn_1"), request_id=request_id,
                             reason=kw.pop("reason", "not satisfied"),
                             items=None if items is None else list(items), **kw)


def posts(fake, path):
    return fake.calls_to("POST", path)


def gaps(calls):
    return [b.at - a.at for a, b in zip(calls, calls[1:])]


# --- Stripe: refunds ------------------------------------------------------------------------

def test_stripe_full_refund(stripe_api, stripe_fake):
    result = stripe_refund(stripe_api, amount=None, request_id="rr_full")
    assert result.provider == "stripe" and result.status == "succeeded"
    assert result.amount == 5000 and result.currency == "USD" and result.payment_id == "ch_1"
    assert result.request_id == "rr_full" and result.reason == "requested_by_customer"
    assert [a.amount for a in stripe_fake.applied] == [5000]
    assert len(stripe_fake.calls) == 1


def test_stripe_partial_refunds_by_charge_and_payment_intent(stripe_api, stripe_fake):
    first = stripe_refund(stripe_api, key="refund-a", amount=1200, reason="duplicate_charge")
    second = stripe_api.create_refund(payment_intent_id="pi_1", amount=800, reason="changed_mind",
                                      metadata={"order_id": "ord_1"}, idempotency_key="refund-b")
    assert first.reason == "duplicate" and second.reason == "requested_by_customer"
    listed = stripe_api.list_refunds(charge_id="ch_1")
    assert [r.provider_refund_id for r in listed] == [second.provider_refund_id, first.provider_refund_id]
    assert [r.amount for r in stripe_api.list_refunds(payment_intent_id="pi_1")] == [800, 1200]
    assert stripe_fake.refunded_amount("ch_1") == 2000
    assert stripe_fake.refunds[second.provider_refund_id]["metadata"] == {"order_id": "ord_1"}


def test_stripe_reason_mapping():
    assert stripe_reason("duplicate_charge") == "duplicate"
    assert stripe_reason("fraudulent") == "fraudulent"
    assert stripe_reason("charged_by_mistake") == "requested_by_customer"
    assert stripe_reason("requested_by_customer") == "requested_by_customer"
    assert stripe_reason(None) is None


def test_stripe_idempotency_replay_makes_one_refund(stripe_api, stripe_fake):
    first = stripe_refund(stripe_api, key="refund-rr_9")
    again = stripe_refund(stripe_api, key="refund-rr_9")
    assert again.provider_refund_id == first.provider_refund_id
    assert len(stripe_fake.applied) == 1
    assert [c.idempotency_key for c in posts(stripe_fake, "/v1/refunds")] == ["refund-rr_9"] * 2


def test_stripe_idempotency_mismatch_is_permanent(stripe_api, stripe_fake):
    stripe_refund(stripe_api, key="refund-rr_9", amount=1000)
    with pytest.raises(PermanentProviderError) as err:
        stripe_refund(stripe_api, key="refund-rr_9", amount=2000)
    assert err.value.code == "idempotency_error" and err.value.attempts == 1
    assert len(posts(stripe_fake, "/v1/refunds")) == 2 and len(stripe_fake.applied) == 1


@pytest.mark.parametrize("setup, kwargs, code", [
    ("refunded", {"amount": 100}, "charge_already_refunded"),
    (None, {"amount": 5001}, "amount_too_large"),
    (None, {"amount": 100, "charge_id": "ch_missing"}, "resource_missing"),
])
def test_stripe_permanent_errors_are_called_once(stripe_api, stripe_fake, setup, kwargs, code):
    if setup == "refunded":
        stripe_refund(stripe_api, key="refund-first", amount=None)
    before = len(stripe_fake.calls)
    with pytest.raises(PermanentProviderError) as err:
        stripe_refund(stripe_api, key="refund-second", **kwargs)
    assert err.value.code == code and err.value.http_status in (400, 404)
    assert err.value.attempts == 1 and len(stripe_fake.calls) == before + 1


def test_stripe_bad_api_key_is_permanent(stripe_fake):
    stripe_fake.api_key = "sk_test_right"
    api = StripeApi("sk_test_wrong", base_url=stripe_fake.url, retry=POLICY)
    with pytest.raises(PermanentProviderError) as err:
        stripe_refund(api)
    assert err.value.http_status == 401 and len(stripe_fake.calls) == 1


# --- Stripe: faults -------------------------------------------------------------------------

@pytest.mark.parametrize("status", [500, 502, 503])
def test_stripe_5xx_then_success_is_retried_with_the_same_key(stripe_api, stripe_fake, status):
    stripe_fake.faults.script(Fault.http(status))
    result = stripe_refund(stripe_api)
    calls = posts(stripe_fake, "/v1/refunds")
    assert [c.status for c in calls] == [status, 200]
    assert {c.idempotency_key for c in calls} == {"refund-rr_1"}
    assert [a.refund_id for a in stripe_fake.applied] == [result.provider_refund_id]


def test_stripe_three_faults_then_success_uses_every_attempt(stripe_api, stripe_fake):
    stripe_fake.faults.script(Fault.http(500), Fault.http(502), Fault.http(503))
    stripe_refund(stripe_api)
    assert len(stripe_fake.calls) == POLICY.attempts and len(stripe_fake.applied) == 1


def test_stripe_honours_retry_after(stripe_api, stripe_fake):
    stripe_fake.faults.script(Fault.rate_limit(retry_after=1))
    stripe_refund(stripe_api)
    calls = posts(stripe_fake, "/v1/refunds")
    assert [c.status for c in calls] == [429, 200]
    assert gaps(calls)[0] >= 1.0
    assert len(stripe_fake.applied) == 1


def test_stripe_retry_after_holds_other_calls_of_the_client(stripe_api, stripe_fake):
    stripe_fake.faults.script(Fault.rate_limit(retry_after=1), method="GET")
    stripe_api.list_refunds(charge_id="ch_1")
    stripe_refund(stripe_api)
    assert [c.status for c in stripe_fake.calls] == [429, 200, 200]
    assert gaps(stripe_fake.calls)[0] >= 1.0


def test_stripe_long_retry_after_is_handed_to_the_caller(stripe_api, stripe_fake):
    stripe_fake.faults.script(Fault.rate_limit(retry_after=30))
    with pytest.raises(TransientProviderError) as err:
        stripe_refund(stripe_api)
    assert err.value.retry_after == 30 and err.value.attempts == 1
    assert len(stripe_fake.calls) == 1
    # ... and the client does not call Stripe again before it has elapsed.
    with pytest.raises(TransientProviderError) as again:
        stripe_api.list_refunds(charge_id="ch_1")
    assert again.value.retry_after > 25 and len(stripe_fake.calls) == 1


@pytest.mark.parametrize("fault", [Fault.timeout(), Fault.reset(), Fault.applied_lost()],
                         ids=["timeout", "reset", "applied_lost"])
def test_stripe_ambiguous_failures_are_resent_with_the_same_key(stripe_api, stripe_fake, fault):
    stripe_fake.faults.script(fault)
    result = stripe_refund(stripe_api)
    calls = posts(stripe_fake, "/v1/refunds")
    assert [c.status for c in calls] == [None, 200]
    assert [c.idempotency_key for c in calls] == ["refund-rr_1", "refund-rr_1"]
    assert [a.refund_id for a in stripe_fake.applied] == [result.provider_refund_id]


def test_stripe_exhausted_retries_are_transient(stripe_api, stripe_fake):
    stripe_fake.faults.script(*[Fault.http(503)] * POLICY.attempts)
    with pytest.raises(TransientProviderError) as err:
        stripe_refund(stripe_api)
    assert not isinstance(err.value, OutcomeUnknown)
    assert err.value.attempts == POLICY.attempts and err.value.http_status == 503
    assert len(stripe_fake.calls) == POLICY.attempts and stripe_fake.applied == []


def test_stripe_exhausted_after_a_lost_answer_is_outcome_unknown(stripe_api, stripe_fake):
    stripe_fake.faults.script(Fault.applied_lost(), *[Fault.http(503)] * (POLICY.attempts - 1))
    with pytest.raises(OutcomeUnknown) as err:
        stripe_refund(stripe_api)
    assert err.value.attempts == POLICY.attempts and len(stripe_fake.applied) == 1
    # The job re-runs with the same key later: Stripe replays the refund, no second one.
    result = stripe_refund(stripe_api)
    assert result.provider_refund_id == stripe_fake.applied[0].refund_id
    assert len(stripe_fake.applied) == 1


def test_stripe_get_is_retried_on_timeout_and_never_unknown(stripe_api, stripe_fake):
    stripe_fake.faults.script(Fault.timeout(), method="GET")
    assert stripe_api.list_refunds(charge_id="ch_1") == []
    stripe_fake.faults.script(*[Fault.reset()] * POLICY.attempts, method="GET")
    with pytest.raises(TransientProviderError) as err:
        stripe_api.list_refunds(charge_id="ch_1")
    assert not isinstance(err.value, OutcomeUnknown)
    assert len(stripe_fake.calls) == 2 + POLICY.attempts


def test_stripe_sdk_retries_are_off(stripe_api, stripe_fake):
    # A 500 would be retried by stripe-python itself if max_network_retries were > 0, and 409
    # and "Stripe-Should-Retry" likewise: only our policy's attempts reach the fake.
    stripe_fake.faults.script(*[Fault.http(500)] * 10, method="GET")
    with pytest.raises(TransientProviderError):
        stripe_api.get_charge_fee("ch_1")
    assert len(stripe_fake.calls) == POLICY.attempts


# --- Stripe: fees and pending refunds ----------------------------------------------------------

def test_stripe_fees(stripe_api, stripe_fake):
    bt_id = stripe_fake.charges["ch_1"].balance_transaction
    assert stripe_api.get_charge_fee("ch_1") == 175
    assert stripe_api.get_balance_transaction(bt_id) == (175, "USD")
    stripe_fake.add_charge("ch_async", "pi_async", amount=900, currency="jpy")
    assert stripe_api.get_charge_fee("ch_async") is None
    with pytest.raises(PermanentProviderError) as err:
        stripe_api.get_charge_fee("ch_nope")
    assert err.value.code == "resource_missing"


def test_stripe_pending_refund_settles_later(stripe_api, stripe_fake):
    stripe_fake.refund_status_on_create = "pending"
    result = stripe_refund(stripe_api, amount=2000)
    assert result.status == "pending" and result.raw_status == "pending"
    stripe_fake.settle_refund(result.provider_refund_id, "failed", failure_reason="expired_or_canceled_card")
    failed = stripe_api.get_refund(result.provider_refund_id)
    assert failed.status == "failed" and failed.failure_reason == "expired_or_canceled_card"
    # A failed refund frees its amount: the whole charge can be refunded again.
    again = stripe_refund(stripe_api, key="refund-rr_2", amount=5000)
    stripe_fake.settle_refund(again.provider_refund_id, "succeeded")
    assert stripe_api.get_refund(again.provider_refund_id).status == "succeeded"


# --- Paddle: refunds ------------------------------------------------------------------------

def test_paddle_full_refund_pending_then_approved(paddle_api, paddle_fake):
    result = paddle_refund(paddle_api, items=None)
    assert result.provider == "paddle" and result.status == "pending"
    assert result.raw_status == "pending_approval" and result.amount == 5000
    assert result.currency == "USD" and result.request_id == "rr_1" and result.payment_id == "txn_1"
    assert paddle_fake.adjustments[result.provider_refund_id]["type"] == "full"
    paddle_fake.decide(result.provider_refund_id, "approved")
    [listed] = paddle_api.list_refund_adjustments("txn_1")
    assert listed.status == "succeeded" and listed.raw_status == "approved"
    assert len(paddle_fake.calls) == 2


def test_paddle_partial_refund_items(paddle_api, paddle_fake):
    result = paddle_refund(paddle_api, items=[("txnitm_a", 1500), ("txnitm_b", None)])
    assert result.amount == 3500
    items = paddle_fake.adjustments[result.provider_refund_id]["items"]
    assert [(i["item_id"], i["type"], i["amount"]) for i in items] == [
        ("txnitm_a", "partial", "1500"), ("txnitm_b", "full", "2000")]
    paddle_fake.decide(result.provider_refund_id, "rejected")
    assert paddle_api.find_refund("txn_1", "rr_1").status == "failed"


def test_paddle_request_id_marker():
    assert request_id_from_reason("Refund [bridge-ref:rr_12] please") == "rr_12"
    assert request_id_from_reason("no marker") is None
    assert request_id_from_reason(None) is None


@pytest.mark.parametrize("first, second, code", [
    ("approved", None, "adjustment_total_amount_above_remaining_allowed"),
    ("pending", None, "adjustment_pending_refund_request"),
    ("approved", [("txnitm_a", 2500)], "adjustment_amount_above_remaining_allowed"),
])
def test_paddle_permanent_errors_are_called_once(paddle_api, paddle_fake, first, second, code):
    earlier = paddle_refund(paddle_api, request_id="rr_first", items=[("txnitm_a", 1000)])
    if first == "approved":
        paddle_fake.decide(earlier.provider_refund_id, "approved")
    before = len(paddle_fake.calls)
    with pytest.raises(PermanentProviderError) as err:
        paddle_refund(paddle_api, request_id="rr_second", items=second)
    assert err.value.code == code and err.value.http_status == 400 and err.value.attempts == 1
    assert len(paddle_fake.calls) == before + 1 and len(paddle_fake.applied) == 1


def test_paddle_unknown_transaction_and_bad_key_are_permanent(paddle_api, paddle_fake):
    with pytest.raises(PermanentProviderError) as err:
        paddle_refund(paddle_api, transaction_id="txn_nope")
    assert err.value.code == "transaction_not_found" and err.value.http_status == 404
    paddle_fake.api_key = "pdl_right"
    with pytest.raises(PermanentProviderError) as auth:
        paddle_api.list_refund_adjustments("txn_1")
    assert auth.value.code == "authentication_malformed" and auth.value.http_status == 403
    assert len(paddle_fake.calls) == 2


# --- Paddle: faults -------------------------------------------------------------------------

@pytest.mark.parametrize("status", [500, 502, 503])
def test_paddle_5xx_then_success_looks_before_reposting(paddle_api, paddle_fake, status):
    paddle_fake.faults.script(Fault.http(status))
    result = paddle_refund(paddle_api)
    assert [(c.method, c.path, c.status) for c in paddle_fake.calls] == [
        ("POST", "/adjustments", status), ("GET", "/adjustments", 200),
        ("POST", "/adjustments", 201)]
    assert [a.refund_id for a in paddle_fake.applied] == [result.provider_refund_id]


def test_paddle_5xx_after_applying_is_adopted_not_reposted(paddle_api, paddle_fake):
    paddle_fake.faults.script(Fault.applied_error(500))
    result = paddle_refund(paddle_api)
    assert [(c.method, c.status) for c in paddle_fake.calls] == [("POST", 500), ("GET", 200)]
    assert [a.refund_id for a in paddle_fake.applied] == [result.provider_refund_id]


def test_paddle_honours_retry_after(paddle_api, paddle_fake):
    paddle_fake.faults.script(Fault.rate_limit(retry_after=1))
    paddle_refund(paddle_api)
    calls = paddle_fake.calls
    assert [(c.method, c.status) for c in calls] == [("POST", 429), ("POST", 201)]
    assert gaps(calls)[0] >= 1.0 and len(paddle_fake.applied) == 1


def test_paddle_fractional_retry_after_that_the_sdk_cannot_read(paddle_api, paddle_fake):
    # paddle_billing's ApiError does int(Retry-After): "0.5" makes the SDK itself raise
    # ValueError. The client still reads the answer as a 429 and waits the 0.5 s.
    paddle_fake.faults.script(Fault.rate_limit("0.5"), method="GET")
    assert paddle_api.get_transaction_fee("txn_1") == (250, "USD")
    assert [c.status for c in paddle_fake.calls] == [429, 200]
    assert gaps(paddle_fake.calls)[0] >= 0.5


@pytest.mark.parametrize("fault", [Fault.timeout(), Fault.reset()], ids=["timeout", "reset"])
def test_paddle_timeout_and_reset_are_outcome_unknown_without_repost(paddle_api, paddle_fake, fault):
    paddle_fake.faults.script(fault)
    with pytest.raises(OutcomeUnknown) as err:
        paddle_refund(paddle_api)
    assert err.value.attempts == 1
    assert len(posts(paddle_fake, "/adjustments")) == 1 and paddle_fake.applied == []
    # The caller reconciles: nothing there, so the re-run posts it (once).
    assert paddle_api.find_refund("txn_1", "rr_1") is None
    result = paddle_refund(paddle_api, reconcile_first=True)
    assert [a.refund_id for a in paddle_fake.applied] == [result.provider_refund_id]
    assert len(posts(paddle_fake, "/adjustments")) == 2


def test_paddle_applied_but_answer_lost_is_found_by_request_id(paddle_api, paddle_fake):
    paddle_refund(paddle_api, request_id="rr_other", items=[("txnitm_b", 500)])
    paddle_fake.decide(paddle_fake.applied[0].refund_id, "approved")
    paddle_fake.faults.script(Fault.applied_lost())
    with pytest.raises(OutcomeUnknown):
        paddle_refund(paddle_api, request_id="rr_lost")
    assert len(paddle_fake.applied) == 2
    [ours] = paddle_api.list_refund_adjustments("txn_1", request_id="rr_lost")
    assert ours.provider_refund_id == paddle_fake.applied[1].refund_id and ours.amount == 1000
    assert len(paddle_api.list_refund_adjustments("txn_1")) == 2
    # A re-run with reconcile_first adopts it instead of posting again.
    posts_before = len(posts(paddle_fake, "/adjustments"))
    adopted = paddle_refund(paddle_api, request_id="rr_lost", reconcile_first=True)
    assert adopted.provider_refund_id == ours.provider_refund_id
    assert len(posts(paddle_fake, "/adjustments")) == posts_before and len(paddle_fake.applied) == 2


def test_paddle_exhausted_retries_are_transient(paddle_api, paddle_fake):
    paddle_fake.faults.script(*[Fault.http(503)] * POLICY.attempts)
    with pytest.raises(TransientProviderError) as err:
        paddle_refund(paddle_api)
    assert err.value.attempts == POLICY.attempts and err.value.http_status == 503
    assert len(posts(paddle_fake, "/adjustments")) == POLICY.attempts
    assert len(paddle_fake.calls_to("GET", "/adjustments")) == POLICY.attempts - 1
    assert paddle_fake.applied == []


def test_paddle_get_is_retried_and_sdk_retries_are_off(paddle_api, paddle_fake):
    paddle_fake.faults.script(Fault.timeout(), Fault.http(502), method="GET")
    assert paddle_api.get_transaction_fee("txn_1") == (250, "USD")
    assert [c.status for c in paddle_fake.calls] == [None, 502, 200]
    paddle_fake.faults.script(*[Fault.http(500)] * 10, method="GET")
    with pytest.raises(TransientProviderError):
        paddle_api.list_refund_adjustments("txn_1")
    assert len(paddle_fake.calls) == 3 + POLICY.attempts


def test_paddle_https_adapter_has_no_urllib3_status_retries():
    api = PaddleApi("pdl_live_apikey_x", environment="production", retry=POLICY)
    session = api._sdk().client
    adapter = session.get_adapter("https://api.paddle.com/adjustments")
    assert isinstance(adapter, HTTPAdapter)
    assert adapter.max_retries.total == 0 and not adapter.max_retries.status_forcelist
    with pytest.raises(ValueError):
        PaddleApi("k", base_url="http://127.0.0.1:1/prefix")


def test_paddle_fees_and_pagination(paddle_api, paddle_fake):
    paddle_fake.add_transaction("txn_new", "JPY", [("txnitm_j", 5000)], fee=None)
    assert paddle_api.get_transaction_fee("txn_new") is None
    paddle_fake.per_page = 2
    paddle_fake.auto_approve = True
    ids = [paddle_refund(paddle_api, request_id=f"rr_{n}", items=[("txnitm_a", 100)]).provider_refund_id
           for n in range(5)]
    listed = paddle_api.list_refund_adjustments("txn_1")
    assert [r.provider_refund_id for r in listed] == ids
    assert all(r.status == "succeeded" for r in listed)
    assert len(paddle_fake.calls_to("GET", "/adjustments")) == 3  # 3 pages of 2


# --- both: a small randomized soak (T4 in miniature) ------------------------------------------

SOAK_FAULTS = {Fault.http(500): 0.08, Fault.http(503): 0.06, Fault.rate_limit(1): 0.03,
               Fault.timeout(): 0.04, Fault.reset(): 0.04, Fault.applied_lost(): 0.05,
               Fault.applied_error(502): 0.03}
SOAK_N = 30


def _assert_retry_after_respected(calls):
    for n, call in enumerate(calls[:-1]):
        if call.fault and call.fault.startswith("http_429"):
            assert calls[n + 1].at - call.at >= 1.0, (call, calls[n + 1])


def test_stripe_soak_every_refund_applied_exactly_once():
    with FakeStripe(seed=11, hang_seconds=HANG) as fake:
        fake.faults.randomize(SOAK_FAULTS, method=None)
        api = StripeApi("sk_test_soak", base_url=fake.url, timeout=CLIENT_TIMEOUT, retry=POLICY)
        for n in range(SOAK_N):
            fake.add_charge(f"ch_{n}", f"pi_{n}", amount=1000 + n)
        confirmed = {}
        for n in range(SOAK_N):
            for _job_run in range(10):  # the worker re-runs the job with the same key
                try:
                    confirmed[n] = stripe_refund(api, key=f"refund-{n}", amount=None,
                                                 charge_id=f"ch_{n}").provider_refund_id
                    break
                except (TransientProviderError, OutcomeUnknown):
                    continue
        assert len(confirmed) == SOAK_N
        assert sorted(a.refund_id for a in fake.applied) == sorted(confirmed.values())
        assert sorted(a.payment_id for a in fake.applied) == sorted(f"ch_{n}" for n in range(SOAK_N))
        assert {f.label for f in SOAK_FAULTS} <= {c.fault for c in fake.calls}  # every kind hit
        _assert_retry_after_respected(fake.calls)


def test_paddle_soak_every_refund_applied_exactly_once():
    with FakePaddle(seed=11, hang_seconds=HANG) as fake:
        fake.faults.randomize(SOAK_FAULTS, method=None)
        api = PaddleApi("pdl_soak", base_url=fake.url, timeout=CLIENT_TIMEOUT, retry=POLICY)
        for n in range(SOAK_N):
            fake.add_transaction(f"txn_{n}", "EUR", [(f"txnitm_{n}", 1000 + n)], fee=50)
        confirmed = {}
        for n in range(SOAK_N):
            for run in range(10):  # a re-run always reconciles first
                try:
                    confirmed[n] = paddle_refund(api, request_id=f"rr_{n}", items=None,
                                                 transaction_id=f"txn_{n}",
                                                 reconcile_first=run > 0).provider_refund_id
                    break
                except (TransientProviderError, OutcomeUnknown):
                    continue
        assert len(confirmed) == SOAK_N
        assert sorted(a.refund_id for a in fake.applied) == sorted(confirmed.values())
        assert sorted(a.payment_id for a in fake.applied) == sorted(f"txn_{n}" for n in range(SOAK_N))
        assert {f.label for f in SOAK_FAULTS} <= {c.fault for c in fake.calls}  # every kind hit
        _assert_retry_after_respected(fake.calls)


def test_clients_from_settings_values(stripe_fake, paddle_fake):
    """What the providers build from the settings (STRIPE_API_BASE, PADDLE_API_BASE...)."""
    stripe_api = StripeApi("sk_test_env", base_url=stripe_fake.url, retry=POLICY)
    assert stripe_api.get_charge_fee("ch_1") == 175
    paddle_api = PaddleApi("pdl_env", environment="production", base_url=paddle_fake.url, retry=POLICY)
    assert paddle_api.get_transaction_fee("txn_1") == (250, "USD")
    with pytest.raises(ValueError):
        StripeApi("")
    with pytest.raises(ValueError):
        PaddleApi("k", environment="staging")
