"""The order policy's ``early_fraud_warning`` rule under each of its values (issue 12): the
shipped policy file with its action changed, in a config directory of the test's own."""
from __future__ import annotations

import re
import shutil

import pytest

from bridge.settings import PROJECT_ROOT
from tests.conftest import PADDLE_SECRET, STRIPE_SECRET, test_settings
from tests.e2e.test_fraud_warnings import fraud_requests, warning
from tests.e2e.test_refund_flow import LICENSE_ITEM, fakes, pay_stripe, register, settle  # noqa: F401 - fixture
from tests.support.harness import Shop


def config_with(tmp_path, action: str):
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    (config / "policies" / "versions.lock").unlink(missing_ok=True)  # this copy is edited on purpose
    path = config / "policies" / "software-mor.toml"
    text, n = re.subn(r'(\[early_fraud_warning\]\naction = )"review"', rf'\1"{action}"', path.read_text())
    assert n == 1, "software-mor.toml has no early_fraud_warning rule to change"
    path.write_text(text)
    return config


def shop_for(db_url, tmp_path, fakes, action):
    stripe, paddle = fakes
    s = Shop(test_settings(db_url, tmp_path, config_dir=config_with(tmp_path, action), stripe_api_base=stripe.url,
                           paddle_api_base=paddle.url, refund_poll_seconds=3600))
    stripe.webhook_url, stripe.webhook_secret = s.url + "/webhooks/stripe", STRIPE_SECRET
    paddle.webhook_url, paddle.webhook_secret = s.url + "/webhooks/paddle", PADDLE_SECRET
    return s


@pytest.mark.parametrize("action", ["review", "refund", "ignore"])
def test_each_rule_value(db_url, tmp_path, fakes, action):
    stripe, _ = fakes
    shop = shop_for(db_url, tmp_path, fakes, action)
    try:
        register(shop, "ord_r", "software-mor", [LICENSE_ITEM])
        pay_stripe(shop, stripe, "ord_r", fee=172)
        shop.stripe(warning("ord_r"))
        shop.drain()
        found = fraud_requests(shop, "ord_r")
        if action == "ignore":
            assert found == [] and stripe.calls_to("POST", "/v1/refunds") == []
            return
        [rr] = found
        d = rr["decision"]
        assert [c["section"] for c in d["clauses"]] == ["6"]  # the rule cites the chargeback section
        if action == "review":
            assert (rr["status"], d["outcome"], d["refund_amount"]) == ("review", "review", 0)
            assert stripe.calls_to("POST", "/v1/refunds") == []
            return
        # refund: in full at once (no fee kept), through the normal execution path.
        assert (d["outcome"], d["refund_amount"], d["fee_deducted"]) == ("approved", 4900, 0)
        done = settle(shop, stripe, rr["id"], "refunded")
        assert [r["amount"] for r in done["refunds"]] == [4900]
        assert sum(a.amount for a in stripe.applied) == 4900
        assert shop.order("ord_r")["status"] == "refunded"
        assert {lic["status"] for lic in shop.order("ord_r")["licenses"]} == {"revoked"}
    finally:
        shop.close()
