"""The changed objects of a write-behind transaction, written by plain UPDATEs at its flushes.

An event changes one or two rows it loaded (its order's status, its case, a license) and each
job ends with a flush (batch.py). For those few rows the ORM's unit of work is most of the
cost: it sorts the session's states, collects every attribute's history, and runs each UPDATE
through ``Connection.execute`` (the worker's profile, session 23: about 13% of its CPU for 0.4
UPDATEs per event). Here, at the flush, each changed object of the models in ``WRITTEN`` is
written as the ORM would write it: ``UPDATE table SET <its changed columns> WHERE <its key>``,
with its version checked and moved on as the ORM does for a versioned model (``StaleDataError``
when the row moved under it), by one statement per table and set of columns (``driver_sql``),
and the object is then clean, as after the ORM's flush. The rest (new and deleted objects,
other models, anything but a column changed) is left to the unit of work.

Only in write-behind mode (``write_behind.enable``): there no job takes a savepoint and an error
of any statement undoes the whole transaction (batch.py), whose ROLLBACK expires every object,
so an object written here never outlives an UPDATE that was undone.
"""
from __future__ import annotations

from sqlalchemy import bindparam, inspect, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from bridge.ledger import driver_sql
from bridge.ledger.models import Dispute, License, Order, Payment, Refund

# What the worker's events change. Not the ledger's entries: append_only.py judges each change.
WRITTEN = frozenset({Order, Payment, Refund, Dispute, License})

_MODELS: dict = {}      # mapper -> (key attribute, its column keys by attribute, version attribute)
_STATEMENTS: dict = {}  # (mapper, attributes changed) -> UPDATE


def _model(mapper):
    model = _MODELS.get(mapper)
    if model is None:
        (key,) = mapper.primary_key
        columns = {prop.key: prop.columns[0] for prop in mapper.column_attrs}
        version = mapper.version_id_col
        model = _MODELS[mapper] = (mapper.get_property_by_column(key).key, columns,
                                   mapper.get_property_by_column(version).key if version is not None else None)
    return model


def _statement(mapper, changed: tuple[str, ...]):
    statement = _STATEMENTS.get((mapper, changed))
    if statement is None:
        key, columns, version = _model(mapper)
        table = mapper.local_table
        values = {columns[attr]: bindparam(f"n_{attr}") for attr in changed}
        statement = update(table).where(columns[key] == bindparam("w_key"))
        if version is not None:
            values[columns[version]] = bindparam("n_version")
            statement = statement.where(columns[version] == bindparam("w_version"))
        statement = _STATEMENTS[(mapper, changed)] = statement.values(values)
    return statement


def write(session: Session) -> None:
    """Write the changed objects of ``WRITTEN`` models (see the module's docstring)."""
    groups: dict = {}
    for obj in session.dirty:
        state = inspect(obj)
        mapper = state.mapper
        if mapper.class_ not in WRITTEN or state.key is None:
            continue
        key, columns, version = _model(mapper)
        before, now = state.committed_state, state.dict
        if not before.keys() <= columns.keys() or key in before or version in before:
            continue  # not only columns changed, or its key or version set by hand: the ORM's
        if any(attr not in now for attr in before):
            continue  # an attribute expired meanwhile: the ORM knows what to do
        changed = tuple(sorted(attr for attr in before if now[attr] != before[attr]))
        if changed:
            row = {"w_key": now[key], **{f"n_{attr}": now[attr] for attr in changed}}
            if version is not None:
                row["w_version"] = now[version]
                row["n_version"] = mapper.version_id_generator(now[version])
            groups.setdefault((mapper, changed), []).append((state, row))
        else:
            state._commit_all(now, session.identity_map)  # set back to what it was: nothing to write
    if not groups:
        return
    conn = session.connection()
    for (mapper, changed), written in groups.items():
        rows = [row for _, row in written]
        matched = driver_sql.write(conn, _statement(mapper, changed), rows)
        if matched != len(rows):
            raise StaleDataError(f"UPDATE statement on table '{mapper.local_table.name}' expected to update "
                                 f"{len(rows)} row(s); {matched} were matched.")
        version = _model(mapper)[2]
        for state, row in written:
            if version is not None:
                state.dict[version] = row["n_version"]
            # Clean, as the unit of work leaves what it wrote (SQLAlchemy's own step for it).
            state._commit_all(state.dict, session.identity_map)
