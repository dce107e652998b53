"""Money that cannot be true is held, not booked (issue 11 items 6 and 7), and content that can
never be processed fails at once instead of being retried for an hour.

Signed webhooks go through the Flask app and the worker is drained in-process; every test runs
on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from bridge.ledger import reconciliation
from bridge.ledger.models import Dispute, Job, LedgerEntry, License, OutboundMessage, Payment, Refund, WebhookEvent
from tests.conftest import PADDLE_SECRET, STRIPE_SECRET
from tests.fixtures import paddle_payloads as pp, stripe_payloads as sp
from tests.support.api import auth, token
from tests.support.signing import paddle_headers, stripe_headers

T0 = 1_772_359_200  # 2026-03-01T10:00:00Z
DAY = 86_400
ORDER = {"order_id": "ord_m", "policy": "software-mor", "currency": "USD",
         "customer": {"id": "cus_m", "country": "DE"},
         "items": [{"item_id": "li_1", "category": "license", "billing": "one_time", "amount": 4900,
                    "license_id": "lic_m"}]}


def send(client, provider: str, payload) -> None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if provider == "stripe":
        headers = stripe_headers(body, STRIPE_SECRET)
    else:
        headers = paddle_headers(body, PADDLE_SECRET)
    r = client.post(f"/webhooks/{provider}", data=body, headers=headers)
    assert r.status_code == 200, r.get_data(as_text=True)


def rows(runtime, stmt):
    with runtime.reads() as s:
        return s.execute(stmt).all()


def event_of(runtime, event_id: str) -> WebhookEvent:
    with runtime.reads() as s:
        return s.execute(select(WebhookEvent).where(WebhookEvent.provider_event_id == event_id)).scalar_one()


def ledger(runtime) -> list:
    return sorted(rows(runtime, select(LedgerEntry.kind, LedgerEntry.amount, LedgerEntry.provider_ref)))


def discrepancies(runtime) -> list[dict]:
    from datetime import datetime, timezone
    period = reconciliation.Period(datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 12, 31, tzinfo=timezone.utc))
    with runtime.reads() as s:
        return reconciliation.discrepancies(s, period, datetime(2026, 6, 1, tzinfo=timezone.utc))


@pytest.fixture
def paid(client, runtime, worker):
    """ord_m registered and paid by Stripe charge ch_m (4900 USD, fee 172): license active."""
    r = client.post("/api/v1/orders", json=ORDER, headers=auth(token(runtime, "orders:write")))
    assert r.status_code == 201, r.json
    send(client, "stripe", sp.charge_succeeded(
        event_id="evt_pay", charge_id="ch_m", payment_intent_id="pi_m", amount=4900, metadata={"order_id": "ord_m"},
        balance_transaction=sp.balance_transaction(bt_id="txn_m", amount=4900, fee=172, source="ch_m", created=T0),
        created=T0))
    worker.drain()
    assert rows(runtime, select(License.status)) == [("active",)]
    return ledger(runtime)


def nothing_moved(runtime, before: list) -> None:
    assert ledger(runtime) == before
    assert rows(runtime, select(License.status)) == [("active",)]
    assert rows(runtime, select(func.count()).select_from(OutboundMessage)) == [(0,)]
    assert rows(runtime, select(Payment.status, Payment.amount)) == [("succeeded", 4900)]


def test_a_refund_larger_than_the_charge_is_held_not_booked(client, runtime, worker, paid):
    """A signed refund.created of 999,999 on a 4,900 charge: before, it was booked as
    succeeded, revoked the license and made the net negative."""
    send(client, "stripe", sp.refund_event("refund.created", event_id="evt_huge", refund_id="re_huge", charge_id="ch_m",
                                           payment_intent_id="pi_m", amount=999_999, status="succeeded",
                                           created=T0 + DAY))
    worker.drain()
    ev = event_of(runtime, "evt_huge")
    assert ev.status == "held" and "9999.99 USD" in ev.error and ev.order_ref == "ord_m"
    nothing_moved(runtime, paid)
    assert rows(runtime, select(func.count()).select_from(Refund)) == [(0,)]
    found = [d for d in discrepancies(runtime) if d["kind"] == "amount_exceeds_captured"]
    assert len(found) == 1 and found[0]["order_id"] == "ord_m" and "re_huge" in found[0]["detail"]
    assert rows(runtime, select(Job.state).where(Job.ref_id == str(ev.id))) == [("done",)]


def test_refunds_are_bounded_by_what_is_left_of_the_payment(client, runtime, worker, paid):
    """Two refunds of 3000 on 4900: the first is booked, the second would refund more than
    was captured and is held."""
    for n, at in ((1, T0 + DAY), (2, T0 + 2 * DAY)):
        send(client, "stripe", sp.refund_event("refund.updated", event_id=f"evt_r{n}", refund_id=f"re_{n}",
                                               charge_id="ch_m", payment_intent_id="pi_m", amount=3000,
                                               status="succeeded", created=at))
        worker.drain()
    assert event_of(runtime, "evt_r1").status == "processed"
    assert event_of(runtime, "evt_r2").status == "held"
    assert [e for e in ledger(runtime) if e[0] == "refund"] == [("refund", -3000, "re_1")]
    # The same refund event again (a retry) is not judged against itself.
    send(client, "stripe", sp.refund_event("refund.updated", event_id="evt_r1b", refund_id="re_1", charge_id="ch_m",
                                           payment_intent_id="pi_m", amount=3000, status="succeeded",
                                           created=T0 + DAY + 5))
    worker.drain()
    assert event_of(runtime, "evt_r1b").status == "processed"


def test_a_dispute_larger_than_the_charge_is_held(client, runtime, worker, paid):
    d = dict(dispute_id="dp_huge", charge_id="ch_m", payment_intent_id="pi_m", amount=500_000, created=T0 + DAY)
    send(client, "stripe", sp.dispute_event("charge.dispute.funds_withdrawn", event_id="evt_dp", status="needs_response",
                                            **d))
    worker.drain()
    assert event_of(runtime, "evt_dp").status == "held"
    nothing_moved(runtime, paid)
    assert rows(runtime, select(func.count()).select_from(Dispute)) == [(0,)]
    assert any(x["kind"] == "amount_exceeds_captured" and "dp_huge" in x["detail"] for x in discrepancies(runtime))


def _paddle_txn(fee: int, event_id: str = "evt_ptx", total: int = 4900) -> dict:
    return pp.transaction_completed(event_id=event_id, txn_id="txn_pfee", custom_data={"order_id": "ord_pfee"},
                                    items=[{"price_id": "pri_pfee", "amount": total}], fee=fee,
                                    occurred_at="2026-03-01T10:00:00Z")


@pytest.mark.parametrize("fee,kind", [(-50, "negative_fee"), (5000, "amount_exceeds_captured")])
def test_a_negative_fee_or_one_above_the_amount_is_held(client, runtime, worker, fee, kind):
    """Before: a negative fee was stored, and a later fee deduction would have refunded more
    than was paid; a fee above the amount was booked."""
    send(client, "paddle", _paddle_txn(fee))
    worker.drain()
    ev = event_of(runtime, "evt_ptx")
    assert ev.status == "held", (ev.status, ev.error)
    assert ledger(runtime) == []
    assert rows(runtime, select(func.count()).select_from(Payment)) == [(0,)]
    assert any(d["kind"] == kind for d in discrepancies(runtime))


def test_a_stripe_fee_above_the_charge_is_held(client, runtime, worker, paid):
    send(client, "stripe", sp.charge_updated(
        event_id="evt_fee", charge_id="ch_m", payment_intent_id="pi_m", amount=4900, metadata={"order_id": "ord_m"},
        balance_transaction=sp.balance_transaction(bt_id="txn_m2", amount=4900, fee=9000, source="ch_m", created=T0),
        charge_created=T0))
    worker.drain()
    ev = event_of(runtime, "evt_fee")
    assert ev.status == "held" and "9000" in ev.error
    assert ledger(runtime) == paid


# --- currencies ------------------------------------------------------------------------------------

@pytest.mark.parametrize("currency", ["ZZZ", "NaN", "ÄÖÜ", "DEM", "XXX"])
def test_orders_in_a_currency_that_is_not_iso_4217_are_refused(client, runtime, currency):
    r = client.post("/api/v1/orders", json=dict(ORDER, currency=currency), headers=auth(token(runtime, "orders:write")))
    assert 400 <= r.status_code < 500, r.json
    assert r.json["error"]["field"] == "currency"


@pytest.mark.parametrize("provider", ["stripe", "paddle"])
def test_a_webhook_payment_in_zzz_is_kept_reported_and_not_booked(client, runtime, worker, provider):
    if provider == "stripe":
        payload = sp.charge_succeeded(event_id="evt_zzz", charge_id="ch_z", payment_intent_id="pi_z", amount=4900,
                                      currency="zzz", metadata={"order_id": "ord_z"}, balance_transaction=None,
                                      created=T0)
    else:
        payload = pp.transaction_completed(event_id="evt_zzz", txn_id="txn_z", custom_data={"order_id": "ord_z"},
                                           items=[{"price_id": "pri_z", "amount": 4900}], currency="ZZZ",
                                           occurred_at="2026-03-01T10:00:00Z")
    send(client, provider, payload)
    worker.drain()
    ev = event_of(runtime, "evt_zzz")
    assert ev.status == "failed" and "ISO 4217" in ev.error and "ZZZ" in ev.error.upper()
    assert ev.body  # the raw event is kept
    assert ledger(runtime) == [] and rows(runtime, select(func.count()).select_from(Payment)) == [(0,)]
    assert any(d["kind"] == "event_failed" and "evt_zzz" in d["detail"] for d in discrepancies(runtime))
    assert rows(runtime, select(Job.attempts, Job.state).where(Job.ref_id == str(ev.id))) == [(1, "done")]


# --- content that can never be processed ---------------------------------------------------------------

@pytest.mark.parametrize("mutate,reason", [
    (lambda o: o.update(amount=10**30, amount_captured=10**30), "amount_captured"),
    (lambda o: o["balance_transaction"].update(fee=2**63), "balance_transaction.fee"),
    (lambda o: o.update(amount_captured="9" * 5000), "amount_captured"),
    (lambda o: (o.update(receipt_email="a\ud800@example.com"),
                (o.get("billing_details") or {}).update(email="a\ud800@example.com")), "surrogate"),
])
def test_content_that_can_never_be_processed_fails_at_once(client, runtime, worker, mutate, reason):
    """Before: twelve retries over an hour (an OverflowError, a DataError, a UnicodeEncodeError
    at the database), each one hiding the event from finance meanwhile."""
    payload = sp.charge_succeeded(event_id="evt_bad", charge_id="ch_b", payment_intent_id="pi_b", amount=4900,
                                  metadata={"order_id": "ord_b"},
                                  balance_transaction=sp.balance_transaction(bt_id="txn_b", amount=4900, fee=172,
                                                                             source="ch_b", created=T0),
                                  created=T0)
    mutate(payload["data"]["object"])
    send(client, "stripe", json.dumps(payload).encode())
    worker.drain()
    ev = event_of(runtime, "evt_bad")
    assert ev.status == "failed", (ev.status, ev.error)
    assert reason in ev.error
    assert rows(runtime, select(Job.attempts, Job.state).where(Job.ref_id == str(ev.id))) == [(1, "done")]
    assert ledger(runtime) == []


# --- order ids from webhooks (item 14) -----------------------------------------------------------------

@pytest.mark.parametrize("provider", ["stripe", "paddle"])
@pytest.mark.parametrize("order_ref,why", [("ord\ud800", "printable"), ("o" * 300, "at most 255"),
                                           ("ord\x00x", "printable"), ("ord\u200bx", "printable")])
def test_a_payment_whose_order_id_is_not_a_valid_id_is_kept_unmatched_with_the_reason(
        client, runtime, worker, provider, order_ref, why):
    """Before: an order was created with that id (or the event failed at the database and was
    retried for an hour, its money never booked)."""
    if provider == "stripe":
        payload = sp.charge_succeeded(event_id="evt_oid", charge_id="ch_o", payment_intent_id="pi_o", amount=4900,
                                      metadata={"order_id": order_ref}, balance_transaction=None, created=T0)
    else:
        payload = pp.transaction_completed(event_id="evt_oid", txn_id="txn_o", custom_data={"order_id": order_ref},
                                           items=[{"price_id": "pri_o", "amount": 4900}], fee=None,
                                           occurred_at="2026-03-01T10:00:00Z")
    send(client, provider, payload)
    worker.drain()
    ev = event_of(runtime, "evt_oid")
    assert ev.status == "processed", ev.error
    from bridge.ledger.models import Order
    assert rows(runtime, select(func.count()).select_from(Order)) == [(0,)]
    assert rows(runtime, select(Payment.order_pk, Payment.order_ref)) == [(None, None)]
    assert [e[:2] for e in ledger(runtime)] == [("sale", 4900)]
    found = [d for d in discrepancies(runtime) if d["kind"] == "unmatched_payment"]
    assert len(found) == 1 and why in found[0]["detail"] and "\ud800" not in found[0]["detail"]


# --- Paddle chargebacks: each adjustment is its own case (item 9) ---------------------------------------

def _paddle_paid(client, worker):
    send(client, "paddle", pp.transaction_completed(event_id="evt_pcb", txn_id="txn_cb", custom_data={"order_id": "ord_cb"},
                                                    items=[{"price_id": "pri_cb", "amount": 4900}], fee=0,
                                                    occurred_at="2026-03-01T10:00:00Z"))
    worker.drain()


def _chargeback(n, action, total, at):
    return pp.adjustment_event(event_id=f"evt_cb{n}", adjustment_id=f"adj_cb{n}", action=action, transaction_id="txn_cb",
                               total=total, chargeback_fee=1500 if action == "chargeback" else None,
                               created_at=at, updated_at=at)


def test_a_second_paddle_chargeback_on_one_transaction_books_its_money(client, runtime, worker):
    """Before: disputes were keyed by the transaction, so the second chargeback landed on the
    first one's effect keys and booked nothing."""
    _paddle_paid(client, worker)
    send(client, "paddle", _chargeback(1, "chargeback", 2000, "2026-03-05T10:00:00Z"))
    send(client, "paddle", _chargeback(2, "chargeback", 1500, "2026-03-06T10:00:00Z"))
    worker.drain()
    cbs = sorted(a for k, a, _ in ledger(runtime) if k == "chargeback")
    assert cbs == [-2000, -1500]
    assert len(rows(runtime, select(Dispute.id))) == 2
    # A reversal names no case: it undoes the earliest chargeback not reversed yet; once.
    send(client, "paddle", _chargeback(3, "chargeback_reverse", 2000, "2026-03-20T10:00:00Z"))
    worker.drain()
    send(client, "paddle", _chargeback(3, "chargeback_reverse", 2000, "2026-03-20T10:00:00Z") | {"event_id": "evt_cb3b"})
    worker.drain()
    assert sorted(a for k, a, _ in ledger(runtime) if k == "chargeback_reversal") == [2000]
    got = dict(rows(runtime, select(Dispute.adjustment_id, Dispute.status)))
    assert got == {"adj_cb1": "won", "adj_cb2": "lost"}


def test_a_second_chargeback_beyond_what_is_left_is_held(client, runtime, worker):
    _paddle_paid(client, worker)
    send(client, "paddle", _chargeback(1, "chargeback", 4900, "2026-03-05T10:00:00Z"))
    send(client, "paddle", _chargeback(2, "chargeback", 4900, "2026-03-06T10:00:00Z"))
    worker.drain()
    assert event_of(runtime, "evt_cb2").status == "held"
    assert sorted(a for k, a, _ in ledger(runtime) if k == "chargeback") == [-4900]


def test_a_fetched_fee_above_the_charge_is_left_unknown_not_retried(db_url, tmp_path):
    """The fee fetched from Stripe's balance transaction is judged like one in an event: a fee
    of 9,000 on a 4,900 charge is not booked, and the job does not retry for an hour."""
    from bridge.fakes.stripe_server import FakeStripe
    from tests.conftest import test_settings
    from tests.support.harness import Shop
    with FakeStripe(api_key="sk_test_bridge") as fake:
        fake.add_charge("ch_ff", "pi_ff", amount=4900, currency="usd", fee=9000, balance_transaction_id="txn_ff")
        shop = Shop(test_settings(db_url, tmp_path, stripe_api_base=fake.url))
        try:
            shop.stripe(sp.charge_succeeded(charge_id="ch_ff", payment_intent_id="pi_ff", amount=4900,
                                            metadata={"order_id": "ord_ff"}, balance_transaction="txn_ff", created=T0))
            shop.drain()
            assert shop.order("ord_ff")["payments"][0]["fee"] is None
            assert sorted(e[0] for e in shop.ledger("ord_ff")) == ["sale"]
            assert rows(shop.rt, select(Job.state, Job.attempts).where(Job.kind == "fetch_fee")) == [("done", 1)]
        finally:
            shop.close()
