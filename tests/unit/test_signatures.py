"""T10 at the unit level: the signature matrix for both providers."""
import hashlib
import hmac
import json

import pytest
import stripe
from hypothesis import given, settings, strategies as st

from bridge.providers.paddle.signature import sign_paddle, verify_paddle
from bridge.providers.signatures import SignatureError
from bridge.providers.stripe.signature import sign_stripe, verify_stripe

SECRET = "whsec_unit_secret"
OTHER = "whsec_other_secret"
BODY = json.dumps({"id": "evt_1", "type": "charge.succeeded", "data": {"object": {"amount": 4900}}}).encode()
NOW = 1_770_000_000

PROVIDERS = {
    "stripe": (verify_stripe, sign_stripe, ",", "t", "v1", b"."),
    "paddle": (verify_paddle, sign_paddle, ";", "ts", "h1", b":"),
}


def mac(secret, ts, body, joiner):
    return hmac.new(secret.encode(), str(ts).encode() + joiner + body, hashlib.sha256).hexdigest()


@pytest.fixture(params=sorted(PROVIDERS))
def p(request):
    return PROVIDERS[request.param]


def test_valid_signature_passes(p):
    verify, sign, *_ = p
    assert verify(BODY, sign(BODY, SECRET, NOW), [SECRET], now=NOW) == NOW


@pytest.mark.parametrize("header", [None, "", " ", "garbage", "t", "=", ",;", "ts=;h1="])
def test_missing_or_malformed_header(p, header):
    verify, *_ = p
    with pytest.raises(SignatureError):
        verify(BODY, header, [SECRET], now=NOW)


def test_no_timestamp_no_signature_non_numeric_duplicate_ts(p):
    verify, sign, sep, tk, sk, j = p
    good = mac(SECRET, NOW, BODY, j)
    for header in (f"{sk}={good}", f"{tk}={NOW}", f"{tk}=abc{sep}{sk}={good}",
                   f"{tk}={NOW}{sep}{tk}={NOW}{sep}{sk}={good}", f"{tk}=-5{sep}{sk}={good}",
                   f"{tk}={NOW}{sep}{sk}"):
        with pytest.raises(SignatureError):
            verify(BODY, header, [SECRET], now=NOW)


def test_wrong_secret(p):
    verify, sign, *_ = p
    with pytest.raises(SignatureError, match="no matching signature"):
        verify(BODY, sign(BODY, OTHER, NOW), [SECRET], now=NOW)


def test_one_byte_changed(p):
    verify, sign, *_ = p
    header = sign(BODY, SECRET, NOW)
    tampered = BODY.replace(b"4900", b"4901")
    with pytest.raises(SignatureError):
        verify(tampered, header, [SECRET], now=NOW)


def test_reserialised_json_fails(p):
    verify, sign, *_ = p
    header = sign(BODY, SECRET, NOW)
    reserialised = json.dumps(json.loads(BODY), separators=(",", ":")).encode()
    assert reserialised != BODY
    with pytest.raises(SignatureError):
        verify(reserialised, header, [SECRET], now=NOW)


def test_short_prefix_and_overlong_signature(p):
    verify, sign, sep, tk, sk, j = p
    good = mac(SECRET, NOW, BODY, j)
    for sig in (good[:32], good[:-1], good + "0", good.upper(), "", good[:1]):
        with pytest.raises(SignatureError):
            verify(BODY, f"{tk}={NOW}{sep}{sk}={sig}", [SECRET], now=NOW)


@pytest.mark.parametrize("delta,ok", [(-299, True), (299, True), (-300, True), (300, True),
                                      (-301, False), (301, False), (-100000, False), (100000, False)])
def test_timestamp_window_both_ways(p, delta, ok):
    verify, sign, *_ = p
    header = sign(BODY, SECRET, NOW + delta)
    if ok:
        verify(BODY, header, [SECRET], now=NOW, tolerance=300)
    else:
        with pytest.raises(SignatureError, match="tolerance"):
            verify(BODY, header, [SECRET], now=NOW, tolerance=300)


def test_configurable_tolerance(p):
    verify, sign, *_ = p
    header = sign(BODY, SECRET, NOW - 6)
    verify(BODY, header, [SECRET], now=NOW, tolerance=10)
    with pytest.raises(SignatureError):
        verify(BODY, header, [SECRET], now=NOW, tolerance=5)


def test_several_signatures_one_valid(p):
    verify, sign, sep, tk, sk, j = p
    good = mac(SECRET, NOW, BODY, j)
    bad = mac(OTHER, NOW, BODY, j)
    verify(BODY, f"{tk}={NOW}{sep}{sk}={bad}{sep}{sk}={good}", [SECRET], now=NOW)
    verify(BODY, f"{tk}={NOW}{sep}{sk}={good}{sep}{sk}=dummy", [SECRET], now=NOW)


def test_secret_rotation_old_and_new(p):
    """T14: during the overlap both secrets verify; after it, the old one alone fails."""
    verify, sign, *_ = p
    old_header, new_header = sign(BODY, OTHER, NOW), sign(BODY, SECRET, NOW)
    verify(BODY, old_header, [SECRET, OTHER], now=NOW)
    verify(BODY, new_header, [SECRET, OTHER], now=NOW)
    verify(BODY, new_header, [SECRET], now=NOW)
    with pytest.raises(SignatureError):
        verify(BODY, old_header, [SECRET], now=NOW)


@pytest.mark.parametrize("secrets", [[], [""], None])
def test_missing_secret_never_verifies(p, secrets):
    verify, sign, *_ = p
    with pytest.raises(SignatureError, match="secret"):
        verify(BODY, sign(BODY, "", NOW), secrets or [], now=NOW)


def test_unknown_keys_are_ignored_not_crashing(p):
    verify, sign, sep, tk, sk, j = p
    good = mac(SECRET, NOW, BODY, j)
    verify(BODY, f"{tk}={NOW}{sep}v0=abc{sep}h2=zzz{sep}{sk}={good}", [SECRET], now=NOW)


def test_compare_is_constant_time(p, monkeypatch):
    """As pay-rails asserts: the comparison goes through hmac.compare_digest."""
    verify, sign, *_ = p
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    verify(BODY, sign(BODY, SECRET, NOW), [SECRET], now=NOW)
    assert calls


@settings(max_examples=200, deadline=None)
@given(header=st.text(max_size=200), body=st.binary(max_size=200))
def test_fuzzed_headers_raise_only_signature_error(header, body):
    for verify in (verify_stripe, verify_paddle):
        try:
            verify(body, header, [SECRET], now=NOW)
        except SignatureError:
            pass


@settings(max_examples=100, deadline=None)
@given(text_body=st.text(max_size=300), age=st.integers(0, 290), valid=st.booleans())
def test_agrees_with_stripe_sdk_in_the_past_window(text_body, age, valid):
    """Our Stripe scheme matches stripe-python's own verifier (which checks only the past and
    reads the clock itself, hence real time here)."""
    import time
    body = text_body.encode()
    now = int(time.time())
    header = sign_stripe(body, SECRET if valid else OTHER, now - age)
    try:
        verify_stripe(body, header, [SECRET], now=now)
        ours = True
    except SignatureError:
        ours = False
    try:
        stripe.WebhookSignature.verify_header(text_body, header, SECRET, tolerance=300)
        sdk_ok = True
    except stripe.SignatureVerificationError:
        sdk_ok = False
    assert ours == sdk_ok == valid
