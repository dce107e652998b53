"""How long the console takes to render its heaviest pages over a large ledger (PostgreSQL).

Bulk-inserts, with SQL (generate_series), a shop's two years: 200,000 orders with items and
payments, 1,000,000 ledger entries (sales, fees, refunds, chargebacks; Stripe and Paddle; USD,
EUR, JPY) spread over 24 months, 200,000 webhook events linked to their orders, 20,000 refund
requests with their provider refunds, and one subscription order with 5,000 ledger entries of
its own. Then renders, through the Flask app with a signed-in session (the whole request:
session check, queries, template), the month page, its chart, a typical order's page, the big
order's page and a search, and prints median and p95 milliseconds.

    .venv/bin/python bench/console_bench.py --pg-url postgresql://postgres@127.0.0.1:5432/test_console

A schema ``bench_console_<pid>`` is created (migrated with ``bridge db upgrade``'s code) and
dropped at the end (``--keep`` keeps it).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from bridge.ledger import schema  # noqa: E402
from bridge.settings import Settings, normalize_database_url  # noqa: E402

ORDERS = 200_000
ENTRIES = 1_000_000
BIG = 5_000

SEED_SQL = [
    # Orders: 2 years from 2025-01-01, customers reused (5 orders each).
    f"""INSERT INTO orders (order_id, policy, currency, bundle, customer_id, customer_email, customer_country,
        customer_business, facts, source, status, created_at, updated_at)
    SELECT 'ord_' || g, 'software-mor', (ARRAY['USD','EUR','JPY'])[1 + g % 3], false, 'cus_' || (g / 5),
           'buyer' || (g / 5) || '@example.com', 'US', false, '{{}}'::jsonb, 'api', 'paid',
           timestamptz '2025-01-01 00:00:00+00' + (g * interval '1 second' * 315),
           timestamptz '2025-01-01 00:00:00+00' + (g * interval '1 second' * 315)
    FROM generate_series(1, {ORDERS}) g""",
    """INSERT INTO order_items (order_pk, item_id, sku, category, billing, amount, price_id, facts)
    SELECT id, 'li_1', 'pro-license', 'license', 'one_time', 4900, 'pri_lic', '{}'::jsonb FROM orders""",
    """INSERT INTO payments (provider, order_pk, order_ref, customer_ref, amount, tax, fee, currency, paid_at, purchase,
        charge_id, transaction_id, payment_intent_id, captured, status, created_at, updated_at)
    SELECT CASE WHEN id % 2 = 0 THEN 'stripe' ELSE 'paddle' END, id, order_id, customer_id,
           CASE currency WHEN 'JPY' THEN 4900 ELSE 4900 END, 0, 172, currency, created_at, 'initial',
           CASE WHEN id % 2 = 0 THEN 'ch_' || id END, CASE WHEN id % 2 = 1 THEN 'txn_' || id END,
           CASE WHEN id % 2 = 0 THEN 'pi_' || id END, true, 'succeeded', created_at, created_at
    FROM orders""",
    # The ledger: each row belongs to an order and its payment; kinds in realistic shares.
    f"""INSERT INTO ledger_entries (provider, kind, order_pk, payment_pk, amount, currency, occurred_at, provider_ref,
        effect_key, created_at)
    SELECT p.provider, k.kind, p.order_pk, p.id,
           CASE k.kind WHEN 'sale' THEN 4900 WHEN 'fee' THEN -172 WHEN 'refund' THEN -4900
                       WHEN 'chargeback' THEN -4900 ELSE -1500 END,
           p.currency, p.paid_at + ((g % 7) * interval '1 hour'), coalesce(p.charge_id, p.transaction_id),
           'bench:' || g, p.paid_at
    FROM generate_series(1, {ENTRIES}) g
    JOIN payments p ON p.id = 1 + (g % {ORDERS})
    CROSS JOIN LATERAL (SELECT CASE WHEN g % 100 < 45 THEN 'sale' WHEN g % 100 < 90 THEN 'fee'
                                    WHEN g % 100 < 97 THEN 'refund' WHEN g % 100 < 99 THEN 'chargeback'
                                    ELSE 'chargeback_fee' END AS kind) k""",
    # Webhook events, one per order, linked to it.
    """INSERT INTO webhook_events (provider, provider_event_id, event_type, body, headers, received_at, occurred_at,
        status, processed_at)
    SELECT provider, 'evt_' || id, CASE provider WHEN 'stripe' THEN 'charge.succeeded' ELSE 'transaction.completed' END,
           convert_to('{"id": "evt_' || id || '", "type": "charge.succeeded", "data": {"object": {}}}', 'UTF8'),
           '{"Content-Type": "application/json"}'::jsonb, paid_at, paid_at, 'processed', paid_at
    FROM payments""",
    """INSERT INTO event_orders (event_pk, order_pk)
    SELECT e.id, o.id FROM webhook_events e JOIN orders o ON o.order_id = 'ord_' || substr(e.provider_event_id, 5)""",
    # Refund requests with their (succeeded) provider refunds, every 10th order.
    """INSERT INTO refund_requests (id, order_pk, status, reason, items, requested_at, facts, item_facts, decision,
        refund_amount, fee_deducted, currency, policy_id, policy_version, created_at, updated_at)
    SELECT 'rr_bench_' || id, id, 'refunded', 'not_satisfied', '["li_1"]'::jsonb, created_at + interval '3 days',
           '{}'::jsonb, '{}'::jsonb,
           '{"outcome": "approved", "refund_amount": 4728, "fee_deducted": 172, "clauses": [{"section": "3",
             "title": "Refund eligibility", "text": "Within 30 days."}], "explanation": "Approved.", "items": []}'::jsonb,
           4728, 172, currency, 'software-mor', '2026-03-06', created_at + interval '3 days', created_at + interval '3 days'
    FROM orders WHERE id % 10 = 0""",
    """INSERT INTO refunds (provider, provider_refund_id, payment_pk, refund_request_id, amount, currency, status,
        status_at, succeeded_at, submitted_at, items, created_at, updated_at)
    SELECT p.provider, 're_' || p.id, p.id, rr.id, 4728, p.currency, 'succeeded', rr.created_at, rr.created_at,
           rr.created_at, '[]'::jsonb, rr.created_at, rr.created_at
    FROM refund_requests rr JOIN payments p ON p.order_pk = rr.order_pk""",
    # One subscription order with years of renewals: 5,000 ledger entries of its own.
    """INSERT INTO orders (order_id, policy, currency, bundle, customer_id, customer_email, facts, source, status,
        created_at, updated_at, customer_business)
    VALUES ('ord_big', 'software-mor', 'USD', false, 'cus_big', 'big@example.com', '{}'::jsonb, 'api', 'paid',
            timestamptz '2025-01-01 00:00:00+00', timestamptz '2025-01-01 00:00:00+00', false)""",
    """INSERT INTO payments (provider, order_pk, order_ref, amount, tax, fee, currency, paid_at, purchase, charge_id,
        captured, status, created_at, updated_at)
    SELECT 'stripe', (SELECT id FROM orders WHERE order_id = 'ord_big'), 'ord_big', 990, 0, 59, 'USD',
           timestamptz '2025-01-01 00:00:00+00' + g * interval '3 hours', 'renewal', 'ch_big_' || g, true, 'succeeded',
           timestamptz '2025-01-01 00:00:00+00' + g * interval '3 hours',
           timestamptz '2025-01-01 00:00:00+00' + g * interval '3 hours'
    FROM generate_series(1, 2500) g""",
    f"""INSERT INTO ledger_entries (provider, kind, order_pk, payment_pk, amount, currency, occurred_at, provider_ref,
        effect_key, created_at)
    SELECT 'stripe', CASE WHEN g % 2 = 0 THEN 'sale' ELSE 'fee' END, p.order_pk, p.id,
           CASE WHEN g % 2 = 0 THEN 990 ELSE -59 END, 'USD', p.paid_at, p.charge_id, 'bench:big:' || g, p.paid_at
    FROM generate_series(1, {BIG}) g JOIN payments p ON p.charge_id = 'ch_big_' || ((g + 1) / 2)""",
    "ANALYZE",
]


def timed(client, path: str, n: int) -> tuple[float, float, int]:
    times = []
    size = 0
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, (path, r.status_code, r.text[:500])
        size = len(r.data)
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)], size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pg-url", default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--keep", action="store_true", help="keep the seeded schema (its name is printed)")
    ap.add_argument("--schema", help="reuse a schema a --keep run seeded (kept afterwards)")
    args = ap.parse_args()

    base = normalize_database_url(args.pg_url)
    name = args.schema or f"bench_console_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base)
    if not args.schema:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
    url = base + ("&" if "?" in base else "?") + f"options=-csearch_path%3D{name}"
    try:
        engine = create_engine(url)
        schema.upgrade(engine)  # also brings a reused schema to the current migrations
        t0 = time.perf_counter()
        if not args.schema:
            with engine.begin() as conn:
                for sql in SEED_SQL:
                    conn.execute(text(sql))
        with engine.connect() as conn:
            counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                      for t in ("orders", "payments", "ledger_entries", "webhook_events", "refund_requests", "refunds")}
        print(f"schema {name}, seeded in {time.perf_counter() - t0:.1f} s: "
              + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        engine.dispose()

        from bridge.app import create_app
        from bridge.ledger.tokens import create_token
        from bridge.runtime import Runtime
        rt = Runtime.build(Settings(database_url=url, instance_dir=Path(tempfile.mkdtemp()), log_level="WARNING"))
        with rt.sessions.begin() as s:
            _, tok = create_token(s, "bench", ["admin"], rt.clock())
        client = create_app(runtime=rt).test_client()
        page = client.get("/console/sign-in").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        assert client.post("/console/sign-in", data={"token": tok, "csrf_token": csrf}).status_code == 303
        with rt.reads() as s:
            month_rows = s.execute(text("SELECT count(*) FROM ledger_entries WHERE occurred_at >= '2026-03-01' "
                                        "AND occurred_at < '2026-04-01'")).scalar_one()
        print(f"March 2026 holds {month_rows:,} ledger entries; ord_big {BIG:,}; ord_100000 {ENTRIES // ORDERS}")
        print(f"{'page':<44} {'median ms':>10} {'p95 ms':>8} {'bytes':>9}")
        for label, path in (("month (totals, by day, discrepancies)", "/console/month?month=2026-03"),
                            ("month chart (SVG, USD)", "/console/month/chart.svg?month=2026-03&currency=USD"),
                            ("month CSV (ledger lines)", "/console/month.csv?month=2026-03"),
                            ("order, typical (ord_100000)", "/console/orders/ord_100000"),
                            ("order, 5,000 ledger entries (ord_big)", "/console/orders/ord_big"),
                            ("  the same, whole story (?all=1)", "/console/orders/ord_big?all=1"),
                            ("search by e-mail", "/console/search?q=buyer20000@example.com"),
                            ("search by charge id", "/console/search?q=ch_100000"),
                            ("review queue (empty)", "/console/review"),
                            ("failed work (empty)", "/console/failed")):
            n = max(3, args.repeat // 3) if "CSV" in label or "whole" in label else args.repeat
            med, p95, size = timed(client, path, n)
            print(f"{label:<44} {med:>10.1f} {p95:>8.1f} {size:>9,}")
        rt.engine.dispose()
    finally:
        if not (args.keep or args.schema):
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
