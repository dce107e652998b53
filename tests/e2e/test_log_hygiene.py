"""T13: what the bridge logs while it works (webhooks good and forged, the API with tokens and
customer e-mails, refunds at the providers) holds no secret, signature, token or e-mail. The
records are caught before any redaction: the code itself must not log them."""
import io
import json
import logging
import re

import pytest

from bridge.logs import RedactingFilter
from tests.conftest import PADDLE_SECRET, STRIPE_SECRET, LICENSE_SECRET
from tests.e2e.test_refund_flow import LICENSE_ITEM, fakes, pay_stripe, register, shop  # noqa: F401 - fixtures
from tests.support.signing import stripe_headers

EMAIL = "a@example.com"


@pytest.fixture
def captured():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    loggers = [logging.getLogger(n) for n in ("bridge", "werkzeug", "stripe", "paddle_billing", "urllib3")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield stream
    for lg, level in zip(loggers, levels):
        lg.removeHandler(handler)
        lg.setLevel(level)


def test_logs_hold_no_secrets(shop, fakes, captured):  # noqa: F811
    import requests
    stripe, _ = fakes
    register(shop, "ord_log", "software-mor", [LICENSE_ITEM])
    shop.api("POST", "/orders", {"order_id": "ord_mail", "policy": "software-mor", "currency": "USD",
                                 "customer": {"id": "cus_m", "email": EMAIL, "country": "US"},
                                 "items": [LICENSE_ITEM]}, expect=201)
    pay_stripe(shop, stripe, "ord_log")
    body = json.dumps({"id": "evt_forged", "type": "charge.succeeded", "created": 1}).encode()
    bad = stripe_headers(body, "whsec_wrong")
    assert requests.post(shop.url + "/webhooks/stripe", data=body, headers=bad, timeout=10).status_code == 400
    requests.get(shop.url + "/api/v1/orders/ord_log", headers={"Authorization": "Bearer brg_not_a_token"}, timeout=10)
    shop.api("POST", "/refund-requests", {"order_id": "ord_log", "reason": "not_satisfied",
                                          "requested_at": "2026-03-05T10:00:00Z"}, expect=201)
    shop.drain()
    stripe.wait_webhooks()
    shop.drain()
    text = captured.getvalue()
    assert len(text) > 1000, "nothing was logged: the test would prove nothing"
    secrets = [STRIPE_SECRET, PADDLE_SECRET, LICENSE_SECRET, shop.token, "brg_not_a_token", EMAIL,
               bad["Stripe-Signature"].split("v1=")[1], "sk_test_bridge", "pdl_sdbx_apikey_test", "Bearer "]
    for secret in secrets:
        assert secret not in text, f"{secret[:12]}... reached the logs"
    assert not re.search(r"\b(?:\d[ -]?){13,19}\b", text.replace(".", "")), "card-number-like digits in logs"


def test_redacting_filter_is_a_second_net():
    record = logging.LogRecord("bridge", logging.INFO, __file__, 1, "key %s mail %s sig %s", (
        STRIPE_SECRET, EMAIL, "v1=" + "ab" * 32), None)
    RedactingFilter().filter(record)
    out = record.getMessage()
    assert STRIPE_SECRET not in out and EMAIL not in out and "ab" * 32 not in out
