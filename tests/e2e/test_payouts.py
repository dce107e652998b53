"""Payouts from the provider's record (issue 10): every payout of a generated month is
explained to the cent by its lines, each line linked to its ledger entry (Stripe: balance
transactions; Paddle: the payout reconciliation report); a payout that fails after paying shows
so; payout webhooks applied by the worker without waiting for sync; ``GET /api/v1/payouts`` and
``/payouts/{id}``."""
from __future__ import annotations

import time

import requests
from sqlalchemy import select

from bridge.domain.money import format_amount
from bridge.fakes import stripe_books
from bridge.ledger.models import Payout, SyncStatus
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
    # The payout.paid webhooks that came were applied, and their lines fetched, by the worker;
    # sync itemized the rest (those whose webhook was lost).
    assert report.payouts["payouts"] == 4 and report.payouts["waiting"] == 0
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
    currency = fake.charges[booked].currency
    assert (f"the provider's fee is {format_amount(old_fee + 50, currency)}, the ledger's "
            f"{format_amount(old_fee, currency)}") in found[0]["detail"]
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


# --- Paddle: payouts from its notifications, itemized by the payout reconciliation report --------

PARTS = ("gross", "fees", "tax", "refunds", "chargebacks", "chargeback_fees", "adjustments", "fx", "other")


def _payouts(shop, fin, provider):
    return requests.get(shop.url + f"/api/v1/payouts?from=2000-01-01&to=2100-01-01&provider={provider}",
                        headers=fin, timeout=10).json()["payouts"]


def _detail(shop, fin, payout_id):
    return requests.get(shop.url + f"/api/v1/payouts/{payout_id}", headers=fin, timeout=10).json()


def _report_rows(fake, payout) -> set:
    return {(r["adjustment_id"] or r["transaction_id"], r["balance_movement_type"])
            for r in fake.payout_rows[payout["remittance_reference"]]}


def test_paddle_month_payouts_are_explained_to_the_cent_and_linked_to_the_ledger(world):  # noqa: F811
    shop, fakes = world
    fake = fakes["paddle"]
    fake.drop_webhooks(0.10, seed=5)
    generate(fake, "paddle", start=time.time() - 28 * DAY, days=12, payments=PAYMENTS // 2)
    first = [fake.pay_out("USD"), fake.pay_out("EUR")]
    fake.advance(2 * DAY)
    generate(fake, "paddle", start=fake.time(), days=12, payments=PAYMENTS // 2, prefix="b")
    second = [fake.pay_out("USD"), fake.pay_out("EUR")]
    assert all(first + second)
    assert fake.wait_webhooks(120)
    drain(shop)
    report = sync_provider(shop.rt, "paddle")
    assert report.payouts["payouts"] == 4 and report.payouts["waiting"] == 0
    drain(shop)
    fin = auth(token(shop.rt, "finance:read"))
    listed = _payouts(shop, fin, "paddle")
    assert sorted(p["payout_id"] for p in listed) == sorted(p["id"] for p in first + second)
    by_id = {p["id"]: p for p in first + second}
    kinds = set()
    for p in listed:
        assert p["amount"] == int(by_id[p["payout_id"]]["amount"])
        assert p["unexplained"] == 0 and p["explained"] == p["amount"] and p["lines"] > 0, p
        detail = _detail(shop, fin, p["payout_id"])
        assert sum(line["amount"] for line in detail["lines"]) == detail["net"] == detail["amount"]
        assert detail["unexplained"] == 0 and sum(detail[k] for k in PARTS) == detail["net"]
        assert all(line["ledger"] for line in detail["lines"]), [x for x in detail["lines"] if not x["ledger"]]
        assert all(line["order_id"] for line in detail["lines"] if line["kind"] == "sale")
        assert all(line["currency"] == detail["currency"] for line in detail["lines"])
        assert {tuple(line["provider_ref"].split(":")) for line in detail["lines"]} == _report_rows(
            fake, by_id[p["payout_id"]])
        kinds |= {line["kind"] for line in detail["lines"]}
    assert {"sale", "refund", "chargeback", "chargeback_reversal"} <= kinds
    rec = requests.get(shop.url + "/api/v1/reconciliation?from=2000-01-01&to=2100-01-01&provider=paddle",
                       headers=fin, timeout=30).json()
    assert not [d for d in rec["discrepancies"] if d["kind"] in (
        "missing_in_ledger", "missing_at_provider", "fee_mismatch", "payout_unexplained")], rec["discrepancies"]


def test_paddle_report_still_pending_leaves_the_payout_unitemized_until_the_next_sync(world):  # noqa: F811
    shop, fakes = world
    fake = fakes["paddle"]
    fake.webhook_url = None
    generate(fake, "paddle", start=time.time() - 10 * DAY, payments=20)
    usd = fake.pay_out("USD")
    fake.report_polls = 10**6                     # Paddle takes longer than this sync waits
    report = sync_provider(shop.rt, "paddle")     # no error: the payout waits for the report
    assert report.payouts == {"payouts": 1, "itemized": 0, "waiting": 1}
    drain(shop)
    fin = auth(token(shop.rt, "finance:read"))
    listed = _payouts(shop, fin, "paddle")
    assert [(p["payout_id"], p["amount"], p["currency"], p["status"], p["lines"]) for p in listed] == [
        (usd["id"], int(usd["amount"]), "USD", "paid", 0)]
    assert listed[0]["unexplained"] == int(usd["amount"])
    rec = requests.get(shop.url + "/api/v1/reconciliation?from=2000-01-01&to=2100-01-01&provider=paddle",
                       headers=fin, timeout=30).json()
    assert any(d["kind"] == "payout_unexplained" and usd["id"] in d["detail"] and "not listed yet" in d["detail"]
               for d in rec["discrepancies"])
    with shop.rt.reads() as s:
        assert s.get(SyncStatus, "paddle").last_error is None

    fake.make_ready()                             # Paddle finishes it
    fake.stale_links = 1                          # and the first link is dead when it is used
    report = sync_provider(shop.rt, "paddle")
    assert report.payouts == {"payouts": 1, "itemized": 1, "waiting": 0}
    detail = _detail(shop, fin, usd["id"])
    assert detail["unexplained"] == 0 and detail["net"] == int(usd["amount"]) and detail["lines"]
    assert all(line["ledger"] for line in detail["lines"])
    assert len(fake.calls_to("POST", "/reports")) == 1      # the pending report was found again
    files = [c.status for c in fake.calls if c.path.startswith("/report-files/")]
    assert files == [403, 200]                               # a fresh link after the dead one
    assert len([c for c in fake.calls if c.path.endswith("/download-url")]) == 2


def test_fake_paddle_report_is_pending_then_ready_behind_a_link_that_expires():
    from bridge.fakes import FakePaddle
    fake = FakePaddle().start()
    try:
        fake.sell("txn_a", "USD", [("txnitm_a", 4900)], 245, order_id="ord_a")
        fake.refund("txn_a", 1000)
        payout = fake.pay_out("USD")
        api = {"Authorization": "Bearer pdl_sdbx_apikey_test"}
        made = requests.post(fake.url + "/reports", headers=api, timeout=5, json={
            "type": "payout_reconciliation",
            "filters": [{"name": "remittance_reference", "operator": None, "value": [payout["remittance_reference"]]}]})
        assert made.status_code == 201 and made.json()["data"]["status"] == "pending"
        rid = made.json()["data"]["id"]
        assert requests.get(fake.url + f"/reports/{rid}/download-url", headers=api, timeout=5).status_code == 400
        assert requests.get(fake.url + f"/reports/{rid}", headers=api, timeout=5).json()["data"]["status"] == "pending"
        ready = requests.get(fake.url + f"/reports/{rid}", headers=api, timeout=5).json()["data"]
        assert ready["status"] == "ready" and ready["rows"] == 2
        listed = requests.get(fake.url + "/reports?status=ready", headers=api, timeout=5).json()["data"]
        assert [r["id"] for r in listed] == [rid]
        url = requests.get(fake.url + f"/reports/{rid}/download-url", headers=api, timeout=5).json()["data"]["url"]
        got = requests.get(url, timeout=5)
        assert got.status_code == 200
        lines = got.text.splitlines()
        assert "balance_movement_in_balance_currency" in lines[0].split(",") and len(lines) == 3
        assert requests.get(url, headers=api, timeout=5).status_code == 400   # the API key is not for storage
        fake.advance(181)                                                     # the link lives 3 minutes
        expired = requests.get(url, timeout=5)
        assert expired.status_code == 403 and "expired" in expired.text
        fresh = requests.get(fake.url + f"/reports/{rid}/download-url", headers=api, timeout=5).json()["data"]["url"]
        assert fresh != url and requests.get(fresh, timeout=5).text == got.text
        both = requests.post(fake.url + "/reports", headers=api, timeout=5, json={
            "type": "payout_reconciliation",
            "filters": [{"name": "remittance_reference", "operator": None, "value": ["1"]},
                        {"name": "balance_movement_date", "operator": "gte", "value": "2026-01-01"}]})
        assert both.status_code == 400                                        # mutually exclusive filters
    finally:
        fake.stop()


def test_paddle_payout_webhook_stores_the_payout_and_its_lines_without_sync(world):  # noqa: F811
    shop, fakes = world
    fake = fakes["paddle"]
    fake.set_time(time.time() - DAY)
    fake.sell("txn_w1", "USD", [("txnitm_w1", 4900)], 245, order_id="ord_w1")
    fake.sell("txn_w2", "USD", [("txnitm_w2", 2900)], 145, order_id="ord_w2")
    fake.refund("txn_w2", 1000)
    payout = fake.pay_out("USD")
    assert fake.wait_webhooks(30)
    drain(shop)
    fin = auth(token(shop.rt, "finance:read"))
    detail = _detail(shop, fin, payout["id"])
    assert (detail["status"], detail["amount"], detail["currency"]) == ("paid", int(payout["amount"]), "USD")
    assert detail["itemized"] and detail["unexplained"] == 0
    assert sorted((line["kind"], line["source_ref"], line["amount"]) for line in detail["lines"]) == sorted([
        ("sale", "txn_w1", 4900 - 245), ("sale", "txn_w2", 2900 - 145),
        ("refund", fake.adjustments[next(iter(fake.adjustments))]["id"], -(1000 - 50))])
    assert all(line["ledger"] for line in detail["lines"])
    assert fake.calls_to("GET", "/events") == []          # no sync: the webhooks did it
    with shop.rt.reads() as s:
        assert s.execute(select(Payout.reference).where(Payout.payout_id == payout["id"])).scalar_one() \
            == payout["remittance_reference"]


def test_stripe_payout_webhooks_store_the_payout_with_its_lines_and_a_later_failure(world):  # noqa: F811
    from bridge.fakes.payments import stripe_charge
    shop, fakes = world
    fake = fakes["stripe"]
    fake.set_time(time.time() - DAY)
    stripe_charge(fake, charge_id="ch_w1", amount=4900, currency="usd", fee=172, order_id="ord_sw1", customer="cus_w")
    stripe_charge(fake, charge_id="ch_w2", amount=2900, currency="usd", fee=114, order_id="ord_sw2", customer="cus_w")
    fake.refund("ch_w2", 900)
    payout = fake.pay_out("usd")
    assert fake.wait_webhooks(30)
    drain(shop)
    fin = auth(token(shop.rt, "finance:read"))
    detail = _detail(shop, fin, payout["id"])
    assert (detail["status"], detail["amount"], detail["unexplained"]) == ("paid", payout["amount"], 0)
    assert {line["provider_ref"] for line in detail["lines"]} == {
        bt for bt, po in fake.bt_payout.items() if po == payout["id"]}
    assert all(line["ledger"] for line in detail["lines"])
    assert fake.calls_to("GET", "/v1/payouts") == []      # no sync: the webhooks did it
    listed = [c for c in fake.calls if c.path == "/v1/balance_transactions" and f"payout={payout['id']}" in c.query]
    assert len(listed) == 1                               # the payout's lines, listed once

    paid_event = next(e for e in fake.events if e["type"] == "payout.paid")
    fake.fail_payout(payout["id"])                        # the bank returns it: payout.failed
    assert fake.wait_webhooks(30)
    drain(shop)
    assert _detail(shop, fin, payout["id"])["status"] == "failed"
    fake.send_webhook(paid_event)                         # a late redelivery of payout.paid...
    drain(shop)
    again = _detail(shop, fin, payout["id"])
    assert again["status"] == "failed" and again["unexplained"] == 0   # ...takes nothing back
    assert len([c for c in fake.calls if c.path == "/v1/balance_transactions"]) == 1


def test_stripe_thin_payout_events_are_fetched_and_applied(world):  # noqa: F811
    from bridge.fakes.payments import stripe_charge
    shop, fakes = world
    fake = fakes["stripe"]
    fake.set_time(time.time() - DAY)
    stripe_charge(fake, charge_id="ch_t1", amount=4900, currency="usd", fee=172, order_id="ord_st1", customer="cus_t")
    assert fake.wait_webhooks(30)
    drain(shop)
    fake.drop_webhooks(1.0)                   # the destination takes thin events only
    payout = fake.pay_out("usd")
    fake.drop_webhooks(0.0)
    assert fake.send_webhook(fake.thin_event("payout.paid", fake.payouts[payout["id"]])) == 200
    drain(shop)
    fin = auth(token(shop.rt, "finance:read"))
    detail = _detail(shop, fin, payout["id"])
    assert (detail["status"], detail["amount"], detail["unexplained"]) == ("paid", payout["amount"], 0)
    assert detail["lines"] and all(line["ledger"] for line in detail["lines"])
    assert fake.calls_to("GET", f"/v1/payouts/{payout['id']}"), "the thin event's payout was fetched"

    fake.drop_webhooks(1.0)
    fake.fail_payout(payout["id"])
    fake.drop_webhooks(0.0)
    assert fake.send_webhook(fake.thin_event("payout.failed", fake.payouts[payout["id"]])) == 200
    drain(shop)
    assert _detail(shop, fin, payout["id"])["status"] == "failed"
