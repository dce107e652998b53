"""The ledger only grows (issue 11 item 12) and the constraints the code relies on are in the
schema (item 13): guarded in the ORM and by the database itself, on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.exc import IntegrityError

from bridge.ledger import entries, schema
from bridge.ledger.append_only import LedgerImmutable
from bridge.ledger.models import Base, LedgerEntry, Order
from bridge.settings import normalize_database_url
from tests.conftest import STRIPE_SECRET
from tests.fixtures import stripe_payloads as sp
from tests.support.signing import stripe_headers

T0 = 1_772_359_200
DAY = 86_400
NOW = datetime(2026, 3, 1, 10, tzinfo=timezone.utc)


def send(client, payload) -> None:
    body = json.dumps(payload).encode()
    r = client.post("/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET))
    assert r.status_code == 200, r.get_data(as_text=True)


def _order(s, order_id: str) -> Order:
    o = Order(order_id=order_id, policy="software-mor", currency="USD", bundle=False, facts={}, source="api",
              status="awaiting_payment", created_at=NOW, updated_at=NOW)
    s.add(o)
    s.flush()
    return o


def _entry(s, key: str = "sale:stripe:ch_x", order_pk=None) -> LedgerEntry:
    entries.post(s, provider="stripe", kind="sale", magnitude=4900, currency="USD", occurred_at=NOW,
                 effect_key=key, now=NOW, order_pk=order_pk, provider_ref="ch_x")
    return s.execute(select(LedgerEntry).where(LedgerEntry.effect_key == key)).scalar_one()


# --- the ORM guard ------------------------------------------------------------------------------------

@pytest.mark.parametrize("column,value", [("amount", 1), ("currency", "EUR"), ("kind", "refund"),
                                          ("occurred_at", datetime(2026, 4, 1, tzinfo=timezone.utc)),
                                          ("effect_key", "other")])
def test_changing_a_written_entry_is_refused_by_the_orm(runtime, column, value):
    with runtime.sessions.begin() as s:
        _entry(s)
    with pytest.raises(LedgerImmutable, match=column):
        with runtime.sessions.begin() as s:
            e = s.execute(select(LedgerEntry)).scalar_one()
            setattr(e, column, value)
            s.flush()
    with pytest.raises(LedgerImmutable):
        with runtime.sessions.begin() as s:
            s.execute(update(LedgerEntry).values(**{column: value}))
    with runtime.reads() as s:
        assert s.execute(select(LedgerEntry.amount, LedgerEntry.currency, LedgerEntry.kind)).one() == (4900, "USD", "sale")


def test_deleting_an_entry_is_refused_by_the_orm(runtime):
    with runtime.sessions.begin() as s:
        _entry(s)
    with pytest.raises(LedgerImmutable):
        with runtime.sessions.begin() as s:
            s.delete(s.execute(select(LedgerEntry)).scalar_one())
            s.flush()


def test_the_order_link_is_filled_once_and_never_moved(runtime):
    with runtime.sessions.begin() as s:
        a, b = _order(s, "ord_a"), _order(s, "ord_b")
        e = _entry(s)
        e.order_pk = a.id      # empty -> an order: the one change allowed
        s.flush()
        ids = (a.id, b.id)
    with pytest.raises(LedgerImmutable, match="order link"):
        with runtime.sessions.begin() as s:
            s.execute(select(LedgerEntry)).scalar_one().order_pk = ids[1]
            s.flush()
    # Also when the link was not loaded before it was set (expired, or a partial load).
    with pytest.raises(LedgerImmutable, match="order link"):
        with runtime.sessions.begin() as s:
            entry = s.execute(select(LedgerEntry)).scalar_one()
            s.expire(entry, ["order_pk"])
            entry.order_pk = ids[1]
            s.flush()


# --- the database's own guard (any client, raw SQL) -------------------------------------------------------

@pytest.mark.parametrize("sql", [
    "UPDATE ledger_entries SET amount = 1",
    "UPDATE ledger_entries SET currency = 'EUR'",
    "UPDATE ledger_entries SET kind = 'fee'",
    "UPDATE ledger_entries SET occurred_at = '2026-04-01 00:00:00'",
    "UPDATE ledger_entries SET occurred_at = NULL",
    "UPDATE ledger_entries SET order_pk = NULL",
    "DELETE FROM ledger_entries",
])
def test_the_database_refuses_changes_to_entries(runtime, sql):
    with runtime.sessions.begin() as s:
        a = _order(s, "ord_a")
        _entry(s, order_pk=a.id)
    with pytest.raises(IntegrityError, match="append-only"):
        with runtime.engine.begin() as conn:
            conn.execute(text(sql))
    with runtime.reads() as s:
        assert s.execute(select(LedgerEntry.amount, LedgerEntry.kind)).one() == (4900, "sale")


def test_the_database_allows_filling_an_empty_order_link_only(runtime):
    with runtime.sessions.begin() as s:
        a, b = _order(s, "ord_a"), _order(s, "ord_b")
        _entry(s)
        ids = (a.id, b.id)
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE ledger_entries SET order_pk = :o"), {"o": ids[0]})
    with pytest.raises(IntegrityError, match="append-only"):
        with runtime.engine.begin() as conn:
            conn.execute(text("UPDATE ledger_entries SET order_pk = :o"), {"o": ids[1]})


# --- changes are corrections -------------------------------------------------------------------------------

def _pay(client, worker):
    send(client, sp.charge_succeeded(event_id="evt_pay", charge_id="ch_c", payment_intent_id="pi_c", amount=4900,
                                     metadata={}, balance_transaction=None, created=T0))
    worker.drain()


def _ledger(runtime, kind):
    with runtime.reads() as s:
        return s.execute(select(LedgerEntry.id, LedgerEntry.amount, LedgerEntry.corrects)
                         .where(LedgerEntry.kind == kind).order_by(LedgerEntry.id)).all()


def test_a_refund_whose_amount_changes_is_corrected_by_a_new_entry(client, runtime, worker):
    """Before: the refund row said 1500 while its posted entry still said 1000."""
    _pay(client, worker)
    for n, amount in ((1, 1000), (2, 1500)):
        send(client, sp.refund_event("refund.updated", event_id=f"evt_rf{n}", refund_id="re_c", charge_id="ch_c",
                                     payment_intent_id="pi_c", amount=amount, status="succeeded",
                                     created=T0 + n * DAY))
        worker.drain()
    (first, a1, c1), (second, a2, c2) = _ledger(runtime, "refund")
    assert (a1, c1) == (-1000, None)
    assert (a2, c2) == (-500, first)
    # Idempotent: the same figure again writes nothing.
    send(client, sp.refund_event("refund.updated", event_id="evt_rf3", refund_id="re_c", charge_id="ch_c",
                                 payment_intent_id="pi_c", amount=1500, status="succeeded", created=T0 + 3 * DAY))
    worker.drain()
    assert len(_ledger(runtime, "refund")) == 2


def test_a_dispute_fee_that_grows_is_corrected_by_a_new_entry(client, runtime, worker):
    """Before: the dispute said fee 2000, the ledger 1500."""
    _pay(client, worker)
    d = dict(dispute_id="dp_c", charge_id="ch_c", payment_intent_id="pi_c", amount=4900, created=T0 + DAY)
    send(client, sp.dispute_event("charge.dispute.funds_withdrawn", event_id="evt_d1", status="needs_response",
                                  dispute_fee=1500, **d))
    worker.drain()
    # Another report of the same withdrawal, with a larger fee (a countered fee added).
    send(client, sp.dispute_event("charge.dispute.funds_withdrawn", event_id="evt_d2", status="under_review",
                                  dispute_fee=2000, **d))
    worker.drain()
    fees = _ledger(runtime, "chargeback_fee")
    assert sum(a for _, a, _ in fees) == -2000, fees
    assert fees[0][2] is None and all(c == fees[0][0] for _, _, c in fees[1:])
    with runtime.reads() as s:
        from bridge.ledger.models import Dispute
        assert s.execute(select(Dispute.fee)).scalar_one() == 2000


# --- constraints, and the migration that adds them to an existing database ------------------------------------

@pytest.fixture
def blank_url(db_url, tmp_path):
    """An empty database of the test's backend, not migrated."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'blank.sqlite3'}"
        return
    base = normalize_database_url(os.environ["TEST_DATABASE_URL"])
    name = f"bridge_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    sep = "&" if "?" in base else "?"
    yield base + f"{sep}options=-csearch_path%3D{name}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    admin.dispose()


SEED = [
    "INSERT INTO orders (id, order_id, policy, currency, bundle, facts, source, status, customer_business, "
    "created_at, updated_at) VALUES (1, 'ord_1', 'software-mor', 'USD', false, '{}', 'api', 'paid', false, "
    "'2026-03-01 10:00:00', '2026-03-01 10:00:00')",
    "INSERT INTO order_items (id, order_pk, item_id, category, billing, amount, facts) "
    "VALUES (1, 1, 'li_1', 'license', 'one_time', 4900, '{}')",
    "INSERT INTO payments (id, provider, order_pk, amount, fee, currency, paid_at, charge_id, captured, status, "
    "created_at, updated_at) VALUES (1, 'stripe', 1, 4900, 172, 'USD', '2026-03-01 10:00:00', 'ch_1', true, "
    "'succeeded', '2026-03-01 10:00:00', '2026-03-01 10:00:00')",
    "INSERT INTO licenses (license_id, order_pk, item_id, status, changed_at, revoked, holds, seq) "
    "VALUES ('lic_1', 1, 'li_1', 'active', '2026-03-01 10:00:00', false, '[]', 0)",
    "INSERT INTO ledger_entries (id, provider, kind, order_pk, payment_pk, amount, currency, occurred_at, "
    "effect_key, created_at) VALUES (1, 'stripe', 'sale', 1, 1, 4900, 'USD', '2026-03-01 10:00:00', "
    "'sale:stripe:ch_1', '2026-03-01 10:00:00')",
]


def _seed(url: str, extra: list[str] = ()) -> None:
    engine = create_engine(url)
    schema.upgrade(engine, "0002")
    with engine.begin() as conn:
        for stmt in [*SEED, *extra]:
            conn.execute(text(stmt))
    engine.dispose()


BREAKS = [
    ("duplicate license", "INSERT INTO licenses (license_id, order_pk, item_id, status, changed_at, revoked, holds, seq) "
                          "VALUES ('lic_2', 1, 'li_1', 'active', '2026-03-01 10:00:00', false, '[]', 0)"),
    ("negative refund", "INSERT INTO refunds (provider, provider_refund_id, payment_pk, amount, currency, status, items, "
                        "created_at, updated_at) VALUES ('stripe', 're_x', 1, -5, 'USD', 'succeeded', '[]', "
                        "'2026-03-01 10:00:00', '2026-03-01 10:00:00')"),
    ("unknown refund status", "INSERT INTO refunds (provider, provider_refund_id, payment_pk, amount, currency, status, "
                              "items, created_at, updated_at) VALUES ('stripe', 're_y', 1, 5, 'USD', 'done', '[]', "
                              "'2026-03-01 10:00:00', '2026-03-01 10:00:00')"),
    ("negative fee", "UPDATE payments SET fee = -1"),
    ("unknown event status", "INSERT INTO webhook_events (provider, provider_event_id, event_type, body, headers, "
                             "received_at, status) VALUES ('stripe', 'evt_x', 't', '', '{}', "
                             "'2026-03-01 10:00:00', 'weird')"),
    ("unknown ledger kind", "INSERT INTO ledger_entries (provider, kind, amount, currency, occurred_at, effect_key, "
                            "created_at) VALUES ('stripe', 'gift', 1, 'USD', '2026-03-01 10:00:00', 'k2', "
                            "'2026-03-01 10:00:00')"),
    ("second provider refund of one request and payment",
     "INSERT INTO refund_requests (id, order_pk, status, reason, items, requested_at, facts, item_facts, decision, "
     "refund_amount, fee_deducted, created_at, updated_at) VALUES ('rr_1', 1, 'approved', 'r', '[]', "
     "'2026-03-01 10:00:00', '{}', '{}', '{}', 0, 0, '2026-03-01 10:00:00', '2026-03-01 10:00:00'); "
     "INSERT INTO refunds (provider, payment_pk, refund_request_id, amount, currency, status, items, created_at, "
     "updated_at) VALUES ('stripe', 1, 'rr_1', 5, 'USD', 'pending', '[]', '2026-03-01 10:00:00', '2026-03-01 10:00:00'); "
     "INSERT INTO refunds (provider, payment_pk, refund_request_id, amount, currency, status, items, created_at, "
     "updated_at) VALUES ('stripe', 1, 'rr_1', 5, 'USD', 'pending', '[]', '2026-03-01 10:00:00', '2026-03-01 10:00:00')"),
]


def _run(url: str, sql: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for stmt in sql.split("; "):
                conn.execute(text(stmt))
    finally:
        engine.dispose()


def test_upgrading_a_database_with_data_from_0002_adds_the_constraints(blank_url):
    _seed(blank_url)
    engine = create_engine(blank_url)
    schema.upgrade(engine)
    assert schema.is_current(engine)
    engine.dispose()
    for what, sql in BREAKS:
        with pytest.raises(IntegrityError):
            _run(blank_url, sql)
        # ...and the data that was there is intact and still writable within the rules.
    _run(blank_url, "UPDATE payments SET fee = 180")
    _run(blank_url, "UPDATE ledger_entries SET order_pk = 1")  # unchanged value: allowed
    with pytest.raises(IntegrityError, match="append-only"):
        _run(blank_url, "UPDATE ledger_entries SET amount = 1")


@pytest.mark.parametrize("what,sql", BREAKS[:4])
def test_an_upgrade_over_rows_that_break_a_constraint_stops_naming_it(blank_url, what, sql):
    _seed(blank_url)
    _run(blank_url, sql)
    engine = create_engine(blank_url)
    try:
        with pytest.raises(RuntimeError, match="0003_money"):
            schema.upgrade(engine)
        assert schema.current_revision(engine) == "0002"
    finally:
        engine.dispose()


def test_the_models_match_the_migrations(runtime):
    """No difference at all between bridge/ledger/models.py and the migrated schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    with runtime.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == []


def test_settle_first_writes_at_once_and_still_corrects_what_was_booked(runtime):
    """``first`` (the caller's record is new) skips the look-up; were the key booked after all,
    the figure is still settled by a correcting entry, never booked twice."""
    common = dict(provider="stripe", kind="refund", currency="USD", occurred_at=NOW, now=NOW, provider_ref="re_f")
    with runtime.sessions() as s, s.begin():
        assert entries.settle(s, magnitude=1000, effect_key="refund:stripe:re_first", first=True, **common) == -1000
        # Booked already (a record created anew over an old key): 1000 booked, 1500 reported
        assert entries.settle(s, magnitude=1500, effect_key="refund:stripe:re_first", first=True, **common) == -500
        assert entries.settle(s, magnitude=1500, effect_key="refund:stripe:re_first", first=True, **common) is None
        assert entries.booked(s, "refund:stripe:re_first") == -1500
        rows = s.execute(select(LedgerEntry.amount, LedgerEntry.corrects.is_not(None))
                         .where(LedgerEntry.provider_ref == "re_f").order_by(LedgerEntry.id)).all()
        assert [tuple(r) for r in rows] == [(-1000, False), (-500, True)]


def test_every_new_session_factory_is_guarded(runtime):
    """A factory made after another was collected is guarded too (the guard once asked
    ``event.contains``, whose registry is keyed by ``id()``: a new factory with a dead one's id
    was taken as guarded already)."""
    import gc

    from bridge.ledger.db import make_session_factory
    with runtime.sessions.begin() as s:
        _entry(s)
    for _ in range(20):
        factory = make_session_factory(runtime.engine)
        with pytest.raises(LedgerImmutable):
            with factory.begin() as s:
                s.execute(select(LedgerEntry)).scalar_one().amount = 1
                s.flush()
        del factory, s
        gc.collect()


def test_upgrading_to_0007_gives_each_license_its_last_notice(blank_url):
    """Licenses written before 0007 had notices but ``seq`` 0: the upgrade fills their last
    notice in (the next one is numbered after it), and leaves those with none empty."""
    engine = create_engine(blank_url)
    schema.upgrade(engine, "0006_lookups")
    with engine.begin() as conn:
        for stmt in SEED[:4]:
            conn.execute(text(stmt))
        conn.execute(text("INSERT INTO licenses (license_id, order_pk, item_id, status, changed_at, revoked, holds, "
                          "seq) VALUES ('lic_2', 1, 'li_2', 'active', '2026-03-01 10:00:00', false, '[]', 0)"))
        for seq, (mid, type_) in enumerate([("msg_a", "license.suspended"), ("msg_b", "license.reinstated"),
                                            ("msg_c", "license.suspended")], start=1):
            conn.execute(text("INSERT INTO outbound_messages (id, license_id, seq, type, body, created_at, attempts) "
                              "VALUES (:id, 'lic_1', :seq, :type, '{}', '2026-03-02 10:00:00', 0)"),
                         {"id": mid, "seq": seq, "type": type_})
    schema.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT license_id, seq, last_notice_id, last_notice_type FROM licenses "
                                 "ORDER BY license_id")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("lic_1", 3, "msg_c", "license.suspended"), ("lic_2", 0, None, None)]
