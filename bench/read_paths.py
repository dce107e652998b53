#!/usr/bin/env python
"""The client's CPU for one small look-up, by the route it takes through SQLAlchemy.

The same read (the three items of an order, by the order's index) four ways, in one open
transaction, on SQLite and, when it answers, PostgreSQL:

- ``orm``: ``session.execute(select(OrderItem))``, objects loaded (what most look-ups did);
- ``session core``: ``session.execute`` of a select of two columns (the ORM's execution still);
- ``connection``: the same select on ``session.connection()`` (``bridge.ledger.reads.read``);
- ``driver``: the SQL string on the driver's own connection (``bridge.ledger.locks``).

    .venv/bin/python bench/read_paths.py               # SQLite, and PostgreSQL if reachable
    .venv/bin/python bench/read_paths.py --n 5000 --pg-url postgresql://postgres@127.0.0.1:5432/test

Prints microseconds of process CPU per look-up (the best of three rounds of ``--n``).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import bindparam, select, text  # noqa: E402

from bridge.ledger import schema  # noqa: E402
from bridge.ledger.db import make_engine, make_session_factory  # noqa: E402
from bridge.ledger.models import OrderItem  # noqa: E402
from bridge.settings import Settings  # noqa: E402

_ORM = select(OrderItem).where(OrderItem.order_pk == bindparam("o")).order_by(OrderItem.id)
_T = OrderItem.__table__
_CORE = select(_T.c.id, _T.c.item_id).where(_T.c.order_pk == bindparam("o")).order_by(_T.c.id)


def _fill(engine) -> None:
    with engine.begin() as c:
        c.execute(text("INSERT INTO orders (id, order_id, status, created_at, updated_at, source, facts, version, "
                       "bundle, customer_business) VALUES (1, 'ord_1', 'paid', '2026-01-01', '2026-01-01', 'api', "
                       "'{}', 1, false, false)"))
        for i in range(1, 4):
            c.execute(text("INSERT INTO order_items (id, order_pk, item_id, category, billing, amount, facts) "
                           "VALUES (:i, 1, :item, 'license', 'one_time', 100, '{}')"), {"i": i, "item": f"li_{i}"})


def _time(fn, n: int) -> float:
    best = float("inf")
    for _ in range(3):
        t = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, time.process_time() - t)
    return best / n * 1e6


def measure(url: str, n: int) -> dict[str, float]:
    engine = make_engine(Settings.from_env({"DATABASE_URL": url}))
    schema.upgrade(engine)
    _fill(engine)
    sessions = make_session_factory(engine)
    out = {}
    with sessions.begin() as s:
        conn = s.connection()
        driver = conn.connection.driver_connection
        sql = ("SELECT id, item_id FROM order_items WHERE order_pk = %s ORDER BY id" if engine.dialect.name ==
               "postgresql" else "SELECT id, item_id FROM order_items WHERE order_pk = ? ORDER BY id")
        routes = {
            "orm": lambda: list(s.execute(_ORM, {"o": 1}).scalars()),
            "session core": lambda: s.execute(_CORE, {"o": 1}).all(),
            "connection": lambda: conn.execute(_CORE, {"o": 1}).all(),
            "driver": lambda: driver.execute(sql, (1,)).fetchall(),
        }
        for name, fn in routes.items():
            assert len(fn()) == 3
            out[name] = _time(fn, n)
    engine.dispose()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = ap.parse_args(argv)
    targets = [("sqlite", f"sqlite:///{tempfile.mkdtemp()}/read_paths.sqlite3")]
    try:
        import psycopg
        schema_name = f"bench_read_paths_{int(time.time())}"
        with psycopg.connect(args.pg_url, autocommit=True, connect_timeout=3) as c:
            c.execute(f'CREATE SCHEMA "{schema_name}"')
        sep = "&" if "?" in args.pg_url else "?"
        targets.append(("postgresql", f"{args.pg_url}{sep}options=-csearch_path%3D{schema_name}"))
    except Exception as err:  # noqa: BLE001 - PostgreSQL is optional here
        schema_name = None
        print(f"PostgreSQL not measured: {type(err).__name__}")
    try:
        print(f"| database | {' | '.join(['orm', 'session core', 'connection', 'driver'])} |  (us of CPU per look-up)")
        for kind, url in targets:
            r = measure(url, args.n)
            print(f"| {kind} | " + " | ".join(f"{v:6.1f}" for v in r.values()) + " |")
    finally:
        if schema_name:
            import psycopg
            with psycopg.connect(args.pg_url, autocommit=True, connect_timeout=3) as c:
                c.execute(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE')
    return 0


if __name__ == "__main__":
    sys.exit(main())
