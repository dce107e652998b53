"""Running a claim of several quick jobs (``queue.BATCHABLE``) in one transaction.

One job per transaction costs, besides its work, a BEGIN, the fenced finish and a COMMIT (an
fsync) each. A batch shares them: each job runs in a savepoint of one transaction, the done
ones are finished by one fenced statement, and one COMMIT ends it. A handler with ``prepare``
(``ProcessEvent``) first reads what all the jobs need in one statement and does their provider
fetches, before the transaction opens: no transaction is held over HTTP.

Outcomes are the same as one job at a time (runner.py): a job whose handler raises is rolled
back to its savepoint and rescheduled with backoff in the same transaction, a ``Postpone`` or
``Reschedule`` likewise, the others commit. A lost lease (``StaleLease``) or a database error
rolls the whole transaction back, and its jobs then run one at a time as they would unbatched.

Savepoints: a handler that says so (``ProcessEvent``) first runs a transaction's jobs without any
(``outcomes.no_savepoints``): most events neither park, nor are held, nor fail, and a SAVEPOINT
and its RELEASE per event cost PostgreSQL a subtransaction. The first job that would have needed
its own rollback raises ``UndoTransaction``; the whole transaction is rolled back and the same
jobs run again in a new one, each in a savepoint, with the outcomes above.

Locks: on PostgreSQL the keyed locks (bridge/ledger/locks.py) of every job add up until the
COMMIT. Only the first job of a transaction may wait for its keys; the later ones only try, and
one whose keys are busy is rolled back to its savepoint, what is done commits, and it starts a
new transaction, first (so two workers' batches never wait for each other in a cycle).
On SQLite the transaction holds the one write lock throughout: it ends after the job that
passes ``BUDGET_SECONDS``, so the web intake never waits long behind a worker.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Optional

from sqlalchemy.exc import DBAPIError, PendingRollbackError
from sqlalchemy.orm import Session

from bridge.ledger import write_behind
from bridge.ledger.locks import LockBusy, no_wait
from bridge.logs import holding, pop_context, push_context, say
from bridge.worker.outcomes import Postpone, Reschedule, UndoTransaction, no_savepoints
from bridge.worker.queue import ClaimedJob, StaleLease

if TYPE_CHECKING:  # the runner imports this module
    from bridge.worker.runner import Worker

log = logging.getLogger("bridge.worker")

# A transaction takes no further job once it has run this long, by database. On SQLite it holds
# the one write lock until its COMMIT, and the web intake waits behind it. On PostgreSQL it holds
# only its events' keyed locks: it may run longer, so that on a slow machine a claim of 8 is not
# cut into several transactions, each with its own finishing statements and COMMIT.
BUDGET_SECONDS = {"sqlite": 0.04, "postgresql": 0.25}


class BatchBroken(Exception):
    """The batch's transaction cannot go on (a flush outside any savepoint failed)."""


@dataclass
class _Ran:
    """One job's outcome inside a batch transaction, written by ``_finish`` before the COMMIT."""
    job: ClaimedJob
    how: str  # done, reschedule, fail, postpone
    seconds: float
    note: str = ""
    delay: float = 0.0
    state: str = ""  # after reschedule/fail: ready or dead


def run(worker: "Worker", jobs: list[ClaimedJob], fresh: float) -> None:
    """Run these jobs of one claim (one kind), in as few transactions as the rules above allow.
    ``fresh``: when their leases were last set (monotonic)."""
    todo = []
    for job in jobs:
        if job.attempts > job.max_attempts:  # re-claimed past its last attempt: finished dead alone
            worker._run(job)
            worker._forget([job])
        else:
            todo.append(job)
    if not todo:
        return
    handler = worker.handlers[todo[0].kind]
    session = worker.rt.sessions()
    try:
        if hasattr(handler, "prepare"):
            prepared = handler.prepare(worker.rt, todo, session)
            apply = handler.apply
        else:
            prepared = {}
            apply = lambda rt, job, s, _prepared: handler(rt, job, s)  # noqa: E731
        # A handler that says so leaves nothing written when it raises (its writes are in a
        # savepoint of its own): the runner then spares it one more.
        own_savepoint = bool(getattr(handler, "rolls_back_on_error", False))
        # A handler that says so can run its jobs without savepoints at all (``no_savepoints``),
        # and raises ``UndoTransaction`` where one would have been needed.
        optimistic = own_savepoint and bool(getattr(handler, "runs_without_savepoints", False))
        # What the handler's jobs recorded to be written once for the whole transaction.
        before_commit = getattr(handler, "before_commit", None) or (lambda _session: None)
        first = True
        while todo:
            if not first and worker.stopping():
                worker._safely(lambda: worker.queue.release(todo))
                break
            first = False
            todo, fresh = _transaction(worker, session, apply, todo, prepared, fresh, own_savepoint, before_commit,
                                       savepoints=not optimistic)
    finally:
        session.close()


def _transaction(worker: "Worker", session: Session, apply: Callable, jobs: list[ClaimedJob],
                 prepared: dict, fresh: float, own_savepoint: bool,
                 before_commit: Callable[[Session], None], savepoints: bool = True) -> tuple[list[ClaimedJob], float]:
    """One transaction over the head of ``jobs``; returns the jobs left for the next one.
    ``savepoints`` off: the handler's jobs take none (most events neither park nor fail, and a
    SAVEPOINT and its RELEASE cost PostgreSQL a subtransaction each); the first that needs
    one undoes the transaction, and the same jobs run again in another, each in a savepoint."""
    rt, queue = worker.rt, worker.queue
    ran: list[_Ran] = []
    rest: list[ClaimedJob] = []
    lost: list[ClaimedJob] = []
    fresh_before = fresh  # a renewal below is undone with the transaction
    started = time.monotonic()
    budget = BUDGET_SECONDS.get(session.get_bind().dialect.name, BUDGET_SECONDS["sqlite"])
    # Nothing read by an earlier transaction of this session is trusted in this one.
    session.expunge_all()
    try:
        # Its jobs' log lines are held back until it commits: undone (or rolled back), the same
        # jobs run again and say what they did again (an event "processed" twice in the log,
        # once for a try that left nothing written).
        with holding() as lines, session.begin(), _modes(session, savepoints):
            if started - fresh > 0.1 * rt.settings.lease_seconds:
                # They waited for their turn: start them only with their lease renewed (as an
                # unbatched claim would), and not at all if another worker has them now.
                ours = queue.renew(session.connection(), jobs, rt.clock)
                fresh = time.monotonic()
                lost = [j for j in jobs if j.id not in ours]
                jobs = [j for j in jobs if j.id in ours]
            for i, job in enumerate(jobs):
                if i and (worker.stopping() or time.monotonic() - started > budget):
                    rest = jobs[i:]
                    break
                no_wait(session, i > 0)
                outcome = _run_one(worker, session, apply, job, prepared.get(job.id), may_wait=i == 0,
                                   own_savepoint=own_savepoint)
                if outcome is None:  # its keys are busy: first in the next transaction
                    rest = jobs[i:]
                    break
                ran.append(outcome)
                # The next job reads what it needs afresh, after taking its own locks, as in
                # a session of its own (an object this one loaded may be stale to it).
                session.expunge_all()
            try:
                write_behind.flush(session)  # a failing INSERT fails the try without savepoints
            except DBAPIError as err:
                if savepoints:
                    raise
                raise UndoTransaction(err) from err
            before_commit(session)
            _finish(worker, session, ran)
    except UndoTransaction as undo:
        session.expunge_all()
        log.debug("batch of %s jobs undone (%s); running it again with savepoints", len(jobs), undo)
        return _transaction(worker, session, apply, jobs + lost, prepared, fresh_before, own_savepoint, before_commit)
    except (StaleLease, DBAPIError, BatchBroken, PendingRollbackError) as err:
        session.expunge_all()
        what = (f"database error {type(err.orig).__name__}" if isinstance(err, DBAPIError)
                else "a lease was lost" if isinstance(err, StaleLease) else str(err))
        log.warning("batch of %s jobs rolled back (%s); running them one at a time", len(jobs), what)
        worker._run_one_by_one(jobs, float("-inf"), recheck=True)
        return [], fresh
    say(lines)
    for job in lost:
        log.info("job %s (%s %s): lease lost before its turn; left to its new holder", job.id, job.kind, job.ref_id)
    _report(worker, ran)
    worker._forget(lost + [r.job for r in ran])
    return rest, fresh


@contextmanager
def _modes(session: Session, savepoints: bool) -> Iterator[None]:
    """The session's modes for one batch transaction: its jobs without savepoints and their new
    rows written behind (write_behind.py) unless ``savepoints``, and no-wait locks (set per
    job); all off when it ends, however it ends."""
    no_savepoints(session, not savepoints)
    write_behind.enable(session, not savepoints)
    try:
        yield
    finally:
        no_wait(session, False)
        no_savepoints(session, False)
        write_behind.enable(session, False)


def _run_one(worker: "Worker", session: Session, apply: Callable, job: ClaimedJob, prepared,
             may_wait: bool, own_savepoint: bool) -> Optional[_Ran]:
    """One job in a savepoint (its own, or the runner's); None if it must wait for a lock
    (rolled back)."""
    rt = worker.rt
    started = time.perf_counter()
    token = push_context(job_id=job.id, job_kind=job.kind)
    try:
        if own_savepoint:
            result = apply(rt, job, session, prepared)
        else:
            savepoint = session.begin_nested()
            try:
                result = apply(rt, job, session, prepared)
                savepoint.commit()
            except BaseException:
                if savepoint.is_active:
                    savepoint.rollback()
                raise
    except LockBusy:
        if may_wait:  # cannot happen: the first job of a transaction waits
            raise
        log.debug("job %s (%s %s): its locks are busy; it starts the next transaction", job.id, job.kind, job.ref_id)
        return None
    except Postpone as p:
        return _Ran(job, "postpone", time.perf_counter() - started, p.note, p.delay)
    except (StaleLease, DBAPIError, UndoTransaction):
        raise
    except Exception as err:  # a handler bug or a provider failure: retry with backoff
        msg = f"{type(err).__name__}: {err}"
        log.warning("job %s (%s %s) failed (attempt %s/%s): %s", job.id, job.kind, job.ref_id,
                    job.attempts, job.max_attempts, msg)
        return _Ran(job, "fail", time.perf_counter() - started, msg)
    finally:
        pop_context(token)
    if own_savepoint:
        try:
            session.flush()  # its last writes fail here, as this job's, not as the next one's
        except DBAPIError:
            raise
        except Exception as err:  # the transaction is rolled back: the batch cannot go on
            raise BatchBroken(f"job {job.id}: {type(err).__name__}: {err}") from err
    if isinstance(result, Reschedule):
        return _Ran(job, "reschedule", time.perf_counter() - started, result.note)
    return _Ran(job, "done", time.perf_counter() - started)


def _finish(worker: "Worker", session: Session, ran: list[_Ran]) -> None:
    """Every outcome, fenced by the claim's lease token, in the batch's transaction."""
    queue, conn, now = worker.queue, session.connection(), worker.rt.clock()
    queue.finish_done(conn, [r.job for r in ran if r.how == "done"], now)
    for r in ran:
        if r.how in ("reschedule", "fail"):
            r.state = queue.reschedule(conn, r.job, now, r.note)
        elif r.how == "postpone":
            queue.postpone_in(conn, r.job, now, r.delay, r.note)


_OUTCOME = {"done": "done", "postpone": "postponed"}


def _report(worker: "Worker", ran: list[_Ran]) -> None:
    """After the COMMIT: each job's log line and metric, as one run would give."""
    for r in ran:
        job = r.job
        token = push_context(job_id=job.id, job_kind=job.kind)
        outcome = _OUTCOME.get(r.how) or ("dead" if r.state == "dead" else
                                          "rescheduled" if r.how == "reschedule" else "retry")
        if outcome == "dead":
            if r.how == "reschedule":
                log.error("job %s (%s %s) is dead: %s", job.id, job.kind, job.ref_id, r.note)
            else:
                log.error("job %s (%s %s) is dead after %s attempts", job.id, job.kind, job.ref_id, job.attempts)
        elif outcome == "done":
            log.debug("job %s (%s %s) done", job.id, job.kind, job.ref_id)
        pop_context(token)
        worker.rt.metrics.job_ran(job.kind, outcome, r.seconds)
