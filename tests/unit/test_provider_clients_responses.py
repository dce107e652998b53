"""Unit tests of the Stripe and Paddle API clients with ``responses`` (the HTTP layer mocked
under both SDKs, which use ``requests``), beside the end-to-end tests on the fake providers:
each provider's answer exactly as chosen here, and every call counted.

- 429 with ``Retry-After``: retried, not before the provider asked;
- 500: retried (Stripe with the same Idempotency-Key; Paddle looks before posting again);
- a read timeout and a connection reset after the request was sent: the outcome is unknown
  (``OutcomeUnknown``), never a fresh request in the same call;
- a connection refused before anything was sent: transient, safe to retry;
- 4xx: permanent, one call.
"""
from __future__ import annotations

import json
import time

import pytest
import requests
import responses
from urllib3.exceptions import NewConnectionError, ProtocolError

from bridge.providers.outcomes import OutcomeUnknown, PermanentProviderError, TransientProviderError
from bridge.providers.paddle.api import PaddleApi
from bridge.providers.retry import RetryPolicy
from bridge.providers.stripe.api import StripeApi

STRIPE = "https://stripe.invalid"
PADDLE = "https://paddle.invalid"
POLICY = RetryPolicy.for_tests(attempts=3)

REFUND = {"id": "re_1", "object": "refund", "amount": 1000, "currency": "usd", "status": "succeeded",
          "charge": "ch_1", "payment_intent": "pi_1", "metadata": {"refund_request_id": "rr_1"},
          "reason": "requested_by_customer", "created": 1_772_359_200}


def _stripe() -> StripeApi:
    return StripeApi("sk_test_unit", base_url=STRIPE, timeout=1.0, connect_timeout=1.0, retry=POLICY)


def _create(api: StripeApi):
    return api.create_refund(charge_id="ch_1", amount=1000, reason="not_satisfied", metadata=None,
                             idempotency_key="refund-1", request_id="rr_1")


def _reset_after_send() -> requests.exceptions.ConnectionError:
    return requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")))


def _refused() -> requests.exceptions.ConnectionError:
    inner = requests.packages.urllib3.exceptions.MaxRetryError(
        None, "/v1/refunds", NewConnectionError(None, "Connection refused"))
    return requests.exceptions.ConnectionError(inner)


# --- Stripe ------------------------------------------------------------------------------------------

@responses.activate
def test_stripe_429_with_retry_after_waits_then_succeeds():
    responses.post(f"{STRIPE}/v1/refunds", status=429, headers={"Retry-After": "1"},
                   json={"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "slow down"}})
    responses.post(f"{STRIPE}/v1/refunds", json=REFUND)
    started = time.monotonic()
    result = _create(_stripe())
    assert result.provider_refund_id == "re_1" and result.status == "succeeded"
    assert len(responses.calls) == 2
    assert time.monotonic() - started >= 0.95  # not before the provider's Retry-After
    keys = {c.request.headers["Idempotency-Key"] for c in responses.calls}
    assert keys == {"refund-1"}


@responses.activate
def test_stripe_500_is_retried_with_the_same_idempotency_key():
    responses.post(f"{STRIPE}/v1/refunds", status=500,
                   json={"error": {"type": "api_error", "message": "boom"}})
    responses.post(f"{STRIPE}/v1/refunds", json=REFUND)
    assert _create(_stripe()).amount == 1000
    assert [c.request.headers["Idempotency-Key"] for c in responses.calls] == ["refund-1", "refund-1"]


@responses.activate
def test_stripe_500_every_time_gives_up_as_transient():
    responses.post(f"{STRIPE}/v1/refunds", status=500, json={"error": {"type": "api_error", "message": "boom"}})
    with pytest.raises(TransientProviderError) as err:
        _create(_stripe())
    assert err.value.attempts == 3 and len(responses.calls) == 3


@pytest.mark.parametrize("failure", [requests.exceptions.ReadTimeout("read timed out"), _reset_after_send()],
                         ids=["read timeout", "reset after send"])
@responses.activate
def test_stripe_no_answer_after_sending_is_an_unknown_outcome(failure):
    """Stripe keeps the first answer per Idempotency-Key: re-sending with the same key is how
    an unknown outcome is resolved (never a request under a new key); still no answer after
    the retries: the outcome is unknown, not a failure."""
    responses.post(f"{STRIPE}/v1/refunds", body=failure)
    with pytest.raises(OutcomeUnknown):
        _create(_stripe())
    assert len(responses.calls) == 3
    assert {c.request.headers["Idempotency-Key"] for c in responses.calls} == {"refund-1"}


@responses.activate
def test_stripe_reset_after_send_then_the_replayed_answer():
    responses.post(f"{STRIPE}/v1/refunds", body=_reset_after_send())
    responses.post(f"{STRIPE}/v1/refunds", json=REFUND, headers={"Idempotent-Replayed": "true"})
    assert _create(_stripe()).provider_refund_id == "re_1"
    assert [c.request.headers["Idempotency-Key"] for c in responses.calls] == ["refund-1", "refund-1"]


@responses.activate
def test_stripe_connection_refused_before_sending_is_transient():
    responses.post(f"{STRIPE}/v1/refunds", body=_refused())
    with pytest.raises(TransientProviderError):
        _create(_stripe())


@responses.activate
def test_stripe_4xx_is_permanent_after_one_call():
    responses.post(f"{STRIPE}/v1/refunds", status=400, json={"error": {
        "type": "invalid_request_error", "code": "charge_already_refunded", "message": "already refunded"}})
    with pytest.raises(PermanentProviderError) as err:
        _create(_stripe())
    assert err.value.code == "charge_already_refunded" and len(responses.calls) == 1


@responses.activate
def test_stripe_read_timeout_on_a_get_is_retried():
    responses.get(f"{STRIPE}/v1/refunds/re_1", body=requests.exceptions.ReadTimeout("slow"))
    responses.get(f"{STRIPE}/v1/refunds/re_1", json=REFUND)
    result = _stripe().get_refund("re_1")
    assert result.status == "succeeded" and len(responses.calls) == 2
    assert result.status_at is not None and result.status_at.timestamp() == 1_772_359_200


# --- Paddle ------------------------------------------------------------------------------------------

def _adjustment_json() -> dict:
    """A real-shaped adjustment body, as the local fake Paddle renders it."""
    from bridge.fakes import FakePaddle
    with FakePaddle(seed=3) as fake:
        fake.add_transaction("txn_1", "USD", [("txnitm_a", 3000)], fee=150)
        body = requests.post(fake.url + "/adjustments", timeout=10, headers={"Authorization": "Bearer x"}, json={
            "action": "refund", "transaction_id": "txn_1", "reason": "Refund [bridge-ref:rr_1] not satisfied",
            "type": "partial", "items": [{"item_id": "txnitm_a", "type": "partial", "amount": "1000"}]}).json()
    return body


@pytest.fixture(scope="module")
def adjustment() -> dict:
    return _adjustment_json()


def _paddle() -> PaddleApi:
    return PaddleApi("pdl_sdbx_apikey_unit", base_url=PADDLE, timeout=1.0, connect_timeout=1.0, retry=POLICY)


def _paddle_refund(api: PaddleApi, **kw):
    return api.create_refund(transaction_id="txn_1", request_id="rr_1", reason="not satisfied",
                             items=[("txnitm_a", 1000)], **kw)


def _listing(adjustments: list) -> dict:
    return {"data": adjustments, "meta": {"request_id": "req_1", "pagination": {
        "per_page": 50, "next": f"{PADDLE}/adjustments?after=x", "has_more": False, "estimated_total": len(adjustments)}}}


@responses.activate
def test_paddle_429_with_retry_after_waits_then_succeeds(adjustment):
    responses.post(f"{PADDLE}/adjustments", status=429, headers={"Retry-After": "1"},
                   json={"error": {"type": "request_error", "code": "too_many_requests", "detail": "slow down",
                                   "documentation_url": "https://developer.paddle.com/errors"},
                         "meta": {"request_id": "r"}})
    responses.post(f"{PADDLE}/adjustments", status=201, json=adjustment)
    started = time.monotonic()
    result = _paddle_refund(_paddle())
    assert result.provider_refund_id == adjustment["data"]["id"] and result.status == "pending"
    assert [c.request.method for c in responses.calls] == ["POST", "POST"]
    assert time.monotonic() - started >= 0.95


@responses.activate
def test_paddle_500_looks_for_ours_before_posting_again(adjustment):
    responses.post(f"{PADDLE}/adjustments", status=500,
                   json={"error": {"type": "api_error", "code": "internal_error", "detail": "boom",
                                   "documentation_url": "https://developer.paddle.com/errors"},
                         "meta": {"request_id": "r"}})
    # It was created after all: the listing finds it by our request id, and no second POST goes out.
    responses.get(f"{PADDLE}/adjustments", json=_listing([adjustment["data"]]))
    result = _paddle_refund(_paddle())
    assert result.request_id == "rr_1"
    assert [c.request.method for c in responses.calls] == ["POST", "GET"]


@pytest.mark.parametrize("failure", [requests.exceptions.ReadTimeout("read timed out"), _reset_after_send()],
                         ids=["read timeout", "reset after send"])
@responses.activate
def test_paddle_no_answer_after_sending_is_an_unknown_outcome(failure):
    responses.post(f"{PADDLE}/adjustments", body=failure)
    with pytest.raises(OutcomeUnknown):
        _paddle_refund(_paddle())
    assert len(responses.calls) == 1


@responses.activate
def test_paddle_4xx_is_permanent_after_one_call():
    responses.post(f"{PADDLE}/adjustments", status=400, json={"error": {
        "type": "request_error", "code": "adjustment_total_amount_above_remaining_allowed", "detail": "too much",
        "documentation_url": "https://developer.paddle.com/errors/adjustments"},
        "meta": {"request_id": "r"}})
    with pytest.raises(PermanentProviderError) as err:
        _paddle_refund(_paddle())
    assert err.value.code == "adjustment_total_amount_above_remaining_allowed" and len(responses.calls) == 1


def test_the_mocked_bodies_are_json():
    assert json.dumps(REFUND)


@responses.activate
def test_stripe_isk_refunds_are_sent_and_read_in_stripes_unit():
    responses.post(f"{STRIPE}/v1/refunds", json={**REFUND, "amount": 100_000, "currency": "isk"})
    result = _stripe().create_refund(charge_id="ch_1", amount=1000, reason=None, idempotency_key="refund-isk",
                                     currency="ISK")
    assert "amount=100000" in responses.calls[0].request.body
    assert (result.amount, result.currency) == (1000, "ISK")
