"""The worker loop: claim a job, run its handler, finish it in the handler's transaction.

A handler gets an open session; the runner fences the job's completion into the same
transaction, so the handler's database effects commit if and only if this worker still held
the lease. Handlers that call a provider commit their earlier phases themselves. A claim of
several quick jobs runs in one transaction (bridge/worker/batch.py).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Callable, Mapping, Optional

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bridge.logs import pop_context, push_context
from bridge.runtime import Runtime
from bridge.worker import batch
from bridge.worker.outcomes import Postpone, Reschedule  # noqa: F401 - handlers import them from here
from bridge.worker.queue import BATCHABLE, ClaimedJob, Queue, StaleLease

log = logging.getLogger("bridge.worker")

Handler = Callable[[Runtime, ClaimedJob, Session], Optional[object]]


class Worker:
    def __init__(self, rt: Runtime, handlers: Mapping[str, Handler], worker_id: Optional[str] = None):
        s = rt.settings
        self.rt = rt
        self.handlers = handlers
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.queue = Queue(rt.engine, s.lease_seconds, s.job_backoff_base_seconds,
                           s.job_backoff_max_seconds)
        self._current: Optional[ClaimedJob] = None
        self._held: list[ClaimedJob] = []  # claimed and not finished (the current one included)
        self._lock = threading.Lock()
        self._stop: Optional[threading.Event] = None
        # The last claim found no quick job, only slow ones (notices, refunds at the provider):
        # the next claims take one job each until a quick one comes, since a claim of several
        # behind a backlog of slow jobs keeps one and gives the others back (Queue.claim), a
        # write of each row twice for nothing.
        self._slow_backlog = False

    # -- one step -------------------------------------------------------------------------
    def run_once(self, limit: int = 1) -> bool:
        """Claim up to ``limit`` jobs in one round trip (of the quick kinds, see
        ``queue.BATCHABLE``, run in one transaction: batch.py; then at most one other job, in
        its own) and run them; False when there was nothing to do. A worker told to stop gives
        back the jobs it has not started."""
        return self._claim_and_run(limit) > 0

    def _claim_and_run(self, limit: int) -> int:
        """``run_once``; how many jobs were claimed."""
        jobs = self.queue.claim(self.worker_id, self.rt.clock, limit=1 if self._slow_backlog else limit)
        self._slow_backlog = bool(jobs) and limit > 1 and jobs[0].kind not in BATCHABLE
        if not jobs:
            return 0
        fresh = time.monotonic()  # when the leases of the rest of the claim were last set
        with self._lock:
            self._held = list(jobs)
        try:
            quick = [j for j in jobs if j.kind in BATCHABLE and j.kind in self.handlers]
            if len(quick) > 1:
                batch.run(self, quick, fresh)
                rest = [j for j in jobs if j not in quick]  # the claim's one slow job, if any (Queue.claim)
                if rest and self.stopping():
                    self._safely(lambda: self.queue.release(rest))
                elif rest:
                    # Its lease was set with the others': renewed first if the batch took long.
                    self._run_one_by_one(rest, fresh, recheck=True)
            else:
                self._run_one_by_one(jobs, fresh)
        finally:
            with self._lock:
                self._held = []
        return len(jobs)

    def _run_one_by_one(self, jobs: list[ClaimedJob], fresh: float, recheck: bool = False) -> None:
        """Each job of one claim in its own transaction, in order. ``recheck``: the first one's
        lease too is renewed before it starts, and it is left alone if lost (a batch rolled back
        for a lost lease runs its jobs again here: not one another worker holds now)."""
        for i, job in enumerate(jobs):
            if i and self.stopping():
                self._safely(lambda: self.queue.release(jobs[i:]))
                break
            if (i or recheck) and time.monotonic() - fresh > 0.1 * self.rt.settings.lease_seconds:
                # The job waited for its turn: start it only with its lease renewed (so a run
                # always begins with a whole lease, as an unbatched claim does), and not at
                # all if the heartbeats fell behind and another worker has it now.
                renewed = self._safely(lambda: self.queue.heartbeat_claim(job.lease_token, self.rt.clock))
                if renewed == len(jobs) - i:
                    fresh = time.monotonic()
                elif not self._safely(lambda: self.queue.heartbeat(job, self.rt.clock)):
                    log.info("job %s (%s %s): lease lost before its turn; left to its new holder",
                             job.id, job.kind, job.ref_id)
                    continue
            self._run(job)
            with self._lock:
                self._held = jobs[i + 1:]

    def stopping(self) -> bool:
        """Whether this worker was told to stop (``run_forever``'s event)."""
        return self._stop is not None and self._stop.is_set()

    def _forget(self, jobs: list[ClaimedJob]) -> None:
        """These jobs of the claim are finished (or not ours): no more heartbeats for them."""
        ids = {j.id for j in jobs}
        with self._lock:
            self._held = [j for j in self._held if j.id not in ids]

    def _run(self, job: ClaimedJob) -> None:
        started = time.perf_counter()
        # Every record logged while the job runs carries its id; a handler may add its own
        # (an event id), undone here with the rest.
        token = push_context(job_id=job.id, job_kind=job.kind)
        try:
            outcome = self._run_job(job)
        finally:
            pop_context(token)
        self.rt.metrics.job_ran(job.kind, outcome, time.perf_counter() - started)

    def _run_job(self, job: ClaimedJob) -> str:
        """Run one claimed job; returns its outcome for the metrics (done, rescheduled,
        postponed, retry, dead, lease_lost)."""
        now = self.rt.clock()
        if job.attempts > job.max_attempts:  # re-claimed after its last worker died each time
            try:
                with self.rt.engine.begin() as conn:
                    self.queue.finish(conn, job, now, state="dead", error="lease expired on every attempt")
            except StaleLease:  # claimed again meanwhile: that worker decides
                return "lease_lost"
            log.error("job %s (%s %s) dead: lease expired on every attempt", job.id, job.kind, job.ref_id)
            return "dead"
        handler = self.handlers.get(job.kind)
        with self._lock:
            self._current = job
        outcome = "done"
        try:
            if handler is None:
                raise RuntimeError(f"no handler for job kind {job.kind!r}")
            session = self.rt.sessions()
            try:
                with session.begin():
                    result = handler(self.rt, job, session)
                    if isinstance(result, Reschedule):
                        state = self.queue.reschedule(session.connection(), job, self.rt.clock(), result.note)
                        outcome = "dead" if state == "dead" else "rescheduled"
                        if state == "dead":
                            log.error("job %s (%s %s) is dead: %s", job.id, job.kind, job.ref_id, result.note)
                    else:
                        self.queue.finish(session.connection(), job, self.rt.clock())
            finally:
                session.close()
            log.debug("job %s (%s %s) done", job.id, job.kind, job.ref_id)
        except StaleLease:
            outcome = "lease_lost"
            log.warning("job %s (%s %s): lease lost, effects rolled back", job.id, job.kind, job.ref_id)
        except Postpone as p:
            outcome = "postponed"
            self._safely(lambda: self.queue.postpone(job, self.rt.clock(), p.delay, p.note))
        except DBAPIError as err:
            outcome = "retry"
            log.warning("job %s (%s %s): database error %s; will retry", job.id, job.kind,
                        job.ref_id, type(err.orig).__name__)
            self._safely(lambda: self.queue.fail(job, self.rt.clock(), f"database error: {type(err.orig).__name__}"))
        except Exception as err:  # a handler bug or a provider failure: retry with backoff
            state = None
            msg = f"{type(err).__name__}: {err}"
            log.warning("job %s (%s %s) failed (attempt %s/%s): %s", job.id, job.kind, job.ref_id,
                        job.attempts, job.max_attempts, msg)
            state = self._safely(lambda: self.queue.fail(job, self.rt.clock(), msg))
            outcome = "dead" if state == "dead" else "retry"
            if state == "dead":
                log.error("job %s (%s %s) is dead after %s attempts", job.id, job.kind, job.ref_id, job.attempts)
        finally:
            with self._lock:
                self._current = None
        return outcome

    def _safely(self, fn):
        try:
            return fn()
        except StaleLease:
            log.warning("lease lost while rescheduling a job")
        except DBAPIError:
            # The database is down: the lease will expire and the job will run again.
            log.warning("could not reschedule a job: database unavailable")
        return None

    # -- the loop ---------------------------------------------------------------------------
    def _heartbeat_loop(self, stop: threading.Event) -> None:
        interval = max(0.05, self.rt.settings.lease_seconds / 3)
        while not stop.wait(interval):
            with self._lock:
                job = self._current
                tokens = {j.lease_token for j in self._held} - {job.lease_token if job else None}
            try:
                if job is not None and not self.queue.heartbeat(job, self.rt.clock):
                    log.warning("job %s: heartbeat found the lease lost", job.id)
                for token in tokens:  # the rest of a claim, waiting for its turn
                    self.queue.heartbeat_claim(token, self.rt.clock)
            except DBAPIError:
                log.warning("heartbeat failed: database unavailable")

    def run_forever(self, stop: Optional[threading.Event] = None) -> None:
        stop = stop or threading.Event()
        hb = threading.Thread(target=self._heartbeat_loop, args=(stop,), daemon=True,
                              name="bridge-heartbeat")
        hb.start()
        poll = self.rt.settings.worker_poll_seconds
        size = self.batch_size()
        self._stop = stop
        log.info("worker %s started", self.worker_id)
        while not stop.is_set():
            try:
                busy = self.run_once(size)
            except DBAPIError as err:
                log.warning("worker cannot reach the database (%s); retrying", type(err.orig).__name__)
                busy = False
                stop.wait(min(5.0, poll * 4))
            if not busy:
                stop.wait(poll)
        log.info("worker %s stopped", self.worker_id)

    def batch_size(self) -> int:
        """How many jobs ``run_forever`` claims at once (BRIDGE_WORKER_BATCH, else 8: measured
        in bench/README.md, a batch of 8 costs a quarter less CPU per event on SQLite too)."""
        return self.rt.settings.worker_batch or 8

    def drain(self, max_seconds: float = 30.0, limit: int = 1) -> int:
        """Run jobs until none is ready (tests, the demo, the bench's in-order reference); by
        default one per claim and transaction. Returns how many were claimed."""
        n = 0
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            claimed = self._claim_and_run(limit)
            if not claimed:
                break
            n += claimed
        return n
