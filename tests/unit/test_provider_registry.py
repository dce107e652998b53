"""The provider seam: the registry lists both providers, each implements the ``Provider``
protocol, and what used to be chosen by comparing names is now asked of the provider."""
from __future__ import annotations

import inspect
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from bridge.domain.follow_ups import FETCH_FEE, LINK_PAYMENT
from bridge.providers import registry
from bridge.providers.base import Provider, ProviderBooks
from bridge.providers.outcomes import PermanentProviderError
from bridge.providers.signatures import SignatureError
from bridge.settings import Settings
from tests.support.signing import paddle_headers, stripe_headers

SETTINGS = Settings(database_url="sqlite://", stripe_webhook_secrets=("whsec_a",),
                    paddle_webhook_secrets=("pdl_a",))
NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)

# The members the protocol declares (methods, properties, attributes), read from the class.
MEMBERS = sorted(n for n in {*vars(Provider), *Provider.__annotations__}
                 if not n.startswith("_"))


def _payment(**kw):
    fields = dict(id=7, provider="stripe", amount=4900, currency="USD", fee=None, paid_at=NOW, order_ref="ord_1",
                  purchase="initial", transaction_id=None, charge_id=None, payment_intent_id=None, invoice_id=None,
                  subscription_id=None, balance_transaction_id=None)
    fields.update(kw)
    return SimpleNamespace(**fields)


def test_registry_lists_both_providers():
    assert registry.names() == ("stripe", "paddle")
    providers = registry.build(SETTINGS)
    assert list(providers) == ["stripe", "paddle"]
    with pytest.raises(registry.UnknownProvider):
        providers["adyen"]
    with pytest.raises(registry.UnknownProvider):
        registry.provider_class("adyen")


@pytest.mark.parametrize("name", registry.names())
def test_each_provider_implements_the_protocol(name):
    provider = registry.build(SETTINGS)[name]
    assert isinstance(provider, Provider)
    assert provider.name == name
    assert registry.provider_class(name) is type(provider)
    for member in MEMBERS:  # runtime_checkable checks presence only: compare signatures too
        declared = inspect.getattr_static(Provider, member, None)
        if callable(declared):
            got = inspect.signature(getattr(provider, member))
            want = inspect.signature(declared.__get__(provider))
            assert list(got.parameters) == list(want.parameters), (name, member)
        else:
            assert hasattr(provider, member), (name, member)
    # The listing calls of sync are not implemented by anyone yet (added by the sync work).
    assert not isinstance(provider, ProviderBooks)


def test_something_missing_is_not_a_provider():
    class Half:
        name = "half"
        signature_header = "Half-Signature"

        def parse(self, payload):
            return None

    assert not isinstance(Half(), Provider)


def test_verify_uses_each_providers_scheme_and_secrets():
    providers = registry.build(SETTINGS)
    body = b'{"id": "evt_1"}'
    ts = 1_770_000_000
    s_header = stripe_headers(body, "whsec_a", ts)["Stripe-Signature"]
    p_header = paddle_headers(body, "pdl_a", ts)["Paddle-Signature"]
    assert providers["stripe"].verify(body, s_header, now=ts) == ts
    assert providers["paddle"].verify(body, p_header, now=ts) == ts
    with pytest.raises(SignatureError):
        providers["paddle"].verify(body, s_header, now=ts)  # one provider's header is not the other's
    with pytest.raises(SignatureError):
        providers["stripe"].verify(body, s_header, now=ts + 301)  # outside the window
    bare = registry.build(Settings(database_url="sqlite://"))
    assert not bare["stripe"].webhooks_configured and not bare["paddle"].webhooks_configured
    with pytest.raises(SignatureError, match="no webhook secret"):
        bare["stripe"].verify(body, s_header, now=ts)  # fails closed


def test_envelopes():
    providers = registry.build(SETTINGS)
    s = providers["stripe"].envelope({"id": "evt_1", "type": "charge.succeeded", "created": 1_770_000_000})
    assert (s.event_id, s.event_type, s.occurred_at) == ("evt_1", "charge.succeeded",
                                                         datetime.fromtimestamp(1_770_000_000, timezone.utc))
    p = providers["paddle"].envelope({"event_id": "evt_p", "event_type": "transaction.completed",
                                      "occurred_at": "2026-11-01T00:00:00Z"})
    assert (p.event_id, p.event_type, p.occurred_at) == ("evt_p", "transaction.completed", NOW)
    assert providers["paddle"].envelope({"occurred_at": "not a time"}).occurred_at is None


def test_follow_ups_are_the_providers_answer():
    stripe = registry.build(SETTINGS)["stripe"]
    paddle = registry.build(SETTINGS)["paddle"]
    invoice_only = _payment(invoice_id="in_1")
    assert [(f.kind, f.dedupe_key) for f in stripe.follow_ups(invoice_only, after="payment")] == [
        (LINK_PAYMENT, "invoice:stripe:in_1")]
    fee_unknown = _payment(charge_id="ch_1", balance_transaction_id="txn_bt")
    assert [(f.kind, f.dedupe_key) for f in stripe.follow_ups(fee_unknown, after="payment")] == [
        (FETCH_FEE, "fee:stripe:txn_bt")]
    # A fee report names a balance transaction for a payment found by its payment intent.
    by_intent = _payment(payment_intent_id="pi_1", balance_transaction_id="txn_bt")
    assert stripe.follow_ups(by_intent, after="payment") == ()
    assert [f.kind for f in stripe.follow_ups(by_intent, after="fee_reported")] == [FETCH_FEE]
    assert stripe.follow_ups(_payment(charge_id="ch_1", balance_transaction_id="b", fee=10), after="payment") == ()
    assert paddle.follow_ups(_payment(provider="paddle", transaction_id="txn_1", invoice_id="in_1"),
                             after="payment") == ()
    assert paddle.link_payment(_payment(provider="paddle", transaction_id="txn_1"), NOW) is None


def test_provider_rules_asked_not_compared():
    assert registry.provider_class("paddle").one_pending_refund_per_payment is True
    assert registry.provider_class("stripe").one_pending_refund_per_payment is False
    assert registry.provider_class("paddle").dispute_lost_before_won("chargeback_reverse") is True
    assert registry.provider_class("paddle").dispute_lost_before_won("chargeback") is False
    assert registry.provider_class("stripe").dispute_lost_before_won("won") is False


def test_api_needs_its_key():
    bare = registry.build(Settings(database_url="sqlite://"))
    with pytest.raises(RuntimeError, match="STRIPE_API_KEY"):
        bare["stripe"].api
    with pytest.raises(RuntimeError, match="PADDLE_API_KEY"):
        bare["paddle"].api


def test_paddle_partial_refund_without_line_ids_is_refused_before_any_call():
    from bridge.providers.base import RefundCall
    paddle = registry.build(Settings(database_url="sqlite://"))["paddle"]  # no key: any call would raise
    call = RefundCall(refund_id=1, request_id="rr_1", amount=500, currency="USD",
                      items=({"item_id": "a", "provider_item_id": None, "amount": 500, "line_amount": 900},),
                      full_transaction=False, transaction_id="txn_1", charge_id=None, payment_intent_id=None,
                      order_id="ord_1", reason="changed_mind", may_exist=False)
    with pytest.raises(PermanentProviderError) as err:
        paddle.create_refund(call)
    assert err.value.code == "no_line_items"
