"""New rows written later and together: the INSERTs of a worker's batch, one per table.

A worker's batch (bridge/worker/batch.py) applies several events in one transaction, and an
event that is a new customer's payment reads nothing once its locks say so (``absent``): it
only writes an order, its items, a payment, its lines, licenses and two ledger entries, six
INSERTs. With the session in write-behind mode (``enable``), ``rows.add_all_now`` and
``entries.post_many`` do not execute theirs: the rows wait in the session, with the ids the
bridge gave them (``take_ids``), and are written by one statement per table, in the order of
the tables' foreign keys, before the next statement that could read them. So consecutive new
payments share their INSERTs, and nothing changes for anything else. What waits is written:

- before any statement the session executes (``session.execute``, ``get``, lazy loads: the
  ``do_orm_execute`` hook) and before its flush of changed objects (``before_flush``);
- before a statement on the driver's connection that could read it (``locks``); the look-ups
  that find an event's rows ask ``pending_keys`` whether a waiting row could be one of them,
  and have what waits written only if so (``locks.lock_for_events``, ``absent.find``);
- before a SAVEPOINT (it belongs outside) and at the COMMIT (``before_commit``).

A ROLLBACK, to a savepoint or of the whole transaction, drops what waits: it was always added
after the innermost savepoint began. The session's own statements on its connection (the job
queue's, the events' outcomes) touch no table rows wait for, or write what waits first.

An INSERT that fails then fails a later statement, not its own event: the batch treats every
error of its first, savepoint-less try that way already (it undoes the transaction and runs the
same events again, each in a savepoint, with write-behind off).

Ids: PostgreSQL's come from the tables' sequences, a block per table in one round trip, kept
for the transaction (unused ones are skipped, as after any rollback); SQLite's from the
table's highest id, read under the write lock every writing transaction holds (``BEGIN
IMMEDIATE``), and read again after each write and each ORM flush (a row the database numbers
itself takes the next).
"""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from bridge.ledger import driver_sql, plain_updates

# All in session.info, for the session's current transaction:
_ON = "bridge_write_behind"               # write-behind mode on
_PENDING = "bridge_write_behind_rows"     # _Pending
_IDS = "bridge_write_behind_ids"          # table name -> ids not given yet
_FLUSHING = "bridge_write_behind_flushing"

# Ids asked of PostgreSQL's sequence per table and round trip: about what a claim of 8 new
# payments uses (items and lines: one or two per payment).
BLOCK = 12

_KNOWN: set[str] = set()  # the tables ids were given for (a refill asks for all of them)


class _Pending:
    def __init__(self) -> None:
        self.groups: dict[tuple, tuple] = {}  # (rank, statement id) -> (statement, rows)
        self.keys: set[str] = set()
        self.numbered: set[str] = set()  # tables whose waiting rows hold ids given here

    def __bool__(self) -> bool:
        return bool(self.groups)


def enable(session: Session, on: bool) -> None:
    """Write-behind mode for this session's next writes (on), or immediate writes again (off;
    what already waits is written by the next statement or the COMMIT, or dropped by a
    ROLLBACK, as always)."""
    session.info[_ON] = on


def enabled(session: Session) -> bool:
    return bool(session.info.get(_ON))


_RANK: dict = {}


def _rank(table) -> int:
    """The table's place in the order of the foreign keys (parents first); computed once (the
    metadata sorts all its tables each time it is asked)."""
    r = _RANK.get(table)
    if r is None:
        r = _RANK[table] = table.metadata.sorted_tables.index(table)
    return r


def add(session: Session, statement, rows: list[dict], keys: Iterable[str] = (), numbered: bool = False) -> None:
    """Keep ``rows`` for ``statement`` (an INSERT) until the next flush. ``keys``: the lock keys
    (``locks``) the rows answer to; ``numbered``: their ids came from ``take_ids``."""
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = _Pending()
    key = (_rank(statement.table), id(statement))
    group = pending.groups.get(key)
    if group is None:
        pending.groups[key] = (statement, list(rows))
    else:
        group[1].extend(rows)
    pending.keys.update(keys)
    if numbered:
        pending.numbered.add(statement.table.name)


def pending_keys(session: Session) -> set[str]:
    pending = session.info.get(_PENDING)
    return pending.keys if pending else set()


def flush(session: Session, transaction=None) -> None:
    """Write what waits in the session, one statement per table, parents first (on the
    connection of ``transaction``, by default the session's current one)."""
    pending = session.info.get(_PENDING)
    if not pending or session.info.get(_FLUSHING):
        return
    session.info[_FLUSHING] = True
    try:
        conn = transaction.connection(None) if transaction is not None else session.connection()
        for _key, (statement, rows) in sorted(pending.groups.items(), key=lambda kv: kv[0][0]):
            driver_sql.write(conn, statement, rows)
        if conn.dialect.name == "sqlite":
            session.info.pop(_IDS, None)  # see the module's docstring
    finally:
        session.info[_FLUSHING] = False
    session.info.pop(_PENDING, None)


def _drop(session: Session) -> None:
    session.info.pop(_PENDING, None)


def take_ids(session: Session, table, n: int) -> list[int]:
    """``n`` ids for new rows of ``table`` (an autoincrement integer primary key ``id``)."""
    _KNOWN.add(table.name)
    if len(session.info.get(_IDS, {}).get(table.name, ())) < n:
        _refill(session, {table.name: n})
    ids = session.info[_IDS]
    given, ids[table.name] = ids[table.name][:n], ids[table.name][n:]
    return given


def _refill(session: Session, need: dict[str, int]) -> None:
    """Ids for every table ids were given for, in one statement."""
    names = sorted(_KNOWN)
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        pending = session.info.get(_PENDING)
        if pending and not pending.numbered.isdisjoint(need):
            # Rows waiting hold ids of the table's last block: written first, so that its
            # highest id is in the table (which also forgets every block).
            flush(session)
    ids = session.info.setdefault(_IDS, {})
    if conn.dialect.name == "postgresql":
        # The sequence's own order: ascending per table, whatever else runs meanwhile.
        sql = " UNION ALL ".join(
            f"(SELECT {i}, nextval(pg_get_serial_sequence('{name}', 'id')) FROM generate_series(1, "
            f"{max(BLOCK, need.get(name, 0)) - len(ids.get(name, ()))}))" for i, name in enumerate(names)
            if max(BLOCK, need.get(name, 0)) > len(ids.get(name, ())))
        got: dict[str, list[int]] = {}
        for i, value in conn.exec_driver_sql(sql):
            got.setdefault(names[i], []).append(value)
        for name, values in got.items():
            ids[name] = ids.get(name, []) + sorted(values)
        return
    # SQLite: the next ids after the highest (this transaction holds the write lock); none of
    # what waits is of these tables' numbered rows (see above).
    names = [name for name in names if name in need or name not in ids]
    sql = "SELECT " + ", ".join(f"(SELECT coalesce(max(id), 0) FROM {name})" for name in names)
    highest = conn.exec_driver_sql(sql).one()
    for name, top in zip(names, highest):
        count = max(BLOCK, need.get(name, 0))
        ids[name] = list(range(top + 1, top + 1 + count))


# -- hooks (installed on the session factory: db.make_session_factory) -----------------------------

def install(factory: sessionmaker) -> sessionmaker:
    """Have the factory's sessions write what waits when they must (see the module's docstring)."""
    if not getattr(factory, "_bridge_write_behind", False):
        event.listen(factory, "do_orm_execute", _before_statement)
        event.listen(factory, "before_flush", _before_flush)
        event.listen(factory, "before_commit", _before_commit)
        event.listen(factory, "after_transaction_create", _after_transaction_create)
        event.listen(factory, "after_soft_rollback", _after_soft_rollback)
        event.listen(factory, "after_transaction_end", _after_transaction_end)
        factory._bridge_write_behind = True
    return factory


def _before_statement(state) -> None:
    if state.session.info.get(_PENDING):
        flush(state.session)


def _before_commit(session: Session) -> None:
    flush(session)


def _before_flush(session: Session, _context, _instances) -> None:
    flush(session)
    if enabled(session):
        plain_updates.write(session)  # the changed objects, past the unit of work
    if session.new and session.get_bind().dialect.name == "sqlite":
        # The flush adds rows the database numbers itself, past the ids of the last block (its
        # changed objects alone take no ids).
        session.info.pop(_IDS, None)


def _after_transaction_create(session: Session, transaction) -> None:
    if transaction.nested:
        # Before its SAVEPOINT (emitted when it first asks for its connection): what waits
        # came before it.
        flush(session, transaction.parent)


def _after_soft_rollback(session: Session, _previous) -> None:
    _drop(session)


def _after_transaction_end(session: Session, transaction) -> None:
    if transaction.parent is None:
        _drop(session)
        session.info.pop(_IDS, None)
