#!/usr/bin/env python
"""Worker throughput: store N provider events through the inbox, then drain them with `bridge
worker` processes (and threads), on SQLite and PostgreSQL.

For each configuration (processes x threads) on each database it prints events/s, the workers'
own CPU per event (utime + stime of the worker processes, read from /proc while they run, so
start-up is not counted; the processes' rusage after exit, start-up included, is printed too),
PostgreSQL's CPU per event (the backends serving the workers, found by application_name in
pg_stat_activity, read from /proc), and how busy the whole machine was (/proc/stat), with the
share of it that was neither the workers nor their backends ("others": someone's test run).

The workers start against a held queue (every job's run_at in the far future) and are released
together once they idle, so the timed span is draining only. After each run the resulting state
(every ledger entry, order, payment, refund, dispute, license, notice and event status) is
compared with a single in-process worker applying the same events in order on SQLite: a fast
wrong answer shows as "MISMATCH" and a non-zero exit code.

    .venv/bin/python bench/worker_bench.py                       # N=2000, both databases
    .venv/bin/python bench/worker_bench.py --n 1000 --db postgresql --configs 1x1,2x1
    .venv/bin/python bench/worker_bench.py --profile             # cProfile of one in-process drain

The mix (per 100 events): 36 Paddle transaction.completed (one or two lines, fees known), 8
Paddle refund adjustments (approved), 2 Paddle chargebacks, 36 Stripe charge.succeeded (balance
transaction expanded: fee known; 1 in 12 with no order id, kept unmatched), 8 Stripe
charge.refunded (partial or full, never more than is left; 1 in 40 for twice the charge, which
is held whatever the order), 3 Stripe disputes opened, 3 Stripe dispute.closed (won or lost), 4
unknown types. One customer in five buys more than once. Follow-ups (refunds, disputes) are
stored after their payment, at least ``--gap`` events later. No payment is refunded or charged
back beyond what it took: such an event is held, and which of two is held would depend on
which a worker applied first (the in-order reference could not judge a concurrent drain).
"""
from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import random
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures import paddle_payloads as pp  # noqa: E402
from tests.fixtures import stripe_payloads as sp  # noqa: E402

from history import SINCE, fill as fill_history  # noqa: E402 - bench/history.py

FAR = datetime(2999, 1, 1, tzinfo=timezone.utc)
TICK = os.sysconf("SC_CLK_TCK")


# -- the events ---------------------------------------------------------------------------------

@dataclass
class Event:
    provider: str
    body: bytes
    kind: str


def build_events(n: int, seed: int, gap: int) -> list[Event]:
    rnd = random.Random(seed)
    t0 = sp.DEFAULT_TIME - 30 * sp.DAY

    def rid(prefix: str, k: int = 24) -> str:
        return f"{prefix}_{''.join(rnd.choice('abcdefghijklmnopqrstuvwxyz0123456789') for _ in range(k))}"

    customers: list[str] = []

    def customer(prefix: str) -> str:
        if customers and rnd.random() < 0.2:
            return rnd.choice(customers)
        c = rid(prefix, 14)
        customers.append(c)
        return c

    out: list[Event] = []
    pending: list[tuple[int, Event]] = []   # (earliest position, follow-up)
    paddle_paid: list[dict] = []
    stripe_paid: list[dict] = []
    minute = 0

    def add(provider: str, doc: dict, kind: str) -> None:
        out.append(Event(provider, json.dumps(doc).encode(), kind))

    def follow(ev: Event) -> None:
        pending.append((len(out) + gap + rnd.randint(0, gap), ev))

    while len(out) + len(pending) < n:
        minute += 1
        at = t0 + 60 * minute
        r = rnd.random() * 100
        if r < 36:  # Paddle transaction
            txn = rid("txn")
            cust = customer("ctm")
            lines = [{"price_id": "pri_01example_pro_license" if rnd.random() < 0.5 else rid("pri"),
                      "amount": rnd.choice([4900, 9900, 19900]), "tax": 0,
                      "custom_data": {"category": "license", "billing": "one_time"}}
                     for _ in range(1 if rnd.random() < 0.7 else 2)]
            doc = pp.transaction_completed(event_id=rid("evt"), notification_id=rid("ntf"), txn_id=txn,
                                           custom_data={"order_id": f"ord_{txn}"}, items=lines, customer_id=cust,
                                           created_at=datetime.fromtimestamp(at, timezone.utc))
            add("paddle", doc, "paddle transaction.completed")
            paddle_paid.append({"txn": txn, "lines": lines, "at": at, "cust": cust, "refunded": set(),
                                "charged_back": False})
        elif r < 44 and paddle_paid:  # Paddle refund adjustment
            p = rnd.choice(paddle_paid)
            left = [k for k in range(len(p["lines"])) if k not in p["refunded"]]
            if not left:
                continue
            i = rnd.choice(left)
            p["refunded"].add(i)
            line_id = pp.derived_id("txnitm", f"{p['txn']}:{i}")
            amount = p["lines"][i]["amount"]
            doc = pp.adjustment_event("adjustment.updated", event_id=rid("evt"), notification_id=rid("ntf"),
                                      adjustment_id=rid("adj"), action="refund", status="approved",
                                      transaction_id=p["txn"], customer_id=p["cust"], total=amount,
                                      items=[{"item_id": line_id, "amount": amount, "type": "full"}],
                                      created_at=datetime.fromtimestamp(p["at"] + sp.DAY, timezone.utc))
            follow(Event("paddle", json.dumps(doc).encode(), "paddle adjustment refund"))
        elif r < 46 and paddle_paid:  # Paddle chargeback
            p = rnd.choice(paddle_paid)
            if p["charged_back"]:
                continue
            p["charged_back"] = True
            total = sum(line["amount"] for line in p["lines"])
            doc = pp.adjustment_event("adjustment.created", event_id=rid("evt"), notification_id=rid("ntf"),
                                      adjustment_id=rid("adj"), action="chargeback", status="approved",
                                      transaction_id=p["txn"], customer_id=p["cust"], total=total,
                                      created_at=datetime.fromtimestamp(p["at"] + 2 * sp.DAY, timezone.utc))
            follow(Event("paddle", json.dumps(doc).encode(), "paddle adjustment chargeback"))
        elif r < 82:  # Stripe charge
            ch = rid("ch")
            amount = rnd.choice([2900, 4900, 12000])
            fee = (amount * 29 + 999) // 1000 + 30
            meta = {"order_id": f"ord_{ch}"} if rnd.random() > 1 / 12 else {}
            doc = sp.charge_succeeded(event_id=rid("evt"), charge_id=ch, amount=amount, metadata=meta,
                                      customer=customer("cus"), created=at,
                                      balance_transaction=sp.balance_transaction(
                                          bt_id=sp.derived_id("txn", ch), amount=amount, fee=fee, created=at))
            add("stripe", doc, "stripe charge.succeeded")
            stripe_paid.append({"ch": ch, "amount": amount, "at": at, "disputed": False, "refunded": 0})
        elif r < 90 and stripe_paid:  # Stripe refund
            p = rnd.choice(stripe_paid)
            left = p["amount"] - p["refunded"]
            if rnd.random() < 1 / 40:
                part = 2 * p["amount"]  # no charge allows it: held, whatever the order of arrival
            elif left <= 0:
                continue
            else:
                part = left if rnd.random() < 0.6 or left < 100 else left // 2
                p["refunded"] += part
            doc = sp.charge_refunded(event_id=rid("evt"), charge_id=p["ch"], charge_created=p["at"],
                                     created=p["at"] + sp.DAY, amount=p["amount"],
                                     refunds=[{"refund_id": rid("re"), "amount": part, "status": "succeeded"}])
            follow(Event("stripe", json.dumps(doc).encode(), "stripe charge.refunded"))
        elif r < 96 and stripe_paid:  # Stripe dispute opened, and in half the cases closed
            p = rnd.choice(stripe_paid)
            if p["disputed"]:
                continue
            p["disputed"] = True
            dp = rid("dp")
            pi = sp.derived_id("pi", p["ch"])
            doc = sp.dispute_event("charge.dispute.created", event_id=rid("evt"), dispute_id=dp, charge_id=p["ch"],
                                   payment_intent_id=pi, amount=p["amount"], created=p["at"] + 3 * sp.DAY)
            follow(Event("stripe", json.dumps(doc).encode(), "stripe charge.dispute.created"))
            status = rnd.choice(["won", "lost"])
            doc = sp.dispute_event("charge.dispute.closed", event_id=rid("evt"), dispute_id=dp, charge_id=p["ch"],
                                   payment_intent_id=pi, amount=p["amount"], status=status,
                                   created=p["at"] + 3 * sp.DAY, )
            doc["created"] = p["at"] + 20 * sp.DAY
            follow(Event("stripe", json.dumps(doc).encode(), "stripe charge.dispute.closed"))
        else:  # unknown types
            if rnd.random() < 0.5:
                add("stripe", sp.unknown_event(event_id=rid("evt"), created=at), "stripe unknown")
            else:
                add("paddle", pp.unknown_event(event_id=rid("evt"), occurred_at=datetime.fromtimestamp(at, timezone.utc)),
                    "paddle unknown")
        # Follow-ups whose time has come take their place in the sequence.
        due = [e for pos, e in pending if pos <= len(out)]
        pending = [(pos, e) for pos, e in pending if pos > len(out)]
        out.extend(due)
    out.extend(e for _, e in sorted(pending, key=lambda x: x[0]))
    return out[:n] if len(out) > n else out


def mix_of(events: list[Event]) -> dict[str, int]:
    mix: dict[str, int] = {}
    for e in events:
        mix[e.kind] = mix.get(e.kind, 0) + 1
    return dict(sorted(mix.items()))


# -- databases --------------------------------------------------------------------------------------

class SqliteDb:
    kind = "sqlite"

    def __init__(self, tmp: Path, name: str):
        self.path = tmp / f"{name}.sqlite3"
        self.url = f"sqlite:///{self.path}"
        self.worker_url = self.url

    def drop(self):
        for suffix in ("", "-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)

    def backend_pids(self, _engine) -> list[int]:
        return []


class PostgresDb:
    kind = "postgresql"

    def __init__(self, base_url: str, name: str):
        import psycopg
        self._psycopg = psycopg
        self.base = base_url
        self.schema = f"bench_worker_{os.getpid()}_{name}_{secrets.token_hex(3)}"
        self.app_name = f"wbench_{secrets.token_hex(4)}"
        with psycopg.connect(base_url, autocommit=True, connect_timeout=3) as c:
            c.execute(f'CREATE SCHEMA "{self.schema}"')
        sep = "&" if "?" in base_url else "?"
        self.url = f"{base_url}{sep}options=-csearch_path%3D{self.schema}"
        self.worker_url = f"{self.url}&application_name={self.app_name}"

    def drop(self):
        with self._psycopg.connect(self.base, autocommit=True, connect_timeout=3) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def backend_pids(self, engine) -> list[int]:
        from sqlalchemy import text
        with engine.connect() as c:
            return [r[0] for r in c.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name = :a"),
                                            {"a": self.app_name})]


def pg_reachable(url: str) -> Optional[str]:
    try:
        import psycopg
        with psycopg.connect(url, connect_timeout=3) as c:
            return c.execute("SHOW server_version").fetchone()[0]
    except Exception:  # noqa: BLE001 - any failure means: skip PostgreSQL
        return None


# -- CPU accounting ------------------------------------------------------------------------------------

def proc_cpu(pid: int) -> float:
    """utime + stime of one process (all its threads), seconds; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rpartition(")")[2].split()
        return (int(rest[11]) + int(rest[12])) / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def system_cpu() -> tuple[float, float]:
    """(busy, total) seconds of all cores since boot."""
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    idle = vals[3] + vals[4]
    total = sum(vals[:8])
    return (total - idle) / TICK, total / TICK


def busy_now(sample: float = 0.5) -> float:
    b0, t0 = system_cpu()
    time.sleep(sample)
    b1, t1 = system_cpu()
    return 100.0 * (b1 - b0) / max(1e-9, t1 - t0)


def speed_probe(steps: int = 3_000_000) -> float:
    """CPU ms of a fixed pure-Python loop: how fast this machine runs Python today (the same
    2-core machine has measured 2.5 times slower from one day to the next), so that figures of
    different days can be compared by their ratio to it."""
    best = float("inf")
    for _ in range(3):
        c0 = time.process_time()
        total = 0
        for i in range(steps):
            total += i
        best = min(best, time.process_time() - c0)
    return best * 1e3


# -- the state to compare ----------------------------------------------------------------------------

def state_of(engine) -> dict:
    """Everything the events decide, in a form that does not depend on row ids or wall time
    (rows of the history written before the run, ``--history``, left out)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session
    from bridge.ledger.models import (Dispute, LedgerEntry, License, Order, OutboundMessage, Payment, Refund,
                                      WebhookEvent)
    out: dict = {}
    with Session(engine) as s:
        def digest(rows) -> str:
            return hashlib.sha256(repr(sorted(rows, key=repr)).encode()).hexdigest()[:16]

        entries = [(e.effect_key, e.kind, e.amount, e.currency, e.occurred_at.isoformat(), e.provider_ref)
                   for e in s.execute(select(LedgerEntry).where(LedgerEntry.created_at > SINCE)).scalars()]
        by_kind: dict = {}
        for _, kind, amount, currency, _, _ in entries:
            k = f"{kind}/{currency}"
            c, t = by_kind.get(k, (0, 0))
            by_kind[k] = (c + 1, t + amount)
        out["ledger (count, sum) by kind"] = dict(sorted(by_kind.items()))
        out["ledger digest"] = digest(entries)
        recent = select(Order).where(Order.created_at > SINCE)
        orders = {o.id: o.order_id for o in s.execute(recent).scalars()}
        out["orders digest"] = digest([(o.order_id, o.status, o.policy, o.customer_id, o.currency)
                                       for o in s.execute(recent).scalars()])
        pays = list(s.execute(select(Payment).where(Payment.created_at > SINCE)).scalars())
        out["payments"] = (len(pays), sum(p.amount or 0 for p in pays), sum(p.fee or 0 for p in pays))
        out["payments digest"] = digest([(p.transaction_id, p.charge_id, orders.get(p.order_pk), p.amount, p.fee,
                                          p.captured, p.duplicate_of is not None) for p in pays])
        out["refunds digest"] = digest([(r.provider_refund_id, r.status, r.amount)
                                        for r in s.execute(select(Refund).where(Refund.created_at > SINCE)).scalars()])
        out["disputes digest"] = digest([(d.provider_dispute_id, d.status, d.amount, d.restriction)
                                         for d in s.execute(select(Dispute).where(Dispute.created_at > SINCE)).scalars()])
        lic = [(x.license_id, x.status, x.reason, x.revoked, tuple(x.holds or ()), x.changed_at.isoformat())
               for x in s.execute(select(License)).scalars()]
        st: dict = {}
        for row in lic:
            st[row[1]] = st.get(row[1], 0) + 1
        out["licenses by status"] = dict(sorted(st.items()))
        out["licenses digest"] = digest(lic)
        # What each license's notices end on (what the merchant's app ends with). Not the whole
        # sequence: when a late event reveals a change in the middle of a license's history the
        # bridge says its status again (licenses._keep_merchant_in_step), so how many notices a
        # license got depends on the order concurrent workers applied its events in, as it does
        # on the order the provider delivers them in (T3 does not compare notices either).
        last: dict = {}
        for m in s.execute(select(OutboundMessage).order_by(OutboundMessage.seq)).scalars():
            last[m.license_id] = m.type
        notices = sorted(last.items())
        out["notices digest"] = digest(notices)
        out["_notices"] = notices  # not compared: shown when the digest differs
        ev: dict = {}
        for w in s.execute(select(WebhookEvent.status).where(WebhookEvent.received_at > SINCE)).scalars():
            ev[w] = ev.get(w, 0) + 1
        out["events by status"] = dict(sorted(ev.items()))
    return out


def job_counts(engine) -> dict:
    from sqlalchemy import text
    from bridge.ledger.db import read_only
    with read_only(engine).connect() as c:
        return {f"{k}/{s}": n for k, s, n in c.execute(text(
            "SELECT kind, state, count(*) FROM jobs WHERE ref_id NOT LIKE 'hist%' GROUP BY kind, state ORDER BY kind, state"))}


# -- a run --------------------------------------------------------------------------------------------

@dataclass
class Result:
    db: str
    procs: int
    threads: int
    n: int
    seconds: float = 0.0
    worker_cpu: float = 0.0
    worker_cpu_total: float = 0.0
    pg_cpu: float = 0.0
    busy_pct: float = 0.0
    others_pct: float = 0.0
    ok: bool = False
    diff: list = field(default_factory=list)
    jobs: dict = field(default_factory=dict)
    parked: int = 0
    intake_us: float = 0.0
    load: tuple = ()  # os.getloadavg() when the drain began (other users of the machine)
    note: str = ""
    analyzed: int = 0  # tables analyzed during the drain (auto_analyze)

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds else 0.0


def _envelope(rt, provider: str, doc: dict):
    """The event id, type and time as intake reads them (the provider registry; before the
    provider seam, the web module's table: so the script also runs a checkout of older commits)."""
    providers = getattr(rt, "providers", None)
    if providers is not None:
        env = providers[provider].envelope(doc)
        return env.event_id, env.event_type, env.occurred_at
    from bridge.web.webhooks import PROVIDERS
    return PROVIDERS[provider].envelope(doc)


def store(rt, events: list[Event]) -> float:
    """Store every event through the inbox (as intake does after verifying); CPU us per event."""
    from bridge.ledger.inbox import Delivery
    c0 = time.process_time()
    for e in events:
        event_id, event_type, occurred_at = _envelope(rt, e.provider, json.loads(e.body))
        assert rt.inbox.store(Delivery(e.provider, event_id, event_type, e.body, {}, occurred_at), rt.clock())
    return (time.process_time() - c0) / len(events) * 1e6


def prepare(db, events: list[Event], history: int = 0):
    from bridge.ledger import schema
    from bridge.ledger.db import make_engine
    from bridge.runtime import Runtime
    from bridge.settings import Settings
    settings = Settings.from_env({"DATABASE_URL": db.url})
    engine = make_engine(settings)
    schema.upgrade(engine)
    if history:
        took = fill_history(engine, history)
        print(f"  history of {history} orders written in {took:.1f} s")
    rt = Runtime.build(settings, engine)
    return rt, store(rt, events)


# What PostgreSQL's autovacuum would analyze (its default threshold: 50 rows plus a tenth of the
# table changed since the table's last ANALYZE).
_STALE = ("SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
          "AND n_mod_since_analyze > 50 + 0.1 * greatest(n_live_tup, 0)")


def auto_analyze(engine) -> int:
    """ANALYZE the bench schema's tables that autovacuum would: this machine's PostgreSQL runs
    with ``autovacuum = off`` (a CI setting), every deployment's with it on. Without column
    statistics the planner takes ``provider = $1`` for a rare value and reads every payment of
    a provider through any index that starts with it. Returns how many tables it analyzed."""
    from sqlalchemy import text
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        stale = [r[0] for r in c.execute(text(_STALE))]
        if stale:
            c.execute(text("ANALYZE " + ", ".join(f'"{t}"' for t in stale)))
    return len(stale)


def hold(engine, run_at: datetime) -> None:
    from sqlalchemy import update
    from bridge.ledger.models import Job
    with engine.begin() as c:
        c.execute(update(Job).values(run_at=run_at))


def open_jobs(engine) -> int:
    from sqlalchemy import text
    from bridge.ledger.db import read_only
    with read_only(engine).connect() as c:  # a plain BEGIN on SQLite: never queue for the write lock
        return c.execute(text("SELECT count(*) FROM jobs WHERE state IN ('ready', 'running')")).scalar_one()


def worker_env(db, threads: int, log_level: str, batch: Optional[int] = None) -> dict:
    # PYTHONPATH is kept: it runs a copy of another commit of the bridge (an A/B of a change).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "DATABASE_URL", "STRIPE_", "PADDLE_"))}
    env.update({"DATABASE_URL": db.worker_url, "BRIDGE_WORKER_THREADS": str(threads),
                "BRIDGE_LOG_LEVEL": log_level, "BRIDGE_WORKER_POLL": "0.1",
                # Follow-ups claimed before their payment committed park: retry them soon.
                "BRIDGE_JOB_BACKOFF_BASE": "0.05", "BRIDGE_JOB_BACKOFF_MAX": "0.5",
                "BRIDGE_JOB_MAX_ATTEMPTS": "40"})
    if batch:
        env["BRIDGE_WORKER_BATCH"] = str(batch)
    return env


def wait_idle(pids: list[int], timeout: float = 30.0) -> None:
    """Until every worker has booted and idles (its CPU stops moving)."""
    deadline = time.monotonic() + timeout
    last = {p: proc_cpu(p) for p in pids}
    time.sleep(0.5)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = {p: proc_cpu(p) for p in pids}
        if all(now[p] - last[p] < 0.02 and now[p] > 0.05 for p in pids):
            return
        last = now
    raise RuntimeError("workers did not settle")


def run_config(db, events: list[Event], reference: dict, procs: int, threads: int, log_level: str,
               tmp: Path, timeout: float, batch: Optional[int] = None, history: int = 0,
               analyze_every: float = 1.0) -> Result:
    res = Result(db.kind, procs, threads, len(events))
    rt, res.intake_us = prepare(db, events, history)
    engine = rt.engine
    hold(engine, FAR)
    bridge_bin = str(Path(sys.executable).parent / "bridge")
    logs = [open(tmp / f"worker_{db.kind}_{procs}x{threads}_{i}.log", "w") for i in range(procs)]
    workers = [subprocess.Popen([bridge_bin, "worker"], env=worker_env(db, threads, log_level, batch),
                                stdout=lg, stderr=subprocess.STDOUT, cwd=str(ROOT)) for lg in logs]
    try:
        pids = [w.pid for w in workers]
        wait_idle(pids)
        backends0 = {p: proc_cpu(p) for p in db.backend_pids(engine)}
        w0 = {p: proc_cpu(p) for p in pids}
        sys0 = system_cpu()
        res.load = os.getloadavg()
        t0 = time.monotonic()
        hold(engine, datetime.now(timezone.utc) - timedelta(seconds=1))
        analyzed_at = t0
        while open_jobs(engine):
            if time.monotonic() - t0 > timeout:
                res.note = "timed out"
                break
            if db.kind == "postgresql" and analyze_every and time.monotonic() - analyzed_at >= analyze_every:
                res.analyzed += auto_analyze(engine)  # autovacuum's work
                analyzed_at = time.monotonic()
            time.sleep(0.05)
        res.seconds = time.monotonic() - t0
        sys1 = system_cpu()
        w1 = {p: proc_cpu(p) for p in pids}
        backends1 = {p: proc_cpu(p) for p in db.backend_pids(engine)}
        res.worker_cpu = sum(w1[p] - w0[p] for p in pids)
        res.pg_cpu = sum(c - backends0.get(p, 0.0) for p, c in backends1.items())
        busy, total = sys1[0] - sys0[0], sys1[1] - sys0[1]
        res.busy_pct = 100.0 * busy / max(1e-9, total)
        res.others_pct = 100.0 * max(0.0, busy - res.worker_cpu - res.pg_cpu) / max(1e-9, total)
    finally:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        res.worker_cpu_total = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        for lg in logs:
            lg.close()
    res.jobs = job_counts(engine)
    from sqlalchemy import text
    with engine.connect() as c:
        # Attempts beyond the first: events claimed before what they refer to had committed.
        res.parked = c.execute(text("SELECT coalesce(sum(attempts - 1), 0) FROM jobs WHERE kind = 'process_event'")).scalar_one()
    got = state_of(engine)
    res.diff = [k for k in reference if not k.startswith("_") and reference[k] != got.get(k)]
    if "notices digest" in res.diff:
        want, have = set(reference["_notices"]), set(got["_notices"])
        print(f"  notices only in the reference: {sorted(want - have)[:10]}; only here: {sorted(have - want)[:10]}")
    res.ok = not res.diff and not res.note
    engine.dispose()
    return res


def reference_state(events: list[Event], tmp: Path, profile: bool = False, top: int = 40) -> tuple[dict, float, dict]:
    """One in-process worker applying the events in order on SQLite: the expected state, the
    CPU per event of that drain (ms) and the job counts."""
    from bridge.logs import configure_logging
    from bridge.worker.handlers import all_handlers
    from bridge.worker.runner import Worker
    db = SqliteDb(tmp, f"reference_{secrets.token_hex(3)}")
    rt, _ = prepare(db, events)
    configure_logging(os.environ.get("BENCH_REF_LOG_LEVEL", "WARNING"))
    worker = Worker(rt, all_handlers(rt))
    from sqlalchemy import event as sa_event
    statements = [0]
    sa_event.listen(rt.engine, "before_cursor_execute", lambda *a: statements.__setitem__(0, statements[0] + 1))
    prof = cProfile.Profile(time.process_time) if profile else None
    c0 = time.process_time()
    if prof:
        prof.enable()
    ran = worker.drain(max_seconds=3600)
    if prof:
        prof.disable()
    cpu_ms = (time.process_time() - c0) / len(events) * 1e3
    print(f"reference drain: {statements[0] / len(events):.1f} SQL statements per event (BEGIN and SAVEPOINTs counted, COMMIT not)")
    if prof:
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        stats.sort_stats("cumulative").print_stats("bridge/", top)
        stats.sort_stats("tottime").print_stats(top)
        print(buf.getvalue())
    assert open_jobs(rt.engine) == 0, "the in-order drain left jobs"
    state, jobs = state_of(rt.engine), job_counts(rt.engine)
    rt.engine.dispose()
    db.drop()
    _ = ran
    return state, cpu_ms, jobs


# -- report -------------------------------------------------------------------------------------------

def row(r: Result) -> str:
    per = lambda x: f"{1e3 * x / r.n:7.2f}"  # noqa: E731
    pg = per(r.pg_cpu) if r.db == "postgresql" else "      -"
    return (f"| {r.db:10} | {r.procs}x{r.threads} | {r.n:5} | {r.seconds:7.2f} | {r.rate:7.1f} | {per(r.worker_cpu)} "
            f"| {per(r.worker_cpu_total)} | {pg} | {r.busy_pct:5.1f} | {r.others_pct:5.1f} | {r.parked:4} "
            f"| {r.load[0] if r.load else 0:5.2f} "
            f"| {'ok' if r.ok else 'MISMATCH ' + ','.join(r.diff) + (' ' + r.note if r.note else '')}"
            f"{f' (analyzed {r.analyzed})' if r.analyzed else ''} |")


HEADER = ("| db         | PxT | events | s       | ev/s    | wrk ms/ev | +boot ms/ev | pg ms/ev | busy% | "
          "other% | retries | load1 | ledger |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="events per run")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--gap", type=int, default=40, help="follow-ups stored at least this many events after their payment")
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--configs", default="1x1,2x1,4x1,1x4,2x4", help="processes x threads")
    ap.add_argument("--sqlite-configs", default=None, help="configs for SQLite (default: --configs)")
    ap.add_argument("--pg-url", default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--log-level", default="INFO", help="the workers' BRIDGE_LOG_LEVEL (production default INFO)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--batch", type=int, default=None, help="BRIDGE_WORKER_BATCH of the workers (default: theirs)")
    ap.add_argument("--profile", action="store_true", help="profile the in-process reference drain and stop")
    ap.add_argument("--history", type=int, default=0,
                    help="orders of past business (bench/history.py) in the tables before each run")
    ap.add_argument("--analyze-every", type=float, default=1.0,
                    help="PostgreSQL: seconds between the bench's autovacuum-like ANALYZE of the tables autovacuum "
                         "would analyze (this machine's server has autovacuum off); 0: never")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C: each run's finally stops its workers and drops its schema.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tmp = Path(tempfile.mkdtemp(prefix="worker_bench_"))
    events = build_events(args.n, args.seed, args.gap)
    print(f"{len(events)} events, seed {args.seed}: {json.dumps(mix_of(events))}")
    print(f"machine: {os.cpu_count()} cores, load {' '.join(Path('/proc/loadavg').read_text().split()[:3])}, "
          f"busy {busy_now():.0f}% before start; speed probe {speed_probe():.0f} ms (a fixed Python loop: lower is faster)")
    reference, ref_ms, ref_jobs = reference_state(events, tmp, profile=args.profile)
    print(f"reference: one in-process worker, in order, SQLite: {ref_ms:.2f} ms CPU per event; jobs {ref_jobs}")
    if args.profile:
        return 0
    print(f"reference state: {json.dumps({k: v for k, v in reference.items() if 'digest' not in k and not k.startswith('_')})}")
    print(f"reference state digest: {hashlib.sha256(json.dumps({k: v for k, v in reference.items() if not k.startswith('_')}, sort_keys=True).encode()).hexdigest()[:16]} "
          "(equal digests: two commits' workers reach the same state)")

    results: list[Result] = []
    for kind in [k for k in args.db.split(",") if k and k != "none"]:  # none: the reference drain only
        configs = (args.sqlite_configs if kind == "sqlite" and args.sqlite_configs else args.configs).split(",")
        if kind == "postgresql":
            version = pg_reachable(args.pg_url)
            if version is None:
                print(f"PostgreSQL at {args.pg_url} unreachable: skipped")
                continue
            print(f"PostgreSQL {version}")
        for cfg in configs:
            procs, threads = (int(x) for x in cfg.split("x"))
            for rep in range(args.repeat):
                db = SqliteDb(tmp, f"run_{cfg}_{rep}") if kind == "sqlite" else PostgresDb(args.pg_url, cfg.replace("x", "_"))
                try:
                    r = run_config(db, events, reference, procs, threads, args.log_level, tmp, args.timeout, args.batch,
                                   args.history, args.analyze_every)
                finally:
                    db.drop()
                results.append(r)
                print(HEADER if len(results) == 1 else "", end="\n" if len(results) == 1 else "")
                print(row(r), flush=True)
                if not r.ok:
                    print(f"  jobs: {r.jobs}")
    print("\nwrk ms/ev: the worker processes' CPU while draining; +boot: their whole rusage (start-up included);")
    print("pg ms/ev: the PostgreSQL backends serving them; busy%: all cores over the drain; other%: CPU used by")
    print("neither (other processes on the machine); retries: job attempts beyond the first (parked events).")
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ | {"rate": r.rate} for r in results], indent=1, default=str))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
