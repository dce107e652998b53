"""Payouts from the provider's record (issue 10, Stripe): every payout of a generated month is
explained to the cent by its lines, each line linked to its ledger entry; a payout that fails
after paying shows so; ``GET /api/v1/payouts`` and ``/payouts/{id}``."""
from __future__ import annotations

import time

import requests

from bridge.fakes import stripe_books
from bridge.services.sync import sync_provider
from tests.e2e.test_sync import DAY, PAYMENTS, drain, generate, ledger_totals, world  # noqa: F401
from tests.support.api import auth, token


def test_month_payouts_are_explained_to_the_cent_and_linked_to_the_ledger(world):  # noqa: F811
    shop, fakes = world
    fake = fakes["stripe"]
    fake.drop_webhooks(0.10, seed=4)
    generate(fake, "stripe", start=time.time() - 28 * DAY, days=12, payments=PAYMENTS // 2)
    assert fake.wait_webhooks(120)
    drain(shop)
    # The fee knob: Stripe's record now says another fee for a charge the ledger booked.
    dropped = set(fake.dropped)
    booked = next(e["data"]["object"]["id"] for e in fake.events
                  if e["type"] == "charge.succeeded" and e["id"] not in dropped)
    old_fee = fake.balance_transactions[fake.charges[booked].balance_transaction]["fee"]
    fake.set_fee(booked, old_fee + 50)
    first = [fake.pay_out("usd"), fake.pay_out("eur")]
    fake.advance(2 * DAY)
    generate(fake, "stripe", start=fake.time(), days=12, payments=PAYMENTS // 2, prefix="b")
    second = [fake.pay_out("usd"), fake.pay_out("eur")]
    assert all(first + second)
    assert fake.wait_webhooks(120)
    drain(shop)
    report = sync_provider(shop.rt, "stripe")
    assert report.payouts == {"payouts": 4, "itemized": 4}
    fin = auth(token(shop.rt, "finance:read"))
    rec_url = shop.url + "/api/v1/reconciliation?from=2000-01-01&to=2100-01-01&provider=stripe"
    # Before the worker applied what sync stored: payouts have lines the ledger lacks.
    kinds = [d["kind"] for d in requests.get(rec_url, headers=fin, timeout=30).json()["discrepancies"]]
    assert "missing_in_ledger" in kinds and "payout_unexplained" in kinds
    drain(shop)
    book = stripe_books.book_totals(fake)
    fee_key = ("fee", fake.charges[booked].currency.upper())
    book[fee_key] = (book[fee_key][0], book[fee_key][1] + 50)  # the ledger keeps the fee it booked
    assert ledger_totals(shop.rt, "stripe") == book
    body = requests.get(rec_url, headers=fin, timeout=30).json()
    found = [d for d in body["discrepancies"] if d["kind"] in (
        "missing_in_ledger", "missing_at_provider", "fee_mismatch", "payout_unexplained")]
    assert [d["kind"] for d in found] == ["fee_mismatch"], found
    assert f"{old_fee + 50}" in found[0]["detail"] and f"{old_fee}" in found[0]["detail"]
    assert found[0]["order_id"]
    assert body["provider_record"][0]["provider"] == "stripe"
    assert body["provider_record"][0]["last_success_at"] and body["provider_record"][0]["last_error"] is None

    listed = requests.get(shop.url + "/api/v1/payouts?from=2000-01-01&to=2100-01-01&provider=stripe",
                          headers=fin, timeout=10).json()["payouts"]
    assert sorted(p["payout_id"] for p in listed) == sorted(p["id"] for p in first + second)
    for p in listed:
        assert p["unexplained"] == 0 and p["explained"] == p["amount"] and p["lines"] > 0
        detail = requests.get(shop.url + f"/api/v1/payouts/{p['payout_id']}", headers=fin, timeout=10).json()
        assert sum(line["amount"] for line in detail["lines"]) == detail["net"] == detail["amount"]
        assert detail["unexplained"] == 0
        parts = ("gross", "fees", "tax", "refunds", "chargebacks", "chargeback_fees", "adjustments", "fx", "other")
        assert sum(detail[k] for k in parts) == detail["net"]
        assert all(line["ledger"] for line in detail["lines"]), [x for x in detail["lines"] if not x["ledger"]]
        assert all(line["order_id"] for line in detail["lines"] if line["kind"] == "sale")
        stripe_lines = {bt for bt, po in fake.bt_payout.items() if po == p["payout_id"]}
        assert {line["provider_ref"] for line in detail["lines"]} == stripe_lines

    # The bank returns one: the next sync shows it failed.
    failed = fake.fail_payout(first[0]["id"])
    sync_provider(shop.rt, "stripe")
    detail = requests.get(shop.url + f"/api/v1/payouts/{failed['id']}", headers=fin, timeout=10).json()
    assert detail["status"] == "failed"
    assert requests.get(shop.url + "/api/v1/payouts/po_nope", headers=fin, timeout=10).status_code == 404
    assert requests.get(shop.url + "/api/v1/payouts?from=2026-01-01", headers=fin, timeout=10).status_code == 422
    assert requests.get(shop.url + "/api/v1/payouts?from=2000-01-01&to=2100-01-01",
                        headers=auth(token(shop.rt, "read")), timeout=10).status_code == 403


def test_paddle_payouts_come_from_its_notifications_and_stay_unexplained_without_the_report(world):  # noqa: F811
    shop, fakes = world
    fake = fakes["paddle"]
    fake.webhook_url = None
    generate(fake, "paddle", start=time.time() - 10 * DAY, payments=20)
    usd = fake.pay_out("USD")
    sync_provider(shop.rt, "paddle")
    fin = auth(token(shop.rt, "finance:read"))
    listed = requests.get(shop.url + "/api/v1/payouts?from=2000-01-01&to=2100-01-01&provider=paddle",
                          headers=fin, timeout=10).json()["payouts"]
    assert [(p["payout_id"], p["amount"], p["currency"], p["status"], p["lines"]) for p in listed] == [
        (usd["id"], int(usd["amount"]), "USD", "paid", 0)]
    assert listed[0]["unexplained"] == int(usd["amount"])
    rec = requests.get(shop.url + "/api/v1/reconciliation?from=2000-01-01&to=2100-01-01&provider=paddle",
                       headers=fin, timeout=30).json()
    assert any(d["kind"] == "payout_unexplained" and usd["id"] in d["detail"] for d in rec["discrepancies"])


def test_eur_charge_settled_in_usd_is_explained_in_usd_with_the_eur_amount_beside(world):  # noqa: F811
    from bridge.fakes.payments import stripe_charge
    shop, fakes = world
    fake = fakes["stripe"]
    fake.webhook_url = None
    fake.settlement = {"eur": ("usd", 1.1)}
    fake.set_time(time.time() - 3 * DAY)
    stripe_charge(fake, charge_id="ch_eur", amount=1000, currency="eur", fee=62, order_id="ord_eur", customer="cus_e")
    stripe_charge(fake, charge_id="ch_usd", amount=2000, currency="usd", fee=88, order_id="ord_usd", customer="cus_u")
    payout = fake.pay_out("usd")
    assert payout["amount"] == 1100 - 62 + 2000 - 88
    fake.set_time(time.time())
    sync_provider(shop.rt, "stripe")
    drain(shop)
    fin = auth(token(shop.rt, "finance:read"))
    detail = requests.get(shop.url + f"/api/v1/payouts/{payout['id']}", headers=fin, timeout=10).json()
    assert (detail["currency"], detail["amount"], detail["unexplained"]) == ("USD", payout["amount"], 0)
    lines = {line["source_ref"]: line for line in detail["lines"]}
    eur = lines["ch_eur"]
    assert (eur["currency"], eur["gross"], eur["fee"], eur["amount"]) == ("USD", 1100, 62, 1038)
    assert (eur["original_amount"], eur["original_currency"], eur["exchange_rate"]) == (1000, "EUR", "1.1")
    assert eur["ledger"] and eur["order_id"] == "ord_eur"
    assert lines["ch_usd"]["original_amount"] is None and lines["ch_usd"]["currency"] == "USD"
    # The ledger keeps the sale in EUR and never converts the USD fee: it stays unknown.
    assert ledger_totals(shop.rt, "stripe") == {("sale", "EUR"): (1, 1000), ("sale", "USD"): (1, 2000),
                                                ("fee", "USD"): (1, -88)}
