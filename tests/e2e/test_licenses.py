"""Chargebacks and licenses end to end over HTTP (issue 5): signed provider webhooks in, license
states read back through ``/api/v1/licenses`` and ``/api/v1/disputes``, and every license change
sent to a merchant app that verifies the Standard Webhooks signature on its own (it does not use
the bridge's signing code), records every delivery, and can be down or lose its answers.

Stories are played in order, shuffled, reversed and duplicated, each on a fresh database, and
must end in the same license states and the same set of notices (by ``webhook-id``)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from flask import Flask, request
from sqlalchemy import select
from werkzeug.serving import make_server

from bridge.ledger.models import License, OutboundMessage
from bridge.services.licenses import status_of
from tests.conftest import LICENSE_SECRET, test_settings
from tests.fixtures import paddle_payloads as pp, stripe_payloads as sp
from tests.support.api import auth, token
from tests.support.harness import Shop
from tests.support.statements import Transactions

T0 = 1_772_359_200  # 2026-03-01T10:00:00Z
DAY = 86400
NOTICE_KEYS = {"type", "license_id", "order_id", "item_id", "reason", "occurred_at"}
AFTER = {"license.suspended": "suspended", "license.revoked": "revoked", "license.reinstated": "active"}


# -- the merchant's app ------------------------------------------------------------------------

class Merchant:
    """Verifies Standard Webhooks messages as any Standard Webhooks library would: key =
    base64 of the ``whsec_`` secret, HMAC-SHA256 over ``id.timestamp.body``, any of the
    space-separated ``v1,`` signatures, timestamp within 5 minutes either way.

    ``down``: answers 503 without looking. ``lose``: records the message, then answers 503 (the
    answer was lost: the bridge must send it again, and the merchant dedupes by webhook-id)."""

    def __init__(self, secret: str):
        self.key = base64.b64decode(secret.removeprefix("whsec_"))
        self.down = False
        self.lose = False
        self.deliveries: list[dict] = []      # every accepted delivery, duplicates included
        self.rejected: list[str] = []
        self.lock = threading.Lock()
        app = Flask("merchant")

        @app.post("/license-hooks")
        def hook():
            if self.down:
                return "down", 503
            body = request.get_data()
            problem = self._verify(request.headers, body)
            if problem:
                with self.lock:
                    self.rejected.append(problem)
                return problem, 400
            msg = json.loads(body)
            with self.lock:
                self.deliveries.append({"id": request.headers["webhook-id"], **msg})
            if self.lose:
                return "answer lost", 503
            return "", 204

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=lambda: self.server.serve_forever(poll_interval=0.05), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.port}/license-hooks"

    def _verify(self, headers, body: bytes):
        mid, ts, sigs = headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature")
        if not (mid and ts and sigs):
            return "missing header"
        if not ts.isdigit() or abs(time.time() - int(ts)) > 300:
            return "timestamp outside tolerance"
        if not headers.get("Content-Type", "").startswith("application/json"):
            return "not json"
        expected = base64.b64encode(hmac.new(self.key, f"{mid}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
        for sig in sigs.split(" "):
            version, _, value = sig.partition(",")
            if version == "v1" and hmac.compare_digest(value, expected):
                return None
        return "bad signature"

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)

    # -- what the merchant knows, deduplicated by webhook-id --------------------------------
    def messages(self) -> list[dict]:
        seen, out = set(), []
        with self.lock:
            for m in self.deliveries:
                if m["id"] not in seen:
                    seen.add(m["id"])
                    out.append(m)
        return out

    def ids(self) -> set[str]:
        return {m["id"] for m in self.messages()}

    def types(self, license_id: str) -> list[str]:
        return [m["type"] for m in self.messages() if m["license_id"] == license_id]

    def ids_of(self, license_id: str) -> list[str]:
        return [m["id"] for m in self.messages() if m["license_id"] == license_id]

    def believed(self, license_id: str) -> str:
        """The license's status as the merchant's app sees it after applying the notices."""
        types = self.types(license_id)
        return AFTER[types[-1]] if types else "active"


# -- fixtures and helpers ----------------------------------------------------------------------

@pytest.fixture
def merchant():
    m = Merchant(LICENSE_SECRET)
    yield m
    m.stop()


def close_shop(shop):
    """``Shop.close`` waits for the server's 0.5 s poll; a request wakes it at once."""
    stopper = threading.Thread(target=shop.served.server.shutdown)
    stopper.start()
    while stopper.is_alive():
        try:
            requests.get(shop.url + "/healthz", timeout=0.2)
        except requests.RequestException:
            pass
        stopper.join(0.05)
    shop.served.thread.join(5)
    shop.rt.engine.dispose()


@pytest.fixture
def shop(db_url, tmp_path, merchant):
    s = Shop(test_settings(db_url, tmp_path, license_webhook_url=merchant.url))
    yield s
    close_shop(s)


def register(shop, order_id, policy, items, customer="cus_1", currency="USD"):
    shop.api("POST", "/orders", {"order_id": order_id, "policy": policy, "currency": currency,
                                 "customer": {"id": customer, "country": "US"}, "items": items}, expect=201)


def lic_item(item_id, category="license", billing="one_time", amount=4900, price_id=None):
    return {"item_id": item_id, "category": category, "billing": billing, "amount": amount,
            "price_id": price_id or f"pri_{item_id}"}


def licenses(shop, order_id) -> dict[str, dict]:
    r = shop.api("GET", f"/licenses?order_id={order_id}", expect=200).json()
    assert r["order_id"] == order_id
    return {lic["item_id"]: lic for lic in r["licenses"]}


def statuses(shop, *order_ids) -> dict[tuple, str]:
    return {(o, item): lic["status"] for o in order_ids for item, lic in licenses(shop, o).items()}


def outbox(shop) -> list[OutboundMessage]:
    with shop.rt.reads() as s:
        rows = s.execute(select(OutboundMessage).order_by(OutboundMessage.license_id, OutboundMessage.seq)).scalars().all()
        s.expunge_all()
        return rows


def delivered(shop) -> bool:
    return all(m.delivered_at is not None for m in outbox(shop))


def settle(shop, timeout=60):
    """Process everything, then wait until every notice is delivered."""
    shop.drain(timeout=timeout)
    shop.drain(until=lambda: delivered(shop), timeout=timeout)


def assert_notices_consistent(shop, merchant, *order_ids):
    """The merchant has every notice of the outbox, in the outbox's order per license, and what
    it believes of each license is what the bridge says."""
    rows = outbox(shop)
    assert merchant.rejected == []
    assert merchant.ids() == {m.id for m in rows}
    for lid in {m.license_id for m in rows}:
        assert merchant.ids_of(lid) == [m.id for m in rows if m.license_id == lid], f"order of notices for {lid}"
    for m in merchant.messages():
        assert set(m) - {"id"} == NOTICE_KEYS
        row = next(r for r in rows if r.id == m["id"])
        assert {k: m[k] for k in NOTICE_KEYS} == row.body
    for o in order_ids:
        for item, lic in licenses(shop, o).items():
            assert merchant.believed(lic["license_id"]) == lic["status"], (o, item, merchant.types(lic["license_id"]))


# Stripe payloads -------------------------------------------------------------------------------

def s_pay(order_id, customer="cus_1", amount=4900, created=T0):
    charge, pi = f"ch_{order_id}", f"pi_{order_id}"
    bt = sp.balance_transaction(bt_id=f"txn_{order_id}", amount=amount, fee=172, source=charge, created=created + 60)
    return sp.charge_succeeded(event_id=f"evt_pay_{order_id}", charge_id=charge, payment_intent_id=pi, amount=amount,
                               customer=customer, metadata={"order_id": order_id}, balance_transaction=bt,
                               created=created)


def s_dispute(order_id, event_type, status, created, amount=4900, dispute_id=None, event_id=None):
    dispute_id = dispute_id or f"dp_{order_id}"
    return sp.dispute_event(event_type, event_id=event_id or f"evt_{dispute_id}_{event_type}_{status}_{created}",
                            dispute_id=dispute_id, charge_id=f"ch_{order_id}", payment_intent_id=f"pi_{order_id}",
                            amount=amount, currency="usd", status=status, created=created)


def s_refund(order_id, event_type, status, created, amount=4900, refund_id=None):
    refund_id = refund_id or f"re_{order_id}"
    return sp.refund_event(event_type, event_id=f"evt_{refund_id}_{event_type}_{status}", refund_id=refund_id,
                           charge_id=f"ch_{order_id}", payment_intent_id=f"pi_{order_id}", amount=amount,
                           status=status, created=created)


# Paddle payloads -------------------------------------------------------------------------------

def p_pay(order_id, lines, customer="ctm_1", at="2026-03-01T10:00:00Z"):
    """``lines``: [(price_id, amount)]. Returns the payload and the Paddle line item ids."""
    doc = pp.transaction_completed(event_id=f"evt_pay_{order_id}", txn_id=f"txn_{order_id}",
                                   custom_data={"order_id": order_id}, fee=400, customer_id=customer,
                                   items=[{"price_id": p, "product_id": f"pro_{p}", "amount": a, "tax": 0} for p, a in lines],
                                   subscription_id=None, billing_period=None, billed_at=at, captured_at=at, occurred_at=at)
    return doc, [li["id"] for li in doc["data"]["details"]["line_items"]]


def p_adjust(order_id, adj_id, action, at, status="approved", event_type="adjustment.created", total=4900,
             items=None, customer="ctm_1"):
    return pp.adjustment_event(event_type, event_id=f"evt_{adj_id}_{event_type}_{status}", adjustment_id=adj_id,
                               action=action, status=status, transaction_id=f"txn_{order_id}", currency="USD",
                               total=None if items else total, items=items, customer_id=customer, occurred_at=at)


# -- one story at a time -----------------------------------------------------------------------

def test_stripe_dispute_opened_suspends_and_won_reinstates(shop, merchant):
    register(shop, "ord_w", "micromastery", [lic_item("li_1", "training"), lic_item("li_2", "training", amount=1000)])
    shop.stripe(s_pay("ord_w", amount=5900))
    settle(shop)
    before = licenses(shop, "ord_w")
    assert {i: lic["status"] for i, lic in before.items()} == {"li_1": "active", "li_2": "active"}
    assert merchant.deliveries == []  # a new license is no change to tell

    shop.stripe(s_dispute("ord_w", "charge.dispute.created", "needs_response", T0 + DAY, amount=5900))
    settle(shop)
    now = licenses(shop, "ord_w")
    assert {i: (lic["status"], lic["reason"]) for i, lic in now.items()} == {
        "li_1": ("suspended", "dispute open"), "li_2": ("suspended", "dispute open")}
    assert now["li_1"]["changed_at"] == "2026-03-02T10:00:00Z"
    one = shop.api("GET", f"/licenses/{now['li_1']['license_id']}", expect=200).json()
    assert one == now["li_1"]
    open_ = shop.api("GET", "/disputes?status=open", expect=200).json()["disputes"]
    assert len(open_) == 1
    d = open_[0]
    assert (d["provider"], d["order_id"], d["amount"], d["currency"], d["reason"], d["status"], d["restriction"]) == (
        "stripe", "ord_w", 5900, "USD", "fraudulent", "open", "suspend_order")
    assert d["evidence_due_by"] == "2026-03-08T10:00:00Z"
    for lic in now.values():
        assert merchant.types(lic["license_id"]) == ["license.suspended"]
    msg = merchant.messages()[0]
    assert msg["order_id"] == "ord_w" and msg["reason"] == "dispute opened"
    assert msg["occurred_at"] == "2026-03-02T10:00:00Z"

    shop.stripe(s_dispute("ord_w", "charge.dispute.closed", "won", T0 + 10 * DAY, amount=5900))
    settle(shop)
    after = licenses(shop, "ord_w")
    assert {i: (lic["status"], lic["reason"], lic["changed_at"]) for i, lic in after.items()} == {
        "li_1": ("active", "dispute won", "2026-03-11T10:00:00Z"), "li_2": ("active", "dispute won", "2026-03-11T10:00:00Z")}
    for lic in after.values():
        assert merchant.types(lic["license_id"]) == ["license.suspended", "license.reinstated"]
    assert shop.api("GET", "/disputes?status=open", expect=200).json()["disputes"] == []
    closed = shop.api("GET", "/disputes?status=closed", expect=200).json()["disputes"]
    assert [(x["status"], x["restriction"]) for x in closed] == [("won", "suspend_order")]
    assert_notices_consistent(shop, merchant, "ord_w")


def test_stripe_dispute_lost_revokes(shop, merchant):
    register(shop, "ord_l", "software-mor", [lic_item("li_1")], customer="cus_l")
    shop.stripe(s_pay("ord_l", customer="cus_l"))
    shop.stripe(s_dispute("ord_l", "charge.dispute.created", "needs_response", T0 + DAY))
    settle(shop)
    assert licenses(shop, "ord_l")["li_1"]["status"] == "suspended"
    assert shop.api("GET", "/disputes?status=open", expect=200).json()["disputes"][0]["restriction"] == "restrict_account"
    shop.stripe(s_dispute("ord_l", "charge.dispute.closed", "lost", T0 + 20 * DAY))
    settle(shop)
    lic = licenses(shop, "ord_l")["li_1"]
    assert (lic["status"], lic["reason"], lic["changed_at"]) == ("revoked", "chargeback lost", "2026-03-21T10:00:00Z")
    assert merchant.types(lic["license_id"]) == ["license.suspended", "license.revoked"]
    assert merchant.messages()[-1]["reason"] == "chargeback lost"
    assert_notices_consistent(shop, merchant, "ord_l")


@pytest.mark.parametrize("path", ["warning", "chargeback"])
def test_paddle_dispute_won_reinstates(shop, merchant, path):
    register(shop, "ord_pw", "software-mor", [lic_item("li_1", price_id="pri_a")], customer="ctm_1")
    doc, _ = p_pay("ord_pw", [("pri_a", 4900)])
    shop.paddle(doc)
    opened, closed = ("chargeback_warning", "chargeback_warning_reverse") if path == "warning" else (
        "chargeback", "chargeback_reverse")
    shop.paddle(p_adjust("ord_pw", "adj_1", opened, "2026-03-05T10:00:00Z"))
    settle(shop)
    lic = licenses(shop, "ord_pw")["li_1"]
    # A chargeback (money taken) stands as lost until it is reversed: the license is revoked.
    assert lic["status"] == ("suspended" if path == "warning" else "revoked")
    shop.paddle(p_adjust("ord_pw", "adj_2", closed, "2026-03-20T10:00:00Z"))
    settle(shop)
    lic = licenses(shop, "ord_pw")["li_1"]
    assert (lic["status"], lic["reason"]) == ("active", "dispute won")
    expected = ["license.suspended", "license.reinstated"] if path == "warning" else [
        "license.suspended", "license.revoked", "license.reinstated"]
    assert merchant.types(lic["license_id"]) == expected
    assert_notices_consistent(shop, merchant, "ord_pw")


def test_paddle_warning_then_chargeback_revokes(shop, merchant):
    register(shop, "ord_pl", "micromastery", [lic_item("li_1", "training", price_id="pri_a")], customer="ctm_1")
    doc, _ = p_pay("ord_pl", [("pri_a", 4900)])
    shop.paddle(doc)
    shop.paddle(p_adjust("ord_pl", "adj_1", "chargeback_warning", "2026-03-05T10:00:00Z"))
    settle(shop)
    assert licenses(shop, "ord_pl")["li_1"]["status"] == "suspended"
    d = shop.api("GET", "/disputes?status=open", expect=200).json()["disputes"]
    assert [(x["provider"], x["order_id"], x["status"], x["restriction"]) for x in d] == [
        ("paddle", "ord_pl", "warning", "suspend_order")]
    shop.paddle(p_adjust("ord_pl", "adj_2", "chargeback", "2026-03-09T10:00:00Z"))
    settle(shop)
    lic = licenses(shop, "ord_pl")["li_1"]
    assert (lic["status"], lic["reason"]) == ("revoked", "chargeback lost")
    assert merchant.types(lic["license_id"]) == ["license.suspended", "license.revoked"]
    assert shop.api("GET", "/disputes?status=lost", expect=200).json()["disputes"][0]["order_id"] == "ord_pl"
    assert_notices_consistent(shop, merchant, "ord_pl")


def test_stripe_refund_of_the_whole_charge_revokes(shop, merchant):
    register(shop, "ord_r", "software-mor", [lic_item("li_1", amount=3000), lic_item("li_2", "store_addon", amount=1900)],
             customer="cus_r")
    shop.stripe(s_pay("ord_r", customer="cus_r"))
    # A partial refund made in the dashboard names no items: nothing is revoked.
    shop.stripe(s_refund("ord_r", "refund.updated", "succeeded", T0 + 3600, amount=1000, refund_id="re_part"))
    settle(shop)
    assert statuses(shop, "ord_r") == {("ord_r", "li_1"): "active", ("ord_r", "li_2"): "active"}
    shop.stripe(s_refund("ord_r", "refund.created", "pending", T0 + 7200, amount=3900))
    settle(shop)
    assert statuses(shop, "ord_r") == {("ord_r", "li_1"): "active", ("ord_r", "li_2"): "active"}
    shop.stripe(s_refund("ord_r", "refund.updated", "succeeded", T0 + 7300, amount=3900))
    settle(shop)
    lics = licenses(shop, "ord_r")
    assert {i: (lic["status"], lic["reason"]) for i, lic in lics.items()} == {
        "li_1": ("revoked", "refunded"), "li_2": ("revoked", "refunded")}
    assert lics["li_1"]["changed_at"] == "2026-03-01T12:01:40Z"
    for lic in lics.values():
        assert merchant.types(lic["license_id"]) == ["license.revoked"]
    assert_notices_consistent(shop, merchant, "ord_r")


def test_paddle_refund_of_one_line_revokes_that_line_only(shop, merchant):
    register(shop, "ord_pr", "software-mor", [lic_item("li_1", price_id="pri_a"),
                                              lic_item("li_2", "store_addon", amount=2000, price_id="pri_b")],
             customer="ctm_1")
    doc, lines = p_pay("ord_pr", [("pri_a", 4900), ("pri_b", 2000)])
    shop.paddle(doc)
    refund = dict(items=[{"item_id": lines[1], "amount": 2000, "type": "full"}])
    shop.paddle(p_adjust("ord_pr", "adj_r", "refund", "2026-03-02T10:00:00Z", status="pending_approval", **refund))
    settle(shop)
    assert statuses(shop, "ord_pr") == {("ord_pr", "li_1"): "active", ("ord_pr", "li_2"): "active"}
    shop.paddle(p_adjust("ord_pr", "adj_r", "refund", "2026-03-02T12:00:00Z", event_type="adjustment.updated", **refund))
    settle(shop)
    lics = licenses(shop, "ord_pr")
    assert (lics["li_1"]["status"], lics["li_2"]["status"], lics["li_2"]["reason"]) == ("active", "revoked", "refunded")
    assert merchant.types(lics["li_1"]["license_id"]) == []
    assert merchant.types(lics["li_2"]["license_id"]) == ["license.revoked"]
    assert_notices_consistent(shop, merchant, "ord_pr")


def account_orders(shop, policy, customer="cus_acct"):
    if policy == "mittrik":
        items_a = [lic_item("plan_a", "plan", "annual", 12000)]
        items_b = [lic_item("plan_b", "plan", "monthly", 2000), lic_item("addon_b", "addon", amount=500)]
    else:
        items_a = [lic_item("lic_a")]
        items_b = [lic_item("lic_b", amount=2500), lic_item("addon_b", "store_addon", amount=500)]
    register(shop, "ord_a", policy, items_a, customer=customer)
    register(shop, "ord_b", policy, items_b, customer=customer)
    # Another customer's order under the same policy is never touched.
    register(shop, "ord_other", policy, items_a, customer="cus_other")


@pytest.mark.parametrize("policy", ["software-mor", "mittrik"])
def test_account_restriction_across_two_orders(shop, merchant, policy):
    account_orders(shop, policy)
    shop.stripe(s_pay("ord_a", customer="cus_acct", amount=12000))
    shop.stripe(s_pay("ord_b", customer="cus_acct", amount=2500, created=T0 + 3600))
    shop.stripe(s_pay("ord_other", customer="cus_other", amount=12000))
    settle(shop)
    shop.stripe(s_dispute("ord_a", "charge.dispute.created", "needs_response", T0 + DAY, amount=12000))
    settle(shop)
    st = statuses(shop, "ord_a", "ord_b", "ord_other")
    assert {k: v for k, v in st.items() if k[0] != "ord_other"} == {k: "suspended" for k in st if k[0] != "ord_other"}
    assert {v for k, v in st.items() if k[0] == "ord_other"} == {"active"}
    d = shop.api("GET", "/disputes?status=open", expect=200).json()["disputes"]
    assert [(x["order_id"], x["restriction"]) for x in d] == [("ord_a", "restrict_account")]
    shop.stripe(s_dispute("ord_a", "charge.dispute.closed", "won", T0 + 10 * DAY, amount=12000))
    settle(shop)
    assert set(statuses(shop, "ord_a", "ord_b", "ord_other").values()) == {"active"}
    for o in ("ord_a", "ord_b"):
        for lic in licenses(shop, o).values():
            assert merchant.types(lic["license_id"]) == ["license.suspended", "license.reinstated"]
    assert_notices_consistent(shop, merchant, "ord_a", "ord_b", "ord_other")


@pytest.mark.parametrize("policy", ["software-mor", "mittrik"])
def test_account_restriction_lost(shop, merchant, policy):
    account_orders(shop, policy)
    shop.stripe(s_pay("ord_a", customer="cus_acct", amount=12000))
    shop.stripe(s_pay("ord_b", customer="cus_acct", amount=2500, created=T0 + 3600))
    shop.stripe(s_pay("ord_other", customer="cus_other", amount=12000))
    shop.stripe(s_dispute("ord_a", "charge.dispute.created", "needs_response", T0 + DAY, amount=12000))
    settle(shop)
    shop.stripe(s_dispute("ord_a", "charge.dispute.closed", "lost", T0 + 10 * DAY, amount=12000))
    settle(shop)
    st = statuses(shop, "ord_a", "ord_b", "ord_other")
    other = "revoked" if policy == "mittrik" else "active"  # revoke_account vs revoke (the disputed order)
    assert st == {**{k: "revoked" for k in st if k[0] == "ord_a"}, **{k: other for k in st if k[0] == "ord_b"},
                  **{k: "active" for k in st if k[0] == "ord_other"}}
    for lic in licenses(shop, "ord_b").values():
        assert merchant.types(lic["license_id"]) == (
            ["license.suspended", "license.revoked"] if policy == "mittrik" else ["license.suspended", "license.reinstated"])
    assert_notices_consistent(shop, merchant, "ord_a", "ord_b", "ord_other")


# -- subscriptions -----------------------------------------------------------------------------

def _read_license(shop, license_id) -> License:
    with shop.rt.reads() as s:
        lic = s.get(License, license_id)
        s.expunge(lic)
        return lic


@pytest.mark.parametrize("provider", ["stripe", "paddle"])
@pytest.mark.parametrize("ends", ["past", "future"])
def test_subscription_canceled_expires_at_period_end(shop, merchant, provider, ends):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    end = datetime(2026, 4, 1, 10, tzinfo=timezone.utc) if ends == "past" else now + timedelta(days=20)
    start = end - timedelta(days=30)
    register(shop, "ord_sub", "mittrik", [lic_item("plan", "plan", "monthly", 2000, price_id="pri_plan"),
                                          lic_item("addon", "addon", amount=500, price_id="pri_addon")],
             customer="cus_sub")
    if provider == "stripe":
        shop.stripe(s_pay("ord_sub", customer="cus_sub", amount=2500, created=int(start.timestamp())))
        cancel = sp.subscription_deleted(event_id="evt_sub_del", subscription_id="sub_1", customer="cus_sub",
                                         metadata={"order_id": "ord_sub"}, current_period_start=int(start.timestamp()),
                                         current_period_end=int(end.timestamp()), canceled_at=int(start.timestamp()) + DAY,
                                         ended_at=int(end.timestamp()), created=int(start.timestamp()) - 40 * DAY)
    else:
        doc, _ = p_pay("ord_sub", [("pri_plan", 2000), ("pri_addon", 500)], customer="ctm_sub", at=start.isoformat())
        shop.paddle(doc)
        cancel = pp.subscription_canceled(event_id="evt_sub_can", subscription_id="sub_01p", customer_id="ctm_sub",
                                          custom_data={"order_id": "ord_sub"}, canceled_at=start + timedelta(days=1),
                                          current_billing_period=(start, end))
    settle(shop)
    plan = licenses(shop, "ord_sub")["plan"]
    assert (plan["status"], plan["expires_at"]) == ("active", None)
    (shop.stripe if provider == "stripe" else shop.paddle)(cancel)
    settle(shop)
    lics = licenses(shop, "ord_sub")
    end_iso = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert lics["plan"]["expires_at"] == end_iso
    assert lics["addon"]["expires_at"] is None  # a one-time add-on does not end with the plan
    row = _read_license(shop, lics["plan"]["license_id"])
    assert status_of(row, end - timedelta(seconds=1)) == "active"
    assert status_of(row, end) == "expired"
    assert status_of(row, end + timedelta(days=1)) == "expired"
    if ends == "past":
        assert (lics["plan"]["status"], lics["plan"]["changed_at"]) == ("expired", end_iso)
        assert shop.api("GET", f"/licenses/{lics['plan']['license_id']}", expect=200).json()["status"] == "expired"
    else:
        assert lics["plan"]["status"] == "active"
    assert lics["addon"]["status"] == "active"
    # The cancellation again (a replay), or an older one, never shortens nor moves the end.
    (shop.stripe if provider == "stripe" else shop.paddle)(cancel)
    settle(shop)
    assert licenses(shop, "ord_sub")["plan"]["expires_at"] == end_iso
    assert merchant.deliveries == []


# -- late and repeated events ------------------------------------------------------------------

def test_late_dispute_created_after_won_does_not_suspend_again(shop, merchant):
    register(shop, "ord_late", "micromastery", [lic_item("li_1", "training")])
    shop.stripe(s_pay("ord_late"))
    settle(shop)
    created = s_dispute("ord_late", "charge.dispute.created", "needs_response", T0 + DAY)
    won = s_dispute("ord_late", "charge.dispute.closed", "won", T0 + 10 * DAY)
    shop.stripe(won)                                      # the close arrives first
    settle(shop)
    lic = licenses(shop, "ord_late")["li_1"]
    assert lic["status"] == "active"
    sent = merchant.types(lic["license_id"])
    assert sent == ["license.suspended", "license.reinstated"]
    shop.stripe(created)                                  # then the late "created"
    shop.stripe(s_dispute("ord_late", "charge.dispute.updated", "under_review", T0 + 5 * DAY))
    shop.stripe(won)                                      # and a duplicate of the close
    settle(shop)
    lic = licenses(shop, "ord_late")["li_1"]
    assert (lic["status"], lic["reason"]) == ("active", "dispute won")
    assert merchant.types(lic["license_id"]) == sent
    assert len(outbox(shop)) == 2
    assert shop.api("GET", "/disputes?status=open", expect=200).json()["disputes"] == []
    assert_notices_consistent(shop, merchant, "ord_late")


def test_late_paddle_chargeback_after_reverse_does_not_revoke_again(shop, merchant):
    register(shop, "ord_pl2", "software-mor", [lic_item("li_1", price_id="pri_a")], customer="ctm_1")
    doc, _ = p_pay("ord_pl2", [("pri_a", 4900)])
    shop.paddle(doc)
    shop.paddle(p_adjust("ord_pl2", "adj_2", "chargeback_reverse", "2026-03-20T10:00:00Z"))
    settle(shop)
    lic = licenses(shop, "ord_pl2")["li_1"]
    assert lic["status"] == "active"
    sent = merchant.types(lic["license_id"])
    shop.paddle(p_adjust("ord_pl2", "adj_1", "chargeback", "2026-03-09T10:00:00Z"))
    shop.paddle(p_adjust("ord_pl2", "adj_0", "chargeback_warning", "2026-03-05T10:00:00Z"))
    settle(shop)
    lic = licenses(shop, "ord_pl2")["li_1"]
    assert lic["status"] == "active"
    assert merchant.types(lic["license_id"]) == sent
    assert_notices_consistent(shop, merchant, "ord_pl2")


@pytest.mark.parametrize("policy", ["software-mor", "mittrik"])
def test_an_order_paid_while_the_account_is_restricted_is_held_too(shop, merchant, policy):
    account_orders(shop, policy)
    shop.stripe(s_pay("ord_a", customer="cus_acct", amount=12000))
    shop.stripe(s_dispute("ord_a", "charge.dispute.created", "needs_response", T0 + DAY, amount=12000))
    settle(shop)
    assert set(statuses(shop, "ord_a").values()) == {"suspended"}
    assert licenses(shop, "ord_b") == {}  # not paid yet: no licenses
    shop.stripe(s_pay("ord_b", customer="cus_acct", amount=2500, created=T0 + 2 * DAY))
    settle(shop)
    assert set(statuses(shop, "ord_b").values()) == {"suspended"}
    for lic in licenses(shop, "ord_b").values():
        assert (lic["reason"], lic["changed_at"]) == ("dispute open", "2026-03-03T10:00:00Z")
        assert merchant.types(lic["license_id"]) == ["license.suspended"]
    shop.stripe(s_dispute("ord_a", "charge.dispute.closed", "lost", T0 + 10 * DAY, amount=12000))
    settle(shop)
    assert set(statuses(shop, "ord_a").values()) == {"revoked"}
    assert set(statuses(shop, "ord_b").values()) == {"revoked" if policy == "mittrik" else "active"}
    assert_notices_consistent(shop, merchant, "ord_a", "ord_b")


def test_api_answers_and_scopes(shop, merchant):
    register(shop, "ord_api", "micromastery", [lic_item("li_1", "training")])
    assert shop.api("GET", "/licenses?order_id=ord_api", expect=200).json() == {"order_id": "ord_api", "licenses": []}
    shop.stripe(s_pay("ord_api"))
    settle(shop)
    lic = licenses(shop, "ord_api")["li_1"]
    assert set(lic) == {"license_id", "order_id", "item_id", "status", "reason", "changed_at", "expires_at"}
    assert (lic["status"], lic["reason"], lic["changed_at"]) == ("active", "paid", "2026-03-01T10:00:00Z")
    assert shop.order("ord_api")["licenses"][0]["license_id"] == lic["license_id"]

    def error(path, status, **headers):
        r = requests.get(shop.url + "/api/v1" + path, headers=headers or auth(shop.token), timeout=10)
        assert r.status_code == status, (path, r.status_code, r.text)
        return r.json()["error"]

    assert error("/licenses/lic_unknown", 404)["code"] == "license_not_found"
    assert error("/licenses?order_id=ord_unknown", 404)["code"] == "order_not_found"
    assert error("/licenses", 422)["field"] == "order_id"
    assert error("/licenses?order_id=", 422)["field"] == "order_id"
    assert error("/disputes?status=pending", 422)["field"] == "status"
    assert error("/disputes?limit=x", 422)["field"] == "limit"
    writer = token(shop.rt, "orders:write", name="writer")
    reader = token(shop.rt, "read", name="reader")
    for path in (f"/licenses/{lic['license_id']}", "/licenses?order_id=ord_api", "/disputes?status=open"):
        r = requests.get(shop.url + "/api/v1" + path, timeout=10)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        assert error(path, 403, **auth(writer))["code"] == "forbidden"
        assert requests.get(shop.url + "/api/v1" + path, headers=auth(reader), timeout=10).status_code == 200
    assert shop.api("GET", "/disputes", expect=200).json() == {"disputes": []}


def test_registering_an_order_the_bridge_created_from_its_payment(shop, merchant):
    """A payment names an order the merchant has not registered yet: the bridge creates it
    (items by price id) with its licenses. The merchant's registration then names the items
    its own way: the licenses stay the same, one per item."""
    doc = pp.transaction_completed(event_id="evt_pay_adopt", txn_id="txn_ord_adopt", custom_data={"order_id": "ord_adopt"},
                                   fee=400, customer_id="ctm_adopt", subscription_id=None, billing_period=None,
                                   items=[{"price_id": "pri_x", "product_id": "pro_x", "amount": 4900, "tax": 0,
                                           "custom_data": {"category": "license", "billing": "one_time"}}],
                                   billed_at="2026-03-01T10:00:00Z", captured_at="2026-03-01T10:00:00Z",
                                   occurred_at="2026-03-01T10:00:00Z")
    shop.paddle(doc)
    shop.paddle(p_adjust("ord_adopt", "adj_w", "chargeback_warning", "2026-03-05T10:00:00Z", customer="ctm_adopt"))
    settle(shop)
    before = shop.api("GET", "/licenses?order_id=ord_adopt", expect=200).json()["licenses"]
    assert [(lic["item_id"], lic["status"]) for lic in before] == [("pri_x", "suspended")]
    r = shop.api("POST", "/orders", {"order_id": "ord_adopt", "policy": "software-mor", "currency": "USD",
                                     "customer": {"id": "ctm_adopt", "country": "US"},
                                     "items": [lic_item("li_x", price_id="pri_x")]})
    assert r.status_code in (200, 201), r.text
    after = shop.api("GET", "/licenses?order_id=ord_adopt", expect=200).json()["licenses"]
    assert [(lic["license_id"], lic["item_id"], lic["status"]) for lic in after] == [
        (before[0]["license_id"], "li_x", "suspended")]
    shop.paddle(p_adjust("ord_adopt", "adj_wr", "chargeback_warning_reverse", "2026-03-08T10:00:00Z", customer="ctm_adopt"))
    settle(shop)
    lic = shop.api("GET", f"/licenses/{before[0]['license_id']}", expect=200).json()
    assert (lic["item_id"], lic["status"]) == ("li_x", "active")
    assert_notices_consistent(shop, merchant, "ord_adopt")


def test_an_overlapping_dispute_told_late_keeps_the_merchant_in_step(shop, merchant):
    """Dispute A (opened day 1, won day 5) is told first; dispute B on the same account, opened
    on day 2 and still open, is told after. The history now says the licenses stayed suspended
    past day 5: the merchant, who was told "reinstated", is told "suspended" again."""
    account_orders(shop, "software-mor")
    shop.stripe(s_pay("ord_a", customer="cus_acct", amount=12000))
    shop.stripe(s_pay("ord_b", customer="cus_acct", amount=2500, created=T0 + 60))
    shop.stripe(s_dispute("ord_a", "charge.dispute.created", "needs_response", T0 + DAY, amount=12000))
    shop.stripe(s_dispute("ord_a", "charge.dispute.closed", "won", T0 + 5 * DAY, amount=12000))
    settle(shop)
    assert set(statuses(shop, "ord_a", "ord_b").values()) == {"active"}
    shop.stripe(s_dispute("ord_b", "charge.dispute.created", "needs_response", T0 + 2 * DAY, amount=2500))
    settle(shop)
    assert set(statuses(shop, "ord_a", "ord_b").values()) == {"suspended"}
    assert_notices_consistent(shop, merchant, "ord_a", "ord_b")
    a = licenses(shop, "ord_a")["lic_a"]
    assert merchant.types(a["license_id"]) == ["license.suspended", "license.reinstated", "license.suspended"]
    assert (a["reason"], a["changed_at"]) == ("dispute open", "2026-03-02T10:00:00Z")
    shop.stripe(s_dispute("ord_b", "charge.dispute.closed", "won", T0 + 9 * DAY, amount=2500))
    settle(shop)
    assert set(statuses(shop, "ord_a", "ord_b").values()) == {"active"}
    assert_notices_consistent(shop, merchant, "ord_a", "ord_b")


def test_a_refund_that_fails_after_it_succeeded_gives_the_license_back(shop, merchant):
    register(shop, "ord_rf", "software-mor", [lic_item("li_1")], customer="cus_rf")
    shop.stripe(s_pay("ord_rf", customer="cus_rf"))
    shop.stripe(s_refund("ord_rf", "refund.updated", "succeeded", T0 + 3600))
    settle(shop)
    lic = licenses(shop, "ord_rf")["li_1"]
    assert (lic["status"], lic["reason"]) == ("revoked", "refunded")
    shop.stripe(s_refund("ord_rf", "refund.failed", "failed", T0 + 3 * DAY))
    settle(shop)
    lic = licenses(shop, "ord_rf")["li_1"]
    assert (lic["status"], lic["reason"], lic["changed_at"]) == ("active", "refund reversed", "2026-03-04T10:00:00Z")
    assert merchant.types(lic["license_id"]) == ["license.revoked", "license.reinstated"]
    assert_notices_consistent(shop, merchant, "ord_rf")


# -- customers seen before, and customers new ----------------------------------------------------

def p_sale(order_id, customer, at):
    """A Paddle sale of one license whose order the merchant never registered: the bridge
    creates the order from the transaction (under the shop's BRIDGE_POLICY)."""
    return pp.transaction_completed(event_id=f"evt_pay_{order_id}", txn_id=f"txn_{order_id}",
                                    custom_data={"order_id": order_id}, fee=400, customer_id=customer,
                                    items=[{"price_id": "pri_sale", "product_id": "pro_sale", "amount": 4900, "tax": 0,
                                            "custom_data": {"category": "license", "billing": "one_time"}}],
                                    subscription_id=None, billing_period=None, billed_at=at, captured_at=at,
                                    occurred_at=at)


@pytest.fixture
def account_shop(db_url, tmp_path, merchant):
    """Orders created from their payments under a policy whose chargebacks restrict the account."""
    s = Shop(test_settings(db_url, tmp_path, license_webhook_url=merchant.url, default_policy="software-mor"))
    yield s
    close_shop(s)


def test_a_new_order_of_a_disputed_customer_is_held_and_a_new_customers_is_not(account_shop, merchant):
    """The customer's first order gets a chargeback warning (the account is restricted). The
    second order the bridge creates from a payment of the same customer (paid before the
    warning, arriving after it) is held at once, and its payment, of the same price, is flagged
    a duplicate charge; a new customer's order is left alone. The new customer's payment looks
    up neither disputes nor duplicates (the first look-up of its event, the lock resolution on
    PostgreSQL, found it had no order and no payment: bridge/ledger/absent.py); the known
    customer's does both."""
    shop = account_shop
    shop.paddle(p_sale("ord_seen_a", "ctm_seen", "2026-03-01T10:00:00Z"))
    shop.paddle(p_adjust("ord_seen_a", "adj_seen_cb", "chargeback_warning", "2026-03-02T10:00:00Z", customer="ctm_seen"))
    settle(shop)
    assert set(statuses(shop, "ord_seen_a").values()) == {"suspended"}
    with Transactions(shop.rt.engine) as known:
        shop.paddle(p_sale("ord_seen_b", "ctm_seen", "2026-03-01T10:30:00Z"))
        settle(shop)
    with Transactions(shop.rt.engine) as new:
        shop.paddle(p_sale("ord_new", "ctm_new", "2026-03-01T10:30:00Z"))
        settle(shop)
    assert set(statuses(shop, "ord_seen_b").values()) == {"suspended"}
    assert [lic["reason"] for lic in licenses(shop, "ord_seen_b").values()] == ["dispute open"]
    assert shop.order("ord_seen_b")["payments"][0]["duplicate_charge"] is True  # same price, 30 minutes later
    assert set(statuses(shop, "ord_new").values()) == {"active"}
    assert shop.order("ord_new")["payments"][0]["duplicate_charge"] is False
    assert_notices_consistent(shop, merchant, "ord_seen_a", "ord_seen_b", "ord_new")
    disputes, duplicates = "SELECT disputes.id", "SELECT DISTINCT payments.id"
    assert known.count(disputes) >= 1 and known.count(duplicates) == 1
    assert (new.count(disputes), new.count(duplicates)) == (0, 0)
