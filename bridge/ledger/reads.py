"""Reads of plain values past the ORM: sums, flags, a few columns, rows no one changes.

``session.execute`` runs every statement through the ORM's execution (its events, its compile
state, and for a select of mapped entities, the loading of objects). ``bench/read_paths.py``
measures one look-up of three rows: on SQLite about 90-120 us of the client's CPU as ORM
objects, 25-35 us as a Core select on the session's connection, 4-6 us of it the driver's own
work; on PostgreSQL 340-390 us against 165-220 (bench/README.md, session 22). The worker's
refunds and disputes make about a dozen such reads each. ``read`` runs a Core statement on the
session's connection, after what the session would have written first anyway: its changed
objects (autoflush, unless the caller turned it off) and the rows waiting in write-behind mode
(``write_behind``), on the driver's connection (``driver_sql``: about 5 us on SQLite, 30 on
PostgreSQL, for the same look-up). Its rows are named tuples, whose columns are also
attributes: read-only stand-ins for the objects they come from. ``write`` runs a Core INSERT,
UPDATE or DELETE the same way (the ledger's entries, event links, jobs). ``objects`` gives the
rows of a table as the session's mapped objects, for the rows an event changes (its payment, its
refund, its licenses), without the ORM's loading: an object the session has already is that
object; another is made from its row, as ``rows.add_now`` makes the ones it inserts. ``get`` is
``session.get`` made the same way.
"""
from __future__ import annotations

from typing import Optional, Sequence

from sqlalchemy import bindparam, inspect, select
from sqlalchemy.orm import Session, make_transient_to_detached

from bridge.ledger import driver_sql, write_behind
from bridge.ledger.driver_sql import Found


def _connection(session: Session):
    """The session's connection, once what it would write before a statement is written."""
    if session.autoflush:
        session.flush()
    write_behind.flush(session)
    return session.connection()


def read(session: Session, statement, params: Optional[dict] = None) -> Found:
    """The rows of ``statement`` (a Core SELECT built once), run where the session's
    transaction is."""
    conn = _connection(session)
    try:
        return driver_sql.rows(conn, statement, params)
    except driver_sql.Unsupported:
        return Found(conn.execute(statement, params or {}).all())


def write(session: Session, statement, rows: Sequence[dict]) -> int:
    """Run ``statement`` (a Core write built once, without RETURNING) for each of ``rows``, where
    the session's transaction is; the rows it changed. Like ``session.execute`` of a Core
    write, it writes what waits in write-behind mode first, not the session's changed objects."""
    write_behind.flush(session)
    conn = session.connection()
    try:
        return driver_sql.write(conn, statement, rows)
    except driver_sql.Unsupported:  # never for no rows (0, above)
        return conn.execute(statement, rows[0] if len(rows) == 1 else list(rows)).rowcount


_ADOPT: dict = {}  # (mapper, the row's columns) -> the attributes they fill, where the primary key is


def objects(session: Session, model, statement, params: Optional[dict] = None) -> list:
    """The objects of ``model`` whose rows ``statement`` (a Core SELECT of every column of the
    model's table, built once) finds, as ``session.execute(select(model)).scalars()`` gives
    them: one the session has already is that object, its changes kept; another is made from
    its row, persistent in the session with every attribute loaded (its changes are flushed
    as any loaded object's)."""
    found = read(session, statement, params)
    if not found:
        return []
    mapper = inspect(model)
    fields = found[0]._fields
    plan = _ADOPT.get((mapper, fields))
    if plan is None:
        table = mapper.local_table
        attrs = tuple(mapper.get_property_by_column(table.c[f]).key for f in fields)
        if set(attrs) != {prop.key for prop in mapper.column_attrs}:
            raise ValueError(f"objects of {model.__name__} are made from rows of all of its columns")
        plan = _ADOPT[(mapper, fields)] = (attrs, tuple(fields.index(c.key) for c in mapper.primary_key))
    attrs, pk = plan
    known, key_of, new = session.identity_map, mapper.identity_key_from_primary_key, mapper.class_manager.new_instance
    out = []
    for row in found:
        obj = known.get(key_of([row[i] for i in pk]))
        if obj is None:
            obj = new()
            obj.__dict__.update(zip(attrs, row))
            make_transient_to_detached(obj)  # its key from the row; every attribute loaded
            session.add(obj)
        out.append(obj)
    return out


_BY_KEY: dict = {}  # mapper -> SELECT of its table by its primary key


def get(session: Session, model, key):
    """``session.get(model, key)`` for a model of one primary-key column, made as ``objects``
    makes them (an object the session has already is that object, whatever its row says now)."""
    mapper = inspect(model)
    obj = session.identity_map.get(mapper.identity_key_from_primary_key([key]))
    if obj is not None:
        return obj
    statement = _BY_KEY.get(mapper)
    if statement is None:
        (column,) = mapper.primary_key
        statement = _BY_KEY[mapper] = select(mapper.local_table).where(column == bindparam("key"))
    found = objects(session, model, statement, {"key": key})
    return found[0] if found else None
