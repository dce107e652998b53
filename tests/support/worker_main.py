"""A ``bridge worker`` whose handlers log when each job starts and ends (for T7's and T16's
overlap checks) and take a little time, so that a SIGKILL lands mid-job. Test-only.

This module owns the job log: ``main`` writes it, ``read_runs`` parses it. One line per
event, ``KIND JOB_ID PID:TID TIMESTAMP`` with KIND ``start``, ``end`` or ``commit``; the
worker runs ``T7_THREADS`` loops (default 1) like ``bridge worker --threads``, and touches
``T7_READY_DIR/PID`` once it is about to start them.
"""
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

from sqlalchemy import event

from bridge.logs import configure_logging
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.worker.handlers import all_handlers
from bridge.worker.pool import run_workers


def main():
    log_path = os.environ["T7_JOB_LOG"]
    delay = float(os.environ.get("T7_JOB_DELAY", "0.01"))
    threads = int(os.environ.get("T7_THREADS", "1"))
    # One write(2) per line on an O_APPEND descriptor: lines from this process's threads and
    # from the other worker processes never interleave, and a SIGKILL loses whole lines only.
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    pid = os.getpid()

    def write(kind, job_id):
        # The thread tells apart two runs of one job inside one process.
        os.write(fd, f"{kind} {job_id} {pid}:{threading.get_native_id()} {time.time():.6f}\n".encode())

    def wrap(handler):
        def run(rt, job, session):
            write("start", job.id)
            # "commit" is written only if the runner's transaction (the job's effects and its
            # fenced completion) really committed; a run whose lease was lost rolls back. The
            # hook fires for savepoints too (a batch runs each job in one) and for every later
            # transaction of the session (a batch may take several): only this run's root counts.
            root = session.get_transaction()

            def committed(s):
                if s.get_transaction() is root and not s.in_nested_transaction():
                    write("commit", job.id)
            event.listen(session, "after_commit", committed)
            handler(rt, job, session)
            time.sleep(delay)
            session.flush()
            # Logged before commit: "end" means the handler finished, commit may still be fenced.
            write("end", job.id)
        return run

    rt = Runtime.build(Settings.from_env())
    configure_logging("WARNING")
    handlers = {k: wrap(h) for k, h in all_handlers(rt).items()}
    if os.environ.get("T7_READY_DIR"):
        # Start-up (imports, engine, policies) is done: a test may now release its jobs at once.
        Path(os.environ["T7_READY_DIR"], str(pid)).touch()
    # No signal handlers: the tests' SIGTERM (and SIGKILL) ends the process where it stands.
    return run_workers(rt, handlers, threads, threading.Event())


def read_runs(path: Path) -> dict:
    """The runs of each job in the log: ``{job_id: [{"who", "start", "end", "commit"}]}``,
    ``who`` being ``PID:TID``; ``end`` is None for a run cut off before its handler returned."""
    runs = defaultdict(list)
    for line in Path(path).read_text().splitlines():
        kind, job_id, who, ts = line.split()
        if kind == "start":
            runs[job_id].append({"who": who, "start": float(ts), "end": None, "commit": False})
            continue
        for run in reversed(runs[job_id]):
            if run["who"] == who and (run["end"] is None or kind == "commit"):
                if kind == "end":
                    run["end"] = float(ts)
                else:
                    run["commit"] = True
                break
    return runs


def check_overlaps(runs: dict, lease: float, where: str = "") -> int:
    """T7/T16's rule: two runs of one job overlap only once the first one's lease (extended by
    heartbeats, never shortened) could have run out, and then fencing kept that first run from
    committing. Returns how many such stale runs were fenced."""
    stale = 0
    for job_id, rs in runs.items():
        rs.sort(key=lambda r: r["start"])
        for prev, nxt in zip(rs, rs[1:]):
            if prev["end"] is not None and nxt["start"] >= prev["end"]:
                continue  # one after the other (a retry): not a concurrent claim
            assert nxt["start"] >= prev["start"] + lease * 0.9, f"job {job_id} claimed twice within its lease {rs} {where}"
            assert not prev["commit"], f"job {job_id}: a run whose lease expired committed {rs} {where}"
            stale += 1
    return stale


if __name__ == "__main__":
    sys.exit(main())
