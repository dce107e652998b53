"""Claiming several jobs per round trip: only quick kinds are taken together, the rest of a
claim keeps its lease by heartbeat while it waits, and a stopping worker gives back what it has
not started. A claim of events runs in one transaction (bridge/worker/batch.py) with the
outcomes each would have alone: a failing or parked event is rescheduled, a lost lease rolls
the batch back, and on PostgreSQL an event whose keys are busy starts the next transaction."""
import io
import json
import logging
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text

from bridge.ledger.inbox import PROCESS_EVENT, Delivery
from bridge.ledger.jobs import enqueue
from bridge.ledger.locks import lock
from bridge.ledger.models import EventOrder, Job, Order, Payment, WebhookEvent
from bridge.logs import holding, log_context, make_handler, say
from bridge.worker import batch
from bridge.worker import events as events_module
from bridge.worker.events import ProcessEvent
from bridge.worker.handlers import all_handlers
from bridge.worker.runner import Worker
from tests.fixtures import stripe_payloads as sp
from tests.integration.test_queue import add_jobs, jobs, queue
from tests.support.statements import Transactions

T0 = sp.DEFAULT_TIME
FAR = datetime(2999, 1, 1, tzinfo=timezone.utc)


def _state(rt):
    return [(j.kind, j.state, j.attempts, j.locked_by) for j in jobs(rt)]


def test_a_claim_takes_its_quick_jobs_and_one_slow_job_last(runtime):
    add_jobs(runtime, 3, kind=PROCESS_EVENT)
    add_jobs(runtime, 1, kind="execute_refund")
    add_jobs(runtime, 2, kind=PROCESS_EVENT)
    add_jobs(runtime, 1, kind="deliver_notice")
    q = queue(runtime)
    now = runtime.clock()
    first = q.claim("w1", now, limit=10)
    assert [j.kind for j in first] == [PROCESS_EVENT] * 5 + ["execute_refund"]
    assert len({j.lease_token for j in first}) == 1
    # The second slow job went straight back: ready, its attempt returned, claimable by anyone.
    notice = [j for j in jobs(runtime) if j.kind == "deliver_notice"][0]
    assert (notice.state, notice.attempts, notice.lease_token, notice.locked_by) == ("ready", 0, None, None)
    second = q.claim("w2", now, limit=10)
    assert [j.kind for j in second] == ["deliver_notice"]


def test_a_claim_led_by_a_slow_job_runs_it_after_the_quick_ones(runtime, monkeypatch):
    add_jobs(runtime, 1, kind="deliver_notice")
    add_jobs(runtime, 3, kind=PROCESS_EVENT)
    got = queue(runtime).claim("w1", runtime.clock(), limit=10)
    assert [j.kind for j in got] == [PROCESS_EVENT] * 3 + ["deliver_notice"]
    assert not any(j.state == "ready" for j in jobs(runtime))
    # The worker runs the events (one transaction) before the notice, and finishes all four.
    ran = []
    worker = Worker(runtime, {PROCESS_EVENT: lambda rt, job, s: ran.append(job.kind),
                              "deliver_notice": lambda rt, job, s: ran.append(job.kind)})
    monkeypatch.setattr(worker.queue, "claim", lambda *a, **k: got)
    with Transactions(runtime.engine) as seen:
        assert worker._claim_and_run(10) == 4
    assert ran == [PROCESS_EVENT] * 3 + ["deliver_notice"]
    assert {(j.kind, j.state) for j in jobs(runtime)} == {(PROCESS_EVENT, "done"), ("deliver_notice", "done")}
    assert seen.commits == 2


def test_a_stopping_worker_gives_back_the_slow_job_its_batch_was_claimed_with(runtime, monkeypatch):
    add_jobs(runtime, 2, kind=PROCESS_EVENT)
    add_jobs(runtime, 1, kind="deliver_notice")
    got = queue(runtime).claim("w1", runtime.clock(), limit=10)
    stop = threading.Event()
    worker = Worker(runtime, {PROCESS_EVENT: lambda rt, job, s: stop.set(),
                              "deliver_notice": lambda rt, job, s: pytest.fail("run after the stop")})
    worker._stop = stop
    monkeypatch.setattr(worker.queue, "claim", lambda *a, **k: got)
    worker._claim_and_run(10)
    notice = [j for j in jobs(runtime) if j.kind == "deliver_notice"][0]
    assert (notice.state, notice.attempts, notice.lease_token) == ("ready", 0, None)


def test_behind_a_backlog_of_slow_jobs_a_worker_claims_one_at_a_time(runtime):
    add_jobs(runtime, 4, kind="deliver_notice")
    add_jobs(runtime, 2, kind=PROCESS_EVENT)
    ran = []
    worker = Worker(runtime, {PROCESS_EVENT: lambda rt, job, s: ran.append((job.kind, job.ref_id)),
                              "deliver_notice": lambda rt, job, s: ran.append((job.kind, job.ref_id))})
    with Transactions(runtime.engine) as seen:
        assert worker.drain(limit=8) == 6
    # The events together (and the first notice after them), then the notices: the claim
    # that found only notices gave two back; the ones after it took one each, giving none back.
    assert ran == [(PROCESS_EVENT, "0"), (PROCESS_EVENT, "1")] + [("deliver_notice", str(i)) for i in range(4)]
    assert sum(st.lstrip().startswith("UPDATE jobs SET state = 'ready', lease_token = NULL")
               for st in seen.statements) == 2
    assert all(j.state == "done" and j.attempts == 1 for j in jobs(runtime))


def test_heartbeat_keeps_the_waiting_rest_of_a_claim(runtime):
    add_jobs(runtime, 3, kind=PROCESS_EVENT)
    q = queue(runtime, lease=2.0)
    t0 = runtime.clock()
    claimed = q.claim("w1", t0, limit=3)
    assert q.heartbeat_claim(claimed[0].lease_token, t0 + timedelta(seconds=1.5)) == 3
    assert q.claim("w2", t0 + timedelta(seconds=3), limit=3) == []   # leased until t0+3.5
    assert len(q.claim("w2", t0 + timedelta(seconds=4), limit=3)) == 3


def test_a_stopping_worker_gives_back_the_jobs_it_did_not_start(runtime):
    add_jobs(runtime, 4, kind=PROCESS_EVENT)
    stop = threading.Event()
    ran = []

    def handler(rt, job, session):
        ran.append(job.id)
        stop.set()  # told to stop while running the first of its claim

    w = Worker(runtime, {PROCESS_EVENT: handler}, "w")
    w._stop = stop
    assert w.run_once(limit=4)
    assert len(ran) == 1
    states = _state(runtime)
    assert [s[1] for s in states] == ["done", "ready", "ready", "ready"]
    assert all(s[2] == 0 and s[3] is None for s in states[1:])  # as if never claimed
    with runtime.reads() as s:
        assert s.execute(select(Job.lease_token).where(Job.state == "ready")).scalars().all() == [None] * 3


def test_run_forever_claims_in_batches(runtime):
    add_jobs(runtime, 20, kind=PROCESS_EVENT)
    claims = []
    w = Worker(runtime.__class__(**{**runtime.__dict__, "settings": runtime.settings.with_(worker_batch=8)}),
               {PROCESS_EVENT: lambda rt, job, session: claims.append(job.lease_token)}, "w")
    stop = threading.Event()
    t = threading.Thread(target=w.run_forever, args=(stop,), daemon=True)
    t.start()
    deadline = runtime.clock() + timedelta(seconds=20)
    while len(claims) < 20 and runtime.clock() < deadline:
        stop.wait(0.05)
    stop.set()
    t.join(10)
    assert len(claims) == 20 and all(j.state == "done" for j in jobs(runtime))
    assert len(set(claims)) == 3  # 8 + 8 + 4: three round trips, not twenty


def test_a_job_that_lost_its_lease_while_waiting_in_a_claim_is_not_started(runtime):
    add_jobs(runtime, 3, kind=PROCESS_EVENT)
    ran = []
    ids = [j.id for j in jobs(runtime)]

    def handler(rt, job, session):
        ran.append(job.id)
        if job.id == ids[0]:
            # Meanwhile the heartbeats fell behind and another worker claimed the second job.
            session.execute(text("UPDATE jobs SET lease_token = 'theirs', locked_by = 'other' WHERE id = :id"),
                            {"id": ids[1]})
            time.sleep(0.1 * rt.settings.lease_seconds + 0.05)  # past the point of renewing

    w = Worker(runtime, {PROCESS_EVENT: handler}, "w")
    assert w.run_once(limit=3)
    assert ran == [ids[0], ids[2]]
    by_id = {j.id: j for j in jobs(runtime)}
    assert by_id[ids[1]].state == "running" and by_id[ids[1]].lease_token == "theirs"
    assert by_id[ids[2]].state == "done"


# -- a claim of events applied in one transaction (bridge/worker/batch.py) ----------------------

def _charge(n: int) -> dict:
    return sp.charge_succeeded(event_id=f"evt_batch_{n}", charge_id=f"ch_batch_{n}", amount=4900,
                               metadata={"order_id": f"ord_batch_{n}"}, customer=f"cus_batch_{n}",
                               created=T0, balance_transaction=sp.balance_transaction(
                                   bt_id=f"txn_batch_{n}", amount=4900, fee=172, created=T0))


def _refund_of_unknown_charge() -> dict:
    return sp.charge_refunded(event_id="evt_batch_refund", charge_id="ch_batch_never_seen", charge_created=T0,
                              refunds=[{"refund_id": "re_batch_1", "amount": 1000, "status": "succeeded"}])


def _store(rt, *docs: dict) -> None:
    now = rt.clock()
    for doc in docs:
        assert rt.inbox.store(Delivery("stripe", doc["id"], doc["type"], json.dumps(doc).encode(), {}, now), now)


def _events(rt) -> dict:
    with rt.reads() as s:
        return {e.provider_event_id: e.status for e in s.execute(select(WebhookEvent)).scalars()}


def _event_jobs(rt) -> dict:
    """provider event id -> its process_event job"""
    with rt.reads() as s:
        ids = {str(e.id): e.provider_event_id for e in s.execute(select(WebhookEvent)).scalars()}
    return {ids[j.ref_id]: j for j in jobs(rt) if j.kind == PROCESS_EVENT}


def _charges(rt) -> set:
    with rt.reads() as s:
        return set(s.execute(select(Payment.charge_id)).scalars())


@pytest.fixture
def no_budget(monkeypatch):
    """However slow the machine, a batch below ends only when its jobs do (its commits counted)."""
    monkeypatch.setattr(batch, "BUDGET_SECONDS", dict.fromkeys(("sqlite", "postgresql"), 600.0))


def test_a_claim_of_events_is_read_once_and_committed_once(runtime, worker, no_budget):
    _store(runtime, *(_charge(n) for n in range(4)))
    with Transactions(runtime.engine) as seen:
        assert worker.run_once(limit=8)
    assert _events(runtime) == {f"evt_batch_{n}": "processed" for n in range(4)}
    assert all(j.state == "done" and j.attempts == 1 for j in _event_jobs(runtime).values())
    assert _charges(runtime) == {f"ch_batch_{n}" for n in range(4)}
    # The claim, the read of the four events, the batch: not a read and a commit per event.
    assert seen.commits == 3
    if runtime.engine.dialect.name == "sqlite":
        # The read takes no write lock (the web intake does not wait for it).
        assert seen.begins == ["BEGIN IMMEDIATE", "BEGIN", "BEGIN IMMEDIATE"]
    # The four events' outcomes and order links: one statement each for the whole batch.
    assert sum(st.startswith("UPDATE webhook_events") for st in seen.statements) == 1
    assert sum(st.startswith("INSERT INTO event_orders") for st in seen.statements) == 1
    with runtime.reads() as s:
        assert s.execute(select(func.count()).select_from(EventOrder)).scalar_one() == 4
    # None of them needed a savepoint: none was taken (outcomes.no_savepoints).
    assert seen.savepoints == 0 and seen.rollbacks == 0


def test_the_event_that_raises_in_a_batch_alone_is_retried(runtime, worker, monkeypatch, no_budget):
    _store(runtime, _charge(0), _charge(1), _charge(2))
    real = events_module.apply_parsed

    def apply_then_fail(effects, session, parsed, now):
        touched = real(effects, session, parsed, now)  # its effects are written, then undone
        if parsed.provider_event_id == "evt_batch_1":
            raise RuntimeError("a bug in the middle")
        return touched

    monkeypatch.setattr(events_module, "apply_parsed", apply_then_fail)
    with Transactions(runtime.engine) as seen:
        assert worker.run_once(limit=8)
    assert _events(runtime) == {"evt_batch_0": "processed", "evt_batch_1": "received", "evt_batch_2": "processed"}
    assert _charges(runtime) == {"ch_batch_0", "ch_batch_2"}
    by_event = _event_jobs(runtime)
    assert by_event["evt_batch_0"].state == by_event["evt_batch_2"].state == "done"
    failed = by_event["evt_batch_1"]
    assert (failed.state, failed.attempts, failed.lease_token) == ("ready", 1, None)
    assert "RuntimeError: a bug in the middle" in failed.last_error
    assert failed.run_at > by_event["evt_batch_0"].finished_at  # with backoff
    assert seen.commits == 3  # its retry was written in the batch's transaction
    # The first try, without savepoints, was undone whole; the second took one per event.
    assert seen.rollbacks == 1 and seen.savepoints == 3
    monkeypatch.setattr(events_module, "apply_parsed", real)
    time.sleep(runtime.settings.job_backoff_max_seconds)
    worker.drain()
    assert _events(runtime)["evt_batch_1"] == "processed"


class _Outcomes:
    """The metrics' record of job runs (``job_ran``), with every other metric a no-op."""

    def __init__(self):
        self.ran: list[tuple[str, str]] = []

    def job_ran(self, kind: str, outcome: str, seconds: float) -> None:
        self.ran.append((kind, outcome))

    def __getattr__(self, name):
        return lambda *a, **k: None


def test_a_parked_event_in_a_batch_is_rescheduled_and_the_others_commit(runtime, worker, no_budget):
    _store(runtime, _charge(0), _refund_of_unknown_charge(), _charge(1))
    runtime.metrics = metrics = _Outcomes()  # the worker's runtime
    with Transactions(runtime.engine) as seen:
        assert worker.run_once(limit=8)
    assert _events(runtime) == {"evt_batch_0": "processed", "evt_batch_refund": "parked", "evt_batch_1": "processed"}
    by_event = _event_jobs(runtime)
    parked = by_event["evt_batch_refund"]
    assert (parked.state, parked.attempts) == ("ready", 1)  # the attempt counts
    assert parked.last_error.startswith("parked:")
    assert parked.run_at > by_event["evt_batch_0"].finished_at
    assert by_event["evt_batch_0"].state == by_event["evt_batch_1"].state == "done"
    assert seen.commits == 3
    # One metric per job, with its own outcome.
    assert metrics.ran == [(PROCESS_EVENT, "done"), (PROCESS_EVENT, "rescheduled"), (PROCESS_EVENT, "done")]


def test_a_batch_undone_and_run_again_logs_each_event_once(runtime, worker, no_budget):
    """The first try (no savepoints) applies evt_batch_0, then the refund of an unknown charge
    parks and undoes the transaction; the second try applies them again. The log says what
    was committed: evt_batch_0 and evt_batch_1 processed once each, with their ids."""
    _store(runtime, _charge(0), _refund_of_unknown_charge(), _charge(1))
    stream = io.StringIO()
    handler = make_handler("json", stream)
    bridge_log = logging.getLogger("bridge")
    bridge_log.addHandler(handler)
    level = bridge_log.level
    bridge_log.setLevel(logging.INFO)
    try:
        with Transactions(runtime.engine) as seen:
            assert worker.run_once(limit=8)
    finally:
        bridge_log.removeHandler(handler)
        bridge_log.setLevel(level)
    assert seen.rollbacks == 1  # it was undone once
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    processed = [(r["event_id"], r["job_id"]) for r in lines if r["message"].endswith(" processed")]
    jobs_of = {e: j.id for e, j in _event_jobs(runtime).items()}
    assert processed == [("evt_batch_0", jobs_of["evt_batch_0"]), ("evt_batch_1", jobs_of["evt_batch_1"])]
    assert sum("parked" in r["message"] for r in lines) == 1


def test_log_lines_held_back_are_dropped_unless_said():
    stream = io.StringIO()
    log = logging.getLogger("bridge.test_holding")
    handler = make_handler("text", stream)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        with holding() as undone:
            with log_context(job_id=7):
                log.info("first try")
        assert stream.getvalue() == ""  # held, then dropped
        with holding() as kept:
            with log_context(job_id=8):
                log.info("second try")
            assert stream.getvalue() == ""
        log.info("after")
        say(kept)
    finally:
        log.removeHandler(handler)
    out = stream.getvalue().splitlines()
    assert [line.split(" ", 4)[-1] for line in out] == ["after", "second try"]
    assert undone and not kept  # said once, then gone


def test_a_lease_lost_during_a_batch_rolls_it_back_and_the_others_run_alone(runtime, caplog, no_budget):
    _store(runtime, _charge(0), _charge(1), _charge(2))
    ids = {e: j.id for e, j in _event_jobs(runtime).items()}
    handlers = all_handlers(runtime)

    class Stolen(ProcessEvent):
        """After the batch has read its events, another worker takes the second one's job
        (its lease had run out): the batch finds out only at its fenced finish."""

        def prepare(self, rt, claimed, session):
            out = super().prepare(rt, claimed, session)
            with rt.engine.begin() as conn:
                conn.execute(text("UPDATE jobs SET lease_token = 'theirs', locked_by = 'other' WHERE id = :id"),
                             {"id": ids["evt_batch_1"]})
            return out

    handlers[PROCESS_EVENT] = Stolen(handlers[PROCESS_EVENT].effects)
    caplog.set_level(logging.INFO, logger="bridge.worker")
    assert Worker(runtime, handlers, "w").run_once(limit=8)
    assert any("rolled back (a lease was lost); running them one at a time" in r.getMessage() for r in caplog.records)
    # Run again alone, each only with its lease renewed: not the one another worker holds now.
    assert any("lease lost before its turn; left to its new holder" in r.getMessage() for r in caplog.records)
    # The stolen job's effects never commit; the other two commit once, each alone.
    assert _events(runtime) == {"evt_batch_0": "processed", "evt_batch_1": "received", "evt_batch_2": "processed"}
    assert _charges(runtime) == {"ch_batch_0", "ch_batch_2"}
    by_event = _event_jobs(runtime)
    assert (by_event["evt_batch_1"].state, by_event["evt_batch_1"].lease_token) == ("running", "theirs")
    assert by_event["evt_batch_0"].state == by_event["evt_batch_2"].state == "done"
    assert by_event["evt_batch_0"].attempts == by_event["evt_batch_2"].attempts == 1


def test_a_database_error_in_a_batch_rolls_it_back_and_its_jobs_run_one_at_a_time(runtime, caplog, no_budget):
    add_jobs(runtime, 3, kind=PROCESS_EVENT)
    ids = [j.id for j in jobs(runtime)]
    runs = []

    def handler(rt, job, session):
        runs.append(job.id)
        enqueue(session, "marker", str(job.id), rt.clock(), run_at=FAR)  # this run's effect
        if job.id == ids[1] and runs.count(job.id) == 1:
            session.execute(text("SELECT * FROM no_such_table"))  # e.g. a deadlock, the database gone

    caplog.set_level(logging.INFO, logger="bridge.worker")
    assert Worker(runtime, {PROCESS_EVENT: handler}, "w").run_once(limit=3)
    assert any("rolled back (database error" in r.getMessage() for r in caplog.records)
    assert runs == [ids[0], ids[1], ids[0], ids[1], ids[2]]
    states = {j.id: (j.state, j.attempts) for j in jobs(runtime) if j.kind == PROCESS_EVENT}
    assert states == {i: ("done", 1) for i in ids}
    assert sorted(int(j.ref_id) for j in jobs(runtime) if j.kind == "marker") == ids  # once each


def test_a_batch_transaction_ends_at_its_time_budget(runtime, worker, monkeypatch):
    # Every job past the first starts a new one.
    monkeypatch.setattr(batch, "BUDGET_SECONDS", dict.fromkeys(("sqlite", "postgresql"), 0.0))
    _store(runtime, *(_charge(n) for n in range(3)))
    with Transactions(runtime.engine) as seen:
        assert worker.run_once(limit=8)
    assert _events(runtime) == {f"evt_batch_{n}": "processed" for n in range(3)}
    assert seen.commits == 2 + 3


# -- locks in a batch (PostgreSQL): later events try their keys, and never wait --------------------

def _pg_only(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer and no keyed locks")


def test_an_event_whose_keys_are_busy_starts_the_next_transaction(runtime, worker, db_url, caplog, no_budget):
    _pg_only(db_url)
    _store(runtime, _charge(0), _charge(1), _charge(2))
    holder = runtime.sessions()
    holder.begin()
    lock(holder, ["payment:stripe:ch_batch_1"])  # someone else's transaction about the second payment
    caplog.set_level(logging.DEBUG, logger="bridge.worker")
    done = threading.Event()
    errors = []

    def run():
        try:
            worker.run_once(limit=8)
        except BaseException as err:  # noqa: BLE001 - asserted below
            errors.append(err)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    try:
        deadline = time.monotonic() + 10
        while _events(runtime).get("evt_batch_0") != "processed" and time.monotonic() < deadline:
            time.sleep(0.02)
        # The first event committed without waiting for the busy second one, which now waits
        # (first in its own transaction) for the holder.
        assert _events(runtime)["evt_batch_0"] == "processed"
        assert not done.wait(0.3)
        assert _events(runtime)["evt_batch_1"] == "received"
    finally:
        holder.commit()
        holder.close()
    assert done.wait(10) and not errors, errors
    assert _events(runtime) == {f"evt_batch_{n}": "processed" for n in range(3)}
    assert all(j.state == "done" and j.attempts == 1 for j in _event_jobs(runtime).values())
    assert any("its locks are busy" in r.getMessage() for r in caplog.records)
    # Its keys were busy before it wrote anything: the first event's transaction was not undone.
    assert not any("undone" in r.getMessage() for r in caplog.records)


def test_a_new_payment_is_written_without_looking_up_what_its_locks_found_absent(runtime, worker, db_url, no_budget):
    """On PostgreSQL the event's lock resolution found no payment and no order of its ids: the
    payment and its order are written without a SELECT of either (bridge/ledger/absent.py). A
    later event about the same charge in the same transaction finds the row, never a second."""
    _pg_only(db_url)
    again = sp.charge_succeeded(event_id="evt_batch_0_again", charge_id="ch_batch_0", amount=4900,
                                metadata={"order_id": "ord_batch_0"}, customer="cus_batch_0", created=T0,
                                balance_transaction=sp.balance_transaction(bt_id="txn_batch_0", amount=4900,
                                                                           fee=172, created=T0))
    _store(runtime, _charge(0), _charge(1), again)
    with Transactions(runtime.engine) as seen:
        assert worker.run_once(limit=8)
    assert _events(runtime) == {"evt_batch_0": "processed", "evt_batch_1": "processed", "evt_batch_0_again": "processed"}
    looked_up = [st for st in seen.statements if st.startswith(("SELECT payments.", "SELECT orders."))]
    # Only the third event looks (its payment and order exist by then): one look-up of each.
    assert sum(st.startswith("SELECT payments.") and "charge_id" in st.split("WHERE")[1] for st in looked_up) == 1
    assert sum(st.startswith("SELECT orders.") and "order_id =" in st.split("WHERE")[1] for st in looked_up) == 1
    with runtime.reads() as s:
        assert s.execute(select(func.count()).select_from(Payment)).scalar_one() == 2
        assert s.execute(select(func.count()).select_from(Order)).scalar_one() == 2


def test_two_batches_that_would_lock_each_other_both_finish(runtime, db_url, caplog, no_budget):
    """Worker A's batch is [X, Y], B's is [Y, X], each job locking its key: with both first
    jobs done (a barrier), each batch's second job needs the key the other holds. Waiting, they
    would deadlock; trying, one or both commit their first job and run the second anew."""
    _pg_only(db_url)
    keys = ["X", "Y", "Y", "X"]
    add_jobs(runtime, 0)
    now = runtime.clock()
    with runtime.sessions.begin() as s:
        for k in keys:
            enqueue(s, PROCESS_EVENT, k, now)
    ids = [j.id for j in jobs(runtime)]
    first = {ids[0], ids[2]}
    barrier = threading.Barrier(2, timeout=10)
    ran = []

    def handler(rt, job, session):
        ran.append(job.id)
        lock(session, [f"order:batch_{job.ref_id}"])
        enqueue(session, "marker", str(job.id), rt.clock(), run_at=FAR)  # this run's effect
        if job.id in first:
            first.discard(job.id)
            barrier.wait()

    caplog.set_level(logging.DEBUG, logger="bridge.worker")
    a = Worker(runtime, {PROCESS_EVENT: handler}, "a")
    b = Worker(runtime, {PROCESS_EVENT: handler}, "b")
    errors = []

    def run(w):
        try:
            w.run_once(limit=2)
        except BaseException as err:  # noqa: BLE001 - asserted below
            errors.append(err)

    ta = threading.Thread(target=run, args=(a,), daemon=True)
    ta.start()
    deadline = time.monotonic() + 10
    while sum(j.state == "running" for j in jobs(runtime)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    tb = threading.Thread(target=run, args=(b,), daemon=True)
    tb.start()
    ta.join(20)
    tb.join(20)
    assert not errors, errors
    assert not any("rolled back" in r.getMessage() or "database error" in r.getMessage() for r in caplog.records)
    assert any("its locks are busy" in r.getMessage() for r in caplog.records)
    states = {j.id: (j.state, j.attempts) for j in jobs(runtime) if j.kind == PROCESS_EVENT}
    assert states == {i: ("done", 1) for i in ids}
    markers = sorted(int(j.ref_id) for j in jobs(runtime) if j.kind == "marker")
    assert markers == sorted(ids)  # each job's effect committed once, the rolled-back tries' never
    assert len(ran) > len(ids)  # at least one second job was tried, rolled back, and run again
