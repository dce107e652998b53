#!/usr/bin/env python3
"""``bridge sync`` benchmark: objects per second imported end to end from the fake providers
(listed over HTTP, stored in the inbox, applied by the worker), on SQLite and PostgreSQL, and
the time to import one year of a shop with 50,000 payments, extrapolated from the measured run
(or measured, with ``--payments 50000``).

For each database, provider and mode, a fresh database and a fresh fake holding ``--payments``
payments (two currencies, 10% refunded, 3 disputes) whose webhooks were never delivered:

- ``objects``: history older than the events window (onboarding, ``--since`` a year back):
  Stripe charges (fee expanded), refunds, disputes; Paddle transactions, adjustments.
- ``events``: the same history inside the events window: the Events list (Stripe then fetches
  each charge's fee: one API call per payment, at the rate limit set by ``--calls-per-second``).

Prints the documents listed, the seconds spent listing + storing and applying, and the rate
end to end; then the 50,000-payment year extrapolated from the measured documents per payment
and documents per second. The worker runs ``--threads`` loops in this process, each claiming
up to ``BRIDGE_WORKER_BATCH`` (8) jobs at a time, as ``bridge worker`` does.

    .venv/bin/python bench/sync_bench.py                                  # both dbs, ~5-10 min
    .venv/bin/python bench/sync_bench.py --db sqlite --payments 300 --providers stripe

PostgreSQL: ``--pg-url`` (default ``postgresql://postgres@127.0.0.1:5432/test``); a schema
``bench_sync_<pid>_<hex>`` is created and dropped. Only traffic to 127.0.0.1.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from bridge.fakes import FakePaddle, FakeStripe  # noqa: E402
from bridge.fakes.month import paddle_month, stripe_month  # noqa: E402
from bridge.ledger import schema  # noqa: E402
from bridge.ledger.models import Job  # noqa: E402
from bridge.runtime import Runtime  # noqa: E402
from bridge.services.sync import sync_provider  # noqa: E402
from bridge.settings import Settings, normalize_database_url  # noqa: E402
from bridge.worker.handlers import all_handlers  # noqa: E402
from bridge.worker.runner import Worker  # noqa: E402

DAY = 86400
YEAR_PAYMENTS = 50_000


def _pg_schema(base: str):
    name = f"bench_sync_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalize_database_url(base))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    sep = "&" if "?" in base else "?"
    return admin, name, normalize_database_url(base) + f"{sep}options=-csearch_path%3D{name}"


def _apply_all(rt: Runtime, threads: int) -> None:
    handlers = all_handlers(rt)
    stop = threading.Event()

    def idle() -> bool:
        with rt.reads() as s:
            return not s.scalar(select(func.count()).select_from(Job).where(
                Job.state.in_(("ready", "running")),
                Job.run_at < datetime.now(timezone.utc) + timedelta(seconds=5)))

    def loop(i: int) -> None:
        w = Worker(rt, handlers, worker_id=f"bench-{i}")
        while not stop.is_set():
            # Claims of several jobs, as ``bridge worker`` makes them (Worker.run_forever).
            if not w.run_once(limit=w.batch_size()):
                if idle():
                    return
                time.sleep(0.02)

    ts = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def run_one(db: str, url: str, provider: str, mode: str, payments: int, threads: int, cps: float,
            tmp: Path) -> dict:
    fake = (FakeStripe if provider == "stripe" else FakePaddle)().start()
    try:
        window = 30 if provider == "stripe" else 90
        span = min(27, window - 3) if mode == "events" else 300
        start = time.time() - (span + 1) * DAY - (0 if mode == "events" else window * DAY)
        gen = stripe_month if provider == "stripe" else paddle_month
        gen(fake, start=start, days=span, payments=payments, refunds=payments // 10, disputes=3, seed=5)
        fake.set_time(time.time())
        settings = Settings(database_url=url, instance_dir=tmp, stripe_api_key="sk_test_bench",
                            paddle_api_key="pdl_sdbx_apikey_bench", stripe_api_base=fake.url,
                            paddle_api_base=fake.url, stripe_calls_per_second=cps,
                            paddle_calls_per_second=cps, worker_threads=threads,
                            job_backoff_base_seconds=0.2, job_backoff_max_seconds=2.0,
                            worker_poll_seconds=0.05, log_level="WARNING")
        rt = Runtime.build(settings)
        since = datetime.fromtimestamp(start - DAY, timezone.utc) if mode == "objects" else None
        t0 = time.perf_counter()
        report = sync_provider(rt, provider, since=since)
        t1 = time.perf_counter()
        _apply_all(rt, threads)
        t2 = time.perf_counter()
        docs = sum(report.seen.values())
        rt.engine.dispose()
        return {"db": db, "provider": provider, "mode": mode, "payments": payments, "docs": docs,
                "list_store_s": t1 - t0, "apply_s": t2 - t1, "total_s": t2 - t0,
                "docs_per_s": docs / (t2 - t0), "stored_per_s": docs / (t1 - t0),
                "api_calls": len(fake.calls)}
    finally:
        fake.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default="sqlite,postgresql")
    p.add_argument("--providers", default="stripe,paddle")
    p.add_argument("--modes", default="objects,events")
    p.add_argument("--payments", type=int, default=1000)
    p.add_argument("--threads", type=int, default=0, help="worker loops (default: 1 SQLite, 2 PostgreSQL)")
    p.add_argument("--calls-per-second", type=float, default=20.0,
                   help="provider calls per second (the bridge's default for Stripe: 20)")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    rows = []
    for db in args.db.split(","):
        for provider in args.providers.split(","):
            for mode in args.modes.split(","):
                with tempfile.TemporaryDirectory() as tmp:
                    admin = name = None
                    if db == "sqlite":
                        url = f"sqlite:///{tmp}/bench.sqlite3"
                    else:
                        try:
                            admin, name, url = _pg_schema(args.pg_url)
                        except Exception as err:  # noqa: BLE001 - report and go on
                            print(f"postgresql unreachable ({type(err).__name__}); skipped")
                            break
                    engine = create_engine(url)
                    schema.upgrade(engine)
                    engine.dispose()
                    threads = args.threads or (1 if db == "sqlite" else 2)
                    try:
                        row = run_one(db, url, provider, mode, args.payments, threads,
                                      args.calls_per_second, Path(tmp))
                    finally:
                        if admin is not None:
                            with admin.begin() as conn:
                                conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
                            admin.dispose()
                    row["threads"] = threads
                    rows.append(row)
                    print(f"{db:10} {provider:6} {mode:7} {row['payments']:6} payments {row['docs']:6} docs  "
                          f"list+store {row['list_store_s']:7.1f} s ({row['stored_per_s']:6.0f}/s)  "
                          f"apply {row['apply_s']:7.1f} s  end to end {row['docs_per_s']:6.1f} docs/s  "
                          f"({threads} worker thread(s), {row['api_calls']} API calls)", flush=True)
    print()
    print(f"One year of {YEAR_PAYMENTS:,} payments, extrapolated (linear in documents) from the runs above:")
    for row in rows:
        if row["mode"] != "objects":
            continue
        docs = row["docs"] / row["payments"] * YEAR_PAYMENTS
        seconds = docs / row["docs_per_s"]
        print(f"  {row['db']:10} {row['provider']:6} ~{docs:,.0f} docs: {seconds / 60:6.1f} min "
              f"({row['threads']} worker thread(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
