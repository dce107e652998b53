#!/usr/bin/env python
"""The worker's cost per event in CPU instructions, counted by valgrind (callgrind): a figure
that does not move with the machine's speed or with whatever else runs on it.

On this shared 2-core machine a timed figure moves by a quarter within an hour (the speed probe
of worker_bench.py reads 120 to 190 ms), so a change worth 5% cannot be seen in events/s or in
CPU ms per event. callgrind counts the instructions the worker's process executes instead, the
same for the same work whatever the machine is doing (two runs can run side by side).

It drains, in one process, the events of worker_bench.py's mix (same generator, same seed),
stored through the inbox, with claims of 8 as ``bridge worker`` makes them: at two sizes, so
that start-up (imports, schema, storing the events) cancels out:

    instructions per event = (instructions at N2 - instructions at N1) / (N2 - N1)

Only the worker's own process is counted (PostgreSQL's backends are not). Under valgrind Python
runs about 30 times slower: the batch time budget is lifted in the measured process, so claims
are applied as on a machine of normal speed, not cut short.

    .venv/bin/python bench/worker_instructions.py                       # both databases, N 200 and 400
    .venv/bin/python bench/worker_instructions.py --db sqlite --sizes 300,600
    PYTHONPATH=/path/to/other/checkout .venv/bin/python /path/to/other/checkout/bench/worker_instructions.py

Each run takes one to three minutes (the runs go two at a time, one per core).
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import worker_bench as wb  # noqa: E402 - bench/worker_bench.py: the mix, the databases

_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def drain(db_kind: str, n: int, pg_url: str) -> None:
    """The measured process: store the mix, then drain it in claims of 8 (no time budget; the
    default lease of 60 s outlasts a claim even under valgrind, so no lease is renewed)."""
    from bridge.logs import configure_logging
    from bridge.worker import batch
    from bridge.worker.handlers import all_handlers
    from bridge.worker.runner import Worker
    # A claim ends when its jobs do, as on a machine 30 times faster (see the docstring).
    batch.BUDGET_SECONDS = dict.fromkeys(("sqlite", "postgresql"), 3600.0)
    events = wb.build_events(n, 13, 40)
    db = wb.SqliteDb(Path(tempfile.mkdtemp()), "instructions") if db_kind == "sqlite" else \
        wb.PostgresDb(pg_url, "instructions")
    try:
        rt, _ = wb.prepare(db, events)
        configure_logging("WARNING")
        worker = Worker(rt, all_handlers(rt))
        worker.drain(max_seconds=24 * 3600, limit=worker.batch_size())
        assert wb.open_jobs(rt.engine) == 0, "the drain left jobs"
        rt.engine.dispose()
    finally:
        db.drop()


def count(db_kind: str, n: int, pg_url: str) -> int:
    """Instructions of one whole run of ``drain`` under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out",
                              sys.executable, __file__, "--child", db_kind, str(n), "--pg-url", pg_url],
                             capture_output=True, text=True)
    found = _COLLECTED.findall(out.stderr)
    if out.returncode != 0 or not found:
        raise SystemExit(f"{db_kind} n={n}: the run failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return int(found[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--sizes", default="200,400", help="N1,N2 events")
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--child", nargs=2, metavar=("DB", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        drain(args.child[0], int(args.child[1]), args.pg_url)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    n1, n2 = (int(x) for x in args.sizes.split(","))
    dbs = [d for d in args.db.split(",") if d]
    if "postgresql" in dbs and not wb.pg_reachable(args.pg_url):
        print(f"PostgreSQL skipped: {args.pg_url} does not answer")
        dbs.remove("postgresql")
    import bridge
    print(f"bridge from {Path(bridge.__file__).parent}; mix of worker_bench.py, seed 13; sizes {n1} and {n2}")
    runs = [(d, n) for d in dbs for n in (n1, n2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        totals = dict(zip(runs, pool.map(lambda r: count(r[0], r[1], args.pg_url), runs)))
    print("| db | instructions at N1 | at N2 | per event (millions) |")
    print("|---|---:|---:|---:|")
    for d in dbs:
        per = (totals[(d, n2)] - totals[(d, n1)]) / (n2 - n1)
        print(f"| {d} | {totals[(d, n1)]:,} | {totals[(d, n2)]:,} | {per / 1e6:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
