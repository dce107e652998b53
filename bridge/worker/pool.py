"""Several worker loops in one process (``bridge worker --threads N``).

This module owns starting N ``Worker`` loops over the process's one ``Runtime`` and stopping
them together. Each loop is a plain ``Worker`` with its own worker id (``host:pid:thread``)
and its own heartbeat thread; the queue's leases and fencing tokens already make loops in one
process as safe as loops in separate processes, so nothing else is shared but the engine's
connection pool and the per-process provider clients (thread-safe, rate-limited per process).

Connections: a loop holds at most one pooled connection at a time (its claim, or its job's
session; handlers open their own sessions before touching the job's), and its heartbeat one
more for a moment, so N loops need up to 2N. PostgreSQL's pool (``bridge/ledger/db.py``) is
sized from ``worker_threads``; on SQLite the pool is SQLAlchemy's default (5 + 10) and
writers queue on ``BEGIN IMMEDIATE`` anyway, so more threads there add waiting, not work.
"""
from __future__ import annotations

import logging
import threading
from typing import Mapping

from bridge.runtime import Runtime
from bridge.worker.runner import Handler, Worker

log = logging.getLogger("bridge.worker")


def run_workers(rt: Runtime, handlers: Mapping[str, Handler], threads: int,
                stop: threading.Event) -> int:
    """Run ``threads`` worker loops until ``stop`` is set, then wait for each to finish its
    current job. Call from the main thread (signal handlers run there and set ``stop``).

    Returns 0, or 1 if a loop died of an unexpected error: the other loops are stopped too,
    so the process exits and its supervisor restarts it, as it would a single-loop worker,
    instead of running on short-handed without anyone noticing.
    """
    if threads < 1:
        raise ValueError("a worker needs at least one thread")
    failed = threading.Event()

    def loop() -> None:
        try:
            # Built here, not in the caller: Worker's default id names the thread it is
            # built on, and every loop must claim under an id of its own.
            Worker(rt, handlers).run_forever(stop)
        except BaseException:
            log.exception("worker loop %s died; stopping the other loops", threading.current_thread().name)
            failed.set()
            stop.set()

    loops = [threading.Thread(target=loop, name=f"bridge-worker-{i}", daemon=True) for i in range(threads)]
    for t in loops:
        t.start()
    stop.wait()  # interruptible: the SIGTERM/SIGINT handler runs here and sets it
    for t in loops:
        t.join()
    return 1 if failed.is_set() else 0
