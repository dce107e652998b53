"""Helpers for console tests: sign in through the form (with its CSRF token), and a small shop's
March 2026 with known totals, put in through the real webhook intake, API and worker."""
from __future__ import annotations

import json
import re

from bridge.ledger.tokens import hash_token
from tests.conftest import LICENSE_SECRET, PADDLE_SECRET, STRIPE_SECRET
from tests.fixtures import stripe_payloads as sp
from tests.support.api import auth, token
from tests.support.signing import stripe_headers

T0 = 1_772_359_200  # 2026-03-01T10:00:00Z
DAY = 86_400
MONTH = "2026-03"

LICENSE = {"item_id": "li_1", "sku": "pro-license", "category": "license", "billing": "one_time",
           "amount": 4900, "price_id": "pri_lic"}
CREDITS = {"item_id": "li_1", "sku": "credits", "category": "addon", "billing": "one_time",
           "amount": 5000, "price_id": "pri_credits"}


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "the page has no CSRF token"
    return m.group(1)


def sign_in(client, tok: str):
    page = client.get("/console/sign-in")
    return client.post("/console/sign-in", data={"token": tok, "csrf_token": csrf_of(page.text)})


def post_form(client, path: str, data: dict, page: str):
    """Post a form the way a browser does: with the CSRF token of a page just loaded."""
    html = client.get(page).text
    return client.post(path, data={**data, "csrf_token": csrf_of(html)})


def secrets_of(rt, tokens: list[str]) -> list[str]:
    """Everything no page may show: tokens, their stored hashes, every configured secret."""
    s = rt.settings
    out = [*tokens, *(hash_token(t) for t in tokens), STRIPE_SECRET, PADDLE_SECRET, LICENSE_SECRET,
           LICENSE_SECRET.removeprefix("whsec_"), s.stripe_api_key, s.paddle_api_key]
    from bridge.web.console import secret
    out.append(secret.resolve(s))
    return [x for x in out if x]


class Seeder:
    """Drives the bridge like its providers and the merchant's app do."""

    def __init__(self, client, rt, drain, fake_stripe=None):
        self.client, self.rt, self.drain, self.fake = client, rt, drain, fake_stripe
        self.tok = token(rt, "orders:write", "refunds:write", "read", name="merchant-app")

    def api(self, method, path, body=None, headers=None):
        return self.client.open("/api/v1" + path, method=method, json=body,
                                headers={**auth(self.tok), **(headers or {})})

    def register(self, order_id, policy, items, currency="USD", email=None):
        r = self.api("POST", "/orders", {"order_id": order_id, "policy": policy, "currency": currency,
                                         "customer": {"id": f"cus_{order_id}", "email": email, "country": "US"},
                                         "items": items})
        assert r.status_code == 201, r.text

    def stripe(self, payload: dict):
        body = json.dumps(payload).encode()
        r = self.client.post("/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET))
        assert r.status_code == 200, r.text

    def pay(self, order_id, amount, fee, currency="usd", at=T0, charge=None):
        charge = charge or f"ch_{order_id}"
        bt = sp.balance_transaction(bt_id=f"txn_{order_id}", amount=amount, fee=fee, currency=currency, source=charge)
        if self.fake is not None:  # the fake Stripe knows the charge, so a refund of it can run
            self.fake.add_charge(charge, f"pi_{order_id}", amount, currency, fee, f"txn_{order_id}")
        self.stripe(sp.charge_succeeded(charge_id=charge, payment_intent_id=f"pi_{order_id}", amount=amount,
                                        currency=currency, customer=f"cus_{order_id}",
                                        metadata={"order_id": order_id}, balance_transaction=bt, created=at))
        self.drain()
        return charge

    def refund_request(self, order_id, at, reason="not_satisfied"):
        r = self.api("POST", "/refund-requests", {"order_id": order_id, "reason": reason, "requested_at": at})
        assert r.status_code == 201, r.text
        return r.get_json()


def seed_march(seeder: Seeder) -> dict:
    """March 2026, known totals (Stripe, USD): gross 49.00 + 50.00 + 20.00 = 119.00, fees 1.72 +
    1.75 + 0.80 = 4.27, refunds 20.00 (made in the dashboard: a discrepancy), net 94.73;
    (Stripe, JPY): gross 4,900, no fee. ord_a has an approved request with a fee deduction
    (policy clauses 2 and 3), ord_r one in review (mittrik), and one event failed to parse."""
    s = seeder
    s.register("ord_a", "software-mor", [LICENSE], email="alice@example.com")
    s.pay("ord_a", 4900, 172, at=T0)
    s.register("ord_r", "mittrik", [CREDITS], email="rob@example.com")
    charge_r = s.pay("ord_r", 5000, 175, at=T0 + DAY)
    s.register("ord_x", "software-mor", [dict(LICENSE, amount=2000)])
    s.pay("ord_x", 2000, 80, at=T0 + 2 * DAY)
    s.register("ord_j", "software-mor", [dict(LICENSE, amount=4900)], currency="JPY")
    s.pay("ord_j", 4900, 0, currency="jpy", at=T0 + 3 * DAY)
    # Refunded in the Stripe dashboard: not decided by the bridge.
    s.stripe(sp.charge_refunded(charge_id="ch_ord_x", payment_intent_id="pi_ord_x", amount=2000,
                                charge_created=T0 + 2 * DAY, created=T0 + 5 * DAY, metadata={"order_id": "ord_x"},
                                refunds=[{"refund_id": "re_dashboard_x", "amount": 2000, "created": T0 + 5 * DAY}]))
    s.drain()
    bad = sp.charge_succeeded(charge_id="ch_broken", amount=1234, metadata={"order_id": "ord_broken"})
    bad["data"]["object"]["amount_captured"] = "twelve"  # a payload no retry can fix: it fails to parse
    s.stripe(bad)
    s.drain()
    # Decided at once; their refunds are executed only by a worker drained later (if at all).
    approved = s.refund_request("ord_a", "2026-03-20T10:00:00Z")
    review = s.refund_request("ord_r", "2026-03-04T10:00:00Z")
    assert (approved["status"], review["status"]) == ("approved", "review")
    return {"approved": approved, "review": review, "charge_r": charge_r, "bad_event": bad["id"]}
