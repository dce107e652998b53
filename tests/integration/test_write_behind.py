"""New rows written behind (bridge/ledger/write_behind.py): a batch's new payments share one
INSERT per table, and what waits is written before anything that could read it, dropped by a
rollback, never lost at a COMMIT, and numbered without colliding with the database's own ids."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select, text

from bridge.ledger import rows, write_behind
from bridge.ledger.models import LedgerEntry, Order, Payment
from tests.integration.test_queue_batch import _charge, _event_jobs, _events, _store, no_budget  # noqa: F401
from tests.fixtures import stripe_payloads as sp
from tests.support.statements import Transactions

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def _order(ref: str) -> Order:
    return Order(order_id=ref, policy="software-mor", currency="USD", status="awaiting_payment",
                 created_at=NOW, updated_at=NOW)


def _refs(rt) -> list[str]:
    with rt.reads() as s:
        return sorted(s.execute(select(Order.order_id)).scalars())


def _inserts(seen: Transactions, table: str) -> int:
    return sum(st.startswith(f"INSERT INTO {table} ") for st in seen.statements)


def test_a_claim_of_new_payments_writes_each_table_once(runtime, worker, no_budget):  # noqa: F811
    _store(runtime, *(_charge(n) for n in range(4)))
    with Transactions(runtime.engine) as seen:
        assert worker.run_once(limit=8)
    assert _events(runtime) == {f"evt_batch_{n}": "processed" for n in range(4)}
    # Four new customers' payments: one INSERT per table for the four, not one each.
    assert [_inserts(seen, t) for t in ("orders", "payments", "ledger_entries")] == [1, 1, 1]
    assert seen.rollbacks == 0
    with runtime.reads() as s:
        orders = {o.id: o.order_id for o in s.execute(select(Order)).scalars()}
        payments = {p.charge_id: p for p in s.execute(select(Payment)).scalars()}
        entries = s.execute(select(LedgerEntry.payment_pk, LedgerEntry.order_pk, LedgerEntry.kind,
                                   LedgerEntry.amount)).all()
    # Each row points at its own: the ids given before the INSERTs are the rows' ids.
    assert {c: orders[p.order_pk] for c, p in payments.items()} == {f"ch_batch_{n}": f"ord_batch_{n}" for n in range(4)}
    by_payment = {p.id: p.order_pk for p in payments.values()}
    assert sorted((by_payment[pk], o, k, a) == (o, o, k, a) for pk, o, k, a in entries) == [True] * 8
    assert sorted((k, a) for _, _, k, a in entries) == [("fee", -172)] * 4 + [("sale", 4900)] * 4


def test_an_event_about_a_waiting_payment_finds_it(runtime, worker, no_budget):  # noqa: F811
    """The second event of the same charge, in the same batch, finds the payment the first one
    left waiting (its keys answer to it): one payment and one order, not two."""
    again = sp.charge_succeeded(event_id="evt_batch_0_again", charge_id="ch_batch_0", amount=4900,
                                metadata={"order_id": "ord_batch_0"}, customer="cus_batch_0", created=sp.DEFAULT_TIME,
                                balance_transaction=sp.balance_transaction(bt_id="txn_batch_0", amount=4900,
                                                                           fee=172, created=sp.DEFAULT_TIME))
    _store(runtime, _charge(0), _charge(1), again)
    with Transactions(runtime.engine) as seen:
        assert worker.run_once(limit=8)
    assert set(_events(runtime).values()) == {"processed"}
    # Found in the first try: not by a second INSERT of the same charge that failed and undid it.
    assert seen.rollbacks == 0 and seen.savepoints == 0
    with runtime.reads() as s:
        assert s.execute(select(func.count()).select_from(Payment)).scalar_one() == 2
        assert s.execute(select(func.count()).select_from(Order)).scalar_one() == 2
        assert s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one() == 4


def test_a_failing_waiting_insert_undoes_the_try_and_the_events_run_in_savepoints(runtime, worker, monkeypatch,
                                                                                 no_budget):  # noqa: F811
    """An INSERT that fails when it is finally written (here: an id already taken) fails the
    batch's first try, not silently; the events run again, each in a savepoint, and commit."""
    with runtime.sessions.begin() as s:
        rows.add_now(s, _order("ord_already_there"))
    with runtime.reads() as s:
        taken = s.execute(select(Order.id)).scalar_one()
    real = write_behind.take_ids
    calls = []

    def collide(session, table, n):
        got = real(session, table, n)
        calls.append(table.name)
        return [taken] + got[1:] if table.name == "orders" and calls.count("orders") == 1 else got

    monkeypatch.setattr(write_behind, "take_ids", collide)
    _store(runtime, _charge(0), _charge(1))
    with Transactions(runtime.engine) as seen:
        assert worker.run_once(limit=8)
    assert _events(runtime) == {"evt_batch_0": "processed", "evt_batch_1": "processed"}
    assert seen.rollbacks == 1 and seen.savepoints == 2
    assert _refs(runtime) == ["ord_already_there", "ord_batch_0", "ord_batch_1"]
    assert all(j.state == "done" and j.attempts == 1 for j in _event_jobs(runtime).values())


def test_what_waits_is_written_at_commit_and_before_a_read(runtime):
    with runtime.sessions() as s, s.begin():
        write_behind.enable(s, True)
        with Transactions(runtime.engine) as seen:
            rows.add_now(s, _order("ord_wb_1"))
            assert _inserts(seen, "orders") == 0
            # A read of any kind writes what waits first.
            assert s.execute(select(Order.order_id)).scalars().all() == ["ord_wb_1"]
            assert _inserts(seen, "orders") == 1
            rows.add_now(s, _order("ord_wb_2"))
    # The COMMIT wrote the second.
    assert _refs(runtime) == ["ord_wb_1", "ord_wb_2"]


def test_a_rollback_drops_what_waits_and_a_savepoint_keeps_what_came_before(runtime):
    with runtime.sessions() as s:
        with s.begin():
            write_behind.enable(s, True)
            rows.add_now(s, _order("ord_before"))
            nested = s.begin_nested()  # writes what waits first: it came before the savepoint
            dropped = rows.add_now(s, _order("ord_in_savepoint"))
            nested.rollback()
            assert dropped not in s  # and the session forgot its object (rows.py)
            rows.add_now(s, _order("ord_after"))
        assert _refs(runtime) == ["ord_after", "ord_before"]
        with s.begin():
            write_behind.enable(s, True)
            rows.add_now(s, _order("ord_rolled_back"))
            s.rollback()
        with s.begin():  # the same connection: nothing of the rolled-back transaction waits on it
            s.execute(text("SELECT 1"))
    assert _refs(runtime) == ["ord_after", "ord_before"]


def test_ids_given_do_not_collide_with_the_databases_own(runtime):
    """Between rows numbered here, ones the database numbers itself (a plain ORM flush), with
    and without rows waiting at that flush."""
    with runtime.sessions() as s, s.begin():
        write_behind.enable(s, True)
        first = rows.add_now(s, _order("ord_ids_1"))
        s.add(_order("ord_ids_2"))
        s.flush()  # writes what waits first, then the database numbers the second
        third = rows.add_now(s, _order("ord_ids_3"))
        s.execute(select(Order.id)).all()  # the third written: nothing waits
        s.add(_order("ord_ids_4"))
        s.flush()
        fifth = rows.add_now(s, _order("ord_ids_5"))
    with runtime.reads() as s:
        ids = dict(s.execute(select(Order.order_id, Order.id)).all())
    assert len(set(ids.values())) == 5
    assert (ids["ord_ids_1"], ids["ord_ids_3"], ids["ord_ids_5"]) == (first.id, third.id, fifth.id)
