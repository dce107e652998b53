#!/usr/bin/env python3
"""Query times on PostgreSQL at size (issue 10): one payout's breakdown with ``--lines``
(10,000) lines, and a month's reconciliation against the provider's record with ``--rows``
(1,000,000) ledger entries in the database.

Rows are made by the database itself (``generate_series``) in a fresh schema
``bench_payq_<hex>`` (created and dropped): sales and fees of ``rows/2`` payments spread over a
year, one payout per day itemizing that day's sales, the big payout holding ``--lines`` of
them. Then each query runs ``--repeat`` times (after one warm-up) and the median and worst are
printed, with ``EXPLAIN`` of the breakdown's line query.

    .venv/bin/python bench/payout_query_bench.py --pg-url postgresql://postgres@127.0.0.1:5432/test
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bridge.ledger import payouts, provider_reconciliation, reconciliation, schema  # noqa: E402
from bridge.settings import normalize_database_url  # noqa: E402

FILL = """
INSERT INTO ledger_entries (provider, kind, amount, currency, occurred_at, provider_ref, effect_key, created_at)
SELECT 'stripe', k.kind, CASE k.kind WHEN 'sale' THEN 4900 ELSE -172 END, 'USD',
       TIMESTAMPTZ '2026-01-01' + (g * INTERVAL '1 second' * (31536000 / :payments)),
       'ch_' || g, k.kind || ':stripe:ch_' || g, now()
FROM generate_series(1, :payments) g CROSS JOIN (VALUES ('sale'), ('fee')) AS k(kind);
INSERT INTO payouts (provider, payout_id, amount, currency, status, arrival_date, created, automatic, itemized, updated_at)
SELECT 'stripe', 'po_' || d, 0, 'USD', 'paid', NULL, TIMESTAMPTZ '2026-01-02' + d * INTERVAL '1 day', true, true, now()
FROM generate_series(0, 364) d;
INSERT INTO payout_lines (payout_pk, provider_ref, kind, gross, fee, amount, currency, source_ref)
SELECT p.id, 'txn_' || g, 'sale', 4900, 172, 4728, 'USD', 'ch_' || g
FROM generate_series(1, :payments) g
JOIN payouts p ON p.payout_id = 'po_' || ((g - 1) * 365 / :payments);
UPDATE payouts SET amount = s.net FROM (SELECT payout_pk, SUM(amount) net FROM payout_lines GROUP BY payout_pk) s
WHERE s.payout_pk = payouts.id;
"""


def timed(fn, repeat: int) -> tuple[float, float]:
    fn()
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs), max(runs)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--lines", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--statements", action="store_true", help="time each statement of the reconciliation")
    args = p.parse_args()
    base = normalize_database_url(args.pg_url)
    name = f"bench_payq_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    engine = create_engine(base + ("&" if "?" in base else "?") + f"options=-csearch_path%3D{name}")
    try:
        schema.upgrade(engine)
        payments = args.rows // 2
        t = time.perf_counter()
        with engine.begin() as conn:
            for stmt in FILL.strip().split(";\n"):
                conn.execute(text(stmt), {"payments": payments})
            # The big payout: --lines lines of its own (sales of payments beyond the others).
            conn.execute(text("""
                INSERT INTO payouts (provider, payout_id, amount, currency, status, created, automatic, itemized, updated_at)
                VALUES ('stripe', 'po_big', :n * 4728, 'USD', 'paid', TIMESTAMPTZ '2026-06-15', true, true, now())"""),
                {"n": args.lines})
            conn.execute(text("""
                INSERT INTO ledger_entries (provider, kind, amount, currency, occurred_at, provider_ref, effect_key, created_at)
                SELECT 'stripe', k.kind, CASE k.kind WHEN 'sale' THEN 4900 ELSE -172 END, 'USD',
                       TIMESTAMPTZ '2026-06-14', 'ch_big_' || g, k.kind || ':stripe:ch_big_' || g, now()
                FROM generate_series(1, :n) g CROSS JOIN (VALUES ('sale'), ('fee')) AS k(kind)"""), {"n": args.lines})
            conn.execute(text("""
                INSERT INTO payout_lines (payout_pk, provider_ref, kind, gross, fee, amount, currency, source_ref)
                SELECT (SELECT id FROM payouts WHERE payout_id = 'po_big'), 'txn_big_' || g, 'sale', 4900, 172, 4728,
                       'USD', 'ch_big_' || g FROM generate_series(1, :n) g"""), {"n": args.lines})
            conn.execute(text("ANALYZE"))
            count = conn.execute(text("SELECT count(*) FROM ledger_entries")).scalar()
        print(f"filled {count:,} ledger rows, 366 payouts, {payments + args.lines:,} payout lines "
              f"in {time.perf_counter() - t:.0f} s")

        def breakdown():
            with Session(engine) as s:
                d = payouts.payout_detail(s, "po_big")
                assert d is not None and len(d["lines"]) == args.lines and d["breakdown"]["unexplained"] == 0

        month = reconciliation.Period(datetime(2026, 6, 1, tzinfo=timezone.utc),
                                      datetime(2026, 7, 1, tzinfo=timezone.utc), "stripe")

        def month_rec():
            with Session(engine) as s:
                found = provider_reconciliation.discrepancies(s, month)
                assert not found, found[:3]

        med, worst = timed(breakdown, args.repeat)
        print(f"payout breakdown, {args.lines:,} lines (with every line's ledger link): "
              f"median {med * 1000:.0f} ms, worst {worst * 1000:.0f} ms")
        if args.statements:
            from sqlalchemy import event
            spent: list = []

            @event.listens_for(engine, "before_cursor_execute")
            def _start(conn, cursor, statement, params, context, executemany):
                conn.info["t0"] = time.perf_counter()

            @event.listens_for(engine, "after_cursor_execute")
            def _end(conn, cursor, statement, params, context, executemany):
                spent.append((time.perf_counter() - conn.info["t0"], " ".join(statement.split())[:110]))
            month_rec()
            for seconds, statement in spent:
                print(f"  {seconds * 1000:6.0f} ms  {statement}")
            event.remove(engine, "before_cursor_execute", _start)
            event.remove(engine, "after_cursor_execute", _end)
        med, worst = timed(month_rec, args.repeat)
        print(f"a month's reconciliation against the provider, {count:,} ledger rows: "
              f"median {med * 1000:.0f} ms, worst {worst * 1000:.0f} ms")
        with engine.connect() as conn:
            plan = conn.execute(text("""EXPLAIN SELECT l.id, EXISTS (SELECT 1 FROM ledger_entries e
                WHERE e.provider = 'stripe' AND e.provider_ref = l.source_ref) FROM payout_lines l
                WHERE l.payout_pk = (SELECT id FROM payouts WHERE payout_id = 'po_big')""")).scalars().all()
        print("plan of the line query:\n  " + "\n  ".join(plan))
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
