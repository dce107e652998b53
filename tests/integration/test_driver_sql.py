"""Core statements run on the driver's connection (bridge/ledger/driver_sql.py) give what
SQLAlchemy's own execution gives: the same values of every type, the same lists expanded, the
same errors, and the statements still seen by the engine's listeners."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from bridge.ledger import driver_sql, reads
from bridge.ledger.models import Job, Order
from tests.support.statements import Transactions

NOW = datetime(2026, 3, 1, 12, 0, 30, 123456, tzinfo=timezone.utc)
COLUMNS = ("order_id", "policy", "currency", "bundle", "customer_business", "facts", "source", "status",
           "created_at", "updated_at", "version")
_INSERT = insert(Order)
_BY_REFS = select(*(getattr(Order, c) for c in ("id",) + COLUMNS)).where(
    Order.order_id.in_(bindparam("refs", expanding=True))).order_by(Order.order_id)
_STATUS = update(Order).where(Order.order_id == bindparam("ref")).values(status=bindparam("to"))


def _order(ref: str, **over) -> dict:
    values = dict(order_id=ref, policy="software-mor", currency="USD", bundle=False, customer_business=True,
                  facts={"seats": 3, "nested": {"a": [1, None, "é"]}}, source="api", status="awaiting_payment",
                  created_at=NOW, updated_at=NOW, version=1)
    values.update(over)
    return values


def test_what_is_written_and_read_is_what_sqlalchemy_writes_and_reads(runtime):
    with runtime.engine.begin() as conn:
        assert driver_sql.write(conn, _INSERT, [_order("ord_a"), _order("ord_b", bundle=True, facts={})]) == 2
        driver_sql.write(conn, _INSERT, [_order("ord_c", policy=None, currency=None)])  # one: not executemany
        ours = driver_sql.rows(conn, _BY_REFS, {"refs": ["ord_a", "ord_b", "ord_c"]})
        theirs = conn.execute(_BY_REFS, {"refs": ["ord_a", "ord_b", "ord_c"]}).all()
    assert [tuple(r) for r in ours] == [tuple(r) for r in theirs]
    a, b, c = ours
    # The types' own conversions ran: aware UTC datetimes, real booleans, JSON documents.
    assert a.created_at == NOW and a.created_at.tzinfo is not None
    assert (a.bundle, b.bundle, a.customer_business) == (False, True, True)
    assert type(a.bundle) is bool
    assert a.facts == {"seats": 3, "nested": {"a": [1, None, "é"]}} and b.facts == {}
    assert (c.policy, c.currency) == (None, None)
    assert isinstance(a.id, int) and a._fields[0] == "id"


def test_a_list_for_in_is_expanded_and_an_empty_one_finds_nothing(runtime):
    with runtime.engine.begin() as conn:
        driver_sql.write(conn, _INSERT, [_order(f"ord_{n}") for n in range(5)])
        assert [r.order_id for r in driver_sql.rows(conn, _BY_REFS, {"refs": ["ord_3", "ord_1", "ord_9"]})] \
            == ["ord_1", "ord_3"]
        assert driver_sql.rows(conn, _BY_REFS, {"refs": []}) == []
        # The same statement with another length of list: its own SQL, not the first one's.
        assert len(driver_sql.rows(conn, _BY_REFS, {"refs": [f"ord_{n}" for n in range(5)]})) == 5


def test_the_rows_changed_are_counted_for_one_and_for_several_parameter_sets(runtime):
    with runtime.engine.begin() as conn:
        driver_sql.write(conn, _INSERT, [_order(f"ord_{n}") for n in range(3)])
        assert driver_sql.write(conn, _STATUS, [{"ref": "ord_0", "to": "paid"}]) == 1
        assert driver_sql.write(conn, _STATUS, [{"ref": "ord_1", "to": "paid"}, {"ref": "ord_2", "to": "paid"},
                                                {"ref": "ord_none", "to": "paid"}]) == 2
        assert driver_sql.write(conn, _STATUS, []) == 0
        assert {r.status for r in driver_sql.rows(conn, _BY_REFS, {"refs": ["ord_0", "ord_1", "ord_2"]})} == {"paid"}


def test_a_driver_error_is_sqlalchemys_and_the_transaction_can_go_on_after_a_savepoint(runtime):
    with runtime.engine.begin() as conn:
        driver_sql.write(conn, _INSERT, [_order("ord_twice")])
        with pytest.raises(IntegrityError) as raised:
            with conn.begin_nested():
                driver_sql.write(conn, _INSERT, [_order("ord_twice")])
        assert isinstance(raised.value, DBAPIError) and "orders" in str(raised.value).lower()
        assert [r.order_id for r in driver_sql.rows(conn, _BY_REFS, {"refs": ["ord_twice"]})] == ["ord_twice"]


def test_what_it_cannot_run_as_sqlalchemy_would_is_refused_before_running_and_read_falls_back(runtime):
    # Job has Python-side defaults: an INSERT that leaves them out would need them computed per row.
    with runtime.engine.begin() as conn, Transactions(runtime.engine) as seen:
        with pytest.raises(driver_sql.Unsupported):
            driver_sql.write(conn, insert(Job), [{"kind": "deliver", "payload": {}}])
        with pytest.raises(driver_sql.Unsupported):
            driver_sql.rows(conn, _STATUS, {"ref": "x", "to": "paid"})  # no rows to return
        assert seen.statements == []
    odd = select(Order.order_id).where(Order.order_id == bindparam("ref.erence"))  # SQLAlchemy escapes this name
    with runtime.sessions.begin() as s:
        s.connection().execute(_INSERT, [_order("ord_odd")])
        with pytest.raises(driver_sql.Unsupported):
            driver_sql.rows(s.connection(), odd, {"ref.erence": "ord_odd"})
        assert reads.read(s, odd, {"ref.erence": "ord_odd"}).scalar_one() == "ord_odd"


def test_the_engines_listeners_see_each_statement(runtime):
    with runtime.sessions.begin() as s, Transactions(runtime.engine) as seen:
        s.connection().execute(_INSERT, [_order("ord_seen")])
        before = len(seen.statements)
        found = reads.read(s, _BY_REFS, {"refs": ["ord_seen"]})
        assert found.one().order_id == "ord_seen" and found.scalars().first() == found[0].id
        assert len(seen.statements) == before + 1 and seen.statements[-1].startswith("SELECT")


def test_a_statements_own_values_are_sent_and_a_missing_one_is_an_error_before_running(runtime):
    from sqlalchemy.exc import InvalidRequestError
    paid = select(Order.order_id).where(Order.status == "paid", Order.order_id == bindparam("ref"))
    with runtime.engine.begin() as conn, Transactions(runtime.engine) as seen:
        driver_sql.write(conn, _INSERT, [_order("ord_p", status="paid"), _order("ord_u")])
        assert [r.order_id for r in driver_sql.rows(conn, paid, {"ref": "ord_p"})] == ["ord_p"]
        assert driver_sql.rows(conn, paid, {"ref": "ord_u"}) == []
        before = len(seen.statements)
        with pytest.raises(InvalidRequestError, match="ref"):
            driver_sql.rows(conn, paid, {})
        assert len(seen.statements) == before
