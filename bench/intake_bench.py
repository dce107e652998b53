#!/usr/bin/env python3
"""Webhook-intake benchmark: the bridge under gunicorn, next to a no-op Flask app.

Starts ``gunicorn -w N -k sync --timeout 30`` exactly as the Procfile does (bound to 127.0.0.1
only, control socket in the temp dir), posts correctly signed Stripe and Paddle events
(3.3-4.1 KB, unique ids) to ``/webhooks/stripe`` and ``/webhooks/paddle``, then re-delivers
already stored events (every request a duplicate), at each concurrency, and prints requests/s,
p50/p99 latency, the ratio to a no-op Flask endpoint under the same gunicorn settings, and the
CPU each request cost the gunicorn workers.

Databases: SQLite (a fresh file in a temp dir, ``bridge db upgrade`` first) and PostgreSQL when
reachable (a fresh schema through ``?options=-csearch_path%3D<schema>``, created and dropped
here). The bridge runs with ``BRIDGE_LOG_LEVEL=WARNING``: at INFO every delivery writes a log
line (formatting + the redaction regex + a write), which costs CPU; ``--bridge-log-level INFO``
measures that.

Load generator: ``wrk`` when installed (``apt-get install wrk``). Signing needs HMAC-SHA256,
which wrk's Lua lacks, so the requests are signed here just before each run (timestamps stay
well inside the 300 s window) and written to a file on tmpfs that a Lua script loads; each wrk
thread cycles through its own slice. For "new" runs the script reports whether any thread ran
out of unique events (then the run is repeated with more). Without wrk, a Python load generator
(threads, ``http.client``) is used: it shares the 2 cores and the GIL, so its numbers are lower
and only comparable with each other.

Each run: ``--warmup`` seconds (not counted) then ``--duration`` seconds measured. Rows stored
during the measured run are counted in the database to check that "new" runs stored every
event and "dup" runs stored nothing. Also, unless ``--no-breakdown``: an in-process split of the
per-request cost (HMAC check, json.loads, the insert, the Flask request, logging).

    .venv/bin/python bench/intake_bench.py                       # everything, ~7 min
    .venv/bin/python bench/intake_bench.py --db sqlite --duration 5 --concurrency 16

Only traffic to 127.0.0.1; every process started here is stopped (also on Ctrl-C / SIGTERM).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")

STRIPE_SECRET = "whsec_bench_" + "b3N0cmlwZS1iZW5jaC1zZWNyZXQ"
PADDLE_SECRET = "pdl_ntfset_01benchsecret_" + "0123456789abcdef"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
NOISY_PCT = 5.0   # CPU share of unrelated processes during a run above which it is flagged


# --- the no-op app (gunicorn imports this module as ``intake_bench:noop_app()``) ------------

def noop_app():
    """A Flask app that reads the body and answers 200 with a small JSON: everything the bridge
    does per request except verify, parse and store."""
    from flask import Flask, jsonify, request

    app = Flask("bench_noop")

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    @app.post("/webhooks/<provider>")
    def webhook(provider):
        request.get_data(cache=False)
        return jsonify({"received": True, "duplicate": False})

    return app


# --- payloads ------------------------------------------------------------------------------

_B62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_B32 = "0123456789abcdefghjkmnpqrstvwxyz"


_TABLES = {a: bytes(ord(a[b % len(a)]) for b in range(256)) for a in (_B62, _B32)}


def _rand(alphabet: str, n: int) -> str:
    return os.urandom(n).translate(_TABLES[alphabet]).decode("ascii")


def _addr(country):
    return {"city": None, "country": country, "line1": None, "line2": None, "postal_code": None,
            "state": None}


def _stripe_charge_succeeded() -> dict:
    """charge.succeeded (basil/endive shape) for a software licence bought via Checkout."""
    ch = "ch_@OBJ@"
    return {
        "id": "@EVT@", "object": "event", "api_version": "2026-10-28.endive", "created": "@CREATED@",
        "data": {"object": {
            "id": ch, "object": "charge", "amount": 14900, "amount_captured": 14900,
            "amount_refunded": 0, "application": None, "application_fee": None,
            "application_fee_amount": None, "balance_transaction": "txn_@OBJ@",
            "billing_details": {"address": {"city": "Berlin", "country": "DE", "line1": "Example Str. 1",
                                            "line2": None, "postal_code": "10115", "state": None},
                                "email": "buyer@example.com", "name": "Jamie Doe", "phone": None,
                                "tax_id": None},
            "calculated_statement_descriptor": "BRIDGE SOFTWARE", "captured": True,
            "created": "@CREATED@", "currency": "eur", "customer": "cus_@OBJ@",
            "description": "Bridge Pro - 5 seats (annual)", "destination": None, "dispute": None,
            "disputed": False, "failure_balance_transaction": None, "failure_code": None,
            "failure_message": None, "fraud_details": {}, "livemode": True,
            "metadata": {"order_id": "ord_@OBJ@", "sku": "bridge-pro-annual", "seats": "5",
                         "license_policy": "pro-30d-refund", "checkout_session": "cs_live_@OBJ@",
                         "campaign": "spring-launch"},
            "on_behalf_of": None, "order": None,
            "outcome": {"advice_code": None, "network_advice_code": None,
                        "network_decline_code": None, "network_status": "approved_by_network",
                        "reason": None, "risk_level": "normal", "risk_score": 21,
                        "seller_message": "Payment complete.", "type": "authorized"},
            "paid": True, "payment_intent": "pi_@OBJ@", "payment_method": "pm_@OBJ@",
            "payment_method_details": {"card": {
                "amount_authorized": 14900, "authorization_code": "123456", "brand": "visa",
                "checks": {"address_line1_check": "pass", "address_postal_code_check": "pass",
                           "cvc_check": "pass"},
                "country": "DE", "exp_month": 12, "exp_year": 2030,
                "extended_authorization": {"status": "disabled"}, "fingerprint": "Fp0aBcDeFgHiJkLm",
                "funding": "credit", "incremental_authorization": {"status": "unavailable"},
                "installments": None, "last4": "4242", "mandate": None,
                "multicapture": {"status": "unavailable"}, "network": "visa",
                "network_token": {"used": False}, "network_transaction_id": "585041234567890",
                "overcapture": {"maximum_amount_capturable": 14900, "status": "unavailable"},
                "regulated_status": "unregulated",
                "three_d_secure": {"authentication_flow": "frictionless", "electronic_commerce_indicator": "05",
                                   "result": "authenticated", "result_reason": None,
                                   "transaction_id": "3ds_@OBJ@", "version": "2.2.0"},
                "wallet": None}, "type": "card"},
            "presentment_details": None, "radar_options": {}, "receipt_email": "buyer@example.com",
            "receipt_number": None,
            "receipt_url": "https://pay.stripe.com/receipts/payment/CAcaFwoVYWNjdF8xQnJpZGdl/" + ch,
            "refunded": False, "review": None, "shipping": None, "source": None,
            "source_transfer": None, "statement_descriptor": None,
            "statement_descriptor_suffix": None, "status": "succeeded", "transfer_data": None,
            "transfer_group": None}},
        "livemode": True, "pending_webhooks": 1,
        "request": {"id": "req_@OBJ@", "idempotency_key": "@OBJ@-pay"}, "type": "charge.succeeded",
    }


def _stripe_invoice_paid() -> dict:
    inv = "in_@OBJ@"
    sub = "sub_@OBJ@"
    return {
        "id": "@EVT@", "object": "event", "api_version": "2026-10-28.endive", "created": "@CREATED@",
        "data": {"object": {
            "id": inv, "object": "invoice", "account_country": "US", "account_name": "Bridge Software Inc.",
            "account_tax_ids": None, "amount_due": 4900, "amount_overpaid": 0, "amount_paid": 4900,
            "amount_remaining": 0, "amount_shipping": 0, "application": None, "attempt_count": 1,
            "attempted": True, "auto_advance": False,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None,
                              "provider": None, "status": None},
            "automatically_finalizes_at": None, "billing_reason": "subscription_cycle",
            "collection_method": "charge_automatically", "confirmation_secret": None,
            "created": "@CREATED@", "currency": "usd", "custom_fields": None, "customer": "cus_@OBJ@",
            "customer_address": _addr("US"), "customer_email": "buyer@example.com",
            "customer_name": "Jamie Doe", "customer_phone": None, "customer_shipping": None,
            "customer_tax_exempt": "none", "customer_tax_ids": [], "default_payment_method": None,
            "default_source": None, "default_tax_rates": [], "description": None, "discounts": [],
            "due_date": None, "effective_at": "@CREATED@", "ending_balance": 0, "footer": None,
            "from_invoice": None,
            "hosted_invoice_url": "https://invoice.stripe.com/i/acct_1Bridge/live_" + inv,
            "invoice_pdf": "https://pay.stripe.com/invoice/acct_1Bridge/live_" + inv + "/pdf",
            "issuer": {"type": "self"}, "last_finalization_error": None, "latest_revision": None,
            "lines": {"object": "list", "data": [{
                "id": "il_@OBJ@", "object": "line_item", "amount": 4900, "currency": "usd",
                "description": "1 \u00d7 Pro plan (at $49.00 / month)", "discount_amounts": [],
                "discountable": True, "discounts": [], "invoice": inv, "livemode": True, "metadata": {},
                "parent": {"type": "subscription_item_details", "invoice_item_details": None,
                           "subscription_item_details": {"invoice_item": None, "proration": False,
                                                         "proration_details": {"credited_items": None},
                                                         "subscription": sub, "subscription_item": "si_@OBJ@"}},
                "period": {"end": "@CREATED@", "start": "@CREATED@"}, "pretax_credit_amounts": [],
                "pricing": {"price_details": {"price": "price_1BridgeProMonthly", "product": "prod_BridgePro"},
                            "type": "price_details", "unit_amount_decimal": "4900"},
                "quantity": 1, "quantity_decimal": "1", "subtotal": 4900, "taxes": []}],
                "has_more": False, "total_count": 1, "url": "/v1/invoices/" + inv + "/lines"},
            "livemode": True, "metadata": {"order_id": "ord_@OBJ@", "license_policy": "pro-monthly"},
            "next_payment_attempt": None, "number": "BRDG-7Q2K-0042", "on_behalf_of": None,
            "parent": {"type": "subscription_details", "quote_details": None,
                       "subscription_details": {"metadata": {"order_id": "ord_@OBJ@"}, "subscription": sub,
                                                "subscription_proration_date": None}},
            "payment_settings": {"default_mandate": None, "payment_method_options": None,
                                 "payment_method_types": None},
            "period_end": "@CREATED@", "period_start": "@CREATED@", "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0, "receipt_number": None, "rendering": None,
            "shipping_cost": None, "shipping_details": None, "starting_balance": 0,
            "statement_descriptor": None, "status": "paid", "status_details": None,
            "status_transitions": {"finalized_at": "@CREATED@", "marked_uncollectible_at": None,
                                   "paid_at": "@CREATED@", "voided_at": None},
            "subtotal": 4900, "subtotal_excluding_tax": 4900, "test_clock": None, "threshold_reason": None,
            "total": 4900, "total_discount_amounts": [], "total_excluding_tax": 4900,
            "total_pretax_credit_amounts": [], "total_taxes": [], "webhooks_delivered_at": "@CREATED@"}},
        "livemode": True, "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
        "type": "invoice.paid",
    }


def _paddle_transaction_completed(seats: int) -> dict:
    txn = "txn_@OBJ@"
    totals = {"fee": "745", "tax": "2379", "total": "14900", "credit": "0", "balance": "0",
              "discount": "0", "earnings": "11776", "subtotal": "12521", "grand_total": "14900",
              "grand_total_tax": "2379", "currency_code": "EUR", "credit_to_balance": "0"}
    return {
        "event_id": "@EVT@", "event_type": "transaction.completed", "occurred_at": "@ISO@",
        "notification_id": "ntf_@OBJ@",
        "data": {
            "id": txn,
            "items": [{"price": {"id": "pri_01hv8x2q3bridgepro0seats", "name": "Bridge Pro seat",
                                 "type": "standard", "status": "active",
                                 "quantity": {"maximum": 100, "minimum": 1}, "tax_mode": "account_setting",
                                 "created_at": "2025-12-01T10:00:00.000000Z",
                                 "product_id": "pro_01hv8x0bridgepro000000000",
                                 "unit_price": {"amount": "2980", "currency_code": "EUR"},
                                 "updated_at": "2026-01-30T10:00:00.000000Z",
                                 "custom_data": None, "description": "Bridge Pro, per seat",
                                 "trial_period": None, "billing_cycle": None,
                                 "unit_price_overrides": [], "import_meta": None},
                       "quantity": seats, "proration": None}],
            "origin": "web", "status": "completed",
            "details": {
                "totals": totals,
                "line_items": [{"id": "txnitm_@OBJ@",
                                "totals": {"tax": "2379", "total": "14900", "discount": "0", "subtotal": "12521"},
                                "product": {"id": "pro_01hv8x0bridgepro000000000", "name": "Bridge Pro",
                                            "type": "standard", "status": "active", "image_url": None,
                                            "created_at": "2025-11-01T10:00:00.000000Z",
                                            "updated_at": "2026-01-30T10:00:00.000000Z",
                                            "custom_data": None, "description": "Bridge Pro for teams",
                                            "tax_category": "standard", "import_meta": None},
                                "price_id": "pri_01hv8x2q3bridgepro0seats", "quantity": seats,
                                "tax_rate": "0.19",
                                "unit_totals": {"tax": "476", "total": "2980", "discount": "0", "subtotal": "2504"},
                                "proration": None}],
                "payout_totals": {**totals, "exchange_rate": "1.0", "fee_rate": "0.05"},
                "tax_rates_used": [{"totals": {"tax": "2379", "total": "14900", "discount": "0",
                                               "subtotal": "12521"}, "tax_rate": "0.19"}],
                "adjusted_totals": {"fee": "745", "tax": "2379", "total": "14900", "earnings": "11776",
                                    "subtotal": "12521", "grand_total": "14900", "grand_total_tax": "2379",
                                    "currency_code": "EUR", "retained_fee": "0"},
                "adjusted_payout_totals": None},
            "checkout": {"url": "https://shop.example.com/pay?_ptxn=" + txn},
            "payments": [{"amount": "14900", "status": "captured", "created_at": "@ISO@",
                          "error_code": None, "captured_at": "@ISO@",
                          "method_details": {"card": {"type": "visa", "last4": "4242", "expiry_year": 2030,
                                                      "expiry_month": 12, "cardholder_name": "Jamie Doe"},
                                             "type": "card", "underlying_details": None},
                          "payment_method_id": "paymtd_@OBJ@",
                          "payment_attempt_id": "6a0e9b54-2c1f-4d0e-9a43-3b1f0c2d9e7a",
                          "stored_payment_method_id": "b6c1f1d2-7a43-4e0b-8f5c-2a9d0e4b7c31"}],
            "billed_at": "@ISO@", "address_id": "add_@OBJ@", "created_at": "@ISO@",
            "invoice_id": "inv_@OBJ@", "updated_at": "@ISO@", "revised_at": None, "business_id": None,
            "custom_data": {"order_id": "ord_@OBJ@", "license_policy": "pro-14d-refund",
                            "seats": str(seats)},
            "customer_id": "ctm_@OBJ@", "discount_id": None, "currency_code": "EUR",
            "billing_period": None, "invoice_number": "325-59199", "billing_details": None,
            "collection_mode": "automatic", "subscription_id": None},
    }


class Payloads:
    """Signed requests with unique event ids, built from JSON templates by string substitution
    (a few microseconds each, so tens of thousands can be made just before a run)."""

    def __init__(self):
        self.templates = {
            "stripe": [json.dumps(_stripe_charge_succeeded()), json.dumps(_stripe_invoice_paid())],
            "paddle": [json.dumps(_paddle_transaction_completed(s)) for s in (5, 12)],
        }

    def _dated(self, provider: str, now: int) -> list[str]:
        if provider == "stripe":
            return [t.replace('"@CREATED@"', str(now)) for t in self.templates[provider]]
        iso = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        return [t.replace("@ISO@", iso) for t in self.templates[provider]]

    def bodies(self, provider: str, n: int, now: int) -> list[bytes]:
        tpls = self._dated(provider, now)
        k = len(tpls)
        if provider == "stripe":
            ids = [("evt_" + _rand(_B62, 24), _rand(_B62, 24)) for _ in range(n)]
        else:
            ids = [("evt_01" + _rand(_B32, 24), "01" + _rand(_B32, 24)) for _ in range(n)]
        return [tpls[i % k].replace("@EVT@", e).replace("@OBJ@", o).encode("ascii")
                for i, (e, o) in enumerate(ids)]

    def new(self, provider: str, n: int) -> list[tuple[str, bytes]]:
        return sign(provider, self.bodies(provider, n, int(time.time())))


def sign(provider: str, bodies: list[bytes]) -> list[tuple[str, bytes]]:
    """(signature header value, body) pairs, signed now."""
    from bridge.providers.paddle.signature import sign_paddle
    from bridge.providers.stripe.signature import sign_stripe
    ts = int(time.time())
    if provider == "stripe":
        return [(sign_stripe(b, STRIPE_SECRET, ts), b) for b in bodies]
    return [(sign_paddle(b, PADDLE_SECRET, ts), b) for b in bodies]


SIG_HEADER = {"stripe": "Stripe-Signature", "paddle": "Paddle-Signature"}
USER_AGENT = {"stripe": "Stripe/1.0 (+https://stripe.com/docs/webhooks)", "paddle": "Paddle"}


# --- processes -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_LIVE: list["Server"] = []


class Server:
    """One gunicorn, in its own session so it and its workers are stopped together."""

    def __init__(self, label: str, app: str, workers: int, env: dict, tmp: Path, pythonpath=None,
                 config: Optional[str] = None):
        self.label, self.workers = label, workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"gunicorn-{label.replace(' ', '_')}-{self.port}.log"
        args = [str(BIN / "gunicorn"), *(["-c", config] if config else []), "-w", str(workers), "-k", "sync",
                "-b", f"127.0.0.1:{self.port}",
                "--timeout", "30", "--control-socket", str(tmp / f"gunicorn-{self.port}.ctl")]
        if pythonpath:
            args += ["--pythonpath", str(pythonpath)]
        args.append(app)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, env=env, cwd=tmp, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        _LIVE.append(self)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2) as r:
                    if r.status == 200 and len(self.worker_pids()) >= workers:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn ({label}) did not start:\n{self.log_path.read_text(errors='replace')[-3000:]}")

    def worker_pids(self) -> list[int]:
        return [pid for pid, ppid in _proc_parents() if ppid == self.proc.pid]

    def stop(self):
        if self in _LIVE:
            _LIVE.remove(self)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        self._log.close()


def _proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, utime + stime ticks, command name) of every process."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    head, _, tail = f.read().rpartition(")")
                rest = tail.split()
                out[int(d)] = (int(rest[1]), int(rest[11]) + int(rest[12]), head.partition("(")[2])
            except (OSError, IndexError, ValueError):
                continue
    return out


def _proc_parents():
    return [(pid, v[0]) for pid, v in _proc_table().items()]


def _system_cpu() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot."""
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    total = sum(vals[:8])
    return total - idle, total


def cpu_busy(sample: float = 1.0) -> float:
    """Percent of all cores busy over ``sample`` seconds."""
    b0, t0 = _system_cpu()
    time.sleep(sample)
    b1, t1 = _system_cpu()
    return 100.0 * (b1 - b0) / max(1, t1 - t0)


@dataclass
class CpuSnap:
    procs: dict
    busy: int
    total: int
    loadgen: float      # seconds: reaped children (wrk) + this process (the Python load generator)

    @classmethod
    def take(cls) -> "CpuSnap":
        busy, total = _system_cpu()
        procs = _proc_table()
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        me = resource.getrusage(resource.RUSAGE_SELF)
        return cls(procs, busy, total, ch.ru_utime + ch.ru_stime + me.ru_utime + me.ru_stime)


def split_cpu(c0: CpuSnap, c1: CpuSnap, server: Server) -> dict:
    """CPU seconds during a run: gunicorn (master + workers), load generator, database server +
    kernel threads + the rest of the system (PostgreSQL backends, jbd2 doing SQLite's fsyncs,
    softirqs are charged to whoever runs), and other processes (someone's test run)."""
    ours = {server.proc.pid} | {p for p, v in c1.procs.items() if v[0] == server.proc.pid}
    srv = foreign = dbk = 0
    for pid, (ppid, ticks, comm) in c1.procs.items():
        d = ticks - (c0.procs[pid][1] if pid in c0.procs else 0)
        if pid in ours:
            srv += d
        elif pid == os.getpid() or comm == "wrk":
            continue                       # counted through rusage
        elif comm.startswith("postgres") or ppid == 2 or pid == 2:
            dbk += d
        else:
            foreign += d
    busy = (c1.busy - c0.busy) / CLK_TCK
    lg = c1.loadgen - c0.loadgen
    srv, foreign = srv / CLK_TCK, foreign / CLK_TCK
    return {"srv": srv, "lg": lg, "foreign": foreign, "dbk": max(0.0, busy - srv - lg - foreign),
            "busy": busy, "total": (c1.total - c0.total) / CLK_TCK}


# --- load generators ------------------------------------------------------------------------

_LUA = r"""
-- args: requests file, number of wrk threads, path, signature header name, user agent, mode
local threads = {}
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local reqs = {}
local n = 0
local i = 0
wrapped = 0

function init(args)
  local path, nthreads, urlpath, hdrname, ua = args[1], tonumber(args[2]), args[3], args[4], args[5]
  local k = 0
  for line in io.lines(path) do
    if k % nthreads == tid then
      local tab = line:find("\t", 1, true)
      n = n + 1
      reqs[n] = wrk.format("POST", urlpath,
        {["Content-Type"] = "application/json; charset=utf-8", [hdrname] = line:sub(1, tab - 1),
         ["User-Agent"] = ua}, line:sub(tab + 1))
    end
    k = k + 1
  end
end

function request()
  i = i + 1
  if i > n then
    i = 1
    wrapped = wrapped + 1
  end
  return reqs[i]
end

function done(summary, latency, requests)
  local w = 0
  for _, t in ipairs(threads) do w = w + (t:get("wrapped") or 0) end
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d " ..
    "p50_us=%d p90_us=%d p99_us=%d max_us=%d wrapped=%d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, w))
end
"""


@dataclass
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int
    status_errors: int
    wrapped: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class WrkLoad:
    name = "wrk"

    def __init__(self, tmp: Path):
        shm = Path("/dev/shm")
        # Request files on tmpfs: writing ~100 MB to the disk the SQLite file lives on would put
        # its writeback (and fsync contention) into the next measurement.
        self.dir = Path(tempfile.mkdtemp(prefix="intake-bench-", dir=shm if shm.is_dir() else tmp))
        self.lua = self.dir / "intake.lua"
        self.lua.write_text(_LUA)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run(self, base: str, provider: str, entries, conc: int, seconds: float) -> Load:
        path = self.dir / "requests.txt"
        with open(path, "w") as f:
            f.writelines(f"{h}\t{b.decode('ascii')}\n" for h, b in entries)
        threads = max(1, min(2, conc))
        secs = max(1, int(round(seconds)))
        args = ["wrk", "-t", str(threads), "-c", str(conc), "-d", f"{secs}s", "--timeout", "10s",
                "-s", str(self.lua), f"{base}/webhooks/{provider}", "--",
                str(path), str(threads), f"/webhooks/{provider}", SIG_HEADER[provider], USER_AGENT[provider]]
        out = subprocess.run(args, capture_output=True, text=True, timeout=secs + 90)
        path.unlink(missing_ok=True)
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_RESULT")), None)
        if line is None:
            raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}")
        v = {k: int(x) for k, x in (kv.split("=") for kv in line.split()[1:])}
        return Load(requests=v["requests"], seconds=v["duration_us"] / 1e6, p50_ms=v["p50_us"] / 1e3,
                    p90_ms=v["p90_us"] / 1e3, p99_ms=v["p99_us"] / 1e3,
                    errors=v["connect"] + v["read"] + v["write"] + v["timeout"],
                    status_errors=v["status"], wrapped=v["wrapped"])


class PythonLoad:
    """Fallback: one thread per connection; the server closes after each response (sync
    workers), so every request opens a new connection, as wrk does against gunicorn sync."""
    name = "python"

    def close(self):
        pass

    def run(self, base: str, provider: str, entries, conc: int, seconds: float) -> Load:
        import http.client
        import itertools

        port = int(base.rsplit(":", 1)[1])
        counter = itertools.count()
        n = len(entries)
        lat: list[list[float]] = [[] for _ in range(conc)]
        errs = [0] * conc
        status_errs = [0] * conc
        wrapped = [0]
        start_evt = threading.Event()
        deadline = [0.0]

        def worker(k: int):
            start_evt.wait()
            while time.perf_counter() < deadline[0]:
                idx = next(counter)
                if idx >= n:
                    wrapped[0] = 1
                hdr, body = entries[idx % n]
                t0 = time.perf_counter()
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    conn.request("POST", f"/webhooks/{provider}", body=body, headers={
                        "Content-Type": "application/json; charset=utf-8", SIG_HEADER[provider]: hdr,
                        "User-Agent": USER_AGENT[provider]})
                    resp = conn.getresponse()
                    resp.read()
                    conn.close()
                except OSError:
                    errs[k] += 1
                    continue
                if time.perf_counter() > deadline[0]:
                    break
                lat[k].append(time.perf_counter() - t0)
                if resp.status >= 400:
                    status_errs[k] += 1

        ts = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(conc)]
        for t in ts:
            t.start()
        t0 = time.perf_counter()
        deadline[0] = t0 + seconds
        start_evt.set()
        for t in ts:
            t.join(timeout=seconds + 30)
        elapsed = time.perf_counter() - t0
        all_lat = sorted(x for xs in lat for x in xs)

        def pct(p):
            return all_lat[min(len(all_lat) - 1, int(p / 100 * len(all_lat)))] * 1e3 if all_lat else 0.0

        return Load(requests=len(all_lat), seconds=elapsed, p50_ms=pct(50), p90_ms=pct(90), p99_ms=pct(99),
                    errors=sum(errs), status_errors=sum(status_errs), wrapped=wrapped[0])


# --- databases ------------------------------------------------------------------------------

class SqliteDb:
    kind = "sqlite"

    def __init__(self, tmp: Path, name: str = "bridge"):
        (tmp / name).mkdir(parents=True, exist_ok=True)
        self.path = tmp / name / "bridge.sqlite3"
        self.url = f"sqlite:///{self.path}"

    def _conn(self):
        import sqlite3
        return sqlite3.connect(self.path, timeout=10)

    def counts(self) -> tuple[int, int]:
        with self._conn() as c:
            return tuple(c.execute("SELECT (SELECT count(*) FROM webhook_events), "
                                   "(SELECT count(*) FROM jobs)").fetchone())

    def stored(self, provider: str, limit: int) -> list[bytes]:
        with self._conn() as c:
            rows = c.execute("SELECT body FROM webhook_events WHERE provider = ? ORDER BY id DESC LIMIT ?",
                             (provider, limit)).fetchall()
        return [bytes(r[0]) for r in rows]

    def drop(self):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def describe(self) -> str:
        return f"{self.path} (WAL, synchronous=FULL)"


class PostgresDb:
    kind = "postgresql"

    def __init__(self, base_url: str):
        import psycopg
        self._psycopg = psycopg
        self.base = base_url
        self.schema = f"bench_intake_{os.getpid()}_{secrets.token_hex(3)}"
        with psycopg.connect(base_url, autocommit=True, connect_timeout=3) as c:
            c.execute(f'CREATE SCHEMA "{self.schema}"')
            self.version = c.execute("SHOW server_version").fetchone()[0]
        sep = "&" if "?" in base_url else "?"
        self.url = f"{base_url}{sep}options=-csearch_path%3D{self.schema}"

    def _conn(self):
        return self._psycopg.connect(self.url, autocommit=True, connect_timeout=3)

    def counts(self) -> tuple[int, int]:
        with self._conn() as c:
            return tuple(c.execute("SELECT (SELECT count(*) FROM webhook_events), "
                                   "(SELECT count(*) FROM jobs)").fetchone())

    def stored(self, provider: str, limit: int) -> list[bytes]:
        with self._conn() as c:
            rows = c.execute("SELECT body FROM webhook_events WHERE provider = %s ORDER BY id DESC LIMIT %s",
                             (provider, limit)).fetchall()
        return [bytes(r[0]) for r in rows]

    def drop(self):
        with self._psycopg.connect(self.base, autocommit=True, connect_timeout=3) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def describe(self) -> str:
        return f"PostgreSQL {self.version}, schema {self.schema}"


def pg_reachable(url: str) -> Optional[str]:
    try:
        import psycopg
        with psycopg.connect(url, connect_timeout=3) as c:
            c.execute("SELECT 1")
        return None
    except Exception as err:  # any failure: skip PostgreSQL and say why
        return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"


# --- the benchmark --------------------------------------------------------------------------

@dataclass
class Result:
    db: str
    workers: int
    endpoint: str
    conc: int
    load: Load
    srv_ms: float          # gunicorn workers' CPU per request
    lg_ms: float           # load generator's CPU per request
    rest_ms: float         # database server + kernel threads, per request
    busy_pct: float        # all cores
    others_pct: float      # CPU used by unrelated processes during the run, % of all cores
    rows_added: Optional[int] = None
    jobs_added: Optional[int] = None
    ratio: Optional[float] = None
    note: str = ""


@dataclass
class Bench:
    args: argparse.Namespace
    tmp: Path
    load: object
    payloads: Payloads = field(default_factory=Payloads)
    results: list = field(default_factory=list)
    noop_rate: dict = field(default_factory=dict)   # (workers, conc) -> req/s
    new_rate: dict = field(default_factory=dict)    # server label -> best "new" req/s seen
    started: float = field(default_factory=time.monotonic)

    def patient(self) -> bool:
        """Still within --max-minutes: waiting for quiet and re-measuring noisy cells allowed."""
        return time.monotonic() - self.started < self.args.max_minutes * 60

    def env(self, db_url: Optional[str] = None, extra: Optional[dict] = None) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("STRIPE_", "PADDLE_", "BRIDGE_", "LICENSE_", "DATABASE_URL",
                                    "WEB_CONCURRENCY", "GUNICORN_CMD_ARGS"))}
        env.update({"PYTHONDONTWRITEBYTECODE": "1", "BRIDGE_INSTANCE_DIR": str(self.tmp / "instance"),
                    "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET, "PADDLE_WEBHOOK_SECRET": PADDLE_SECRET,
                    "BRIDGE_LOG_LEVEL": self.args.bridge_log_level})
        if db_url:
            env["DATABASE_URL"] = db_url
        env.update(extra or {})
        return env

    def progress(self, msg: str):
        print(msg, file=sys.stderr, flush=True)

    def wait_quiet(self) -> Optional[float]:
        """Other work on the 2 cores (a test run...) skews everything: wait up to --quiet-wait
        seconds for the machine to go quiet; return the CPU busy % seen last."""
        a = self.args
        if a.quiet_wait <= 0 or not self.patient():
            return None
        deadline = time.monotonic() + a.quiet_wait
        said = False
        while True:
            busy = cpu_busy(1.0)
            if busy <= a.quiet_threshold or time.monotonic() >= deadline:
                return busy
            if not said:
                self.progress(f"  {busy:.0f}% CPU busy with other work; waiting up to {a.quiet_wait:g} s")
                said = True

    def _estimate(self, server: Server, conc: int) -> float:
        """How many requests per second to sign for: twice the best "new" rate this server has
        shown, else the no-op's (nothing through this gunicorn is faster). Running out is
        detected and the run repeated."""
        if server.label in self.new_rate:
            return 2 * self.new_rate[server.label]
        return self.noop_rate.get((server.workers, conc)) or max(self.noop_rate.values(), default=5000.0)

    def _entries(self, provider: str, mode: str, n: int, db) -> list:
        if mode == "any":     # the no-op stores nothing: cycling through a few thousand is fine
            return self.payloads.new(provider, min(n, 5000))
        if mode == "new":
            return self.payloads.new(provider, n)
        bodies = db.stored(provider, self.args.dup_pool)
        if not bodies:
            raise RuntimeError(f"no stored {provider} events to re-deliver")
        return sign(provider, bodies)   # the same bodies, freshly signed: a provider's retry

    def measure(self, server: Server, db, provider: str, mode: str, conc: int) -> Result:
        a = self.args
        est = self._estimate(server, conc) * 1.3
        label = "no-op" if db is None else f"{provider} {mode}"
        if mode == "dup" and len(db.stored(provider, 1000)) < 1000:
            # Nothing to re-deliver yet (no "new" run for this provider): store some first.
            self.load.run(server.base, provider, self.payloads.new(provider, 3000), conc, 1)
            time.sleep(0.5)
        self.wait_quiet()
        if a.warmup > 0:
            self.load.run(server.base, provider, self._entries(provider, mode, int(est * a.warmup) + 500, db),
                          conc, a.warmup)
            if db:
                time.sleep(0.5)   # requests in flight at the end of the warm-up land before counting
        samples: list[Result] = []
        noisy: list[Result] = []     # noisy attempts of the current sample
        factor, noisy_retries = 1, a.retry_noisy
        while len(samples) < a.repeat:
            entries = self._entries(provider, mode, int(est * a.duration * factor) + 1000, db)
            before = db.counts() if db else None
            c0 = CpuSnap.take()
            load = self.load.run(server.base, provider, entries, conc, a.duration)
            c1 = CpuSnap.take()
            if db:
                time.sleep(0.5)   # let requests still in flight when the load stopped finish
            after = db.counts() if db else None
            del entries
            n = max(load.requests, 1)
            cpu = split_cpu(c0, c1, server)
            total = cpu["total"] or 1.0
            res = Result(db=db.kind if db else "-", workers=server.workers, endpoint=label, conc=conc,
                         load=load, srv_ms=cpu["srv"] / n * 1e3, lg_ms=cpu["lg"] / n * 1e3,
                         rest_ms=cpu["dbk"] / n * 1e3, busy_pct=100 * cpu["busy"] / total,
                         others_pct=100 * cpu["foreign"] / total)
            if before and after:
                res.rows_added, res.jobs_added = after[0] - before[0], after[1] - before[1]
                ok = load.requests - load.status_errors
                if mode == "new" and not ok <= res.rows_added <= load.requests + conc + load.errors:
                    res.note = f"stored {res.rows_added} events for {ok} successful requests"
                elif mode == "dup" and res.rows_added:
                    res.note = f"duplicates stored {res.rows_added} new events"
                if res.jobs_added != res.rows_added:
                    res.note = (res.note + "; " if res.note else "") + "events and jobs differ"
            if load.wrapped and mode == "new" and factor < 4:
                factor *= 2
                self.progress("  ran out of unique events; measuring again with more")
                continue
            if res.others_pct > NOISY_PCT:
                noisy.append(res)
                if noisy_retries > 0 and self.patient():
                    noisy_retries -= 1
                    self.progress(f"  other processes used {res.others_pct:.0f}% CPU during the run "
                                  f"({load.rate:.0f} req/s); measuring again")
                    self.wait_quiet()
                    continue
                res = min(noisy, key=lambda r: r.others_pct)   # the least disturbed attempt
            samples.append(res)
            noisy = []
        samples.sort(key=lambda r: r.load.rate)
        res = samples[len(samples) // 2]
        notes = [res.note] if res.note else []
        if res.others_pct > NOISY_PCT:
            notes.append("noisy: other processes used CPU during the run")
        if res.load.wrapped and mode == "new":
            notes.append("ids ran out: some requests were duplicates")
        if a.repeat > 1:
            notes.append(f"median of {a.repeat}: " + "/".join(f"{r.load.rate:.0f}" for r in samples))
        res.note = "; ".join(notes)
        if db is None:
            key = (server.workers, conc)
            self.noop_rate[key] = max(res.load.rate, self.noop_rate.get(key, 0))
        else:
            if mode == "new":
                self.new_rate[server.label] = max(res.load.rate, self.new_rate.get(server.label, 0))
            base = self.noop_rate.get((server.workers, conc))
            res.ratio = res.load.rate / base if base else None
        self.results.append(res)
        self.progress("  " + _row(res))
        return res

    def run_noop(self, workers: int, concurrency=None):
        self.progress(f"no-op Flask app, gunicorn -w {workers} -k sync")
        server = Server(f"noop-w{workers}", "intake_bench:noop_app()", workers, self.env(), self.tmp,
                        pythonpath=HERE)
        try:
            for conc in concurrency or self.args.concurrency:
                self.measure(server, None, "stripe", "any", conc)
        finally:
            server.stop()

    def remeasure_noisy_noops(self):
        """The ratios hinge on the no-op baseline: measure a disturbed one again at the end and
        keep the less disturbed of the two."""
        noisy = [r for r in self.results if r.endpoint == "no-op" and r.others_pct > NOISY_PCT]
        for w in sorted({r.workers for r in noisy}, reverse=True):
            if not self.patient():
                return
            old = {r.conc: r for r in noisy if r.workers == w}
            self.progress("again, as it was disturbed by other processes:")
            self.run_noop(w, sorted(old))
            for conc, first in old.items():
                second = [r for r in self.results if r.endpoint == "no-op" and r.workers == w
                          and r.conc == conc and r is not first][-1]
                self.results.remove(second if second.others_pct >= first.others_pct else first)

    def finish(self):
        """Ratios to the no-op of the same workers and concurrency; results in table order."""
        base = {(r.workers, r.conc): r.load.rate for r in self.results if r.endpoint == "no-op"}
        for r in self.results:
            if r.endpoint != "no-op" and (r.workers, r.conc) in base:
                r.ratio = r.load.rate / base[(r.workers, r.conc)]
        order = {"-": 0, "sqlite": 1, "postgresql": 2}
        self.results.sort(key=lambda r: (order.get(r.db, 3), -r.workers, r.conc))

    def run_bridge(self, db, workers: int):
        a = self.args
        self.progress(f"bridge on {db.describe()}, gunicorn -w {workers} -k sync")
        config = None if a.no_config else "python:bridge.gunicorn_conf"
        server = Server(f"bridge-{db.kind}-w{workers}", a.app, workers, self.env(db.url), self.tmp,
                        pythonpath=a.pythonpath, config=config)
        other = None
        try:
            if a.ab_env:
                # The same app with other environment variables, measured alternately with the
                # first, cell by cell: both see the same load from the rest of the machine.
                tag = " [" + " ".join(f"{k}={v}" for k, v in a.ab_env.items()) + "]"
                other = Server(f"bridge-{db.kind}-w{workers}{tag}", a.app, workers, self.env(db.url, a.ab_env),
                               self.tmp, pythonpath=a.pythonpath, config=config)
            for conc in a.concurrency:
                for scenario in a.scenarios:
                    provider, mode = scenario.split("-")
                    for r in range(a.ab_rounds if other else 1):
                        # Alternate which variant goes first: neither always runs on the
                        # smaller table or right after the other's warm-up.
                        for srv in ((server, other) if r % 2 == 0 else (other, server)):
                            if srv is not None:
                                res = self.measure(srv, db, provider, mode, conc)
                                if srv is other:
                                    res.endpoint += tag
        finally:
            server.stop()
            if other:
                other.stop()


def db_upgrade(env: dict, tmp: Path):
    out = subprocess.run([str(BIN / "bridge"), "db", "upgrade"], env=env, cwd=tmp, capture_output=True,
                         text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"bridge db upgrade failed:\n{out.stdout}\n{out.stderr}")


# --- in-process breakdown -------------------------------------------------------------------

def breakdown(db_url: str, tmp: Path, payloads: Payloads, n: int = 1500) -> list[tuple[str, float, float]]:
    """Per-step cost of one Stripe delivery in this process: (step, wall us, CPU us), means over
    n calls. CPU includes kernel time (an fsync's, a socket's). The full-request variants are
    interleaved in chunks so drift (WAL growth, other work) hits them alike."""
    import logging

    if "prometheus_client" not in sys.modules:
        # The metrics as gunicorn's workers keep them: in multiprocess mode (mmap'ed files).
        (tmp / "metrics-breakdown").mkdir(exist_ok=True)
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(tmp / "metrics-breakdown"))
    from bridge.app import create_app
    from bridge.runtime import Runtime
    from bridge.settings import Settings

    settings = Settings(database_url=db_url, instance_dir=tmp / "instance",
                        stripe_webhook_secrets=(STRIPE_SECRET,), paddle_webhook_secrets=(PADDLE_SECRET,),
                        log_level="WARNING")
    rt = Runtime.build(settings)
    app = create_app(runtime=rt)
    client = app.test_client()
    rt_off = Runtime.build(settings.with_(metrics_enabled=False), engine=rt.engine)
    app_off = create_app(runtime=rt_off)
    client.off = app_off.test_client()
    client.wsgi_on, client.wsgi_off = app.wsgi_app, app_off.wsgi_app  # the webhook fast path
    noop = noop_app().test_client()
    bridge_log = logging.getLogger("bridge")
    devnull = open(os.devnull, "w")
    # The INFO variant's log lines go to /dev/null (a real deployment pays for a pipe write too).
    streams = [(h, h.setStream(devnull)) for h in bridge_log.handlers if isinstance(h, logging.StreamHandler)]
    try:
        return _breakdown(rt, client, noop, bridge_log, payloads, n)
    finally:
        for h, old in streams:
            h.setStream(old)
        bridge_log.setLevel("WARNING")
        devnull.close()
        rt.engine.dispose()


def _breakdown(rt, client, noop, bridge_log, payloads: Payloads, n: int) -> list[tuple[str, float, float]]:
    from bridge.ledger.inbox import Delivery
    from bridge.providers.stripe.signature import verify_stripe

    out = []

    def timed(label, fn, items):
        w0, c0 = time.perf_counter(), time.process_time()
        for it in items:
            fn(it)
        w1, c1 = time.perf_counter(), time.process_time()
        out.append((label, (w1 - w0) / len(items) * 1e6, (c1 - c0) / len(items) * 1e6))

    def interleaved(specs, rounds=6):
        acc = {label: [0.0, 0.0, 0] for label, *_ in specs}
        for r in range(rounds):
            # Alternate the order: neither variant is always the one measured first.
            for label, fn, items, level in (specs if r % 2 == 0 else specs[::-1]):
                chunk = items[r::rounds]
                bridge_log.setLevel(level)
                w0, c0 = time.perf_counter(), time.process_time()
                for it in chunk:
                    fn(it)
                a = acc[label]
                a[0] += time.perf_counter() - w0
                a[1] += time.process_time() - c0
                a[2] += len(chunk)
        bridge_log.setLevel("WARNING")
        for label, *_ in specs:
            w, c, k = acc[label]
            out.append((label, w / k * 1e6, c / k * 1e6))

    entries = payloads.new("stripe", n)
    now = time.time()
    timed("verify_stripe (header parse + HMAC-SHA256 + compare)",
          lambda e: verify_stripe(e[1], e[0], (STRIPE_SECRET,), now=now), entries)
    timed("json.loads of the body", lambda e: json.loads(e[1]), entries)
    docs = [json.loads(e[1]) for e in entries]
    hdrs = {"Content-Type": "application/json", "User-Agent": "Stripe/1.0", "Stripe-Signature": "t=1,v1=x"}
    deliveries = [Delivery("stripe", d["id"], d["type"], e[1], hdrs, datetime.now(timezone.utc))
                  for d, e in zip(docs, entries)]
    checkout = rt.engine.execution_options(isolation_level="AUTOCOMMIT") if rt.engine.dialect.name == \
        "postgresql" else rt.engine

    def _checkout(_):
        with checkout.connect():
            pass
    timed("pool checkout + return (PostgreSQL: includes the pre-ping SELECT 1)", _checkout, range(n))
    timed("Inbox.store, new event (event + job, commit)", lambda d: rt.inbox.store(d, rt.clock()), deliveries)
    timed("Inbox.store, duplicate", lambda d: rt.inbox.store(d, rt.clock()), deliveries)

    def post(client_, e):
        r = client_.post("/webhooks/stripe", data=e[1], headers={
            "Content-Type": "application/json", "Stripe-Signature": e[0], "User-Agent": "Stripe/1.0"})
        assert r.status_code == 200, r.status_code

    mode = "multiprocess files" if getattr(rt.metrics, "multiprocess_dir", None) else "in memory"
    timed(f"Metrics.intake: one counter + one histogram ({mode})",
          lambda _: rt.metrics.intake("stripe", "stored", 200, 0.004), range(n))
    def wsgi(app_, e):
        # The fast path alone, as gunicorn calls it (no test client): metrics on vs off.
        import io
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/webhooks/stripe", "CONTENT_TYPE": "application/json",
                   "CONTENT_LENGTH": str(len(e[1])), "HTTP_STRIPE_SIGNATURE": e[0], "HTTP_USER_AGENT": "Stripe/1.0",
                   "wsgi.input": io.BytesIO(e[1])}
        status = []
        app_(environ, lambda st, headers: status.append(st))
        assert status[0].startswith("200"), status

    fresh_a, fresh_b = payloads.new("stripe", n), payloads.new("stripe", n)
    interleaved([
        ("fast path WSGI call, new, metrics on", lambda e: wsgi(client.wsgi_on, e), fresh_a, "WARNING"),
        ("fast path WSGI call, new, BRIDGE_METRICS=off", lambda e: wsgi(client.wsgi_off, e), fresh_b, "WARNING"),
        ("fast path WSGI call, duplicate, metrics on", lambda e: wsgi(client.wsgi_on, e), entries, "WARNING"),
        ("fast path WSGI call, duplicate, BRIDGE_METRICS=off", lambda e: wsgi(client.wsgi_off, e), entries,
         "WARNING"),
    ], rounds=10)
    fresh_w, fresh_i, fresh_o = payloads.new("stripe", n), payloads.new("stripe", n), payloads.new("stripe", n)
    interleaved([
        ("bridge POST via Flask test client, new, log WARNING", lambda e: post(client, e), fresh_w, "WARNING"),
        ("bridge POST via Flask test client, new, log WARNING, BRIDGE_METRICS=off",
         lambda e: post(client.off, e), fresh_o, "WARNING"),
        ("bridge POST via Flask test client, new, log INFO (to /dev/null)", lambda e: post(client, e), fresh_i,
         "INFO"),
        ("bridge POST via Flask test client, duplicate, log WARNING", lambda e: post(client, e), entries,
         "WARNING"),
        ("no-op app POST via Flask test client (same body)", lambda e: post(noop, e), entries, "WARNING"),
    ])
    return out


# --- output ---------------------------------------------------------------------------------

_HEAD = (f"{'db':<10} {'w':>2} {'endpoint':<12} {'c':>3} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
         f"{'vs no-op':>8} {'srv CPU':>8} {'lg CPU':>7} {'db+kern':>7} {'busy':>5} {'others':>6} {'err':>4} "
         f"{'rows+':>7}")


def _row(r: Result) -> str:
    ratio = f"{r.ratio:.2f}" if r.ratio is not None else ("1.00" if r.endpoint == "no-op" else "-")
    err = r.load.errors + r.load.status_errors
    rows = "-" if r.rows_added is None else str(r.rows_added)
    if r.jobs_added is not None and r.jobs_added != r.rows_added:
        rows += f" (jobs {r.jobs_added})"
    line = (f"{r.db:<10} {r.workers:>2} {r.endpoint:<12} {r.conc:>3} {r.load.rate:>7.0f} "
            f"{r.load.p50_ms:>7.1f} {r.load.p99_ms:>7.1f} {ratio:>8} {r.srv_ms:>8.3f} {r.lg_ms:>7.3f} "
            f"{r.rest_ms:>7.3f} {r.busy_pct:>4.0f}% {r.others_pct:>5.0f}% {err:>4} {rows:>7}")
    return line + (f"  {r.note}" if r.note else "")


def _print_ab(bench: Bench) -> None:
    """--ab-env: per cell, the medians of both variants and their ratio (B over A)."""
    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2
    cells: dict = {}
    for r in bench.results:
        if r.endpoint == "no-op":
            continue
        base, _, tag = r.endpoint.partition(" [")
        cells.setdefault((r.db, r.workers, base, r.conc), {}).setdefault(bool(tag), []).append(r)
    tag = " ".join(f"{k}={v}" for k, v in bench.args.ab_env.items())
    print()
    print(f"A/B, medians of the alternating runs; B = {tag}:")
    print(f"  {'db':<10} {'w':>2} {'endpoint':<12} {'c':>3} {'A req/s':>8} {'B req/s':>8} {'B/A':>6} "
          f"{'A srv CPU':>9} {'B srv CPU':>9} {'B/A':>6}")
    for (db, w, endpoint, conc), v in cells.items():
        if True not in v or False not in v:
            continue
        ra, rb = median([r.load.rate for r in v[False]]), median([r.load.rate for r in v[True]])
        ca, cb = median([r.srv_ms for r in v[False]]), median([r.srv_ms for r in v[True]])
        print(f"  {db:<10} {w:>2} {endpoint:<12} {conc:>3} {ra:>8.0f} {rb:>8.0f} {rb / ra:>6.3f} "
              f"{ca:>9.3f} {cb:>9.3f} {cb / ca:>6.3f}")


def print_report(bench: Bench, sizes: dict, notes: list, brk: dict, started: float):
    a = bench.args
    print()
    print(f"Webhook intake benchmark - gunicorn -k sync --timeout 30 on 127.0.0.1, load generator: "
          f"{bench.load.name}, {os.cpu_count()} cores, {a.duration:g} s per run after {a.warmup:g} s warm-up, "
          f"bridge log level {a.bridge_log_level}")
    if a.app != "bridge.app:create_app()":
        print(f"  bridge app: {a.app} (a variant, not the Procfile's bridge.app:create_app())")
    for p, (lo, med, hi) in sizes.items():
        print(f"  {p} bodies: {lo}-{hi} bytes (median {med})")
    print()
    print(_HEAD)
    print("-" * len(_HEAD))
    last = None
    for r in bench.results:
        key = (r.db, r.workers)
        if last is not None and key != last:
            print()
        last = key
        print(_row(r))
    print()
    print("w: gunicorn workers; c: concurrent connections; p50/p99: latency measured by the load generator; "
          "vs no-op: req/s over the no-op Flask app's at the same w and c;\n"
          "srv CPU / lg CPU / db+kern: CPU ms per request of gunicorn / the load generator / PostgreSQL "
          "+ kernel threads (e.g. jbd2 doing SQLite's fsyncs);\n"
          f"busy: both cores together; others: CPU used by unrelated processes during the run "
          f"(> {NOISY_PCT:g}%: noisy); err: socket errors + non-2xx answers;\n"
          "rows+: events stored during the measured run (jobs shown if different): every request for "
          "'new' (plus up to c in flight), none for 'dup'.")
    if a.ab_env:
        _print_ab(bench)
    for note in notes:
        print("note: " + note)
    for db, rows in brk.items():
        print()
        print(f"In-process cost of one Stripe delivery, {db} (one process, no HTTP server, "
              f"means over 1500 calls; CPU includes kernel time):")
        print(f"  {'step':<72} {'wall us':>8} {'CPU us':>8}")
        for label, wall, cpu in rows:
            print(f"  {label:<72} {wall:>8.0f} {cpu:>8.0f}")
    print()
    print(f"total time {time.monotonic() - started:.0f} s")


def _parse_list(s: str, conv=str) -> list:
    return [conv(x.strip()) for x in s.split(",") if x.strip()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10, help="measured seconds per run [10]")
    p.add_argument("--warmup", type=float, default=2, help="warm-up seconds before each run [2]")
    p.add_argument("--concurrency", type=lambda s: _parse_list(s, int), default=[16, 64],
                   help="comma-separated concurrency levels [16,64]")
    p.add_argument("--db", type=_parse_list, default=["sqlite", "postgresql"],
                   help="databases: sqlite,postgresql [both; PostgreSQL skipped when unreachable]")
    p.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY") or 4),
                   help="gunicorn workers, as the Procfile's WEB_CONCURRENCY [4]")
    p.add_argument("--sqlite-workers", type=lambda s: _parse_list(s, int), default=None,
                   help="worker counts for SQLite [--workers and 2]")
    p.add_argument("--scenarios", type=_parse_list,
                   default=["stripe-new", "paddle-new", "stripe-dup", "paddle-dup"],
                   help="stripe-new,paddle-new,stripe-dup,paddle-dup [all]")
    p.add_argument("--repeat", type=int, default=1, help="measured runs per cell; the median is shown [1]")
    p.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG),
                   help=f"PostgreSQL to use (a schema is created and dropped) [{DEFAULT_PG}]")
    p.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    p.add_argument("--bridge-log-level", default="WARNING",
                   help="BRIDGE_LOG_LEVEL for the bridge [WARNING; INFO logs every delivery and costs CPU]")
    p.add_argument("--app", default="bridge.app:create_app()",
                   help="the bridge's WSGI app for gunicorn, to A/B a variant [bridge.app:create_app()]")
    p.add_argument("--pythonpath", default=None, help="gunicorn --pythonpath for --app")
    p.add_argument("--no-config", action="store_true",
                   help="start the bridge's gunicorn without the Procfile's -c python:bridge.gunicorn_conf")
    p.add_argument("--ab-env", action="append", default=[], metavar="KEY=VALUE",
                   help="also run the bridge with these variables (e.g. BRIDGE_METRICS=off), measured "
                        "alternately with the default, cell by cell")
    p.add_argument("--ab-rounds", type=int, default=3,
                   help="with --ab-env: alternations per cell (each gives one row per variant) [3]")
    p.add_argument("--dup-pool", type=int, default=5000, help="stored events re-delivered by dup runs [5000]")
    p.add_argument("--quiet-wait", type=float, default=30,
                   help="before each run wait up to this many seconds for other CPU use to drop [30]")
    p.add_argument("--retry-noisy", type=int, default=2,
                   help="measure a cell again (up to this many times) when other processes used more "
                        f"than {NOISY_PCT:g}%% of the CPU during it [2]")
    p.add_argument("--max-minutes", type=float, default=30,
                   help="after this long, stop waiting for quiet and stop re-measuring noisy cells [30]")
    p.add_argument("--quiet-threshold", type=float, default=10,
                   help="percent of all cores counted as quiet [10]")
    p.add_argument("--no-breakdown", action="store_true", help="skip the in-process cost breakdown")
    p.add_argument("--breakdown-only", action="store_true", help="only the in-process cost breakdown")
    p.add_argument("--tmpdir", default=None, help="parent of the temp dir (the SQLite file lives there)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, SQLite file)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    a = p.parse_args(argv)
    try:
        a.ab_env = dict(kv.split("=", 1) for kv in a.ab_env)
    except ValueError:
        p.error("--ab-env takes KEY=VALUE")
    for s in a.scenarios:
        if s not in ("stripe-new", "paddle-new", "stripe-dup", "paddle-dup"):
            p.error(f"unknown scenario {s}")
    if a.sqlite_workers is None:
        a.sqlite_workers = sorted({a.workers, 2}, reverse=True)
    if not (BIN / "gunicorn").exists():
        p.error(f"no gunicorn next to {sys.executable}: run with the project's venv python")

    started = time.monotonic()
    notes: list[str] = []
    if a.loadgen == "wrk" or (a.loadgen == "auto" and shutil.which("wrk")):
        if not shutil.which("wrk"):
            p.error("wrk is not installed (apt-get install wrk)")
        loadgen_cls = WrkLoad
    else:
        loadgen_cls = PythonLoad
        notes.append("wrk not found: the Python load generator shares the cores and the GIL; "
                     "its numbers are lower than wrk's and only comparable with each other")

    # Stop everything on Ctrl-C / SIGTERM too.
    def _on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, _on_signal)

    tmp = Path(tempfile.mkdtemp(prefix="intake-bench-", dir=a.tmpdir))
    load = loadgen_cls(tmp) if loadgen_cls is WrkLoad else loadgen_cls()
    bench = Bench(a, tmp, load)
    dbs: list = []
    brk: dict = {}
    loadavg = Path("/proc/loadavg").read_text().split()[:3]
    notes.append(f"load average before the run: {' '.join(loadavg)} (other work on the 2 cores skews results)")
    try:
        worker_counts = sorted(set(([a.workers] if "postgresql" in a.db else [])
                                   + (a.sqlite_workers if "sqlite" in a.db else [])), reverse=True)
        for w in ([] if a.breakdown_only else worker_counts):
            bench.run_noop(w)
        if "sqlite" in a.db:
            for i, w in enumerate(a.sqlite_workers):
                if i:
                    dbs.pop().drop()        # the previous file: each worker count gets a fresh one
                db = SqliteDb(tmp, f"sqlite-w{w}")
                dbs.append(db)
                db_upgrade(bench.env(db.url), tmp)
                if not a.breakdown_only:
                    bench.run_bridge(db, w)
            if not a.no_breakdown:
                bench.progress("in-process breakdown, SQLite")
                bench.wait_quiet()
                brk["SQLite (same file)"] = breakdown(db.url, tmp, bench.payloads)
        if "postgresql" in a.db:
            why = pg_reachable(a.pg_url)
            if why:
                notes.append(f"PostgreSQL skipped: {a.pg_url} not reachable ({why})")
            else:
                db = PostgresDb(a.pg_url)
                dbs.append(db)
                db_upgrade(bench.env(db.url), tmp)
                if not a.breakdown_only:
                    bench.run_bridge(db, a.workers)
                if not a.no_breakdown:
                    bench.progress("in-process breakdown, PostgreSQL")
                    bench.wait_quiet()
                    brk["PostgreSQL (same schema)"] = breakdown(db.url, tmp, bench.payloads)
        bench.remeasure_noisy_noops()
    except KeyboardInterrupt:
        notes.append("interrupted: partial results")
    except Exception as err:   # report what was measured, then the error
        import traceback
        traceback.print_exc()
        notes.append(f"stopped by an error ({type(err).__name__}: {err}): partial results")
    finally:
        for s in list(_LIVE):
            s.stop()
        load.close()
        for db in dbs:
            try:
                db.drop()
            except Exception as err:  # report, keep cleaning up
                print(f"could not drop {db.describe()}: {err}", file=sys.stderr)
        if a.keep:
            notes.append(f"temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    sizes = {}
    for prov in ("stripe", "paddle"):
        ls = sorted(len(b) for b in bench.payloads.bodies(prov, 200, int(time.time())))
        sizes[prov] = (ls[0], ls[len(ls) // 2], ls[-1])
    bench.finish()
    if a.json:
        Path(a.json).write_text(json.dumps([{
            "db": r.db, "workers": r.workers, "endpoint": r.endpoint, "concurrency": r.conc,
            "requests": r.load.requests, "seconds": r.load.seconds, "req_per_s": round(r.load.rate, 1),
            "p50_ms": r.load.p50_ms, "p90_ms": r.load.p90_ms, "p99_ms": r.load.p99_ms, "vs_noop": r.ratio,
            "server_cpu_ms_per_req": r.srv_ms, "loadgen_cpu_ms_per_req": r.lg_ms,
            "db_kernel_cpu_ms_per_req": r.rest_ms, "busy_pct": r.busy_pct, "others_pct": r.others_pct,
            "errors": r.load.errors, "non_2xx": r.load.status_errors, "rows_added": r.rows_added,
            "jobs_added": r.jobs_added, "note": r.note} for r in bench.results], indent=2))
    print_report(bench, sizes, notes, brk, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
