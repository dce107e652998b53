"""The worker's hot look-ups read a few rows of a big table, not all of it.

Each test fills a table with the history of many other orders (``BIG`` rows, statistics taken),
runs the bridge's own function with its statements captured, and asks the database how it ran
them: on PostgreSQL ``EXPLAIN ANALYZE`` (the rows each scan of the table read, kept or filtered
out), on SQLite the virtual machine's steps (a progress handler). Each of these read the whole
table per event before migration 0006 and the rewrites beside it (bench/worker_bench.py
--history showed the database's CPU per event doubling at 20,000 past orders).
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import event, insert, select, text

from bridge.ledger import absent, entries, payments
from bridge.ledger.models import Dispute, Job, LedgerEntry, Order, Payment, PaymentItem
from bridge.services import licenses
from bridge.worker.queue import Queue

BIG = 3000
SQLITE_STEP = 50  # the progress handler's granularity (virtual machine instructions)


@contextmanager
def captured(engine):
    """The statements run on ``engine`` meanwhile (statement, parameters), one-row executes only."""
    seen: list = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if not executemany:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def _pg_rows_read(plan: dict, table: str) -> int:
    rows = 0
    if plan.get("Relation Name") == table:
        rows += (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * plan.get("Actual Loops", 1)
    for child in plan.get("Plans", ()):
        rows += _pg_rows_read(child, table)
    return rows


def reads(engine, statements, table: str) -> list[tuple[str, int]]:
    """For each captured statement that names ``table``, the work the database did for it, run
    again in a transaction rolled back: on PostgreSQL the rows its scans of the table read
    (kept or filtered out, by ``EXPLAIN ANALYZE``), on SQLite the virtual machine's steps (its
    progress handler: a scan of a big table takes many per row)."""
    out = []
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        cursor = driver.cursor()
        for statement, parameters in statements:
            if f" {table}" not in statement or not statement.lstrip().upper().startswith(("SELECT", "UPDATE", "WITH")):
                continue
            if engine.dialect.name == "postgresql":
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
                doc = cursor.fetchone()[0]
                plan = (json.loads(doc) if isinstance(doc, str) else doc)[0]["Plan"]
                out.append((statement, _pg_rows_read(plan, table)))
            else:
                steps = [0]

                def count():
                    steps[0] += SQLITE_STEP
                    return 0

                driver.set_progress_handler(count, SQLITE_STEP)
                try:
                    cursor.execute(statement, parameters).fetchall()
                finally:
                    driver.set_progress_handler(None, SQLITE_STEP)
                out.append((statement, steps[0]))
        conn.rollback()
    assert out, f"no statement on {table} was run"
    return out


def assert_few(engine, statements, table: str) -> None:
    """Each statement's work is that of a few rows, not of the table's ``BIG``."""
    pg = engine.dialect.name == "postgresql"
    most, what = (20, f"rows of {table}") if pg else (2 * BIG, "VM steps")
    for statement, work in reads(engine, statements, table):
        assert work <= most, f"{work} {what} for: {statement}"


def analyze(engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


def _orders(conn, now, n: int, customer=lambda i: f"hist_ctm_{i}") -> list[int]:
    conn.execute(insert(Order), [dict(order_id=f"hist_ord_{i}", customer_id=customer(i), status="paid",
                                      created_at=now, updated_at=now) for i in range(n)])
    return list(conn.execute(select(Order.id).where(Order.order_id.like("hist_ord_%")).order_by(Order.id)).scalars())


def test_claim_reads_the_head_of_a_backlog_in_order(runtime):
    """Thousands of ready jobs of one run_at (a sync's) and thousands done: a claim reads the
    few it takes, in (run_at, id) order, with a running job whose lease ran out among them."""
    engine, now = runtime.engine, runtime.clock()
    q = Queue(engine, 30.0, 0.05, 1.0)
    at = now - timedelta(minutes=1)
    with engine.begin() as conn:
        conn.execute(insert(Job), [dict(kind="process_event", ref_id=f"d{i}", state="done", run_at=at - timedelta(days=1),
                                        attempts=1, max_attempts=5, created_at=at, finished_at=at) for i in range(BIG)])
        conn.execute(insert(Job), [dict(kind="process_event", ref_id=f"r{i}", state="ready", run_at=at,
                                        attempts=0, max_attempts=5, created_at=at) for i in range(BIG)])
        # (One statement per row: a multi-row insert takes its columns from the first row.)
        conn.execute(insert(Job).values(kind="process_event", ref_id="later", state="ready", run_at=now + timedelta(hours=1),
                                        attempts=0, max_attempts=5, created_at=at))
        conn.execute(insert(Job).values(kind="process_event", ref_id="expired", state="running",
                                        run_at=at - timedelta(seconds=5), attempts=1, max_attempts=5, created_at=at,
                                        locked_by="gone", lease_token="x", locked_until=now - timedelta(seconds=1)))
        conn.execute(insert(Job).values(kind="process_event", ref_id="held", state="running",
                                        run_at=at - timedelta(seconds=9), attempts=1, max_attempts=5, created_at=at,
                                        locked_by="alive", lease_token="y", locked_until=now + timedelta(seconds=20)))
    analyze(engine)
    with captured(engine) as seen:
        claimed = q.claim("w1", now, limit=4)
    # The expired lease's job first (earliest run_at), then the ready ones by id.
    assert [j.ref_id for j in claimed] == ["expired", "r0", "r1", "r2"]
    assert [j.ref_id for j in q.claim("w2", now, limit=3)] == ["r3", "r4", "r5"]
    assert_few(engine, seen, "jobs")


def test_a_corrected_figure_reads_only_its_own_entries(runtime):
    engine, now = runtime.engine, runtime.clock()
    with engine.begin() as conn:
        conn.execute(insert(LedgerEntry), [dict(provider="stripe", kind="fee", amount=-59, currency="USD", occurred_at=now,
                                                effect_key=f"hist:fee:{i}", created_at=now) for i in range(BIG)])
    analyze(engine)
    with runtime.sessions.begin() as s, captured(engine) as seen:
        assert entries.settle(s, provider="stripe", kind="fee", magnitude=70, currency="USD", occurred_at=now,
                              effect_key="hist:fee:7", now=now) == -11
        assert entries.booked(s, "hist:fee:7") == -70
    assert_few(engine, seen, "ledger_entries")


def test_duplicate_charge_check_reads_only_the_customers_payments(runtime):
    engine, now = runtime.engine, runtime.clock()
    with engine.begin() as conn:
        pks = _orders(conn, now, BIG)
        conn.execute(insert(Payment), [dict(provider="paddle", order_pk=pk, customer_ref=f"hist_ctm_{i}", amount=1000,
                                            currency="USD", paid_at=now - timedelta(days=3), transaction_id=f"txn_{i}",
                                            captured=True, created_at=now, updated_at=now) for i, pk in enumerate(pks)])
        pay = dict(conn.execute(select(Payment.transaction_id, Payment.id)).all())
        conn.execute(insert(PaymentItem), [dict(payment_pk=pay[f"txn_{i}"], price_id=f"pri_{i % 5}", amount=1000)
                                           for i in range(BIG)])
        # The customer's second charge of the same price, an hour after the first.
        conn.execute(insert(Payment), [dict(provider="paddle", customer_ref="hist_ctm_11", amount=1000, currency="USD",
                                            paid_at=now - timedelta(days=3, hours=-1), transaction_id="txn_again",
                                            captured=True, created_at=now, updated_at=now)])
        again = conn.execute(select(Payment.id).where(Payment.transaction_id == "txn_again")).scalar_one()
        conn.execute(insert(PaymentItem), [dict(payment_pk=again, price_id="pri_1", amount=1000)])
    analyze(engine)
    with runtime.sessions.begin() as s, captured(engine) as seen:
        payment = s.get(Payment, again)
        payments.flag_duplicates(s, payment)
        assert payment.duplicate_of == pay["txn_11"]
    assert_few(engine, seen, "payments")
    assert_few(engine, seen, "payment_items")


def test_a_customers_disputes_are_found_without_reading_every_order(runtime):
    engine, now = runtime.engine, runtime.clock()
    with engine.begin() as conn:
        pks = _orders(conn, now, BIG, customer=lambda i: f"hist_ctm_{i // 2}")
        conn.execute(insert(Dispute), [dict(provider="stripe", provider_dispute_id=f"dp_{i}", order_pk=pk, amount=100,
                                            currency="USD", status="lost", status_at=now, opened_at=now,
                                            created_at=now, updated_at=now) for i, pk in enumerate(pks)])
    analyze(engine)
    with runtime.sessions.begin() as s, captured(engine) as seen:
        order = s.get(Order, pks[20])  # hist_ctm_10: orders 20 and 21
        found = licenses._disputes_of(s, None, order, None)
        # No policy: each dispute holds its own order's licenses only.
        assert [c.dispute.provider_dispute_id for c in found] == ["dp_20"]
    assert_few(engine, seen, "orders")
    assert_few(engine, seen, "disputes")


def test_a_paddle_adjustments_case_is_found_without_reading_every_dispute(runtime):
    """A Paddle adjustment names only its transaction: its case is found by the adjustment that
    charged it back or reversed it, or by the transaction's open chargeback; each by its index,
    not by reading every Paddle dispute (migration 0007)."""
    from bridge.domain.events import DisputeUpdated
    from bridge.ledger import disputes
    engine, now = runtime.engine, runtime.clock()
    with engine.begin() as conn:
        pks = _orders(conn, now, BIG)
        conn.execute(insert(Dispute), [dict(provider="paddle", provider_dispute_id=f"paddle:txn_{i}", order_pk=pk,
                                            amount=100, currency="USD", status="lost", status_at=now, opened_at=now,
                                            transaction_id=f"txn_{i}", adjustment_id=f"adj_{i}",
                                            reversed_by=f"adj_rev_{i}" if i % 2 else None,
                                            created_at=now, updated_at=now) for i, pk in enumerate(pks)])
    analyze(engine)

    def adjustment(adj: str, txn: str, status: str) -> DisputeUpdated:
        return DisputeUpdated(provider="paddle", occurred_at=now, provider_dispute_id=f"paddle:{txn}", amount=100,
                              currency="USD", status="won" if status == "chargeback_reverse" else "lost",
                              provider_status=status, transaction_id=txn, adjustment_id=adj)

    with runtime.sessions.begin() as s, captured(engine) as seen:
        assert disputes._case_key(s, adjustment("adj_7", "txn_7", "chargeback"))[0] == "paddle:txn_7"  # a replay
        assert disputes._case_key(s, adjustment("adj_rev_9", "txn_9", "chargeback_reverse"))[0] == "paddle:txn_9"
        assert disputes._case_key(s, adjustment("adj_rev_new", "txn_8", "chargeback_reverse"))[0] == "paddle:txn_8"
        assert disputes._case_key(s, adjustment("adj_second", "txn_8", "chargeback"))[0] == "paddle:adj_second"
        # No case yet, and it says it looked.
        assert disputes._case_key(s, adjustment("adj_new", "txn_new", "chargeback")) == ("paddle:txn_new", None, True)
    assert_few(engine, seen, "disputes")


def test_the_consoles_search_by_a_payment_id_reads_only_that_payment(runtime):
    from bridge.ledger import search
    engine, now = runtime.engine, runtime.clock()
    with engine.begin() as conn:
        pks = _orders(conn, now, BIG)
        conn.execute(insert(Payment), [dict(provider="stripe" if i % 2 else "paddle", order_pk=pk, amount=1000,
                                            currency="USD", paid_at=now, captured=True, created_at=now, updated_at=now,
                                            charge_id=f"ch_{i}" if i % 2 else None,
                                            payment_intent_id=f"pi_{i}" if i % 2 else None,
                                            transaction_id=None if i % 2 else f"txn_{i}")
                                       for i, pk in enumerate(pks)])
    analyze(engine)
    with runtime.sessions.begin() as s, captured(engine) as seen:
        assert [(o.order_id, why) for o, why in search.find_orders(s, "pi_11")] == [("hist_ord_11", "provider payment id")]
        assert [(o.order_id, why) for o, why in search.find_orders(s, "txn_12")] == [("hist_ord_12", "provider payment id")]
        assert search.find_orders(s, "ch_nothing") == []
    assert_few(engine, seen, "payments")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_claim_uses_the_index_with_or_without_statistics(runtime):
    """SQLite chose a full scan of jobs for the old claim once ANALYZE had run (done jobs are
    kept); the bridge never runs it, but a merchant's tooling may."""
    engine, now = runtime.engine, runtime.clock()
    with engine.begin() as conn:
        conn.execute(insert(Job), [dict(kind="process_event", ref_id=f"d{i}", state="done", run_at=now,
                                        attempts=1, max_attempts=5, created_at=now, finished_at=now) for i in range(BIG)])
    q = Queue(engine, 30.0, 0.05, 1.0)
    for _ in range(2):
        with captured(engine) as seen:
            q.claim("w1", now, limit=8)
        assert_few(engine, seen, "jobs")
        analyze(engine)


def test_a_payment_is_found_by_its_ids_without_reading_the_providers_payments(runtime):
    engine, now = runtime.engine, runtime.clock()
    with engine.begin() as conn:
        conn.execute(insert(Payment), [dict(provider="stripe", amount=1000, currency="USD", paid_at=now,
                                            charge_id=f"ch_{i}", payment_intent_id=f"pi_{i}", captured=True,
                                            created_at=now, updated_at=now) for i in range(BIG)])
    analyze(engine)
    with runtime.sessions.begin() as s, captured(engine) as seen:
        assert [p.charge_id for p in payments.find_payments(s, "stripe", charge_id="ch_17", payment_intent_id="pi_17")] == ["ch_17"]
        assert [p.charge_id for p in payments.find_payments(s, "stripe", payment_intent_id="pi_9")] == ["ch_9"]
        assert payments.find_payments(s, "paddle", charge_id="ch_17") == []
    assert_few(engine, seen, "payments")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_new_payments_look_up_reads_only_what_its_ids_name(runtime):
    """``absent.find`` (SQLite's first look-up of a lone payment; PostgreSQL's comes with the
    lock resolution) asks whether the payment's ids, its subscription, its order and its customer
    are known: each off its index, not by reading every payment of the provider."""
    engine, now = runtime.engine, runtime.clock()
    with engine.begin() as conn:
        pks = _orders(conn, now, BIG)
        conn.execute(insert(Payment), [dict(provider="stripe", order_pk=pk, customer_ref=f"hist_ctm_{i}", amount=1000,
                                            currency="USD", paid_at=now, charge_id=f"ch_hist_{i}",
                                            payment_intent_id=f"pi_hist_{i}", subscription_id=f"sub_hist_{i}",
                                            captured=True, created_at=now, updated_at=now) for i, pk in enumerate(pks)])
    analyze(engine)
    new = SimpleNamespace(provider="stripe", charge_id="ch_new", payment_intent_id="pi_new", transaction_id=None,
                          invoice_id="in_new", checkout_session_id=None, subscription_id="sub_new",
                          order_ref="ord_new", customer_ref="cus_new")
    known = SimpleNamespace(**{**vars(new), "charge_id": "ch_hist_7", "customer_ref": "hist_ctm_8"})
    with runtime.sessions.begin() as s, captured(engine) as seen:
        assert absent.find(s, new) == absent.Resolution(frozenset({"ch_new", "pi_new", "in_new"}),
                                                        frozenset({"ord_new"}), frozenset({"cus_new"}))
        assert absent.find(s, known) == absent.Resolution(frozenset(), frozenset(), frozenset())
    assert_few(engine, seen, "payments")
    assert_few(engine, seen, "orders")


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_lock_resolution_is_planned_once_per_connection_and_probes_its_indexes(runtime):
    """``locks.lock_for_events`` asks one statement per event, the costliest of the event on the
    server when it was planned again for every call (its arrays' lengths, seen by every custom
    plan, kept PostgreSQL from taking the generic one). It is now planned once (psycopg prepares
    it on its fifth call), and that generic plan probes the indexes per id, whatever the arrays
    hold: it reads a few rows of the tables, not every payment of the provider."""
    from bridge.ledger import locks
    engine, now = runtime.engine, runtime.clock()
    with engine.begin() as conn:
        pks = _orders(conn, now, BIG)
        conn.execute(insert(Payment), [dict(provider="paddle", order_pk=pk, customer_ref=f"hist_ctm_{i}", amount=1000,
                                            currency="USD", paid_at=now, transaction_id=f"txn_hist_{i}",
                                            subscription_id=f"sub_hist_{i}", captured=True, created_at=now,
                                            updated_at=now) for i, pk in enumerate(pks)])
    analyze(engine)

    def event(i: int, known: bool) -> SimpleNamespace:
        return SimpleNamespace(transaction_id=f"txn_hist_{i}" if known else f"txn_new_{i}", charge_id=None,
                               payment_intent_id=None, invoice_id=None, checkout_session_id=None,
                               subscription_id=f"sub_hist_{i}" if known else None,
                               order_ref=f"hist_ord_{i + 1}" if known else f"ord_new_{i}",
                               customer_ref=f"hist_ctm_{i}" if known else f"ctm_new_{i}")

    with runtime.sessions.begin() as s:
        for i in range(8):
            new = locks.lock_for_events(s, "paddle", [event(i, known=False)], ask_customers=True)
            assert new.new_customers == {f"ctm_new_{i}"} and new.payment_ids == {f"txn_new_{i}"}
            assert locks.lock_for_events(s, "paddle", [event(i, known=True)], ask_customers=True).new_customers == set()
        driver = s.connection().connection.driver_connection
        plans = driver.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                               "WHERE statement LIKE '%SELECT ''p'', o.order_id, o.customer_id, p.customer_ref%'").fetchall()
        assert plans and plans[0][0] > 0, f"planned for every call: {plans}"
        # The plan it runs, with the values of an event that names known rows.
        driver.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        params = {"provider": "paddle", "ids": "{txn_hist_5,txn_new_1}", "subs": "{sub_hist_5}",
                  "refs": "{hist_ord_9}", "customers": "{hist_ctm_5,ctm_new_1}"}
        doc = driver.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + locks._RESOLVE_EVENT, params).fetchone()[0]
        plan = (json.loads(doc) if isinstance(doc, str) else doc)[0]["Plan"]
        assert _pg_rows_read(plan, "payments") <= 20 and _pg_rows_read(plan, "orders") <= 20, plan
