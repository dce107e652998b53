"""Core statements the worker runs for every event, on the driver's own connection.

``Connection.execute`` spends most of a small statement's client CPU around the driver's call:
the compiled cache's key, the execution context, the result's metadata, the events
(bench/read_paths.py: on SQLite 25-35 us for a look-up of three rows, 4-6 us of it the driver's).
Here a statement is compiled once per dialect (and, for an INSERT, per set of columns given),
and each run only converts its parameters and rows with the processors of the statement's own
types, as SQLAlchemy would, then calls the driver. A list given to ``IN`` is expanded with
the compiler's own ``construct_expanded_state``. What SQLAlchemy itself would have to do per
run is refused (``Unsupported``) at compile time, before anything runs:

- bind names the driver could not take as they are (SQLAlchemy would escape them);
- column defaults computed in Python per row (the caller gives every column);
- RETURNING from several parameter sets (their order).

A ``text()`` statement's rows are the driver's own values (it names no types), named by the
cursor's columns, as SQLAlchemy gives them; a connection not yet in a transaction begins one
first, as ``Connection.execute`` would.

Listeners of the engine's ``before_cursor_execute`` still see every statement (the tests'
statement counters). A driver error is raised as SQLAlchemy's ``DBAPIError``, as for its own.
Only statements built once belong here: they are the cache's keys (at most ``_MAX`` kept).
It reads compiler internals of the pinned SQLAlchemy (``_bind_processors``, ``_result_columns``,
a type's ``_cached_result_processor``): tests/integration/test_driver_sql.py compares what it
writes and reads with SQLAlchemy's own execution, so an upgrade that changes them fails there.
"""
from __future__ import annotations

from collections import namedtuple
from typing import Iterable, Optional, Sequence

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.sql.elements import TextClause

_MAX = 512
_CACHE: dict = {}


class Found(list):
    """The rows a read found, with the few ways of taking them that SQLAlchemy's results have."""

    def all(self) -> list:
        return list(self)

    def first(self):
        return self[0] if self else None

    def one_or_none(self):
        if len(self) > 1:
            raise LookupError(f"{len(self)} rows where at most one was expected")
        return self.first()

    def one(self):
        if len(self) != 1:
            raise LookupError(f"{len(self)} rows where one was expected")
        return self[0]

    def scalars(self) -> "Found":
        return Found(row[0] for row in self)

    def scalar_one(self):
        return self.one()[0]

    def scalar_one_or_none(self):
        row = self.one_or_none()
        return None if row is None else row[0]


class Unsupported(ValueError):
    """A statement this module cannot run as SQLAlchemy would (see the module's docstring)."""


def driver_error(err: Exception, driver, dialect, invalidate, statement=None, params=None) -> DBAPIError:
    """A driver's error, from SQL run on the driver's own connection, as SQLAlchemy raises it
    for its own statements (``DBAPIError``); a connection the database dropped is invalidated
    first (``invalidate``: the pooled connection's), so that the pool reconnects."""
    if getattr(driver, "broken", False) or dialect.is_disconnect(err, driver, None):
        invalidate(err)
    return DBAPIError.instance(statement, params, err, dialect.loaded_dbapi.Error)


class _Plan:
    __slots__ = ("statement", "compiled", "sql", "order", "expanding", "binds", "row", "text", "results", "dialect",
                 "names", "slots")

    def __init__(self, statement, dialect, keys: Optional[tuple], many: bool) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys is not None else None,
                                     for_executemany=many)
        if compiled.escaped_bind_names:
            raise Unsupported(f"bind names to escape: {sorted(compiled.escaped_bind_names)}")
        self.expanding = bool(compiled.post_compile_params or compiled.literal_execute_params)
        if many and self.expanding:
            raise Unsupported("a list expanded in several parameter sets")
        if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
            raise Unsupported("a column's default would be computed in Python: give every column")
        if many and compiled.effective_returning:
            raise Unsupported("RETURNING from several parameter sets")
        self.statement = statement  # keeps id(statement), the cache's key, from being reused
        self.compiled = compiled
        self.dialect = dialect
        self.sql = compiled.string
        self.order = compiled.positiontup if compiled.positional else None
        self.binds = compiled._bind_processors  # name -> the type's bind processor
        # Each parameter the driver takes, in its order: where its value comes from (what the
        # caller gives under the bind's key or name, else the statement's own value) and its
        # type's processor, worked out once rather than by construct_params at every run.
        slots = {name: (bind.key, bind.required, bind.callable, bind.value, self.binds.get(name))
                 for bind, name in compiled.bind_names.items()}
        self.names = tuple(self.order if self.order is not None else slots)
        self.slots = None if getattr(compiled, "_collect_params", False) else \
            tuple((name,) + slots[name] for name in self.names)
        columns = compiled._result_columns
        self.row = namedtuple("Row", [c.keyname for c in columns], rename=True) if columns else None
        # A text() statement's rows (RETURNING, a SELECT) are the driver's values, named by the
        # cursor's description at the first run, as SQLAlchemy gives them.
        self.text = isinstance(statement, TextClause) and not columns
        self.results = None  # the types' result processors, known at the first rows (their cursor types)

    def bound(self, values: dict) -> tuple:
        """The SQL and the driver's parameters for ``values``, as DefaultExecutionContext's
        _init_compiled makes them: each value processed by its type, in the statement's order
        for a positional driver."""
        compiled = self.compiled
        if self.expanding:
            state = compiled.construct_expanded_state(values, escape_names=False)
            sql, params, binds, order = state.statement, state.parameters, state.processors, state.positiontup
        elif self.slots is not None:
            out = []
            for name, key, required, call, value, process in self.slots:
                if key in values:
                    value = values[key]
                elif name in values:
                    value = values[name]
                elif required:
                    raise InvalidRequestError(f"A value is required for bind parameter {key!r}")
                elif call is not None:
                    value = call()
                out.append(value if process is None else process(value))
            return self.sql, (tuple(out) if self.order is not None else dict(zip(self.names, out)))
        else:
            sql, params, binds, order = self.sql, compiled.construct_params(values, escape_names=False), \
                self.binds, self.order
        if order is not None:
            return sql, tuple(binds[k](params[k]) if k in binds else params[k] for k in order)
        return sql, {k: binds[k](v) if k in binds else v for k, v in params.items()}

    def rows(self, cursor) -> list:
        if self.text:
            if self.row is None:
                self.row = namedtuple("Row", [d[0] for d in cursor.description], rename=True)
            return [self.row._make(r) for r in cursor.fetchall()]
        if self.results is None:
            types = [c.type for c in self.compiled._result_columns]
            self.results = [t._cached_result_processor(self.dialect, d[1]) for t, d in zip(types, cursor.description)]
        processors, make = self.results, self.row._make
        if not any(processors):
            return [make(r) for r in cursor.fetchall()]
        return [make([v if p is None or v is None else p(v) for p, v in zip(processors, r)])
                for r in cursor.fetchall()]


def _plan(conn: Connection, statement, keys: Optional[tuple], many: bool) -> _Plan:
    key = (id(statement), conn.dialect.name, keys, many)
    plan = _CACHE.get(key)
    if plan is None:
        try:
            plan = _Plan(statement, conn.dialect, keys, many)
        except Unsupported as refused:
            plan = (statement, refused)  # the verdict is kept too: asked again, it costs nothing
        if len(_CACHE) < _MAX:
            _CACHE[key] = plan
    if type(plan) is tuple:
        raise plan[1]
    return plan


def _call(conn: Connection, sql: str, params, many: bool):
    if not conn.in_transaction():
        conn.begin()  # as Connection.execute would (SQLite's BEGIN is the engine's "begin" hook)
    cursor = conn.connection.dbapi_connection.cursor()
    if conn.dispatch.before_cursor_execute:
        conn.dispatch.before_cursor_execute(conn, cursor, sql, params, None, many)
    try:
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
    except conn.dialect.loaded_dbapi.Error as err:
        cursor.close()
        raise driver_error(err, conn.connection.driver_connection, conn.dialect, conn.invalidate, sql, params) from err
    return cursor


def rows(conn: Connection, statement, values: Optional[dict] = None) -> Found:
    """The rows of ``statement`` (a SELECT, or a write with RETURNING), named tuples whose
    fields are its columns' keys."""
    plan = _plan(conn, statement, None, False)
    if plan.row is None and not plan.text:
        raise Unsupported("the statement returns no rows")
    cursor = _call(conn, *plan.bound(values or {}), False)
    try:
        return Found(plan.rows(cursor))
    finally:
        cursor.close()


def write(conn: Connection, statement, values: Sequence[dict]) -> int:
    """Run ``statement`` (an INSERT, UPDATE or DELETE without RETURNING) once per dict of
    ``values`` (all of the same keys); the rows it changed."""
    if not values:
        return 0
    many = len(values) > 1
    plan = _plan(conn, statement, tuple(values[0]), many)
    if plan.row is not None and (getattr(statement, "_returning", ()) or not statement.is_dml):
        # Rows asked for: rows(). Those PostgreSQL's INSERT returns unasked (the new primary
        # key SQLAlchemy would read when it is not given) are only closed with the cursor.
        raise Unsupported("the statement returns rows: use rows()")
    if many:
        cursor = _call(conn, plan.sql, [plan.bound(v)[1] for v in values], True)
    else:
        cursor = _call(conn, *plan.bound(values[0]), False)
    try:
        return cursor.rowcount
    finally:
        cursor.close()


__all__: Iterable[str] = ("Found", "Unsupported", "rows", "write", "driver_error")
