"""The ledger end to end over HTTP, beyond the event sequences of test_ledger_sequences.py
(issue 3, "tests that must exist and pass"): unmatched payments and matching them later,
orders created from the catalog, orders registered first, zero-decimal currencies, Stripe fees
that arrive later, renewals, duplicate charges, a refund that fails after succeeding, a lost
dispute. Every test runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, select, text

from bridge.fakes.stripe_server import FakeStripe
from bridge.ledger.models import Base, Job, LedgerEntry, Order, OrderItem, Payment, PaymentItem
from tests.conftest import test_settings
from tests.fixtures import paddle_payloads as pp, stripe_payloads as sp
from tests.support.harness import Shop

T0 = 1_772_359_200  # 2026-03-01T10:00:00Z
DAY = 86_400
P0 = datetime(2026, 3, 1, 10, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def shop(settings):
    s = Shop(settings)
    yield s
    s.close()


@pytest.fixture
def fake_stripe():
    fake = FakeStripe(api_key="sk_test_bridge").start()
    yield fake
    fake.stop()


def query(shop: Shop, stmt) -> list:
    with shop.rt.reads() as s:
        return s.execute(stmt).all()


def unmatched(shop: Shop) -> list:
    """What finance sees as unmatched: payments no order claims, with their ledger entries."""
    return query(shop, select(Payment.provider, Payment.amount, Payment.currency, Payment.charge_id,
                              Payment.transaction_id).where(Payment.order_pk.is_(None)))


def unmatched_entries(shop: Shop) -> list:
    return sorted(query(shop, select(LedgerEntry.kind, LedgerEntry.amount, LedgerEntry.currency)
                        .where(LedgerEntry.order_pk.is_(None))))


def kinds(ledger: list) -> dict:
    out: dict = {}
    for kind, amount, *_ in ledger:
        out[kind] = out.get(kind, 0) + amount
    return out


def register(shop: Shop, order_id: str, items: list, policy: str = "software-mor", currency: str = "USD") -> dict:
    return shop.api("POST", "/orders", {"order_id": order_id, "policy": policy, "currency": currency,
                                        "customer": {"id": f"cus_{order_id}", "country": "DE"},
                                        "items": items}, expect=201).json()


def fresh(db_url: str, tmp_path, name: str, **overrides):
    """Settings on a database of its own (runs that must be compared)."""
    if db_url.startswith("sqlite"):
        dst = tmp_path / f"{name}.sqlite3"
        shutil.copy(db_url[len("sqlite:///"):], dst)
        return test_settings(f"sqlite:///{dst}", tmp_path, **overrides)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
                          + " RESTART IDENTITY CASCADE"))
    engine.dispose()
    return test_settings(db_url, tmp_path, **overrides)


def play(settings, provider: str, events: list, order_id: str) -> dict:
    shop = Shop(settings)
    try:
        for ev in events:
            shop.send(provider, ev)
        shop.drain()
        order = shop.order(order_id)
        return {"status": order["status"],
                "payments": [(p["amount"], p["fee"], p["paid_at"]) for p in order["payments"]],
                "refunds": sorted((r["provider_refund_id"], r["amount"], r["status"]) for r in order["refunds"]),
                "disputes": sorted((d["provider_dispute_id"], d["status"], d["funds_withdrawn"], d["fee"])
                                   for d in order["disputes"]),
                "ledger": shop.ledger(order_id), "unmatched": unmatched(shop)}
    finally:
        shop.close()


# --- unmatched payments ---------------------------------------------------------------------------

def test_unmatched_stripe_charge_is_kept_and_linked_when_its_checkout_session_names_the_order(shop):
    """A charge without our order id is a payment all the same: kept, booked, visible as
    unmatched; a dispute on it too. The Checkout Session of the same payment intent, arriving
    later with ``metadata.order_id``, links payment, ledger entries and dispute to the order
    the merchant registered meanwhile."""
    shop.stripe(sp.charge_succeeded(charge_id="ch_u1", payment_intent_id="pi_u1", amount=4900, customer="cus_u1",
                                    metadata={}, balance_transaction=None, created=T0))
    d = dict(dispute_id="dp_u1", charge_id="ch_u1", payment_intent_id="pi_u1", amount=4900, created=T0 + DAY)
    shop.stripe(sp.dispute_event("charge.dispute.created", status="needs_response", **d))
    shop.stripe(sp.dispute_event("charge.dispute.funds_withdrawn", status="needs_response", **d))
    shop.drain()
    assert unmatched(shop) == [("stripe", 4900, "USD", "ch_u1", None)]
    assert unmatched_entries(shop) == [("chargeback", -4900, "USD"), ("chargeback_fee", -1500, "USD"),
                                       ("sale", 4900, "USD")]
    fee = query(shop, select(Payment.fee))[0][0]
    assert fee is None  # the charge named no balance transaction: unknown, not 0

    register(shop, "ord_u1", [{"item_id": "li_1", "category": "license", "billing": "one_time", "amount": 4900,
                               "price_id": "price_u1"}])
    assert shop.order("ord_u1")["payments"] == []  # nothing names the order yet
    assert len(unmatched(shop)) == 1

    shop.stripe(sp.checkout_session_completed(session_id="cs_u1", mode="payment", payment_intent="pi_u1",
                                               amount_total=4900, metadata={"order_id": "ord_u1"},
                                               customer="cus_u1", created=T0 + 120))
    shop.drain()
    order = shop.order("ord_u1")
    assert unmatched(shop) == [] and unmatched_entries(shop) == []
    assert [(p["amount"], p["provider_ids"]["charge_id"], p["provider_ids"]["checkout_session_id"])
            for p in order["payments"]] == [(4900, "ch_u1", "cs_u1")]
    assert kinds(shop.ledger("ord_u1")) == {"sale": 4900, "chargeback": -4900, "chargeback_fee": -1500}
    assert [(x["provider_dispute_id"], x["status"]) for x in order["disputes"]] == [("dp_u1", "open")]
    assert order["status"] == "disputed" and order["source"] == "api"
    # The dispute came before the payment had an order: its license is suspended all the same.
    assert [(lic["item_id"], lic["status"]) for lic in order["licenses"]] == [("li_1", "suspended")]


def test_unmatched_paddle_transaction_is_kept_and_linked_by_a_later_event_naming_the_order(shop):
    """``custom_data: null``: the payment is kept with its sale and fee entries, order-less.
    An event of the same transaction that carries ``custom_data.order_id`` creates the order
    and moves payment and entries to it."""
    items = [{"price_id": "pri_u2", "product_id": "pro_u2", "amount": 4900,
              "custom_data": {"category": "license", "billing": "one_time"}}]
    txn = dict(txn_id="txn_u2", items=items, fee=295, customer_id="ctm_u2", subscription_id=None,
               billing_period=None, captured_at=P0)
    shop.paddle(pp.transaction_completed(custom_data=None, **txn))
    shop.drain()
    assert unmatched(shop) == [("paddle", 4900, "USD", None, "txn_u2")]
    assert unmatched_entries(shop) == [("fee", -295, "USD"), ("sale", 4900, "USD")]
    assert query(shop, select(Order.order_id)) == []

    shop.paddle(pp.transaction_completed(custom_data={"order_id": "ord_u2"}, **txn))
    shop.drain()
    order = shop.order("ord_u2")
    assert unmatched(shop) == [] and unmatched_entries(shop) == []
    assert [(p["amount"], p["fee"], p["provider_ids"]["transaction_id"]) for p in order["payments"]] == [
        (4900, 295, "txn_u2")]
    assert kinds(shop.ledger("ord_u2")) == {"sale": 4900, "fee": -295}
    assert order["status"] == "paid" and order["source"] == "provider"
    assert len(query(shop, select(LedgerEntry.id))) == 2  # linked, not booked twice


# --- orders created from a transaction / registered first ------------------------------------------

def test_unknown_order_is_created_from_the_catalog_else_from_the_prices_custom_data(shop):
    """config/catalog.toml: ``pri_01example_pro_license`` -> license/one_time/pro-license, policy
    software-mor (the catalog wins over the price's own custom_data); product
    ``pro_01example_training`` -> training; a line in neither takes the price's custom_data."""
    items = [{"price_id": "pri_01example_pro_license", "product_id": "pro_cat_1", "amount": 4900,
              "custom_data": {"category": "store_addon", "billing": "monthly"}},
             {"price_id": "pri_cat_addon", "product_id": "pro_cat_addon", "amount": 1500,
              "custom_data": {"category": "store_addon", "billing": "one_time", "sku": "addon-pack"}},
             {"price_id": "pri_cat_course", "product_id": "pro_01example_training", "amount": 900}]
    shop.paddle(pp.transaction_completed(txn_id="txn_cat", custom_data={"order_id": "ord_cat"}, items=items,
                                         fee=400, customer_id="ctm_cat", subscription_id=None,
                                         billing_period=None))
    shop.drain()
    order = shop.order("ord_cat")
    assert order["source"] == "provider" and order["policy"] == "software-mor" and order["status"] == "paid"
    assert order["currency"] == "USD" and order["customer"]["id"] == "ctm_cat"
    got = {i["price_id"]: (i["category"], i["billing"], i["sku"], i["amount"]) for i in order["items"]}
    assert got == {"pri_01example_pro_license": ("license", "one_time", "pro-license", 4900),
                   "pri_cat_addon": ("store_addon", "one_time", "addon-pack", 1500),
                   "pri_cat_course": ("training", "one_time", "training-plan", 900)}
    # Every payment line belongs to an order line.
    links = query(shop, select(PaymentItem.price_id, OrderItem.price_id)
                  .join(OrderItem, OrderItem.id == PaymentItem.order_item_pk))
    assert sorted(a for a, b in links if a == b) == sorted(got)


@pytest.mark.parametrize("provider", ["paddle", "stripe"])
def test_order_registered_first_then_paid_by_webhook(shop, provider):
    """POST /api/v1/orders with price ids, then the payment: its lines link to the order's items
    by price, the order keeps the merchant's classification and becomes ``paid``."""
    body = register(shop, "ord_reg", [
        {"item_id": "li_1", "sku": "pro-license", "category": "license", "billing": "one_time", "amount": 4900,
         "price_id": "pri_reg_1"},
        {"item_id": "li_2", "sku": "addon", "category": "store_addon", "billing": "one_time", "amount": 2000,
         "price_id": "pri_reg_2"}])
    assert body["status"] == "awaiting_payment" and body["payments"] == []
    if provider == "paddle":
        shop.paddle(pp.transaction_completed(
            txn_id="txn_reg", custom_data={"order_id": "ord_reg"}, customer_id="ctm_reg", subscription_id=None,
            billing_period=None, fee=400,
            items=[{"price_id": "pri_reg_2", "amount": 2000, "custom_data": {"category": "other"}},
                   {"price_id": "pri_reg_1", "amount": 4900}]))
    else:
        shop.stripe(sp.checkout_session_completed(
            session_id="cs_reg", payment_intent="pi_reg", metadata={"order_id": "ord_reg"}, customer="cus_reg",
            line_items=[{"price_id": "pri_reg_2", "amount": 2000}, {"price_id": "pri_reg_1", "amount": 4900}],
            created=T0 + 120))
        shop.stripe(sp.charge_succeeded(charge_id="ch_reg", payment_intent_id="pi_reg", amount=6900,
                                        metadata={"order_id": "ord_reg"}, customer="cus_reg",
                                        balance_transaction=None, created=T0))
    shop.drain()
    order = shop.order("ord_reg")
    assert order["status"] == "paid" and order["source"] == "api"
    assert [(i["item_id"], i["category"]) for i in order["items"]] == [("li_1", "license"), ("li_2", "store_addon")]
    assert [p["amount"] for p in order["payments"]] == [6900]
    links = query(shop, select(PaymentItem.price_id, PaymentItem.amount, OrderItem.item_id)
                  .join(OrderItem, OrderItem.id == PaymentItem.order_item_pk).order_by(OrderItem.item_id))
    assert links == [("pri_reg_1", 4900, "li_1"), ("pri_reg_2", 2000, "li_2")]
    assert sorted(lic["status"] for lic in order["licenses"]) == ["active", "active"]
    assert kinds(shop.ledger("ord_reg"))["sale"] == 6900


# --- money ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("provider", ["paddle", "stripe"])
def test_zero_decimal_currency_amounts_are_exact(shop, provider):
    """JPY has no minor unit: 4,900 yen is 4900 everywhere, never 490000 or 49."""
    if provider == "paddle":
        shop.paddle(pp.transaction_completed(
            txn_id="txn_jpy", currency="JPY", custom_data={"order_id": "ord_jpy"}, customer_id="ctm_jpy",
            subscription_id=None, billing_period=None, fee=295,
            items=[{"price_id": "pri_jpy", "amount": 4900, "custom_data": {"category": "license",
                                                                             "billing": "one_time"}}]))
        shop.drain()
        line = shop.order("ord_jpy")["payments"][0]["items"][0]["provider_item_id"]
        shop.paddle(pp.adjustment_event("adjustment.created", adjustment_id="adj_jpy", action="refund",
                                        status="approved", transaction_id="txn_jpy", currency="JPY",
                                        items=[{"item_id": line, "amount": 1000}], occurred_at=P0 + timedelta(days=1)))
        fee = 295
    else:
        shop.stripe(sp.charge_succeeded(
            charge_id="ch_jpy", payment_intent_id="pi_jpy", amount=4900, currency="jpy",
            metadata={"order_id": "ord_jpy"}, customer="cus_jpy", created=T0,
            balance_transaction=sp.balance_transaction(bt_id="txn_jpy", amount=4900, fee=196, currency="jpy",
                                                       source="ch_jpy")))
        shop.stripe(sp.refund_event("refund.updated", refund_id="re_jpy", charge_id="ch_jpy", payment_intent_id="pi_jpy",
                                    amount=1000, currency="jpy", status="succeeded", created=T0 + DAY))
        fee = 196
    shop.drain()
    order = shop.order("ord_jpy")
    assert order["currency"] == "JPY"
    assert [(p["amount"], p["fee"], p["net"], p["currency"]) for p in order["payments"]] == [
        (4900, fee, 4900 - fee, "JPY")]
    assert [(r["amount"], r["currency"], r["status"]) for r in order["refunds"]] == [(1000, "JPY", "succeeded")]
    assert sorted((k, a, c) for k, a, c, *_ in shop.ledger("ord_jpy")) == [
        ("fee", -fee, "JPY"), ("refund", -1000, "JPY"), ("sale", 4900, "JPY")]
    assert order["status"] == "partially_refunded"


def test_stripe_fee_arrives_later_with_charge_updated(shop):
    """Async capture: charge.succeeded has no balance transaction yet; the fee is unknown (None,
    not 0) and no fee entry exists until charge.updated brings the balance transaction."""
    ch = dict(charge_id="ch_f1", payment_intent_id="pi_f1", amount=4900, metadata={"order_id": "ord_f1"},
              customer="cus_f1")
    shop.stripe(sp.charge_succeeded(balance_transaction=None, created=T0, **ch))
    shop.drain()
    pay = shop.order("ord_f1")["payments"][0]
    assert (pay["amount"], pay["fee"], pay["net"]) == (4900, None, None)
    assert kinds(shop.ledger("ord_f1")) == {"sale": 4900}
    assert query(shop, select(Job.id).where(Job.kind == "fetch_fee")) == []

    bt = sp.balance_transaction(bt_id="txn_f1", amount=4900, fee=172, source="ch_f1", created=T0 + 60)
    shop.stripe(sp.charge_updated(balance_transaction=bt, charge_created=T0, created=T0 + 60, **ch))
    shop.drain()
    pay = shop.order("ord_f1")["payments"][0]
    assert (pay["amount"], pay["fee"], pay["net"]) == (4900, 172, 4728)
    assert kinds(shop.ledger("ord_f1")) == {"sale": 4900, "fee": -172}


def test_stripe_fee_fetched_from_the_balance_transaction(db_url, tmp_path, fake_stripe):
    """charge.succeeded names its balance transaction (an id, as webhooks do): the fee stays
    unknown until the fetch_fee job reads it from Stripe (here FakeStripe)."""
    fake_stripe.add_charge("ch_f2", "pi_f2", amount=4900, currency="usd", fee=172, balance_transaction_id="txn_f2")
    shop = Shop(test_settings(db_url, tmp_path, stripe_api_base=fake_stripe.url))
    try:
        shop.stripe(sp.charge_succeeded(charge_id="ch_f2", payment_intent_id="pi_f2", amount=4900,
                                        metadata={"order_id": "ord_f2"}, customer="cus_f2",
                                        balance_transaction="txn_f2", created=T0))
        assert shop.worker.run_once()  # the event only: the fee fetch is queued behind it
        pay = shop.order("ord_f2")["payments"][0]
        assert (pay["fee"], pay["net"]) == (None, None)
        assert kinds(shop.ledger("ord_f2")) == {"sale": 4900}
        assert [s for (s,) in query(shop, select(Job.state).where(Job.kind == "fetch_fee"))] == ["ready"]
        assert fake_stripe.calls_to("GET", "/v1/balance_transactions/") == []

        shop.drain()
        pay = shop.order("ord_f2")["payments"][0]
        assert (pay["fee"], pay["net"]) == (172, 4728)
        assert kinds(shop.ledger("ord_f2")) == {"sale": 4900, "fee": -172}
        assert len(fake_stripe.calls_to("GET", "/v1/balance_transactions/txn_f2")) == 1
    finally:
        shop.close()


# --- renewals and duplicates ----------------------------------------------------------------------

@pytest.mark.parametrize("provider", ["paddle", "stripe"])
def test_renewal_is_a_second_payment_on_the_same_order(shop, provider):
    if provider == "paddle":
        items = [{"price_id": "pri_ren", "product_id": "pro_ren", "amount": 2900, "billing_cycle": "month",
                  "custom_data": {"category": "saas_subscription", "billing": "monthly"}}]
        p1, p2, p3 = P0 + timedelta(days=31), P0 + timedelta(days=61), P0 + timedelta(days=92)
        common = dict(items=items, fee=200, customer_id="ctm_ren", subscription_id="sub_ren")
        shop.paddle(pp.transaction_completed(txn_id="txn_ren_1", origin="web", custom_data={"order_id": "ord_ren"},
                                             billing_period=(P0, p1), captured_at=P0, **common))
        shop.paddle(pp.transaction_completed(txn_id="txn_ren_2", origin="subscription_recurring",
                                             custom_data={"order_id": "ord_ren"}, billing_period=(p1, p2),
                                             captured_at=p1, **common))
        # A renewal without custom_data still belongs to its subscription's order.
        shop.paddle(pp.transaction_completed(txn_id="txn_ren_3", origin="subscription_recurring", custom_data=None,
                                             billing_period=(p2, p3), captured_at=p2, **common))
        n = 3
    else:
        meta = {"order_id": "ord_ren"}
        line = [{"price_id": "price_ren", "amount": 2900, "expand_price": True,
                 "price_metadata": {"category": "saas_subscription", "billing": "monthly"}}]
        shop.stripe(sp.checkout_session_completed(session_id="cs_ren", mode="subscription", metadata=meta,
                                                  amount_total=2900, invoice="in_ren_1", subscription="sub_ren",
                                                  customer="cus_ren", created=T0 + 10))
        for i, (reason, start) in enumerate((("subscription_create", T0), ("subscription_cycle", T0 + 31 * DAY))):
            shop.stripe(sp.invoice_paid(invoice_id=f"in_ren_{i + 1}", billing_reason=reason, subscription="sub_ren",
                                        subscription_metadata=meta, customer="cus_ren", lines=line,
                                        period_start=start, created=start, paid_at=start + 5,
                                        payment_intent_id=f"pi_ren_{i + 1}"))
            shop.stripe(sp.charge_succeeded(charge_id=f"ch_ren_{i + 1}", payment_intent_id=f"pi_ren_{i + 1}",
                                            amount=2900, customer="cus_ren", metadata={},
                                            balance_transaction=None, created=start + 3))
        n = 2
    shop.drain()
    order = shop.order("ord_ren")
    pays = order["payments"]
    assert [p["purchase"] for p in pays] == ["initial"] + ["renewal"] * (n - 1)
    assert [p["amount"] for p in pays] == [2900] * n
    assert not any(p["duplicate_charge"] for p in pays)
    assert all(p["period_start"] and p["period_end"] for p in pays)
    assert [p["period_end"] for p in pays[:-1]] == [p["period_start"] for p in pays[1:]]
    assert [i["billing"] for i in order["items"]] == ["monthly"]
    assert kinds(shop.ledger("ord_ren"))["sale"] == 2900 * n
    assert order["status"] == "paid" and unmatched(shop) == []


@pytest.mark.parametrize("provider", ["paddle", "stripe"])
def test_duplicate_charge_is_flagged_on_the_later_payment(shop, provider):
    """Two paid charges for the same customer and price ten minutes apart (two orders): the
    later one is a duplicate charge, whichever arrives first; a different price is not."""
    at = [P0, P0 + timedelta(minutes=10), P0 + timedelta(minutes=20)]
    prices = ["pri_dup", "pri_dup", "pri_other"]
    events = []
    for i in (2, 1, 0):  # the later first
        oid = f"ord_d{i + 1}"
        if provider == "paddle":
            events.append(pp.transaction_completed(
                txn_id=f"txn_d{i + 1}", custom_data={"order_id": oid}, customer_id="ctm_dup", subscription_id=None,
                billing_period=None, captured_at=at[i], fee=300,
                items=[{"price_id": prices[i], "amount": 4900,
                        "custom_data": {"category": "license", "billing": "one_time"}}]))
        else:
            ts = int(at[i].timestamp())
            events.append(sp.checkout_session_completed(
                session_id=f"cs_d{i + 1}", payment_intent=f"pi_d{i + 1}", metadata={"order_id": oid},
                customer="cus_dup", created=ts + 5,
                line_items=[{"price_id": prices[i], "amount": 4900,
                             "price_metadata": {"category": "license", "billing": "one_time"}}]))
            events.append(sp.charge_succeeded(charge_id=f"ch_d{i + 1}", payment_intent_id=f"pi_d{i + 1}",
                                              amount=4900, metadata={"order_id": oid}, customer="cus_dup",
                                              balance_transaction=None, created=ts))
    for ev in events:
        shop.send(provider, ev)
    shop.drain()
    flags = [shop.order(f"ord_d{i}")["payments"][0]["duplicate_charge"] for i in (1, 2, 3)]
    assert flags == [False, True, False]


# --- refunds and disputes -------------------------------------------------------------------------

def stripe_failed_refund_story() -> list:
    ch = dict(charge_id="ch_rf", payment_intent_id="pi_rf")
    r = dict(refund_id="re_rf", amount=1000, **ch)
    return [
        sp.charge_succeeded(amount=4900, metadata={"order_id": "ord_rf"}, customer="cus_rf", balance_transaction=None,
                            created=T0, **ch),
        sp.refund_event("refund.created", status="pending", created=T0 + 3600, **r),
        sp.refund_event("refund.updated", status="succeeded", created=T0 + 3700, **r),
        sp.charge_refunded(amount=4900, amount_refunded=1000, metadata={"order_id": "ord_rf"}, charge_created=T0,
                           created=T0 + 3700, **ch),
        sp.refund_event("refund.failed", status="failed", failure_reason="expired_or_canceled_card",
                        created=T0 + 3 * DAY, **r),
    ]


def test_stripe_refund_that_fails_after_succeeding(db_url, tmp_path):
    """refund.updated (succeeded) then refund.failed: the ledger keeps the refund and books its
    reversal; the order is paid again. Shuffled and duplicated deliveries end the same."""
    story = stripe_failed_refund_story()
    runs = {"in_order": story, "reversed": list(reversed(story)),
            "shuffled": [story[i] for i in (4, 2, 0, 3, 1)], "duplicated": [story[i] for i in (2, 4, 4, 1, 0, 2, 3)]}
    results = {name: play(fresh(db_url, tmp_path, name), "stripe", evs, "ord_rf") for name, evs in runs.items()}
    base = results["in_order"]
    for name, res in results.items():
        assert res == base, f"{name} differs:\n{res}\nvs in order:\n{base}"
    assert base["status"] == "paid"
    assert base["refunds"] == [("re_rf", 1000, "failed")]
    ledger = [(k, a, o.isoformat()) for k, a, _, o, _ in base["ledger"]]
    assert sorted(ledger) == [("refund", -1000, "2026-03-01T11:01:40+00:00"),
                              ("refund_reversal", 1000, "2026-03-04T10:00:00+00:00"),
                              ("sale", 4900, "2026-03-01T10:00:00+00:00")]


def test_stripe_dispute_lost(shop):
    """Delivered backwards (closed before created, all before the charge): parked, then the
    dispute is lost: charged back, with the withdrawal and the dispute fee in the ledger."""
    d = dict(dispute_id="dp_l", charge_id="ch_l", payment_intent_id="pi_l", amount=4900, created=T0 + DAY)
    story = [
        sp.charge_succeeded(charge_id="ch_l", payment_intent_id="pi_l", amount=4900, metadata={"order_id": "ord_l"},
                            customer="cus_l", balance_transaction=None, created=T0),
        sp.dispute_event("charge.dispute.created", status="needs_response", **d),
        sp.dispute_event("charge.dispute.funds_withdrawn", status="needs_response", **dict(d, created=T0 + DAY + 1)),
        sp.dispute_event("charge.dispute.closed", status="lost", **dict(d, created=T0 + 12 * DAY)),
    ]
    for ev in reversed(story):
        shop.stripe(ev)
    shop.drain()
    order = shop.order("ord_l")
    assert order["status"] == "charged_back"
    assert [(x["status"], x["funds_withdrawn"], x["fee"], x["opened_at"]) for x in order["disputes"]] == [
        ("lost", 4900, 1500, "2026-03-02T10:00:00Z")]
    assert sorted((k, a) for k, a, *_ in shop.ledger("ord_l")) == [
        ("chargeback", -4900), ("chargeback_fee", -1500), ("sale", 4900)]


def test_stripe_invoice_linked_to_its_charge_through_invoice_payments(db_url, tmp_path):
    """The webhook shape of a renewal: ``invoice.paid`` names no charge (basil), the charge
    names no order. The bridge asks ``/v1/invoice_payments`` and makes them one payment, in
    either arrival order, so the renewal is refundable and nothing stays unmatched."""
    meta = {"order_id": "ord_inv"}
    line = [{"price_id": "price_inv", "amount": 2900, "expand_price": True,
             "price_metadata": {"category": "saas_subscription", "billing": "monthly"}}]
    for order in ("invoice_first", "charge_first"):
        fake = FakeStripe()
        fake.start()
        shop = Shop(fresh(db_url, tmp_path, order, stripe_api_base=fake.url))
        try:
            events = []
            for i, (reason, start) in enumerate((("subscription_create", T0), ("subscription_cycle", T0 + 31 * DAY))):
                fake.add_invoice_payment(f"in_inv_{i}", f"pi_inv_{i}", 2900)
                events.append((sp.invoice_paid(invoice_id=f"in_inv_{i}", billing_reason=reason, subscription="sub_inv",
                                               subscription_metadata=meta, customer="cus_inv", lines=line,
                                               period_start=start, created=start, paid_at=start + 5),
                               sp.charge_succeeded(charge_id=f"ch_inv_{i}", payment_intent_id=f"pi_inv_{i}",
                                                   amount=2900, customer="cus_inv", metadata={},
                                                   balance_transaction=None, created=start + 3)))
            for invoice, charge in events:
                for ev in ((invoice, charge) if order == "invoice_first" else (charge, invoice)):
                    shop.stripe(ev)
            shop.drain()
            o = shop.order("ord_inv")
            assert [p["purchase"] for p in o["payments"]] == ["initial", "renewal"], order
            assert all(p["provider_ids"].get("charge_id") and p["provider_ids"].get("invoice_id") for p in o["payments"])
            assert kinds(shop.ledger("ord_inv"))["sale"] == 5800
            assert unmatched(shop) == []
            assert len(fake.calls_to("GET", "/v1/invoice_payments")) == 2
        finally:
            shop.close()
            fake.stop()
