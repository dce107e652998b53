"""The shared retry policy on its own: no HTTP, a recorded sleep instead of a real one."""
from __future__ import annotations

import socket

import pytest
import requests

from bridge.providers.outcomes import OutcomeUnknown, PermanentProviderError, TransientProviderError
from bridge.providers.retry import (
    RetryAfterGate,
    RetryPolicy,
    call_with_retry,
    parse_retry_after,
    request_maybe_sent,
)


class Script:
    """A fake operation: raises the scripted errors in turn, then returns "ok"."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class Clock:
    """A fake monotonic clock that the recorded sleep advances."""

    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self):
        return self.now


POLICY = RetryPolicy(attempts=5, multiplier=0.5, max_wait=2.0, max_retry_after=10.0)


def test_permanent_error_is_called_exactly_once():
    op, clock = Script(PermanentProviderError("charge_already_refunded", "no")), Clock()
    with pytest.raises(PermanentProviderError) as err:
        call_with_retry(op, POLICY, sleep=clock.sleep)
    assert op.calls == 1 and clock.sleeps == [] and err.value.attempts == 1


def test_outcome_unknown_is_not_retried_unless_asked():
    op = Script(OutcomeUnknown("lost"))
    with pytest.raises(OutcomeUnknown):
        call_with_retry(op, POLICY, sleep=lambda s: None)
    assert op.calls == 1
    op = Script(OutcomeUnknown("lost"))
    assert call_with_retry(op, POLICY, sleep=lambda s: None,
                           retry_on=(TransientProviderError, OutcomeUnknown)) == "ok"
    assert op.calls == 2


def test_transient_errors_back_off_with_jitter_up_to_the_bound():
    op, clock = Script(*[TransientProviderError("503")] * 10), Clock()
    with pytest.raises(TransientProviderError) as err:
        call_with_retry(op, POLICY, sleep=clock.sleep)
    assert op.calls == POLICY.attempts and err.value.attempts == POLICY.attempts
    assert len(clock.sleeps) == POLICY.attempts - 1
    caps = [min(POLICY.max_wait, POLICY.multiplier * 2 ** n) for n in range(len(clock.sleeps))]
    assert all(0 <= s <= cap for s, cap in zip(clock.sleeps, caps))


def test_transient_then_success():
    op = Script(TransientProviderError("500"), TransientProviderError("502"))
    assert call_with_retry(op, POLICY, sleep=lambda s: None) == "ok" and op.calls == 3


def test_retry_after_is_a_floor_on_the_wait():
    op, clock = Script(TransientProviderError("429", retry_after=3)), Clock()
    gate = RetryAfterGate(clock=clock, sleep=clock.sleep)
    assert call_with_retry(op, POLICY, gate=gate, sleep=clock.sleep) == "ok"
    assert sum(clock.sleeps) >= 3


def test_retry_after_beyond_the_bound_stops_at_once():
    op, clock = Script(TransientProviderError("429", retry_after=60)), Clock()
    with pytest.raises(TransientProviderError) as err:
        call_with_retry(op, POLICY, sleep=clock.sleep)
    assert op.calls == 1 and clock.sleeps == [] and err.value.retry_after == 60


def test_gate_holds_every_operation_of_the_client():
    clock = Clock()
    gate = RetryAfterGate(clock=clock, sleep=clock.sleep)
    call_with_retry(Script(TransientProviderError("429", retry_after=4)), POLICY, gate=gate,
                    sleep=lambda s: None)  # the policy's own sleep skipped: the gate still waits
    assert sum(clock.sleeps) >= 4
    gate.hold(5)
    start = clock.now
    assert call_with_retry(Script(), POLICY, gate=gate, sleep=clock.sleep) == "ok"
    assert clock.now - start >= 5
    gate.hold(30)  # longer than max_retry_after: no call, the caller gets the time left
    op = Script()
    with pytest.raises(TransientProviderError) as err:
        call_with_retry(op, POLICY, gate=gate, sleep=clock.sleep)
    assert op.calls == 0 and err.value.attempts == 0 and err.value.retry_after == pytest.approx(30)


def test_policy_validation():
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    fast = RetryPolicy.for_tests()
    assert fast.max_wait < 0.1 and fast.attempts >= 2


@pytest.mark.parametrize("value, expected", [
    ("1", 1.0), ("0.5", 0.5), (" 7 ", 7.0), (None, None), ("", None), ("soon", None),
    ("-3", 0.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
])
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value) == expected


def test_request_maybe_sent():
    with socket.socket() as s:  # a port with nothing listening: refused, never sent
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(requests.ConnectionError) as refused:
        requests.post(f"http://127.0.0.1:{port}/", timeout=1)
    assert request_maybe_sent(refused.value) is False
    assert request_maybe_sent(requests.exceptions.ConnectTimeout()) is False
    assert request_maybe_sent(requests.exceptions.ReadTimeout()) is True
    assert request_maybe_sent(requests.ConnectionError(ConnectionResetError())) is True
