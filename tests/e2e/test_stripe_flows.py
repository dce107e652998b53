"""Every way a merchant sells through Stripe (issue 12): Checkout-only and invoice-only merchants
(the bridge asks Stripe for the money it was not told), manual capture, invoice payments and
thin events, each booking what the snapshot flow of the same story books."""
from __future__ import annotations

import time

import pytest
import requests

from bridge.fakes.stripe_server import FakeStripe
from tests.conftest import STRIPE_SECRET, test_settings
from tests.e2e.test_refund_flow import LICENSE_ITEM, register, request_refund, settle
from tests.fixtures import stripe_payloads as sp
from tests.support.api import auth, token
from tests.support.harness import Shop

T0 = 1_772_359_200  # 2026-03-01T10:00:00Z
DAY = 86_400
SUB_ITEM = {"item_id": "li_sub", "sku": "team-plan", "category": "saas_subscription", "billing": "monthly",
            "amount": 2900, "price_id": "price_sub"}


@pytest.fixture
def fake():
    f = FakeStripe()
    f.start()
    yield f
    f.stop()


@pytest.fixture
def shop(db_url, tmp_path, fake):
    s = Shop(test_settings(db_url, tmp_path, stripe_api_base=fake.url, refund_poll_seconds=3600))
    fake.webhook_url, fake.webhook_secret = s.url + "/webhooks/stripe", STRIPE_SECRET
    yield s
    s.close()


def recon(shop) -> dict:
    r = requests.get(shop.url + "/api/v1/reconciliation?from=2026-03-01&to=2027-01-01",
                     headers=auth(token(shop.rt, "finance:read")), timeout=10)
    assert r.status_code == 200, r.text
    return {(t["provider"], t["currency"]): t for t in r.json()["totals"]}


def sums(ledger) -> dict:
    out: dict = {}
    for kind, amount, *_ in ledger:
        out[kind] = out.get(kind, 0) + amount
    return out


# --- the bridge asks for the money it was not told -----------------------------------------------

def test_checkout_only_order_is_paid_with_its_fee_refundable_and_reconciled(shop, fake):
    register(shop, "ord_co", "software-mor", [LICENSE_ITEM])
    fake.add_charge("ch_co", "pi_co", 4900, "usd", fee=172, metadata={"order_id": "ord_co"}, created=T0)
    # The merchant subscribes to checkout.session.completed only.
    shop.stripe(sp.checkout_session_completed(session_id="cs_co", payment_intent="pi_co", amount_total=4900,
                                              metadata={"order_id": "ord_co"}, session_created=T0 - 120,
                                              created=T0 + 30))
    started = time.monotonic()
    shop.drain()
    assert time.monotonic() - started < 10
    order = shop.order("ord_co")
    assert order["status"] == "paid"
    [payment] = order["payments"]
    assert (payment["amount"], payment["fee"], payment["paid_at"]) == (4900, 172, "2026-03-01T10:00:00Z")
    assert payment["provider_ids"]["charge_id"] == "ch_co"
    assert sums(shop.ledger("ord_co")) == {"sale": 4900, "fee": -172}
    # One fetch of the PaymentIntent, with its charge and balance transaction expanded.
    [call] = fake.calls_to("GET", "/v1/payment_intents/pi_co")
    assert "latest_charge.balance_transaction" in call.query
    rr = request_refund(shop, "ord_co", at="2026-03-05T10:00:00Z")
    assert rr["status"] == "approved", rr
    done = settle(shop, fake, rr["id"], "refunded")
    assert [a.payment_id for a in fake.applied] == ["ch_co"]
    totals = recon(shop)[("stripe", "USD")]
    assert (totals["gross"], totals["fees"], totals["refunds"]) == (4900, 172, done["decision"]["refund_amount"])


def test_a_charge_event_first_makes_the_fetch_unneeded(shop, fake):
    register(shop, "ord_both", "software-mor", [LICENSE_ITEM])
    fake.add_charge("ch_both", "pi_both", 4900, "usd", fee=172, balance_transaction_id="txn_both", created=T0)
    shop.stripe(sp.charge_succeeded(charge_id="ch_both", payment_intent_id="pi_both", metadata={"order_id": "ord_both"},
                                    balance_transaction="txn_both", created=T0))
    shop.drain()
    shop.stripe(sp.checkout_session_completed(session_id="cs_both", payment_intent="pi_both", amount_total=4900,
                                              metadata={"order_id": "ord_both"}, created=T0 + 30))
    shop.drain()
    assert fake.calls_to("GET", "/v1/payment_intents") == []
    assert sums(shop.ledger("ord_both")) == {"sale": 4900, "fee": -172}


def test_payment_not_taken_yet_is_asked_again_until_it_is(shop, fake):
    """A session whose PaymentIntent is still processing at Stripe: nothing is booked; the
    fetch is retried, and books the money once Stripe has taken it."""
    register(shop, "ord_slow", "software-mor", [LICENSE_ITEM])
    fake.put_object(sp.payment_intent_object(payment_intent_id="pi_slow", status="processing", latest_charge=None,
                                             metadata={"order_id": "ord_slow"}))
    shop.stripe(sp.checkout_session_completed(session_id="cs_slow", payment_intent="pi_slow", amount_total=4900,
                                              metadata={"order_id": "ord_slow"}, created=T0 + 30))
    shop.drain(until=lambda: len(fake.calls_to("GET", "/v1/payment_intents/pi_slow")) >= 2, timeout=30)
    assert shop.ledger("ord_slow") == []
    assert shop.order("ord_slow")["status"] == "awaiting_payment"
    fake.add_charge("ch_slow", "pi_slow", 4900, "usd", fee=150, created=T0 + 60)
    fake.objects.pop("pi_slow")  # now served from the charge: succeeded
    shop.drain(until=lambda: shop.ledger("ord_slow") != [], timeout=30)
    assert sums(shop.ledger("ord_slow")) == {"sale": 4900, "fee": -150}


def test_subscription_whose_only_event_is_invoice_paid(shop, fake):
    register(shop, "ord_sub", "software-mor", [SUB_ITEM])
    fake.add_charge("ch_sub", "pi_sub", 2900, "usd", fee=114, created=T0 + 3)
    fake.add_invoice_payment("in_sub", "pi_sub", 2900)
    shop.stripe(sp.invoice_paid(invoice_id="in_sub", billing_reason="subscription_create", subscription="sub_1",
                                subscription_metadata={"order_id": "ord_sub"}, customer="cus_ord_sub",
                                lines=[{"price_id": "price_sub", "amount": 2900}], period_start=T0, created=T0,
                                paid_at=T0 + 5))
    started = time.monotonic()
    shop.drain()
    assert time.monotonic() - started < 10
    order = shop.order("ord_sub")
    assert order["status"] == "paid"
    [payment] = order["payments"]
    assert (payment["amount"], payment["fee"], payment["purchase"]) == (2900, 114, "initial")
    assert payment["provider_ids"]["invoice_id"] == "in_sub" and payment["provider_ids"]["charge_id"] == "ch_sub"
    assert sums(shop.ledger("ord_sub")) == {"sale": 2900, "fee": -114}
    rr = request_refund(shop, "ord_sub", reason="changed_mind", at="2026-03-02T10:00:00Z")
    assert rr["status"] in ("approved", "denied", "review") and rr["decision"]["currency"] == "USD"
    totals = recon(shop)[("stripe", "USD")]
    assert (totals["gross"], totals["fees"]) == (2900, 114)


def test_subscription_checkout_only(shop, fake):
    """A Checkout Session in subscription mode names its invoice, not a payment intent: the
    bridge asks which payment paid the invoice, then for that payment's money."""
    register(shop, "ord_scs", "software-mor", [SUB_ITEM])
    fake.add_charge("ch_scs", "pi_scs", 2900, "usd", fee=114, created=T0)
    fake.add_invoice_payment("in_scs", "pi_scs", 2900)
    shop.stripe(sp.checkout_session_completed(session_id="cs_scs", mode="subscription", invoice="in_scs",
                                              subscription="sub_scs", amount_total=2900,
                                              metadata={"order_id": "ord_scs"}, created=T0 + 30))
    shop.drain()
    [payment] = shop.order("ord_scs")["payments"]
    assert (payment["amount"], payment["fee"], payment["provider_ids"]["charge_id"]) == (2900, 114, "ch_scs")
    assert sums(shop.ledger("ord_scs")) == {"sale": 2900, "fee": -114}


# --- stories told two ways ------------------------------------------------------------------------

def summary(shop, order_id: str) -> dict:
    """What a story leaves, without the provider ids (which differ between the two tellings)."""
    order = shop.order(order_id)
    return {
        "status": order["status"],
        "ledger": sorted((k, a, c, str(t)) for k, a, c, t, _ in shop.ledger(order_id)),
        "payments": [(p["amount"], p["fee"], p["purchase"], p["paid_at"]) for p in order["payments"]],
        "refunds": sorted((r["amount"], r["status"]) for r in order["refunds"]),
        "disputes": [(d["status"], d["funds_withdrawn"], d["fee"]) for d in order["disputes"]],
        "licenses": sorted(lic["status"] for lic in order["licenses"]),
    }


def manual_capture_story(x: str, captured: int = 4900) -> list[dict]:
    bt = f"txn_{x}"
    common = dict(charge_id=f"ch_{x}", payment_intent_id=f"pi_{x}", amount=4900, metadata={"order_id": f"ord_{x}"},
                  created=T0)
    return [sp.charge_succeeded(captured=False, **common),
            sp.event("charge.captured", dict(sp.charge_object(balance_transaction=bt, **common),
                                             amount_captured=captured), created=T0 + 3600)]


def test_manual_capture_books_only_the_captured_money(shop, fake):
    register(shop, "ord_auto", "software-mor", [LICENSE_ITEM])
    fake.balance_transactions["txn_auto"] = sp.balance_transaction(bt_id="txn_auto", fee=172, source="ch_auto")
    shop.stripe(sp.charge_succeeded(charge_id="ch_auto", payment_intent_id="pi_auto", metadata={"order_id": "ord_auto"},
                                    balance_transaction="txn_auto", created=T0))
    shop.drain()

    register(shop, "ord_man", "software-mor", [LICENSE_ITEM])
    fake.balance_transactions["txn_man"] = sp.balance_transaction(bt_id="txn_man", fee=172, source="ch_man")
    authorized, captured = manual_capture_story("man")
    shop.stripe(authorized)
    shop.drain()
    assert shop.ledger("ord_man") == [] and shop.order("ord_man")["status"] == "awaiting_payment"
    shop.stripe(captured)
    shop.drain()
    assert summary(shop, "ord_man") == summary(shop, "ord_auto")

    # A partial capture takes (and books) less than was authorized.
    register(shop, "ord_part", "software-mor", [LICENSE_ITEM])
    fake.balance_transactions["txn_part"] = sp.balance_transaction(bt_id="txn_part", amount=3900, fee=143)
    for ev in manual_capture_story("part", captured=3900):
        shop.stripe(ev)
    shop.drain()
    assert sums(shop.ledger("ord_part")) == {"sale": 3900, "fee": -143}


def invoice_story(x: str, *, with_invoice_payment: bool) -> list[dict]:
    meta = {"order_id": f"ord_{x}"}
    events = [sp.invoice_paid(invoice_id=f"in_{x}", billing_reason="subscription_create", subscription=f"sub_{x}",
                              subscription_metadata=meta, customer=f"cus_{x}",
                              lines=[{"price_id": "price_sub", "amount": 2900}], period_start=T0, created=T0,
                              paid_at=T0 + 5)]
    if with_invoice_payment:
        events.append(sp.event("invoice_payment.paid", {
            "id": f"inpay_{x}", "object": "invoice_payment", "amount_paid": 2900, "amount_requested": 2900,
            "currency": "usd", "invoice": f"in_{x}", "is_default": True, "livemode": False, "status": "paid",
            "payment": {"type": "payment_intent", "payment_intent": f"pi_{x}"}, "created": T0 + 5,
            "status_transitions": {"paid_at": T0 + 5, "canceled_at": None}}, created=T0 + 5))
    events.append(sp.charge_succeeded(charge_id=f"ch_{x}", payment_intent_id=f"pi_{x}", amount=2900, metadata={},
                                      balance_transaction=f"txn_{x}", customer=f"cus_{x}", created=T0 + 3))
    return events


def test_invoice_payment_paid_links_the_invoice_without_asking(shop, fake):
    for x, with_ip in (("ipl", False), ("ipe", True)):
        register(shop, f"ord_{x}", "software-mor", [SUB_ITEM])
        fake.balance_transactions[f"txn_{x}"] = sp.balance_transaction(bt_id=f"txn_{x}", amount=2900, fee=114)
        fake.add_invoice_payment(f"in_{x}", f"pi_{x}", 2900)
        for ev in invoice_story(x, with_invoice_payment=with_ip):
            shop.stripe(ev)
        shop.drain()
    assert summary(shop, "ord_ipe") == summary(shop, "ord_ipl")
    assert sums(shop.ledger("ord_ipe")) == {"sale": 2900, "fee": -114}
    # Only the story without invoice_payment.paid asked /v1/invoice_payments.
    assert [c.query for c in fake.calls_to("GET", "/v1/invoice_payments")] == ["invoice=in_ipl&limit=100"]


# --- thin events ----------------------------------------------------------------------------------

def _dispute(x, event_type, status, **kw):
    return sp.dispute_event(event_type, dispute_id=f"dp_{x}", charge_id=f"ch_{x}", payment_intent_id=f"pi_{x}",
                            status=status, created=T0 + DAY, **kw)


def story_checkout(x):
    meta = {"order_id": f"ord_{x}"}
    return [
        sp.checkout_session_completed(session_id=f"cs_{x}", payment_intent=f"pi_{x}", amount_total=4900, metadata=meta,
                                      payment_status="unpaid", created=T0 - 60),
        sp.checkout_session_completed(event_type="checkout.session.async_payment_succeeded", session_id=f"cs_{x}",
                                      payment_intent=f"pi_{x}", amount_total=4900, metadata=meta, created=T0 + 60),
        sp.payment_intent_succeeded(payment_intent_id=f"pi_{x}", latest_charge=f"ch_{x}", metadata=meta, created=T0),
        sp.charge_succeeded(charge_id=f"ch_{x}", payment_intent_id=f"pi_{x}", metadata=meta, created=T0),
        sp.charge_updated(charge_id=f"ch_{x}", payment_intent_id=f"pi_{x}", metadata=meta, charge_created=T0,
                          balance_transaction=f"txn_{x}"),
        sp.refund_event("refund.created", refund_id=f"re_{x}", charge_id=f"ch_{x}", payment_intent_id=f"pi_{x}",
                        amount=1000, status="pending", created=T0 + DAY),
        sp.charge_refunded(charge_id=f"ch_{x}", payment_intent_id=f"pi_{x}", metadata=meta, charge_created=T0,
                           amount_refunded=1000, balance_transaction=f"txn_{x}", created=T0 + DAY),
        sp.refund_event("refund.updated", refund_id=f"re_{x}", charge_id=f"ch_{x}", payment_intent_id=f"pi_{x}",
                        amount=1000, status="succeeded", created=T0 + DAY + 60),
        sp.refund_event("charge.refund.updated", refund_id=f"re_{x}", charge_id=f"ch_{x}", payment_intent_id=f"pi_{x}",
                        amount=1000, status="succeeded", created=T0 + DAY + 60),
    ]


def story_capture_and_failed_refund(x):
    refund = dict(refund_id=f"re_{x}", charge_id=f"ch_{x}", payment_intent_id=f"pi_{x}", amount=4900)
    return [*manual_capture_story(x),
            sp.refund_event("refund.created", status="pending", created=T0 + DAY, **refund),
            sp.refund_event("refund.failed", created=T0 + DAY + 60, **refund)]


def story_subscription(x):
    return [*invoice_story(x, with_invoice_payment=True),
            sp.invoice_paid(event_type="invoice.payment_succeeded", invoice_id=f"in_{x}",
                            billing_reason="subscription_create", subscription=f"sub_{x}",
                            subscription_metadata={"order_id": f"ord_{x}"}, customer=f"cus_{x}",
                            lines=[{"price_id": "price_sub", "amount": 2900}], period_start=T0, created=T0,
                            paid_at=T0 + 5),
            sp.subscription_deleted(subscription_id=f"sub_{x}", customer=f"cus_{x}",
                                    metadata={"order_id": f"ord_{x}"}, created=T0 + 10 * DAY)]


def story_dispute(x):
    meta = {"order_id": f"ord_{x}"}
    return [sp.charge_succeeded(charge_id=f"ch_{x}", payment_intent_id=f"pi_{x}", metadata=meta,
                                balance_transaction=f"txn_{x}", created=T0),
            _dispute(x, "charge.dispute.created", "needs_response"),
            _dispute(x, "charge.dispute.funds_withdrawn", "needs_response"),
            _dispute(x, "charge.dispute.updated", "under_review"),
            _dispute(x, "charge.dispute.closed", "won"),
            _dispute(x, "charge.dispute.funds_reinstated", "won")]


STORIES = {"checkout": (story_checkout, LICENSE_ITEM), "capture": (story_capture_and_failed_refund, LICENSE_ITEM),
           "subscription": (story_subscription, SUB_ITEM), "dispute": (story_dispute, LICENSE_ITEM)}


def _tell(shop, fake, events, *, thin: bool) -> None:
    """Send a story, one event at a time as it happens: the fake knows every object of the
    story from the start (a Checkout Session's PaymentIntent exists before the session
    completes) and each one in its state at that moment (what a thin event's fetch reads)."""
    for ev in events:
        fake.put_object(ev["data"]["object"])
    for ev in events:
        obj = ev["data"]["object"]
        fake.put_object(obj)
        shop.stripe(fake.thin_event(ev["type"], obj, created=ev["created"]) if thin else ev)
        shop.drain()


@pytest.mark.parametrize("name", sorted(STORIES))
def test_thin_events_book_what_snapshots_book(shop, fake, name):
    story, item = STORIES[name]
    for x in (f"{name}s", f"{name}t"):
        register(shop, f"ord_{x}", "software-mor", [item])
        fake.balance_transactions[f"txn_{x}"] = sp.balance_transaction(bt_id=f"txn_{x}", amount=item["amount"],
                                                                       fee=150)
        fake.add_invoice_payment(f"in_{x}", f"pi_{x}", item["amount"])
    _tell(shop, fake, story(f"{name}s"), thin=False)
    _tell(shop, fake, story(f"{name}t"), thin=True)
    snap, thin = summary(shop, f"ord_{name}s"), summary(shop, f"ord_{name}t")
    assert thin == snap
    assert snap["ledger"], "the story booked nothing"


def test_every_handled_v1_type_is_in_a_thin_story():
    from bridge.providers.stripe.events import HANDLED_TYPES
    told = {ev["type"] for story, _ in STORIES.values() for ev in story("x")}
    # The fraud warning has its own tests (test_fraud_warnings.py), thin and snapshot, and so
    # have payouts (test_payouts.py): they are no order's story.
    assert HANDLED_TYPES - told <= {"radar.early_fraud_warning.created"} | {t for t in HANDLED_TYPES
                                                                            if t.startswith("payout.")}


def test_thin_event_types_the_bridge_does_not_handle_are_stored_and_ignored(shop, fake):
    obj = sp.charge_object(charge_id="ch_exp", status="failed", captured=False)
    shop.stripe(fake.thin_event("charge.expired", obj))
    shop.drain()
    with shop.rt.reads() as s:
        from bridge.ledger.models import WebhookEvent
        [row] = s.query(WebhookEvent).all()
        assert (row.event_type, row.status) == ("v1.charge.expired", "ignored")
    assert fake.calls_to("GET", "/v1/charges") == []


def test_thin_event_whose_object_is_gone_fails_visibly(shop, fake):
    ev = fake.thin_event("charge.succeeded", sp.charge_object(charge_id="ch_gone"))
    fake.objects.pop("ch_gone")
    shop.stripe(ev)
    shop.drain()
    with shop.rt.reads() as s:
        from bridge.ledger.models import WebhookEvent
        [row] = s.query(WebhookEvent).all()
        assert row.status == "failed" and "not found" in row.error
