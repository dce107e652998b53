"""``bridge demo``: a small shop's day, end to end, on a fresh SQLite file.

The bridge (web and worker), a fake Stripe and a fake Paddle run on 127.0.0.1. Orders are
registered through the API, paid at the fakes (which send signed webhooks to the bridge),
refunds are requested under the three shipped policies and executed at the fakes by the
worker; Paddle's approvals arrive as webhooks. Everything goes over HTTP. Then a summary:
each decision with its clauses, each refund with its provider status, the totals. Last, what
can follow a sale: a refund quote, a dispute suspending a license and its win reinstating it,
an early fraud warning decided by the order's policy. And the month closed against Stripe's
own record: a lost webhook recovered by sync, a payout explained to the cent, what is left.
"""
from __future__ import annotations

import secrets
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests
from werkzeug.serving import make_server

from bridge.app import create_app
from bridge.domain.money import format_amount
from bridge.fakes.paddle_server import FakePaddle
from bridge.fakes.payments import paddle_transaction, stripe_charge, stripe_dispute, stripe_fraud_warning
from bridge.fakes.stripe_server import FakeStripe
from bridge.ledger import schema
from bridge.ledger.tokens import create_token
from bridge.runtime import Runtime
from bridge.services.sync import sync_provider
from bridge.settings import PROJECT_ROOT, Settings
from bridge.worker.handlers import all_handlers
from bridge.worker.runner import Worker

DAY = 86400

# (order id, provider, policy, items, fee, paid days ago, request)
SHOP = [
    ("demo-A", "stripe", "software-mor",
     [("li_1", "license", "one_time", 4900, "pri_pro_license", "Pro license")], 172, 19,
     {"reason": "not_satisfied", "note": "license, day 19: refund less the non-refundable fee"}),
    ("demo-B", "paddle", "software-mor",
     [("li_1", "license", "one_time", 4000, "pri_team_license", "Team license"),
      ("li_2", "store_addon", "one_time", 1000, "pri_shop_addon", "Shop add-on")], 250, 2,
     {"reason": "changed_mind", "items": ["li_2"], "note": "partial: the add-on only, fee share kept"}),
    ("demo-C", "stripe", "mittrik",
     [("li_1", "plan", "annual", 120000, "price_growth_annual", "Growth, annual")], 0, 5.5,
     {"reason": "not_satisfied", "note": "annual plan on day 5.5: pro-rated"}),
    ("demo-D", "paddle", "mittrik",
     [("li_1", "plan", "monthly", 2900, "pri_starter_monthly", "Starter, monthly")], 145, 1 / 24,
     {"reason": "changed_mind", "note": "monthly plan: non-refundable once the cycle began"}),
    ("demo-E", "stripe", "micromastery",
     [("li_1", "training", "one_time", 9900, "pri_course", "Leadership course")], 317, 3,
     {"reason": "changed_mind", "facts": {"content_accessed": True}, "note": "lessons accessed: denied"}),
    ("demo-F", "paddle", "micromastery",
     [("li_1", "training", "one_time", 4900, "pri_workshop", "Workshop")], 245, 10,
     {"reason": "technical_issue", "facts": {"technical_issue": True}, "problem_days": 3,
      "note": "access problem reported on day 3, unresolved: refunded in full"}),
    ("demo-G", "stripe", "mittrik",
     [("li_1", "addon", "one_time", 5000, "price_voice_credits", "Voice credits")], 175, 3,
     {"reason": "not_satisfied", "review": 4000, "note": "unused add-on: 'may be considered', a person approves 40.00"}),
]


class _Served:
    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def run_demo(keep: bool = False, out=sys.stdout) -> int:
    say = lambda *a: print(*a, file=out, flush=True)  # noqa: E731
    import logging
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log lines in the story
    workdir = Path(tempfile.mkdtemp(prefix="bridge-demo-"))
    stripe_secret, paddle_secret = "whsec_" + secrets.token_hex(16), "pdl_ntfset_" + secrets.token_hex(16)
    stripe, paddle = FakeStripe(), FakePaddle()
    stripe.start()
    paddle.start()
    settings = Settings(
        database_url=f"sqlite:///{workdir / 'demo.sqlite3'}", instance_dir=workdir, config_dir=PROJECT_ROOT / "config",
        stripe_api_key=stripe.api_key or "sk_test_demo", stripe_webhook_secrets=(stripe_secret,), stripe_api_base=stripe.url,
        paddle_api_key=paddle.api_key or "pdl_sdbx_apikey_demo", paddle_webhook_secrets=(paddle_secret,), paddle_api_base=paddle.url,
        worker_poll_seconds=0.05, job_backoff_base_seconds=0.2, job_backoff_max_seconds=2.0,
        provider_backoff_multiplier=0.1, log_level="WARNING")
    rt = Runtime.build(settings)
    schema.upgrade(rt.engine)
    web = _Served(create_app(runtime=rt))
    stripe.webhook_url, stripe.webhook_secret = web.url + "/webhooks/stripe", stripe_secret
    paddle.webhook_url, paddle.webhook_secret = web.url + "/webhooks/paddle", paddle_secret
    stop = threading.Event()
    threading.Thread(target=Worker(rt, all_handlers(rt), "demo-worker").run_forever, args=(stop,), daemon=True).start()
    with rt.sessions.begin() as s:
        _, token = create_token(s, "demo", ["admin"], rt.clock())
    api = _Api(web.url, token)
    say(f"bridge on {web.url} (SQLite {settings.database_url[10:]}), fake Stripe on {stripe.url}, "
        f"fake Paddle on {paddle.url}\n")
    try:
        _play(api, stripe, paddle, say)
        _close_month(rt, api, stripe, say)
    finally:
        stop.set()
        stripe.stop()
        paddle.stop()
        web.server.shutdown()
        rt.engine.dispose()
        if not keep:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"\ndatabase kept at {workdir / 'demo.sqlite3'}")
    return 0


class _Api:
    def __init__(self, url, token):
        self.url, self.headers = url + "/api/v1", {"Authorization": f"Bearer {token}"}

    def __call__(self, method, path, body=None):
        r = requests.request(method, self.url + path, json=body, headers=self.headers, timeout=30)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text}")
        return r.json()


def _wait(check, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"demo: timed out waiting for {what}")


def _play(api, stripe, paddle, say):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    say("1. Orders registered and paid")
    for order_id, provider, policy, items, fee, days_ago, _ in SHOP:
        api("POST", "/orders", {"order_id": order_id, "policy": policy, "currency": "USD",
                                "customer": {"id": f"cus_{order_id}", "country": "US"},
                                "items": [{"item_id": i, "category": c, "billing": b, "amount": a, "price_id": p,
                                           "sku": name} for i, c, b, a, p, name in items]})
        paid_at = now - timedelta(days=days_ago)
        total = sum(i[3] for i in items)
        if provider == "stripe":
            stripe_charge(stripe, charge_id=f"ch_{order_id.replace('-', '')}", amount=total, currency="usd", fee=fee,
                          order_id=order_id, customer=f"cus_{order_id}", country="US", created=int(paid_at.timestamp()))
        else:
            paddle_transaction(paddle, txn_id=f"txn_{order_id.replace('-', '')}", currency="USD",
                               lines=[(i[4], i[3]) for i in items], fee=fee, order_id=order_id,
                               customer_id=f"ctm_{order_id}", paid_at=paid_at.timestamp())
        say(f"   {order_id}  {provider:6}  {policy:13} {format_amount(total, 'USD'):>14}  "
            f"paid {paid_at:%Y-%m-%d %H:%M}  ({', '.join(i[5] for i in items)})")
    _wait(lambda: all(api("GET", f"/orders/{o[0]}")["status"] == "paid" and
                      all(p["fee"] is not None for p in api("GET", f"/orders/{o[0]}")["payments"]) for o in SHOP),
          "payments and fees")

    say("\n2. Refund requests, decided by each order's policy")
    requests_made = {}
    for order_id, provider, policy, items, fee, days_ago, req in SHOP:
        body = {"order_id": order_id, "reason": req["reason"], "requested_at": now.isoformat().replace("+00:00", "Z"),
                "facts": dict(req.get("facts", {}))}
        if "items" in req:
            body["items"] = req["items"]
        if "problem_days" in req:
            body["facts"]["problem_reported_at"] = (now - timedelta(days=days_ago - req["problem_days"])).isoformat().replace("+00:00", "Z")
        rr = api("POST", "/refund-requests", body)
        requests_made[order_id] = rr["id"]
        d = rr["decision"]
        say(f"   {order_id}  {d['outcome']:8} {format_amount(d['refund_amount'], 'USD'):>14}"
            f"{'  fee kept ' + format_amount(d['fee_deducted'], 'USD') if d['fee_deducted'] else ''}   ({req['note']})")
        say(f"            {d['explanation']}")
        say(f"            cites: " + "; ".join(f"{policy} §{c['section']} {c['title']}" for c in d["clauses"]))

    say("\n3. Manual review")
    for order_id, *_, req in SHOP:
        if "review" in req:
            rr = api("POST", f"/refund-requests/{requests_made[order_id]}/review",
                     {"outcome": "approved", "refund_amount": req["review"], "note": "credits unused, goodwill"})
            say(f"   {order_id}  approved by a person: {format_amount(rr['refund_amount'] if 'refund_amount' in rr else req['review'], 'USD')}")

    say("\n4. Refunds at the providers (Paddle approves its refunds; confirmations arrive as webhooks)")
    approved = [o for o, rid in requests_made.items() if api("GET", f"/refund-requests/{rid}")["status"] not in ("denied", "review")]

    def settled():
        for order_id in approved:
            rr = api("GET", f"/refund-requests/{requests_made[order_id]}")
            for ref in rr["refunds"]:
                if ref["provider"] == "paddle" and ref["status"] == "pending" and ref["provider_refund_id"]:
                    try:
                        paddle.decide(ref["provider_refund_id"], "approved")
                    except Exception:
                        pass
            if rr["status"] not in ("refunded", "failed"):
                return False
        return True
    _wait(settled, "refunds to be confirmed", timeout=90)
    for order_id in requests_made:
        rr = api("GET", f"/refund-requests/{requests_made[order_id]}")
        refs = ", ".join(f"{r['provider']} {r['provider_refund_id']} {format_amount(r['amount'], 'USD')} {r['status']}"
                         for r in rr["refunds"]) or "no refund"
        say(f"   {order_id}  request {rr['status']:9} {refs}")

    say("\n5. Orders and totals")
    totals = {"paid": 0, "fees": 0, "refunded": 0}
    for order_id, *_ in SHOP:
        o = api("GET", f"/orders/{order_id}")
        paid = sum(p["amount"] for p in o["payments"])
        fees = sum(p["fee"] or 0 for p in o["payments"])
        refunded = sum(r["amount"] for r in o["refunds"] if r["status"] == "succeeded")
        totals["paid"] += paid
        totals["fees"] += fees
        totals["refunded"] += refunded
        lic = ", ".join(f"{li['item_id']} {li['status']}" for li in o["licenses"])
        say(f"   {order_id}  {o['status']:19} paid {format_amount(paid, 'USD'):>14}  refunded "
            f"{format_amount(refunded, 'USD'):>12}  licenses: {lic}")
    say(f"\n   gross {format_amount(totals['paid'], 'USD')}, provider fees {format_amount(totals['fees'], 'USD')}, "
        f"refunded {format_amount(totals['refunded'], 'USD')}, "
        f"net {format_amount(totals['paid'] - totals['fees'] - totals['refunded'], 'USD')}")
    say(f"   refunds executed at the fakes: Stripe {len(stripe.applied)}, Paddle {len(paddle.applied)}")
    _after_the_sale(api, stripe, say, now)


def _license_states(api, order_id):
    return ", ".join(f"{li['item_id']} {li['status']}" for li in api("GET", f"/orders/{order_id}")["licenses"])


def _after_the_sale(api, stripe, say, now):
    iso = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    say("\n6. After the sale: a quote, a dispute, a fraud warning")
    for order_id, days_ago in (("demo-H", 3), ("demo-I", 1)):
        api("POST", "/orders", {"order_id": order_id, "policy": "software-mor", "currency": "USD",
                                "customer": {"id": f"cus_{order_id}", "country": "US"},
                                "items": [{"item_id": "li_1", "category": "license", "billing": "one_time",
                                           "amount": 4900, "price_id": "pri_pro_license", "sku": "Pro license"}]})
        stripe_charge(stripe, charge_id=f"ch_{order_id.replace('-', '')}", amount=4900, currency="usd", fee=172,
                      order_id=order_id, customer=f"cus_{order_id}", country="US",
                      created=int((now - timedelta(days=days_ago)).timestamp()))
    _wait(lambda: all(api("GET", f"/orders/{o}")["status"] == "paid" for o in ("demo-H", "demo-I")), "payments")

    q = api("POST", "/refund-quotes", {"order_id": "demo-H", "reason": "not_satisfied", "requested_at": iso(now)})
    until = f", until {q['deadline'][:10]}" if q.get("deadline") else ""
    say(f"   demo-H  quote before asking: {q['outcome']} {format_amount(q['refund_amount'], 'USD')}{until}"
        f" (nothing stored: {len(api('GET', '/orders/demo-H')['refund_requests'])} requests)")

    charge = "ch_demoH"
    stripe_dispute(stripe, dispute_id="dp_demoH", charge_id=charge, amount=4900, currency="usd",
                   status="needs_response", event_type="charge.dispute.created")
    stripe_dispute(stripe, dispute_id="dp_demoH", charge_id=charge, amount=4900, currency="usd",
                   status="needs_response", event_type="charge.dispute.funds_withdrawn")
    _wait(lambda: "suspended" in _license_states(api, "demo-H")
          and api("GET", "/orders/demo-H")["disputes"][0]["funds_withdrawn"], "the license to be suspended")
    d = api("GET", "/orders/demo-H")["disputes"][0]
    say(f"   demo-H  dispute {d['status']} ({d['reason']}), {format_amount(d['funds_withdrawn'], 'USD')} and a "
        f"{format_amount(d['fee'] or 0, 'USD')} fee withdrawn: license {_license_states(api, 'demo-H')}")
    stripe_dispute(stripe, dispute_id="dp_demoH", charge_id=charge, amount=4900, currency="usd",
                   status="won", event_type="charge.dispute.closed")
    stripe_dispute(stripe, dispute_id="dp_demoH", charge_id=charge, amount=4900, currency="usd",
                   status="won", event_type="charge.dispute.funds_reinstated")
    _wait(lambda: "active" in _license_states(api, "demo-H"), "the license to be reinstated")
    d = api("GET", "/orders/demo-H")["disputes"][0]
    say(f"   demo-H  dispute {d['status']}, money reinstated: license {_license_states(api, 'demo-H')}")

    stripe_fraud_warning(stripe, warning_id="issfr_demoI", charge_id="ch_demoI")

    def warned():
        return [r for r in api("GET", "/orders/demo-I")["refund_requests"] if r["reason"] == "fraud_warning"]
    _wait(warned, "the fraud warning to be decided")
    rr = warned()[0]
    d = rr["decision"]
    cites = "; ".join(f"software-mor §{c['section']}" for c in d["clauses"]) or "the early_fraud_warning rule"
    say(f"   demo-I  early fraud warning: refund request {rr['status']} ({d['outcome']}), cites {cites}")
    say(f"            {d['explanation']}")


def _close_month(rt, api, stripe, say):
    """The month closed against the provider's own record: a payment whose webhook the fake
    "lost" is recovered by ``bridge sync``, Stripe's payout is explained to the cent, and what
    remains for a person is shown."""
    say("\n7. Closing the month against Stripe's own record")
    api("POST", "/orders", {"order_id": "demo-L", "policy": "software-mor", "currency": "USD",
                            "customer": {"id": "cus_demo-L", "country": "US"},
                            "items": [{"item_id": "li_1", "category": "license", "billing": "one_time",
                                       "amount": 2900, "price_id": "price_demo_l", "sku": "Plugin"}]})
    stripe.drop_webhooks(1.0)               # the fake loses this webhook: only sync can tell
    stripe_charge(stripe, charge_id="ch_demoL", amount=2900, currency="usd", fee=114, order_id="demo-L",
                  customer="cus_demo-L", country="US")
    stripe.drop_webhooks(0.0)
    say(f"   demo-L paid {format_amount(2900, 'USD')} at Stripe; its webhook was lost "
        f"(order {api('GET', '/orders/demo-L')['status']})")
    report = sync_provider(rt, "stripe")
    say(f"   bridge sync: {sum(report.seen.values())} events seen, {sum(report.new.values())} new "
        f"({', '.join(f'{t} {n}' for t, n in sorted(report.new.items()))})")
    _wait(lambda: api("GET", "/orders/demo-L")["status"] == "paid", "the recovered payment")
    say(f"   demo-L now {api('GET', '/orders/demo-L')['status']}")
    refund = stripe.refund("ch_demoL", 900)  # someone refunds in Stripe's dashboard
    _wait(lambda: any(r["status"] == "succeeded" for r in api("GET", "/orders/demo-L")["refunds"]),
          "the dashboard refund")
    say(f"   demo-L refunded {format_amount(refund['amount'], 'USD')} in Stripe's dashboard ({refund['id']})")
    payout = stripe.pay_out("usd")
    sync_provider(rt, "stripe")             # brings the payout and its balance transactions
    _wait(lambda: api("GET", f"/payouts/{payout['id']}")["itemized"], "the payout's lines")
    p = api("GET", f"/payouts/{payout['id']}")
    linked = sum(1 for line in p["lines"] if line["ledger"])
    say(f"   payout {p['payout_id']} {format_amount(p['amount'], 'USD')}: gross {format_amount(p['gross'], 'USD')}, "
        f"fees {format_amount(p['fees'], 'USD')}, refunds {format_amount(p['refunds'], 'USD')} = net "
        f"{format_amount(p['net'], 'USD')}; unexplained {format_amount(p['unexplained'], 'USD')} "
        f"({linked} of {len(p['lines'])} lines in the ledger)")
    start = (datetime.now(timezone.utc) - timedelta(days=40)).strftime("%Y-%m-%d")
    end = (datetime.now(timezone.utc) + timedelta(days=2)).strftime("%Y-%m-%d")
    rec = api("GET", f"/reconciliation?from={start}&to={end}")
    left = sorted({(d["kind"], d.get("order_id") or "-") for d in rec["discrepancies"]})
    say("   discrepancies left for a person: " + ("; ".join(f"{k} {o}" for k, o in left) or "none"))
