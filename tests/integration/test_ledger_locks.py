"""Who waits for whom when ledger transactions run at once (bridge/ledger/locks.py), and the
row versions that refuse a write made from a stale read.

On PostgreSQL a transaction applying an event holds its payment, order and customer until it
ends: an event of another customer goes ahead meanwhile; one about the same payment, order or
customer (another event, a refund request) waits. SQLite has a single writer, so only the
row-version test runs there too.
"""
import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy.orm.exc import StaleDataError

from bridge.domain.events import DisputeUpdated, ParsedEvent, PaymentSucceeded, RefundUpdated
from bridge.ledger.apply import apply_parsed
from bridge.ledger.locks import LockBusy, _rows, lock, lock_order, lock_payment, lock_refund_request, no_wait
from bridge.ledger.models import Order, Payment, RefundRequest
from bridge.services.effects import ServiceEffects

T = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)


def _pay(n: int, customer: str) -> ParsedEvent:
    ev = PaymentSucceeded(provider="stripe", occurred_at=T, amount=4900, currency="USD", paid_at=T,
                          order_ref=f"ord_lock_{n}", customer_ref=customer, fee=172, charge_id=f"ch_lock_{n}",
                          payment_intent_id=f"pi_lock_{n}")
    return ParsedEvent("stripe", f"evt_pay_{n}", "charge.succeeded", T, (ev,))


def _refund(n: int, k: int = 0) -> ParsedEvent:
    ev = RefundUpdated(provider="stripe", occurred_at=T, provider_refund_id=f"re_lock_{n}_{k}", amount=1000,
                       currency="USD", status="succeeded", charge_id=f"ch_lock_{n}")
    return ParsedEvent("stripe", f"evt_re_{n}_{k}", "charge.refunded", T, (ev,))


def _dispute(n: int) -> ParsedEvent:
    ev = DisputeUpdated(provider="stripe", occurred_at=T, provider_dispute_id=f"dp_lock_{n}", amount=4900,
                        currency="USD", status="open", charge_id=f"ch_lock_{n}")
    return ParsedEvent("stripe", f"evt_dp_{n}", "charge.dispute.created", T, (ev,))


def _apply(rt, parsed: ParsedEvent) -> None:
    with rt.sessions.begin() as s:
        apply_parsed(ServiceEffects.of(rt), s, parsed, T)


def _in_thread(fn) -> threading.Event:
    done = threading.Event()
    errors = []

    def run():
        try:
            fn()
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    done.errors = errors
    return done


def test_transactions_wait_only_for_their_own_payment_order_and_customer(runtime, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: every transaction waits for the one before")
    rt = runtime
    _apply(rt, _pay(1, "cus_lock_a"))
    _apply(rt, _pay(2, "cus_lock_b"))
    _apply(rt, _pay(3, "cus_lock_a"))  # another order of customer a

    held = rt.sessions()
    held.begin()
    apply_parsed(ServiceEffects.of(rt), held, _refund(1), T)   # holds payment 1, order 1 and customer a
    held.flush()
    try:
        other_customer = _in_thread(lambda: _apply(rt, _refund(2)))
        same_payment = _in_thread(lambda: _apply(rt, _dispute(1)))
        same_customer = _in_thread(lambda: _apply(rt, _refund(3)))

        def decide_on_order_1():
            with rt.sessions.begin() as s:
                lock_order(s, order_id="ord_lock_1")
        same_order = _in_thread(decide_on_order_1)

        assert other_customer.wait(10), "an event of another customer waited"
        assert not other_customer.errors, other_customer.errors
        for name, ev in (("same payment", same_payment), ("same customer", same_customer),
                         ("same order", same_order)):
            assert not ev.wait(0.5), f"a transaction about the {name} did not wait"
    finally:
        held.commit()
        held.close()
    for ev in (same_payment, same_customer, same_order):
        assert ev.wait(10) and not ev.errors, ev.errors
    with rt.reads() as s:
        statuses = {o.order_id: o.status for o in s.query(Order)}
    assert (statuses["ord_lock_1"], statuses["ord_lock_2"], statuses["ord_lock_3"]) == (
        "disputed", "partially_refunded", "partially_refunded"), statuses


def test_recording_a_refund_waits_for_an_event_about_its_payment(runtime, db_url):
    """The race T7 found under the old global lock: a refund's confirmation webhook applied
    while the worker records the provider's answer for the same request (``_record_result``,
    ``_record_refusal``, ``confirm_refund``: the request's lock) or claims the payment for a
    refund call (``_claim``, ``fetch_fee``: the payment's lock). Each must wait for the other,
    or the later commit leaves the request ``refunding`` from a stale read."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: every transaction waits for the one before")
    rt = runtime
    _apply(rt, _pay(11, "cus_lock_r"))
    _apply(rt, _pay(12, "cus_lock_s"))
    with rt.sessions.begin() as s:
        order = s.query(Order).filter_by(order_id="ord_lock_11").one()
        s.add(RefundRequest(id="rr_lock_11", order_pk=order.id, status="refunding", reason="not_satisfied",
                            requested_at=T, created_at=T, updated_at=T))
        pk_11 = s.query(Payment).filter_by(charge_id="ch_lock_11").one().id
        pk_12 = s.query(Payment).filter_by(charge_id="ch_lock_12").one().id

    def locked(fn):
        def run():
            with rt.sessions.begin() as s:
                fn(s)
        return _in_thread(run)

    held = rt.sessions()
    held.begin()
    apply_parsed(ServiceEffects.of(rt), held, _refund(11), T)  # the confirmation webhook, not committed
    held.flush()
    try:
        other_payment = locked(lambda s: lock_payment(s, pk_12))
        request = locked(lambda s: lock_refund_request(s, "rr_lock_11"))
        payment = locked(lambda s: lock_payment(s, pk_11))
        assert other_payment.wait(10) and not other_payment.errors, "a payment of another customer waited"
        for name, ev in (("refund request", request), ("payment", payment)):
            assert not ev.wait(0.5), f"recording a refund on the same {name} did not wait"
    finally:
        held.commit()
        held.close()
    for ev in (request, payment):
        assert ev.wait(10) and not ev.errors, ev.errors


def test_a_write_from_a_stale_read_of_an_order_fails(runtime):
    rt = runtime
    _apply(rt, _pay(7, "cus_lock_c"))
    with rt.sessions.begin() as s:
        stale = s.query(Order).filter_by(order_id="ord_lock_7").one()   # read, version 1
    with rt.sessions.begin() as s:
        fresh = s.query(Order).filter_by(order_id="ord_lock_7").one()
        fresh.status = "refunded"                                        # committed meanwhile
    s = rt.sessions()
    try:
        s.add(stale)
        stale.status = "disputed"                                          # derived from the stale read
        with pytest.raises(StaleDataError):
            s.commit()
    finally:
        s.close()
    with rt.reads() as s:
        assert s.query(Order).filter_by(order_id="ord_lock_7").one().status == "refunded"


def test_keys_and_ids_reach_postgresql_as_sent(runtime, db_url):
    """The locks pass their keys and the event's provider ids as array literals: an id with
    quotes, backslashes, commas, braces or spaces must arrive as itself."""
    if not db_url.startswith("postgresql"):
        pytest.skip("array literals are PostgreSQL's")
    from sqlalchemy import text
    from bridge.ledger.locks import _array, key_hash
    ids = ['ch_"quoted"', "back\\slash", "a,b", "{brace}", " spaced ", "NULL", "", "ü"]
    keys = [key_hash(f"payment:stripe:{i}") for i in ids]
    with runtime.sessions.begin() as s:
        assert list(s.execute(text("SELECT unnest(CAST(:a AS TEXT[]))"), {"a": _array(ids)}).scalars()) == ids
        assert list(s.execute(text("SELECT unnest(CAST(:a AS BIGINT[]))"), {"a": _array(keys)}).scalars()) == keys
        # and on the driver's connection, as lock() and the look-ups send them
        assert [r[0] for r in _rows(s, "SELECT unnest(CAST(%(a)s AS TEXT[]))", {"a": _array(ids)})] == ids


def test_no_wait_mode_fails_on_a_busy_key_and_a_rolled_back_savepoint_gives_its_keys_back(runtime, db_url):
    """What a worker's batch (bridge/worker/batch.py) relies on: in no-wait mode ``lock`` raises
    ``LockBusy`` at once for a key another transaction holds, and PostgreSQL releases the keys
    taken in a savepoint when it is rolled back, while the transaction goes on."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has no keyed locks")
    rt = runtime
    holder, other = rt.sessions(), rt.sessions()
    holder.begin()
    other.begin()
    try:
        lock(holder, ["order:kept"])
        savepoint = holder.begin_nested()
        lock(holder, ["order:given_back", "customer:given_back"])
        no_wait(other, True)
        with pytest.raises(LockBusy):
            lock(other, ["order:given_back"])
        savepoint.rollback()
        lock(other, ["order:given_back", "customer:given_back"])  # free again: no LockBusy, no wait
        with pytest.raises(LockBusy) as busy:
            lock(other, ["order:kept", "customer:free"])
        assert busy.value.keys == ["order:kept", "customer:free"]
        assert _rows(holder, "SELECT 1", {}) == [(1,)]  # the holder's transaction is still usable
        no_wait(other, False)
        waited = _in_thread(lambda: lock(other, ["order:kept"]))
        assert not waited.wait(0.3), "a waiting lock did not wait"
    finally:
        holder.commit()
        holder.close()
    assert waited.wait(10) and not waited.errors, waited.errors
    other.rollback()
    other.close()



def test_a_payout_event_holds_its_payout_only(runtime, db_url):
    """A payout event (any event naming a ``payout_id``) holds that payout until it commits:
    sync or the itemizing job writing the same payout waits, another payout goes ahead."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: every transaction waits for the one before")
    from types import SimpleNamespace
    from bridge.ledger.locks import lock_for_events, lock_payout
    rt = runtime
    held = rt.sessions()
    held.begin()
    lock_for_events(held, "stripe", [SimpleNamespace(payout_id="po_lock_1")])
    try:
        def locked(payout_id):
            def run():
                with rt.sessions.begin() as s:
                    lock_payout(s, "stripe", payout_id)
            return _in_thread(run)
        other, same = locked("po_lock_2"), locked("po_lock_1")
        assert other.wait(10) and not other.errors, "another payout waited"
        assert not same.wait(0.5), "the same payout did not wait"
    finally:
        held.commit()
        held.close()
    assert same.wait(10) and not same.errors, same.errors
