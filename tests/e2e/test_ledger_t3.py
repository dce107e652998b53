"""T3 of the reliability battery: out-of-order, duplicated per-order event chains.

For each provider, hypothesis picks a story (which events exist: refunds that succeed, fail or
are rejected, disputes won or lost, renewals, how the Stripe fee becomes known...) and a
delivery: a permutation of its events, some of them delivered twice, with the worker drained at
random points in between. Whatever the delivery, the final state (orders, items, payments,
refunds, disputes, licenses, unmatched payments and every ledger entry) must equal the state
reached when the same events arrive one by one in ``occurred_at`` order. Events that name a
payment not known yet are parked (``webhook_events.status = 'parked'``) and resolved once it
arrives.

Speed: the bridge runs in-process (Flask test client for the signed webhooks, ``Worker`` drained
directly) with a settable clock, so a parked event's back-off is skipped by moving the clock
instead of sleeping. Every example gets a fresh database (SQLite: a copy of the migrated
template; PostgreSQL: TRUNCATE). The stories' in-order results are computed once per story.

Sizes: by default 20 deliveries per provider, derandomized (the same ones every run, so CI
is stable); ``T3_EXAMPLES=n`` changes the number; ``BRIDGE_BATTERY=full`` runs 500 per provider
(reliability.md) with a random seed; ``SEED=n`` explores with that seed. Run with ``-s`` to see
the parked counts and timings.
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, seed as hyp_seed, settings as hyp_settings, strategies as st
from sqlalchemy import create_engine, event, func, select, text

from bridge.app import create_app
from bridge.fakes.stripe_server import FakeStripe
from bridge.ledger.models import Base, Job, LedgerEntry, Order, Payment, PaymentItem, WebhookEvent
from bridge.ledger.views import order_view, payment_view
from bridge.runtime import Runtime
from bridge.worker.handlers import all_handlers
from bridge.worker.runner import Worker
from tests.conftest import PADDLE_SECRET, STRIPE_SECRET, test_settings
from tests.fixtures import paddle_payloads as pp, stripe_payloads as sp
from tests.support.signing import paddle_headers, stripe_headers

FULL = os.environ.get("BRIDGE_BATTERY") == "full"
EXAMPLES = 500 if FULL else int(os.environ.get("T3_EXAMPLES", "20"))
SEED = os.environ.get("SEED")

T0 = 1_772_359_200  # 2026-03-01T10:00:00Z
DAY = 86_400
MONTH = 31 * DAY
P0 = datetime(2026, 3, 1, 10, 0, 0, tzinfo=timezone.utc)


# --- the stories --------------------------------------------------------------------------------

def _at(payload: dict, provider: str) -> datetime:
    if provider == "stripe":
        return datetime.fromtimestamp(payload["created"], tz=timezone.utc)
    return datetime.fromisoformat(payload["occurred_at"].replace("Z", "+00:00"))


STRIPE_VARIANTS = st.fixed_dictionaries({
    "kind": st.sampled_from(["one_time", "subscription"]),
    # Checkout puts our order id on the session; the charge carries it only when the merchant
    # also set payment_intent_data.metadata.
    "charge_ref": st.booleans(),
    "session_items": st.booleans(),
    # The fee: an expanded balance transaction on charge.updated, or only its id (fetched).
    "fee": st.sampled_from(["expanded", "fetch"]),
    "refund": st.sampled_from(["none", "succeeded", "failed_after"]),
    # charge.refunded with its refunds list expanded, or without (the default rendering).
    "refund_list": st.booleans(),
    "dispute": st.sampled_from(["none", "inquiry", "won", "lost"]),
})

PADDLE_VARIANTS = st.fixed_dictionaries({
    "kind": st.sampled_from(["one_time", "subscription"]),
    # "direct": a refund Paddle made and approved itself (created approved, no pending step).
    "refund": st.sampled_from(["none", "approved", "rejected", "direct"]),
    "chargeback": st.sampled_from(["none", "warning_only", "warning_reversed", "lost", "won"]),
    # The chargeback for less than the warning announced (a partial chargeback).
    "partial_chargeback": st.booleans(),
})


def stripe_chain(v: dict) -> list[dict]:
    """One order's Stripe events (a one-off Checkout payment, or a subscription's first
    invoice and one renewal), each with its own fixed event id."""
    order = "ord_t3s"
    n = itertools.count(1)

    def eid() -> str:
        return f"evt_t3s_{next(n):03d}"

    def bt(charge: str, bt_id: str, amount: int, fee: int, created: int):
        if v["fee"] == "fetch":
            return bt_id
        return sp.balance_transaction(bt_id=bt_id, amount=amount, fee=fee, source=charge, created=created)

    meta = {"order_id": order}
    charge_meta = meta if v["charge_ref"] else {}
    out: list[dict] = []
    if v["kind"] == "one_time":
        charges = [("ch_t3s_1", "pi_t3s_1", 4900, T0)]
        items = ([{"price_id": "price_t3s_pro", "product_id": "prod_t3s_pro", "amount": 4900,
                   "price_metadata": {"category": "license", "billing": "one_time"}}]
                 if v["session_items"] else None)
        out.append(sp.checkout_session_completed(
            event_id=eid(), session_id="cs_t3s_1", mode="payment", payment_intent="pi_t3s_1", amount_total=4900,
            metadata=meta, customer="cus_t3s", line_items=items, session_created=T0 - 60, created=T0 + 2))
    else:
        charges = [("ch_t3s_1", "pi_t3s_1", 2900, T0 + 3), ("ch_t3s_2", "pi_t3s_2", 2900, T0 + MONTH + 3)]
        out.append(sp.checkout_session_completed(
            event_id=eid(), session_id="cs_t3s_1", mode="subscription", amount_total=2900, metadata=meta,
            customer="cus_t3s", invoice="in_t3s_1", subscription="sub_t3s", session_created=T0 - 60,
            created=T0 + 8))
        line = {"price_id": "price_t3s_month", "product_id": "prod_t3s_plan", "amount": 2900,
                "expand_price": True, "price_metadata": {"category": "plan", "billing": "monthly"}}
        for i, (reason, start) in enumerate((("subscription_create", T0), ("subscription_cycle", T0 + MONTH))):
            out.append(sp.invoice_paid(
                event_id=eid(), invoice_id=f"in_t3s_{i + 1}", billing_reason=reason, subscription="sub_t3s",
                subscription_metadata=meta, customer="cus_t3s", lines=[line], period_start=start,
                period_end=start + MONTH, created=start, paid_at=start + 5, payment_intent_id=f"pi_t3s_{i + 1}"))
    for charge, pi, amount, created in charges:
        bt_id = f"txn_{charge}"
        out.append(sp.charge_succeeded(event_id=eid(), charge_id=charge, payment_intent_id=pi, amount=amount,
                                       customer="cus_t3s", metadata=charge_meta, balance_transaction=bt_id,
                                       created=created))
        out.append(sp.charge_updated(event_id=eid(), charge_id=charge, payment_intent_id=pi, amount=amount,
                                     customer="cus_t3s", metadata=charge_meta,
                                     balance_transaction=bt(charge, bt_id, amount, 172, created + 60),
                                     charge_created=created, created=created + 60))
    charge, pi, amount, created = charges[-1]
    if v["refund"] != "none":
        r = dict(refund_id="re_t3s_1", charge_id=charge, payment_intent_id=pi, amount=1000)
        out.append(sp.refund_event("refund.created", event_id=eid(), status="pending", created=created + 3600, **r))
        out.append(sp.refund_event("refund.updated", event_id=eid(), status="succeeded", created=created + 3700, **r))
        listed = [{"refund_id": "re_t3s_1", "amount": 1000, "status": "succeeded", "created": created + 3600,
                   "payment_intent_id": pi}] if v["refund_list"] else None
        out.append(sp.charge_refunded(event_id=eid(), charge_id=charge, payment_intent_id=pi, amount=amount,
                                      amount_refunded=1000, customer="cus_t3s", metadata=charge_meta,
                                      refunds=listed, charge_created=created, created=created + 3700))
        if v["refund"] == "failed_after":
            out.append(sp.refund_event("refund.failed", event_id=eid(), status="failed", created=created + 2 * DAY,
                                       **r))
    if v["dispute"] == "inquiry":
        d = dict(dispute_id="dp_t3s_1", charge_id=charge, payment_intent_id=pi, amount=1500, currency="usd",
                 created=created + 3 * DAY)
        out.append(sp.dispute_event("charge.dispute.created", event_id=eid(), status="warning_needs_response", **d))
        out.append(sp.dispute_event("charge.dispute.closed", event_id=eid(), status="warning_closed", **d))
    elif v["dispute"] != "none":
        d = dict(dispute_id="dp_t3s_1", charge_id=charge, payment_intent_id=pi, amount=1500, currency="usd",
                 created=created + 3 * DAY)
        out.append(sp.dispute_event("charge.dispute.created", event_id=eid(), status="needs_response", **d))
        out.append(sp.dispute_event("charge.dispute.funds_withdrawn", event_id=eid(), status="needs_response", **d))
        out.append(sp.dispute_event("charge.dispute.closed", event_id=eid(), **dict(d, status=v["dispute"])))
        if v["dispute"] == "won":
            out.append(sp.dispute_event("charge.dispute.funds_reinstated", event_id=eid(), **d))
    # Event times (``created`` above is the dispute object's): the withdrawal a second after the
    # opening, the closing ten days later.
    for ev in out:
        if ev["type"] == "charge.dispute.closed":
            ev["created"] = created + 13 * DAY
        elif ev["type"] == "charge.dispute.funds_withdrawn":
            ev["created"] = created + 3 * DAY + 1
    return out


def paddle_chain(v: dict) -> list[dict]:
    """One order's Paddle events: a one-time transaction with two lines, or a subscription's
    first transaction and its renewal; a refund adjustment; chargeback adjustments."""
    order = "ord_t3p"
    n = itertools.count(1)

    def eid() -> str:
        return f"evt_01t3p{next(n):019d}"

    out: list[dict] = []
    if v["kind"] == "one_time":
        items = [{"price_id": "pri_t3p_1", "product_id": "pro_t3p_1", "amount": 4900, "tax": 0,
                  "custom_data": {"category": "license", "billing": "one_time"}},
                 {"price_id": "pri_t3p_2", "product_id": "pro_t3p_2", "amount": 2000, "tax": 0,
                  "custom_data": {"category": "store_addon", "billing": "one_time"}}]
        txns = [("txn_t3p_1", "web", P0, None, None)]
    else:
        items = [{"price_id": "pri_t3p_m", "product_id": "pro_t3p_m", "amount": 2900, "tax": 0,
                  "billing_cycle": "month", "custom_data": {"category": "plan", "billing": "monthly"}}]
        p1 = P0 + timedelta(days=31)
        txns = [("txn_t3p_1", "web", P0, "sub_t3p", (P0, p1)),
                ("txn_t3p_2", "subscription_recurring", p1, "sub_t3p", (p1, p1 + timedelta(days=30)))]
    docs = []
    for txn, origin, at, sub, period in txns:
        doc = pp.transaction_completed(
            event_id=eid(), txn_id=txn, origin=origin, custom_data={"order_id": order}, items=items, fee=400,
            customer_id="ctm_t3p", subscription_id=sub, billing_period=period, created_at=at - timedelta(seconds=14),
            captured_at=at, billed_at=at, occurred_at=at + timedelta(seconds=5))
        docs.append(doc)
        out.append(doc)
    txn, _, at, _, _ = txns[-1]
    lines = docs[-1]["data"]["details"]["line_items"]
    if v["refund"] != "none":
        r = dict(adjustment_id="adj_t3p_r", action="refund", transaction_id=txn, currency="USD",
                 items=[{"item_id": lines[-1]["id"], "amount": 1000, "type": "partial"}], customer_id="ctm_t3p",
                 created_at=at + timedelta(days=1))
        out.append(pp.adjustment_event("adjustment.created", event_id=eid(),
                                       status="approved" if v["refund"] == "direct" else "pending_approval",
                                       occurred_at=at + timedelta(days=1), **r))
    if v["refund"] in ("approved", "rejected"):
        out.append(pp.adjustment_event("adjustment.updated", event_id=eid(), status=v["refund"],
                                       occurred_at=at + timedelta(days=1, hours=2), **r))
    if v["chargeback"] != "none":
        cb = dict(transaction_id=txn, currency="USD", total=2000, customer_id="ctm_t3p")
        out.append(pp.adjustment_event("adjustment.created", event_id=eid(), adjustment_id="adj_t3p_w",
                                       action="chargeback_warning", status="approved",
                                       occurred_at=at + timedelta(days=4), **cb))
        if v["chargeback"] == "warning_reversed":
            out.append(pp.adjustment_event("adjustment.created", event_id=eid(), adjustment_id="adj_t3p_wr",
                                           action="chargeback_warning_reverse", status="approved",
                                           occurred_at=at + timedelta(days=6), **cb))
        if v["partial_chargeback"]:
            cb["total"] = 1800
        if v["chargeback"] in ("lost", "won"):
            out.append(pp.adjustment_event("adjustment.created", event_id=eid(), adjustment_id="adj_t3p_c",
                                           action="chargeback", status="approved",
                                           occurred_at=at + timedelta(days=8), **cb))
        if v["chargeback"] == "won":
            out.append(pp.adjustment_event("adjustment.created", event_id=eid(), adjustment_id="adj_t3p_v",
                                           action="chargeback_reverse", status="approved",
                                           occurred_at=at + timedelta(days=20), **cb))
    return out


def chain(provider: str, v: dict) -> list[dict]:
    events = stripe_chain(v) if provider == "stripe" else paddle_chain(v)
    return sorted(events, key=lambda e: _at(e, provider))  # occurred_at order: the reference


def expected(provider: str, v: dict) -> tuple[str, list[str]]:
    """What the story means, independently of the bridge: the order's final status and the
    kinds of its ledger entries (so that a wrong in-order result cannot pass unnoticed)."""
    n = 2 if v["kind"] == "subscription" else 1
    kinds = ["sale", "fee"] * n
    if provider == "stripe":
        refunded = v["refund"] != "none"
        kinds += ["refund"] * refunded + ["refund_reversal"] * (v["refund"] == "failed_after")
        if v["dispute"] in ("won", "lost"):
            kinds += ["chargeback", "chargeback_fee"]
        if v["dispute"] == "won":
            kinds += ["chargeback_reversal", "chargeback_fee_reversal"]
        status = ("charged_back" if v["dispute"] == "lost" else
                  "partially_refunded" if v["refund"] == "succeeded" else "paid")
    else:
        refunded = v["refund"] in ("approved", "direct")
        kinds += ["refund"] * refunded
        if v["chargeback"] in ("won", "lost"):
            kinds += ["chargeback", "chargeback_fee"]
        if v["chargeback"] == "won":
            kinds += ["chargeback_reversal"]
        status = ("charged_back" if v["chargeback"] == "lost" else "disputed" if v["chargeback"] == "warning_only"
                  else "partially_refunded" if refunded else "paid")
    return status, sorted(kinds)


def check_story(provider: str, v: dict, state: dict) -> None:
    order_id = "ord_t3s" if provider == "stripe" else "ord_t3p"
    status, kinds = expected(provider, v)
    order = state["orders"][order_id]
    assert list(state["orders"]) == [order_id] and state["unmatched"] == [], state
    assert order["status"] == status, (v, order)
    assert sorted(e[0] for e in state["ledger"]) == kinds, (v, state["ledger"])
    assert all(e[5] == order_id for e in state["ledger"]), state["ledger"]
    assert all(p[3] is not None for p in order["payments"]), order["payments"]  # every fee known
    lines_listed = not (provider == "stripe" and v["kind"] == "one_time" and not v["session_items"])
    assert bool(order["items"]) == lines_listed, order  # a charge alone lists no lines
    assert all(linked for _, linked in order["linked_items"]), order


def variant_key(v: dict) -> tuple:
    return tuple(sorted(v.items()))


# --- the bridge in-process ----------------------------------------------------------------------

def _no_sync(dbapi_conn, _record):
    dbapi_conn.execute("PRAGMA synchronous=OFF")


class Bench:
    """The app (Flask test client), a worker and a clock the test moves."""

    def __init__(self, settings):
        self.rt = Runtime.build(settings)
        if self.rt.engine.dialect.name == "sqlite":
            # No fsync per commit: these databases are thrown away (durability is T7/T9's).
            event.listen(self.rt.engine, "connect", _no_sync)
        self.now = datetime.now(timezone.utc)
        self.rt.clock = lambda: self.now
        self.app = create_app(runtime=self.rt)
        self.client = self.app.test_client()
        self.worker = Worker(self.rt, all_handlers(self.rt), worker_id="t3-worker")
        self.parked_seen: set[str] = set()

    def close(self):
        self.rt.engine.dispose()

    def deliver(self, provider: str, payload: dict) -> None:
        body = json.dumps(payload).encode()
        sign = stripe_headers if provider == "stripe" else paddle_headers
        secret = STRIPE_SECRET if provider == "stripe" else PADDLE_SECRET
        r = self.client.post(f"/webhooks/{provider}", data=body, headers=sign(body, secret))
        assert r.status_code == 200, r.get_data(as_text=True)
        self.now += timedelta(milliseconds=10)

    def _note_parked(self):
        with self.rt.reads() as s:
            self.parked_seen.update(s.scalars(select(WebhookEvent.provider_event_id)
                                              .where(WebhookEvent.status == "parked")))

    def drain_ready(self) -> None:
        """Run what is ready now (parked events wait for their back-off)."""
        self.worker.drain(max_seconds=60)
        self._note_parked()

    def drain_all(self) -> None:
        """Run everything, moving the clock past each back-off, until no job is left."""
        for _ in range(40):
            self.worker.drain(max_seconds=60)
            self._note_parked()
            with self.rt.reads() as s:
                left = s.scalar(select(func.count()).select_from(Job).where(Job.state.in_(("ready", "running"))))
            if not left:
                return
            self.now += timedelta(seconds=self.rt.settings.job_backoff_max_seconds + 1)
        raise AssertionError("jobs still pending after 40 rounds")


def _sorted(rows) -> list:
    return sorted(rows, key=repr)


def _payment(p: dict) -> tuple:
    return (p["provider"], p["amount"], p["tax"], p["fee"], p["currency"], p["paid_at"], p["purchase"],
            p["period_start"], p["period_end"], p["duplicate_charge"], tuple(sorted(p["provider_ids"].items())),
            tuple(_sorted((i["provider_item_id"], i["price_id"], i["amount"], i["tax"]) for i in p["items"])))


def snapshot(rt) -> dict:
    """Everything the ledger decided, in comparable form (no row ids, no arrival times)."""
    with rt.reads() as s:
        orders = {}
        for order in s.scalars(select(Order).order_by(Order.order_id)):
            v = order_view(s, order)
            orders[order.order_id] = {
                "status": v["status"], "policy": v["policy"], "currency": v["currency"], "source": v["source"],
                "customer": v["customer"],
                "items": _sorted((i["item_id"], i["sku"], i["category"], i["billing"], i["amount"], i["price_id"])
                                 for i in v["items"]),
                "payments": _sorted(_payment(p) for p in v["payments"]),
                "refunds": _sorted((r["provider_refund_id"], r["amount"], r["currency"], r["status"],
                                    r["failure_reason"]) for r in v["refunds"]),
                "disputes": _sorted((d["provider_dispute_id"], d["amount"], d["currency"], d["reason"], d["status"],
                                     d["provider_status"], d["evidence_due_by"], d["funds_withdrawn"],
                                     d["funds_reinstated"], d["fee"], d["opened_at"], d["updated_at"])
                                    for d in v["disputes"]),
                "licenses": _sorted((lic["item_id"], lic["status"], lic["reason"]) for lic in v["licenses"]),
                "linked_items": _sorted(s.execute(
                    select(PaymentItem.provider_item_id, PaymentItem.order_item_pk.is_not(None))
                    .join(Payment, Payment.id == PaymentItem.payment_pk).where(Payment.order_pk == order.id)).all()),
            }
        unmatched = []
        for p in s.scalars(select(Payment).where(Payment.order_pk.is_(None))):
            lines = s.scalars(select(PaymentItem).where(PaymentItem.payment_pk == p.id)).all()
            unmatched.append(_payment(payment_view(p, list(lines))))
        ledger = s.execute(select(LedgerEntry.kind, LedgerEntry.amount, LedgerEntry.currency, LedgerEntry.occurred_at,
                                  LedgerEntry.provider_ref, Order.order_id)
                           .outerjoin(Order, Order.id == LedgerEntry.order_pk)).all()
        return {"orders": orders, "unmatched": _sorted(unmatched),
                "ledger": _sorted((k, a, c, o.isoformat(), ref, oid) for k, a, c, o, ref, oid in ledger)}


def settled(rt) -> dict:
    """After a full drain: every event processed or ignored, no job dead or waiting."""
    with rt.reads() as s:
        events = dict(s.execute(select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)).all())
        jobs = dict(s.execute(select(Job.state, func.count()).group_by(Job.state)).all())
        retried = s.scalar(select(func.count()).select_from(Job).where(Job.kind == "process_event", Job.attempts > 1))
        max_attempts = s.scalar(select(func.max(Job.attempts)).where(Job.kind == "process_event"))
    return {"events": events, "jobs": jobs, "retried": retried, "max_attempts": max_attempts}


# --- fresh databases ------------------------------------------------------------------------------

class Databases:
    """A fresh, migrated database per example."""

    def __init__(self, db_url: str, tmp_path):
        self.tmp_path = tmp_path
        self.count = itertools.count()
        self.sqlite = db_url.startswith("sqlite")
        if self.sqlite:
            self.template = tmp_path / "t3_template.sqlite3"
            shutil.copy(db_url[len("sqlite:///"):], self.template)
        else:
            self.url = db_url
            self.engine = create_engine(db_url)
            self.truncate = text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
                                 + " RESTART IDENTITY CASCADE")
            self._bench = None

    def settings(self, **overrides):
        if self.sqlite:
            path = self.tmp_path / f"t3_{next(self.count)}.sqlite3"
            shutil.copy(self.template, path)
            return test_settings(f"sqlite:///{path}", self.tmp_path, **overrides)
        return test_settings(self.url, self.tmp_path, **overrides)

    def bench(self, **overrides) -> Bench:
        if self.sqlite:
            return Bench(self.settings(**overrides))
        with self.engine.begin() as conn:
            conn.execute(self.truncate)
        if self._bench is None:
            self._bench = Bench(self.settings(**overrides))
        self._bench.now = datetime.now(timezone.utc)
        self._bench.parked_seen = set()
        return self._bench

    def done_with(self, bench: Bench) -> None:
        if self.sqlite:
            bench.close()
            path = bench.rt.settings.database_url[len("sqlite:///"):]
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.remove(path + suffix)
                except FileNotFoundError:
                    pass

    def close(self):
        if not self.sqlite:
            if self._bench is not None:
                self._bench.close()
            self.engine.dispose()


@pytest.fixture(scope="module")
def fake_stripe():
    """Serves the balance transactions of the chains' charges (the fee_fetch job)."""
    fake = FakeStripe(api_key="sk_test_bridge").start()
    for charge, pi, amount in (("ch_t3s_1", "pi_t3s_1", 4900), ("ch_t3s_2", "pi_t3s_2", 2900)):
        fake.add_charge(charge, pi, amount=amount, currency="usd", fee=172, balance_transaction_id=f"txn_{charge}")
    yield fake
    fake.stop()


# --- playing a delivery -----------------------------------------------------------------------

def play(dbs: Databases, overrides: dict, provider: str, events: list[dict], order_of_delivery: list[int],
         drain_after: list[bool]) -> tuple[dict, dict, int]:
    bench = dbs.bench(**overrides)
    try:
        for i, drain in zip(order_of_delivery, drain_after):
            bench.deliver(provider, events[i])
            if drain:
                bench.drain_ready()
        bench.drain_all()
        state, status = snapshot(bench.rt), settled(bench.rt)
        return state, status, len(bench.parked_seen)
    finally:
        dbs.done_with(bench)


@st.composite
def deliveries(draw, n: int):
    """A permutation of ``range(n)`` with some events delivered again (before or after their
    first delivery), and where the worker drains in between."""
    order = list(draw(st.permutations(range(n))))
    dups = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 2 * n)), max_size=n // 2 + 1))
    for which, where in dups:
        order.insert(min(where, len(order)), which)
    drains = draw(st.lists(st.booleans(), min_size=len(order), max_size=len(order)))
    return order, drains


STATS: dict = {}


def _diff(a: dict, b: dict, path: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b), key=str):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _diff(x, y, f"{path}.{k}")
        elif x != y:
            out.append(f"{path}.{k}:\n    got      {x}\n    in order {y}")
    return out


def run_battery(provider: str, db_url: str, tmp_path, fake_stripe) -> None:
    dbs = Databases(db_url, tmp_path)
    overrides = {"stripe_api_base": fake_stripe.url} if provider == "stripe" else {}
    baselines: dict = {}
    stats = {"examples": 0, "parked": 0, "parked_examples": 0, "max_attempts": 0, "variants": set()}
    variants = STRIPE_VARIANTS if provider == "stripe" else PADDLE_VARIANTS

    @hyp_settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=SEED is None and not FULL,
                  suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def example(data):
        v = data.draw(variants, label="story")
        events = chain(provider, v)
        key = variant_key(v)
        if key not in baselines:
            n = len(events)
            base, status, _ = play(dbs, overrides, provider, events, list(range(n)), [True] * n)
            assert not status["jobs"].get("dead") and set(status["events"]) <= {"processed", "ignored"}, status
            check_story(provider, v, base)
            baselines[key] = base
            stats["variants"].add(key)
        order, drains = data.draw(deliveries(len(events)), label="delivery")
        got, status, parked = play(dbs, overrides, provider, events, order, drains)
        stats["examples"] += 1
        stats["parked"] += parked
        stats["parked_examples"] += parked > 0
        stats["max_attempts"] = max(stats["max_attempts"], status["max_attempts"] or 0)
        assert not status["jobs"].get("dead"), status
        assert set(status["events"]) <= {"processed", "ignored"}, status
        assert status["events"].get("processed", 0) + status["events"].get("ignored", 0) == len(events), status
        diff = _diff(got, baselines[key])
        assert not diff, (f"{provider} story {v}\ndelivery {order} drains {drains}\n" + "\n".join(diff))

    if SEED is not None:
        example = hyp_seed(int(SEED))(example)
    started = time.monotonic()
    try:
        example()
    finally:
        dbs.close()
        took = time.monotonic() - started
        backend = "sqlite" if dbs.sqlite else "postgresql"
        print(f"\nT3 {provider} on {backend}: {stats['examples']} deliveries of {len(stats['variants'])} stories "
              f"in {took:.1f}s; events parked {stats['parked']} (in {stats['parked_examples']} deliveries), "
              f"max attempts of one event {stats['max_attempts']}")
        STATS[(provider, backend)] = dict(stats, seconds=took)


@pytest.mark.parametrize("provider", ["stripe", "paddle"])
def test_t3_out_of_order_chains_end_as_in_order(provider, db_url, tmp_path, fake_stripe):
    run_battery(provider, db_url, tmp_path, fake_stripe)


def test_t3_an_event_for_an_unknown_payment_parks_then_resolves(db_url, tmp_path, fake_stripe):
    """The parking itself, step by step: a refund and a dispute before their payment."""
    dbs = Databases(db_url, tmp_path)
    v = {"kind": "one_time", "refund": "approved", "chargeback": "lost", "partial_chargeback": False}
    events = chain("paddle", v)
    bench = dbs.bench()
    try:
        later = [e for e in events if e["event_type"] != "transaction.completed"]
        for e in later:
            bench.deliver("paddle", e)
        bench.drain_ready()
        with bench.rt.reads() as s:
            statuses = dict(s.execute(select(WebhookEvent.provider_event_id, WebhookEvent.status)).all())
            assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 0
        assert set(statuses.values()) == {"parked"}, statuses
        bench.deliver("paddle", next(e for e in events if e["event_type"] == "transaction.completed"))
        bench.drain_all()
        with bench.rt.reads() as s:
            statuses = dict(s.execute(select(WebhookEvent.provider_event_id, WebhookEvent.status)).all())
        assert set(statuses.values()) == {"processed"}, statuses
        state = snapshot(bench.rt)
        order = state["orders"]["ord_t3p"]
        assert order["status"] == "charged_back"
        assert sorted(e[0] for e in state["ledger"]) == ["chargeback", "chargeback_fee", "fee", "refund", "sale"]
        print(f"\nparked then resolved: {len(bench.parked_seen)} events")
    finally:
        dbs.done_with(bench)
        dbs.close()
