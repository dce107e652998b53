"""The ledger end to end over HTTP: sequences of signed webhooks for one order, delivered in
order, shuffled, and with duplicates, end in the same ledger and order state (issue 3)."""
import random

import pytest

from tests.fixtures import paddle_payloads as pp, stripe_payloads as sp
from tests.support.harness import Shop

T0 = 1_772_359_200  # 2026-03-01T10:00:00Z
DAY = 86400


@pytest.fixture
def shop(settings):
    s = Shop(settings)
    yield s
    s.close()


def stripe_story(order_id="ord_s1", charge="ch_s1", pi="pi_s1", dispute_outcome="won"):
    bt = sp.balance_transaction(bt_id="txn_s1", amount=4900, fee=172, source=charge, created=T0 + 60)
    dispute = dict(dispute_id="dp_s1", charge_id=charge, payment_intent_id=pi, amount=3900, currency="usd")
    closed = "won" if dispute_outcome == "won" else "lost"
    story = [
        sp.checkout_session_completed(session_id="cs_s1", payment_intent=pi, amount_total=4900,
                                      metadata={"order_id": order_id}, customer="cus_s1", created=T0 + 2),
        sp.charge_succeeded(charge_id=charge, payment_intent_id=pi, amount=4900, customer="cus_s1",
                            metadata={"order_id": order_id}, balance_transaction="txn_s1", created=T0),
        sp.charge_updated(charge_id=charge, payment_intent_id=pi, amount=4900, customer="cus_s1",
                          metadata={"order_id": order_id}, balance_transaction=bt, charge_created=T0, created=T0 + 60),
        sp.refund_event("refund.created", refund_id="re_s1", charge_id=charge, payment_intent_id=pi, amount=1000,
                        status="pending", created=T0 + 3600),
        sp.refund_event("refund.updated", refund_id="re_s1", charge_id=charge, payment_intent_id=pi, amount=1000,
                        status="succeeded", created=T0 + 3700),
        sp.charge_refunded(charge_id=charge, payment_intent_id=pi, amount=4900, amount_refunded=1000,
                           charge_created=T0, created=T0 + 3700),
        sp.dispute_event("charge.dispute.created", status="needs_response", created=T0 + DAY, **dispute),
        sp.dispute_event("charge.dispute.funds_withdrawn", status="needs_response", created=T0 + DAY + 1, **dispute),
        sp.dispute_event("charge.dispute.closed", status=closed, created=T0 + 10 * DAY, **dispute),
    ]
    if closed == "won":
        story.append(sp.dispute_event("charge.dispute.funds_reinstated", status="won", created=T0 + 10 * DAY + 1, **dispute))
    return story


def paddle_story(order_id="ord_p1", txn="txn_p1"):
    items = [{"price_id": "pri_p1", "product_id": "pro_p1", "amount": 4900, "tax": 0,
              "custom_data": {"category": "license", "billing": "one_time"}},
             {"price_id": "pri_p2", "product_id": "pro_p2", "amount": 2000, "tax": 0,
              "custom_data": {"category": "store_addon", "billing": "one_time"}}]
    txn_doc = pp.transaction_completed(txn_id=txn, custom_data={"order_id": order_id}, items=items, fee=400,
                                       customer_id="ctm_p1", occurred_at="2026-03-01T10:00:05Z",
                                       billed_at="2026-03-01T10:00:00Z", captured_at="2026-03-01T10:00:00Z",
                                       subscription_id=None, billing_period=None)
    line2 = txn_doc["data"]["details"]["line_items"][1]["id"]
    refund = dict(adjustment_id="adj_p1", action="refund", transaction_id=txn, currency="USD",
                  items=[{"item_id": line2, "amount": 2000, "type": "full"}], customer_id="ctm_p1")
    cb = dict(transaction_id=txn, currency="USD", total=4900, customer_id="ctm_p1")
    return [
        txn_doc,
        pp.adjustment_event("adjustment.created", status="pending_approval", occurred_at="2026-03-02T10:00:00Z", **refund),
        pp.adjustment_event("adjustment.updated", status="approved", occurred_at="2026-03-02T12:00:00Z", **refund),
        pp.adjustment_event("adjustment.created", adjustment_id="adj_p2", action="chargeback_warning", status="approved",
                            occurred_at="2026-03-05T10:00:00Z", **cb),
        pp.adjustment_event("adjustment.created", adjustment_id="adj_p3", action="chargeback", status="approved",
                            occurred_at="2026-03-09T10:00:00Z", **cb),
        pp.adjustment_event("adjustment.created", adjustment_id="adj_p4", action="chargeback_reverse", status="approved",
                            occurred_at="2026-03-20T10:00:00Z", **cb),
    ]


def final_state(shop, order_id):
    order = shop.order(order_id)
    return {
        "status": order["status"],
        "payments": [(p["amount"], p["fee"], p["currency"], p["paid_at"]) for p in order["payments"]],
        "refunds": sorted((r["provider_refund_id"], r["amount"], r["status"]) for r in order["refunds"]),
        "disputes": sorted((d["provider_dispute_id"], d["status"], d["funds_withdrawn"], d["funds_reinstated"], d["fee"])
                           for d in order["disputes"]),
        "ledger": shop.ledger(order_id),
    }


def play(settings, tmp_path, provider, story, order_id, order_of_delivery):
    shop = Shop(settings)
    try:
        for i in order_of_delivery:
            shop.send(provider, story[i])
        shop.drain()
        return final_state(shop, order_id)
    finally:
        shop.close()


def fresh_settings(db_url, tmp_path, name):
    """A separate database per delivery order, so the runs can be compared."""
    import shutil
    from tests.conftest import test_settings
    if db_url.startswith("sqlite"):
        src = db_url[len("sqlite:///"):]
        dst = tmp_path / f"{name}.sqlite3"
        shutil.copy(src, dst)
        return test_settings(f"sqlite:///{dst}", tmp_path)
    from sqlalchemy import create_engine, text
    from bridge.ledger.models import Base
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables) + " RESTART IDENTITY CASCADE"))
    engine.dispose()
    return test_settings(db_url, tmp_path)


@pytest.mark.parametrize("provider", ["stripe", "paddle"])
def test_in_order_shuffled_and_duplicated_end_the_same(db_url, tmp_path, provider):
    story = stripe_story() if provider == "stripe" else paddle_story()
    order_id = "ord_s1" if provider == "stripe" else "ord_p1"
    n = len(story)
    rng = random.Random(7)
    runs = {"in_order": list(range(n))}
    shuffled = list(range(n))
    rng.shuffle(shuffled)
    runs["shuffled"] = shuffled
    runs["reversed"] = list(reversed(range(n)))
    dup = list(range(n)) + [rng.randrange(n) for _ in range(n)]
    rng.shuffle(dup)
    runs["duplicated"] = dup
    results = {name: play(fresh_settings(db_url, tmp_path, name), tmp_path, provider, story, order_id, seq)
               for name, seq in runs.items()}
    base = results["in_order"]
    for name, res in results.items():
        assert res == base, f"{provider} {name} differs:\n{res}\nvs in order:\n{base}"
    kinds = [e[0] for e in base["ledger"]]
    if provider == "stripe":
        assert base["status"] == "partially_refunded"
        assert base["payments"] == [(4900, 172, "USD", "2026-03-01T10:00:00Z")]
        assert sorted(kinds) == sorted(["sale", "fee", "refund", "chargeback", "chargeback_fee", "chargeback_reversal",
                                        "chargeback_fee_reversal"])
    else:
        assert base["status"] == "partially_refunded"
        assert base["refunds"] == [("adj_p1", 2000, "succeeded")]
        assert sorted(kinds) == sorted(["sale", "fee", "refund", "chargeback", "chargeback_fee", "chargeback_reversal"])
    amounts = {e[0]: e[1] for e in base["ledger"]}
    assert amounts["sale"] == (4900 if provider == "stripe" else 6900)
    assert amounts["refund"] == (-1000 if provider == "stripe" else -2000)
