"""rows.add_now: a row written without the unit of work is a loaded object, and a rolled-back
savepoint takes its object out of the session with its row."""
from datetime import datetime, timezone

from sqlalchemy import select

from bridge.ledger import rows
from bridge.ledger.models import License, Order, OrderItem

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _order(order_id: str) -> Order:
    return Order(order_id=order_id, policy=None, currency="USD", customer_id="cus_1", facts={},
                 source="provider", created_at=NOW, updated_at=NOW)


def test_written_at_once_with_defaults_and_version(runtime):
    with runtime.sessions() as s, s.begin():
        order = rows.add_now(s, _order("ord_rows_1"))
        assert order.id is not None
        assert order in s and not s.new and not s.dirty  # persistent, nothing pending
        # The ORM's defaults, applied as a flush would have
        assert (order.status, order.bundle, order.customer_business, order.version) == ("awaiting_payment", False, False, 1)
        assert s.get(Order, order.id) is order
        item = rows.add_now(s, OrderItem(order_pk=order.id, item_id="it_1", category="software", billing="one_time",
                                         amount=100, facts={}))
        order.status = "paid"  # an UPDATE through the unit of work, checked against version 1
        s.flush()
        assert order.version == 2
    with runtime.sessions() as s:
        again = s.execute(select(Order).where(Order.order_id == "ord_rows_1")).scalar_one()
        assert (again.status, again.version) == ("paid", 2)
        assert s.execute(select(OrderItem.item_id).where(OrderItem.order_pk == again.id)).scalars().all() == ["it_1"]
        assert item.id is not None


def test_a_rolled_back_savepoint_forgets_its_objects(runtime):
    with runtime.sessions() as s, s.begin():
        kept = rows.add_now(s, _order("ord_rows_kept"))
        try:
            with s.begin_nested():
                gone = rows.add_now(s, _order("ord_rows_gone"))
                lic = rows.add_now(s, License(license_id="lic_rows_gone", order_pk=gone.id, item_id="it",
                                              status="active", reason="paid", changed_at=NOW, revoked=False,
                                              holds=[], seq=0))
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        assert gone not in s and lic not in s
        assert s.get(Order, gone.id) is None  # read again: the row went with the savepoint
        assert s.get(License, "lic_rows_gone") is None
        assert kept in s and s.get(Order, kept.id) is kept
        # The id may be handed out again (SQLite reuses the highest rowid): no clash with a ghost
        again = rows.add_now(s, _order("ord_rows_again"))
        assert s.get(Order, again.id) is again
    with runtime.sessions() as s:
        assert sorted(s.execute(select(Order.order_id).where(Order.order_id.like("ord_rows_%"))).scalars()) == [
            "ord_rows_again", "ord_rows_kept"]


def test_several_rows_in_one_statement_get_their_own_ids(runtime):
    with runtime.sessions() as s, s.begin():
        order = rows.add_now(s, _order("ord_rows_many"))
        items = [OrderItem(order_pk=order.id, item_id=f"it_{i}", category="software", billing="one_time",
                           amount=100 * i, facts={}) for i in range(1, 6)]
        rows.add_all_now(s, items)
        assert len({i.id for i in items}) == 5 and not s.new and not s.dirty
    with runtime.sessions() as s:
        got = dict(s.execute(select(OrderItem.id, OrderItem.item_id).where(OrderItem.order_pk == order.id)).all())
        assert got == {i.id: i.item_id for i in items}
