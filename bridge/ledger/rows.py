"""Writing a new row at once, without the unit of work.

``add_now`` runs the object's INSERT (RETURNING its id) as a Core statement and puts the
object in the session as if it had been loaded: persistent, every column known, nothing
pending. The ORM's flush of one new object costs about three times its INSERT (bench/ and
issue 13); the worker creates half a dozen rows per payment (the order and its items, the
payment and its lines, the licenses), each read again by the steps after.

A savepoint that rolls back takes the rows with it, but the session would still hold their
objects (the ORM only forgets the objects *it* inserted): such objects are expunged here when
the transaction (or savepoint) they were written in rolls back, so a later ``session.get``
never returns a row that does not exist.
"""
from __future__ import annotations

from sqlalchemy import event, inspect, insert
from sqlalchemy.orm import Session, SessionTransaction, make_transient_to_detached

from bridge.ledger import write_behind
from bridge.ledger.locks import row_keys

_KEY = "bridge_inserted"
_STMT: dict = {}
_PLAIN: dict = {}


def _plan(mapper):
    """The INSERT of the mapper's table (RETURNING its generated id), and its columns with the
    defaults the ORM would have applied."""
    plan = _STMT.get(mapper)
    if plan is None:
        table = mapper.local_table
        generated = [c for c in table.primary_key.columns if c.autoincrement is True]
        stmt = insert(table)
        if generated:
            # In the parameters' order, so that several rows in one statement get their ids
            # right (SQLAlchemy's "insertmanyvalues" sorts them).
            stmt = stmt.returning(*generated, sort_by_parameter_order=True)
        cols = []
        for prop in mapper.column_attrs:
            col = prop.columns[0]
            if col in generated:
                continue
            cols.append((prop.key, col.key, col.default, col is mapper.version_id_col,
                         col.server_default is not None))
        plan = _STMT[mapper] = (stmt, cols, [(mapper.get_property_by_column(c).key) for c in generated])
    return plan


def _plain_insert(mapper):
    """The table's INSERT with every column given, the id too (write-behind)."""
    stmt = _PLAIN.get(mapper)
    if stmt is None:
        stmt = _PLAIN[mapper] = insert(mapper.local_table)
    return stmt


def add_now(session: Session, obj):
    """INSERT ``obj`` (a new, transient object) now; it is then persistent in ``session``."""
    add_all_now(session, [obj])
    return obj


def add_all_now(session: Session, objs: list) -> None:
    """``add_now`` for several new objects of one class, in one statement."""
    if not objs:
        return
    mapper = inspect(objs[0]).mapper
    stmt, cols, generated = _plan(mapper)
    values = [_values(mapper, obj, cols) for obj in objs]
    if write_behind.enabled(session) and generated in (["id"], []):
        # Numbered here (unless its key is ours: a license's) and written with the next flush
        # (write_behind.py).
        table = mapper.local_table
        if generated:
            for obj, v, pk in zip(objs, values, write_behind.take_ids(session, table, len(objs)), strict=True):
                obj.id = v["id"] = pk
        write_behind.add(session, _plain_insert(mapper), values,
                         keys=[k for v in values for k in row_keys(table.name, v)], numbered=bool(generated))
    else:
        write_behind.flush(session)  # its parents may be waiting
        result = session.connection().execute(stmt, values[0] if len(values) == 1 else values)
        if generated:
            for obj, row in zip(objs, result.all(), strict=True):
                for key, value in zip(generated, row):
                    setattr(obj, key, value)
    tx = session.get_nested_transaction() or session.get_transaction()
    written = session.info.setdefault(_KEY, [])
    for obj in objs:
        make_transient_to_detached(obj)
        session.add(obj)
        written.append((tx, obj))


def _values(mapper, obj, cols) -> dict:
    """The row's values: the object's, else the defaults a flush would apply (set on it too,
    so that every attribute is loaded)."""
    values = {}
    d = obj.__dict__
    for key, col_key, default, is_version, has_server_default in cols:
        if key in d:
            v = d[key]
        elif is_version:
            v = 1  # what the ORM writes first in a version_id_col
        elif default is not None:
            if not (default.is_scalar or default.is_callable):
                raise ValueError(f"{mapper.class_.__name__}.{key}: a SQL default is not applied here")
            v = default.arg(None) if default.is_callable else default.arg
        elif has_server_default:
            raise ValueError(f"{mapper.class_.__name__}.{key}: give it a value (its default is the server's)")
        else:
            v = None
        values[col_key] = v
        if key not in d:
            setattr(obj, key, v)
    return values


def _within(tx: SessionTransaction, ended: SessionTransaction) -> bool:
    while tx is not None:
        if tx is ended:
            return True
        tx = tx.parent
    return False


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    written = session.info.get(_KEY)
    if not written:
        return
    keep = []
    for tx, obj in written:
        if _within(tx, previous_transaction):
            if obj in session:
                session.expunge(obj)
        else:
            keep.append((tx, obj))
    session.info[_KEY] = keep


@event.listens_for(Session, "after_transaction_end")
def _forget_at_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_KEY, None)
