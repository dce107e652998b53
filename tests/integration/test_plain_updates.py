"""Objects made from rows (reads.objects, reads.get) and changed objects written past the unit
of work in write-behind mode (bridge/ledger/plain_updates.py): the same rows, the same versions,
the same errors as the ORM's own loading and flushing."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.orm.exc import StaleDataError

from bridge.ledger import reads, rows, write_behind
from bridge.ledger.models import Base, Order
from tests.support.statements import Transactions

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
_O = Order.__table__
_ALL = select(_O).order_by(_O.c.order_id)


def _orders(rt, *refs):
    with rt.sessions.begin() as s:
        for ref in refs:
            rows.add_now(s, Order(order_id=ref, policy="software-mor", currency="USD", status="awaiting_payment",
                                  facts={"n": 1}, created_at=NOW, updated_at=NOW))


def _stored(rt):
    with rt.engine.connect() as conn:
        return {r.order_id: (r.status, r.version, r.facts) for r in conn.execute(_ALL)}


@pytest.fixture
def orm_writes():
    """The unit of work's own UPDATEs (its mapper events), counted while a test runs."""
    seen = []

    def count(mapper, conn, target):
        seen.append(target)
    event.listen(Base, "before_update", count, propagate=True)
    yield seen
    event.remove(Base, "before_update", count)


def test_objects_are_the_sessions_own_and_made_ones_are_loaded_and_persistent(runtime):
    _orders(runtime, "ord_a", "ord_b")
    with runtime.sessions.begin() as s, Transactions(runtime.engine) as seen:
        a = s.execute(select(Order).where(Order.order_id == "ord_a")).scalar_one()
        a.status = "paid"  # changed, not flushed
        s.autoflush = False
        found = reads.objects(s, Order, _ALL)
        assert found[0] is a and a.status == "paid"  # the session's object, its change kept
        b = found[1]
        assert (b.order_id, b.facts, b.created_at) == ("ord_b", {"n": 1}, NOW)
        before = len(seen.statements)
        assert (b.version, b.currency, b.source) == (1, "USD", "api")  # loaded: no SELECT to read them
        assert len(seen.statements) == before
        assert reads.get(s, Order, b.id) is b and len(seen.statements) == before  # known: no statement
        assert reads.get(s, Order, 10 ** 9) is None
        b.status = "refunded"
    assert _stored(runtime) == {"ord_a": ("paid", 2, {"n": 1}), "ord_b": ("refunded", 2, {"n": 1})}


def test_objects_need_every_column(runtime):
    _orders(runtime, "ord_a")
    with runtime.sessions.begin() as s:
        with pytest.raises(ValueError, match="all of its columns"):
            reads.objects(s, Order, select(_O.c.id, _O.c.order_id))


def test_in_write_behind_mode_changed_objects_are_one_update_per_set_of_columns(runtime, orm_writes):
    _orders(runtime, "ord_a", "ord_b", "ord_c")
    with runtime.sessions.begin() as s, Transactions(runtime.engine) as seen:
        write_behind.enable(s, True)
        a, b, c = reads.objects(s, Order, _ALL)
        a.status, b.status = "paid", "paid"
        c.facts = {"n": 2}
        c.status = c.status  # set to what it was: nothing to write for it
        s.flush()
        assert not s.dirty and orm_writes == []
        updates = [st for st in seen.statements if st.startswith("UPDATE orders")]
        assert len(updates) == 2 and all("version" in st for st in updates)  # (status), (facts)
        assert (a.version, b.version, c.version) == (2, 2, 2)
        s.flush()
        assert len([st for st in seen.statements if st.startswith("UPDATE orders")]) == 2  # clean now
        write_behind.enable(s, False)
    assert _stored(runtime) == {"ord_a": ("paid", 2, {"n": 1}), "ord_b": ("paid", 2, {"n": 1}),
                                "ord_c": ("awaiting_payment", 2, {"n": 2})}


def test_a_row_that_moved_underneath_fails_the_flush_as_the_orm_would(runtime):
    _orders(runtime, "ord_a")
    with runtime.sessions.begin() as s:
        write_behind.enable(s, True)
        (a,) = reads.objects(s, Order, _ALL)
        s.connection().execute(update(_O).values(version=_O.c.version + 1))  # another writer's change
        a.status = "paid"
        with pytest.raises(StaleDataError, match="expected to update 1 row"):
            s.flush()
        s.rollback()
    assert _stored(runtime) == {"ord_a": ("awaiting_payment", 1, {"n": 1})}  # both undone


def test_a_rollback_forgets_what_was_written(runtime):
    _orders(runtime, "ord_a")
    s = runtime.sessions()
    try:
        with s.begin():
            write_behind.enable(s, True)
            (a,) = reads.objects(s, Order, _ALL)
            a.status = "paid"
            s.flush()
            s.rollback()
        with s.begin():
            assert a.status == "awaiting_payment" and a.version == 1  # read again, as stored
    finally:
        s.close()


def test_outside_write_behind_mode_the_unit_of_work_writes(runtime, orm_writes):
    _orders(runtime, "ord_a")
    with runtime.sessions.begin() as s:
        (a,) = reads.objects(s, Order, _ALL)
        a.status = "paid"
        s.flush()
        assert orm_writes == [a]
    assert _stored(runtime) == {"ord_a": ("paid", 2, {"n": 1})}
