#!/usr/bin/env python3
"""Query times on PostgreSQL at size (issue 10): one payout's breakdown with ``--lines``
(10,000) lines, and a month's reconciliation against the provider's record with ``--rows``
(1,000,000) ledger entries in the database.

Rows are made by the database itself (``generate_series``, nothing random: every run builds
the same database) in a fresh schema ``bench_payq_<hex>`` (created and dropped unless
``--keep``): a year of payments, each with its order, its payment row and its sale and fee
entries, one in 50 refunded two days later; one payout per day itemizing the previous day's
sales and refunds, and a big payout holding ``--lines`` sales of its own. Three discrepancies
are planted in June (a movement the ledger lacks, a fee recorded differently, a sale in no
payout) and the month's comparison must find exactly those. Each query runs ``--repeat``
times (after one warm-up); the median and worst are printed. ``--explain`` prints
``EXPLAIN (ANALYZE, BUFFERS)`` of every statement of the month's comparison.

    .venv/bin/python bench/payout_query_bench.py --pg-url postgresql://postgres@127.0.0.1:5432/test
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, event, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bridge.ledger import payouts, provider_reconciliation, reconciliation, schema, sync_state  # noqa: E402
from bridge.settings import normalize_database_url  # noqa: E402

# :payments sales spread evenly over 2026 (g-th at 2026-01-01 + g * step), payout d (0-364,
# created 2026-01-02 + d days) holds the sales of day d and the refunds made that day.
FILL = """
CREATE TEMP TABLE bench_sales AS
SELECT g, TIMESTAMPTZ '2026-01-01 00:00Z' + g * (INTERVAL '1 second' * (31536000 / :payments)) AS at,
       (g - 1) * 365 / :payments AS day
FROM generate_series(1, :payments) g;
INSERT INTO orders (order_id, bundle, facts, source, status, customer_business, created_at, updated_at)
SELECT 'ord_' || g, false, '{}', 'api', CASE WHEN g % 50 = 0 THEN 'refunded' ELSE 'paid' END, false, at, at
FROM bench_sales ORDER BY g;
INSERT INTO payments (provider, order_pk, order_ref, amount, fee, currency, paid_at, charge_id, payment_intent_id,
                      captured, status, created_at, updated_at)
SELECT 'stripe', o.id, o.order_id, 4900, 172, 'USD', s.at, 'ch_' || s.g, 'pi_' || s.g, true, 'succeeded', s.at, s.at
FROM bench_sales s JOIN orders o ON o.order_id = 'ord_' || s.g ORDER BY s.g;
INSERT INTO ledger_entries (provider, kind, order_pk, payment_pk, amount, currency, occurred_at, provider_ref,
                            effect_key, created_at)
SELECT 'stripe', k.kind, p.order_pk, p.id, k.amount, 'USD', k.at, k.ref, k.kind || ':stripe:' || k.ref, k.at
FROM bench_sales s JOIN payments p ON p.provider = 'stripe' AND p.charge_id = 'ch_' || s.g
CROSS JOIN LATERAL (VALUES ('sale', 4900, 'ch_' || s.g, s.at), ('fee', -172, 'ch_' || s.g, s.at),
                           ('refund', -4900, 're_' || s.g, s.at + INTERVAL '2 days')) AS k(kind, amount, ref, at)
WHERE k.kind <> 'refund' OR (s.g % 50 = 0 AND s.day + 2 <= 364)
ORDER BY k.at, s.g;
INSERT INTO payouts (provider, payout_id, amount, currency, status, arrival_date, created, automatic, itemized, updated_at)
SELECT 'stripe', 'po_' || d, 0, 'USD', 'paid', NULL, TIMESTAMPTZ '2026-01-02 00:00Z' + d * INTERVAL '1 day', true, true,
       TIMESTAMPTZ '2027-01-01 00:00Z'
FROM generate_series(0, 364) d;
INSERT INTO payout_lines (payout_pk, provider_ref, kind, gross, fee, amount, currency, source_ref)
SELECT p.id, l.txn, l.kind, l.gross, l.fee, l.amount, 'USD', l.ref
FROM bench_sales s
CROSS JOIN LATERAL (VALUES ('txn_' || s.g, 'sale', 4900, 172, 4728, 'ch_' || s.g, s.day),
                           ('txn_re_' || s.g, 'refund', -4900, 0, -4900, 're_' || s.g, s.day + 2))
    AS l(txn, kind, gross, fee, amount, ref, day)
JOIN payouts p ON p.payout_id = 'po_' || l.day
WHERE l.kind = 'sale' OR (s.g % 50 = 0 AND s.day + 2 <= 364)
ORDER BY l.day, s.g;
INSERT INTO orders (order_id, bundle, facts, source, status, customer_business, created_at, updated_at)
SELECT 'ord_big_' || g, false, '{}', 'api', 'paid', false, TIMESTAMPTZ '2026-06-14 00:00Z', TIMESTAMPTZ '2026-06-14 00:00Z'
FROM generate_series(1, :lines) g;
INSERT INTO ledger_entries (provider, kind, order_pk, amount, currency, occurred_at, provider_ref, effect_key, created_at)
SELECT 'stripe', k.kind, o.id, k.amount, 'USD', TIMESTAMPTZ '2026-06-14 00:00Z', 'ch_big_' || g,
       k.kind || ':stripe:ch_big_' || g, TIMESTAMPTZ '2026-06-14 00:00Z'
FROM generate_series(1, :lines) g JOIN orders o ON o.order_id = 'ord_big_' || g
CROSS JOIN (VALUES ('sale', 4900), ('fee', -172)) AS k(kind, amount);
INSERT INTO payouts (provider, payout_id, amount, currency, status, created, automatic, itemized, updated_at)
VALUES ('stripe', 'po_big', 0, 'USD', 'paid', TIMESTAMPTZ '2026-06-15 00:00Z', true, true, TIMESTAMPTZ '2027-01-01 00:00Z');
INSERT INTO payout_lines (payout_pk, provider_ref, kind, gross, fee, amount, currency, source_ref)
SELECT (SELECT id FROM payouts WHERE payout_id = 'po_big'), 'txn_big_' || g, 'sale', 4900, 172, 4728, 'USD',
       'ch_big_' || g
FROM generate_series(1, :lines) g;
UPDATE payouts SET amount = s.net FROM (SELECT payout_pk, SUM(amount) net FROM payout_lines GROUP BY payout_pk) s
WHERE s.payout_pk = payouts.id;
INSERT INTO sync_status (provider, last_started_at, last_success_at, last_result)
VALUES ('stripe', TIMESTAMPTZ '2027-01-01 00:00Z', TIMESTAMPTZ '2027-01-01 00:00Z', '{}')
"""

# June's planted discrepancies. A payout of June gains a line the ledger lacks (so it is
# also unexplained by that line; its amount grows with it); one sale is paid out with another
# fee than the ledger's; one sale leaves its payout (which shrinks to match).
PLANT = """
INSERT INTO payout_lines (payout_pk, provider_ref, kind, gross, fee, amount, currency, source_ref)
SELECT id, 'txn_stray', 'sale', 1500, 74, 1426, 'USD', 'ch_stray' FROM payouts WHERE payout_id = 'po_160';
UPDATE payouts SET amount = amount + 1426 WHERE payout_id = 'po_160';
UPDATE payout_lines SET fee = 180, amount = 4720
WHERE provider_ref = (SELECT min(provider_ref) FROM payout_lines WHERE payout_pk = (SELECT id FROM payouts WHERE payout_id = 'po_161') AND kind = 'sale');
UPDATE payouts SET amount = amount - 8 WHERE payout_id = 'po_161';
DELETE FROM payout_lines
WHERE provider_ref = (SELECT min(provider_ref) FROM payout_lines WHERE payout_pk = (SELECT id FROM payouts WHERE payout_id = 'po_162') AND kind = 'sale');
UPDATE payouts SET amount = amount - 4728 WHERE payout_id = 'po_162'
"""
PLANTED = ["fee_mismatch", "missing_at_provider", "missing_in_ledger", "payout_unexplained"]


def timed(fn, repeat: int) -> tuple[float, float]:
    fn()
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs), max(runs)


def fill(engine, rows: int, lines: int) -> int:
    # Ledger rows: a sale and a fee per payment, a refund for one in 50, and the big payout's.
    payments = max((rows - 2 * lines) * 50 // 101, 365)
    with engine.begin() as conn:
        for sql in (FILL, PLANT):
            for stmt in sql.strip().split(";\n"):
                conn.execute(text(stmt), {"payments": payments, "lines": lines})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM ledger_entries")).scalar()


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--lines", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--statements", action="store_true", help="time each statement of the reconciliation")
    p.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE each statement of the reconciliation")
    p.add_argument("--keep", action="store_true", help="leave the schema in place (its name is printed)")
    p.add_argument("--reuse", metavar="SCHEMA", help="time against a schema kept by an earlier --keep run")
    args = p.parse_args()
    base = normalize_database_url(args.pg_url)
    name = args.reuse or f"bench_payq_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base)
    if not args.reuse:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
    engine = create_engine(base + ("&" if "?" in base else "?") + f"options=-csearch_path%3D{name}")
    try:
        print(f"schema {name}; {load()}")
        schema.upgrade(engine)
        t = time.perf_counter()
        if args.reuse:
            with engine.connect() as conn:
                count = conn.execute(text("SELECT count(*) FROM ledger_entries")).scalar()
        else:
            count = fill(engine, args.rows, args.lines)
            print(f"filled in {time.perf_counter() - t:.0f} s")
        with engine.connect() as conn:
            n_payouts, n_lines = conn.execute(text("SELECT (SELECT count(*) FROM payouts), "
                                                   "(SELECT count(*) FROM payout_lines)")).one()
            n_june = conn.execute(text("SELECT count(*) FROM payout_lines l JOIN payouts p ON p.id = l.payout_pk "
                                       "WHERE p.created >= '2026-06-01' AND p.created < '2026-07-01'")).scalar()
        print(f"{count:,} ledger rows, {n_payouts} payouts, {n_lines:,} payout lines ({n_june:,} in June's payouts)")

        def breakdown():
            with Session(engine) as s:
                d = payouts.payout_detail(s, "po_big")
                assert d is not None and len(d["lines"]) == args.lines and d["breakdown"]["unexplained"] == 0
                assert all(line["ledger"] and line["order_id"] for line in d["lines"])

        month = reconciliation.Period(datetime(2026, 6, 1, tzinfo=timezone.utc),
                                      datetime(2026, 7, 1, tzinfo=timezone.utc), "stripe")

        def month_rec():
            with Session(engine) as s:
                found = provider_reconciliation.discrepancies(s, month)
                assert sorted(d["kind"] for d in found) == PLANTED, found[:5]

        def month_answer():
            # Everything GET /api/v1/reconciliation computes for the month (its JSON).
            with Session(engine) as s:
                reconciliation.totals(s, month)
                reconciliation.discrepancies(s, month, datetime(2027, 1, 1, tzinfo=timezone.utc))
                provider_reconciliation.discrepancies(s, month)
                sync_state.freshness(s)

        med, worst = timed(breakdown, args.repeat)
        print(f"payout breakdown, {args.lines:,} lines (with every line's ledger link and order): "
              f"median {med * 1000:.0f} ms, worst {worst * 1000:.0f} ms; {load()}")
        if args.statements or args.explain:
            spent: list = []

            def _start(conn, cursor, statement, params, context, executemany):
                conn.info["t0"] = time.perf_counter()

            def _end(conn, cursor, statement, params, context, executemany):
                spent.append((time.perf_counter() - conn.info["t0"], statement, params))
            event.listen(engine, "before_cursor_execute", _start)
            event.listen(engine, "after_cursor_execute", _end)
            month_rec()
            event.remove(engine, "before_cursor_execute", _start)
            event.remove(engine, "after_cursor_execute", _end)
            with engine.connect() as conn:  # one transaction, as the reconciliation's (SET LOCAL)
                cur = conn.connection.dbapi_connection.cursor()
                for seconds, statement, params in spent:
                    print(f"  {seconds * 1000:6.0f} ms  {' '.join(statement.split())[:110]}")
                    if not args.explain:
                        continue
                    if statement.lstrip().upper().startswith(("SELECT", "WITH")):
                        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
                        print("    " + "\n    ".join(r[0] for r in cur.fetchall()))
                    else:
                        cur.execute(statement, params)
        med, worst = timed(month_rec, args.repeat)
        print(f"a month's reconciliation against the provider, {count:,} ledger rows: "
              f"median {med * 1000:.0f} ms, worst {worst * 1000:.0f} ms; {load()}")
        med, worst = timed(month_answer, args.repeat)
        print(f"the month's whole reconciliation answer (totals, all discrepancies, freshness): "
              f"median {med * 1000:.0f} ms, worst {worst * 1000:.0f} ms; {load()}")
    finally:
        engine.dispose()
        if not args.keep and not args.reuse:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
