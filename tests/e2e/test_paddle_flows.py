"""Paddle payments however the merchant subscribes (issue 12): ``transaction.paid`` and
``transaction.updated`` book the payment of ``transaction.completed`` once, and its fee is
asked of Paddle when no event carries it."""
from __future__ import annotations

import pytest

from bridge.fakes.paddle_server import FakePaddle
from tests.conftest import PADDLE_SECRET, test_settings
from tests.e2e.test_stripe_flows import summary
from tests.fixtures import paddle_payloads as pp
from tests.support.harness import Shop

PAID = "2026-03-01T10:00:00Z"
ITEM = {"item_id": "li_1", "sku": "pro-license", "category": "license", "billing": "one_time", "amount": 4900,
        "price_id": "pri_lic"}


@pytest.fixture
def fake():
    f = FakePaddle()
    f.start()
    yield f
    f.stop()


@pytest.fixture
def shop(db_url, tmp_path, fake):
    s = Shop(test_settings(db_url, tmp_path, paddle_api_base=fake.url, payment_fetch_delay_seconds=0.2))
    fake.webhook_url, fake.webhook_secret = s.url + "/webhooks/paddle", PADDLE_SECRET
    yield s
    s.close()


def txn(event_type: str, x: str, status: str, fee, at: str) -> dict:
    data = pp.transaction_entity(txn_id=f"txn_{x}", status=status, custom_data={"order_id": f"ord_{x}"},
                                 items=[{"price_id": "pri_lic", "product_id": "pro_lic", "amount": 4900, "tax": 0}],
                                 fee=fee, subscription_id=None, billing_period=None, customer_id=f"ctm_{x}",
                                 captured_at=PAID)
    return pp.notification(event_type, data, occurred_at=at)


def register(shop, order_id):
    shop.api("POST", "/orders", {"order_id": order_id, "policy": "software-mor", "currency": "USD",
                                 "customer": {"id": f"ctm_{order_id}", "country": "US"}, "items": [ITEM]}, expect=201)


def test_paid_updated_and_completed_book_one_payment_as_completed_alone(shop, fake):
    register(shop, "ord_c")
    shop.paddle(txn("transaction.completed", "c", "completed", 245, "2026-03-01T10:00:20Z"))
    register(shop, "ord_all")
    story = [txn("transaction.updated", "all", "billed", None, "2026-03-01T09:59:50Z"),
             txn("transaction.paid", "all", "paid", None, "2026-03-01T10:00:05Z"),
             txn("transaction.updated", "all", "paid", None, "2026-03-01T10:00:06Z"),
             txn("transaction.completed", "all", "completed", 245, "2026-03-01T10:00:20Z"),
             txn("transaction.updated", "all", "completed", 245, "2026-03-01T10:00:21Z")]
    for ev in reversed(story):  # any order
        shop.paddle(ev)
    shop.drain()
    assert summary(shop, "ord_all") == summary(shop, "ord_c")
    assert [(k, a) for k, a, *_ in shop.ledger("ord_all")] == [("fee", -245), ("sale", 4900)]
    assert fake.calls_to("GET", "/transactions") == []  # every fee was told


def test_a_billed_transaction_books_nothing(shop, fake):
    register(shop, "ord_b")
    shop.paddle(txn("transaction.updated", "b", "billed", None, "2026-03-01T09:59:50Z"))
    shop.drain()
    assert shop.ledger("ord_b") == [] and shop.order("ord_b")["status"] == "awaiting_payment"


def test_transaction_paid_only_gets_its_fee_from_paddle(shop, fake):
    register(shop, "ord_p")
    fake.add_transaction("txn_p", "USD", [("txnitm_p", 4900)], None)  # fee not set yet
    shop.paddle(txn("transaction.paid", "p", "paid", None, "2026-03-01T10:00:05Z"))
    shop.drain(until=lambda: len(fake.calls_to("GET", "/transactions/txn_p")) >= 1, timeout=30)
    assert [(k, a) for k, a, *_ in shop.ledger("ord_p")] == [("sale", 4900)]
    assert shop.order("ord_p")["status"] == "paid"
    fake.transactions["txn_p"].fee = 245  # Paddle completes it
    shop.drain(until=lambda: len(shop.ledger("ord_p")) == 2, timeout=30)
    assert [(k, a) for k, a, *_ in shop.ledger("ord_p")] == [("fee", -245), ("sale", 4900)]
