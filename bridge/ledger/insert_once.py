"""The statement of every idempotent write: ``INSERT ... ON CONFLICT (key) DO NOTHING``.

One per table, key and dialect, built once (constructing an insert construct costs more CPU
than running it). Its ``rowcount`` says whether the row was written: ``preserve_rowcount``,
since psycopg's cursor is otherwise closed before an INSERT's rowcount is read, and every write
would read as "not written".
"""
from __future__ import annotations

from sqlalchemy import Table

_BUILT: dict = {}


def statement(table: Table, key: tuple[str, ...], dialect: str):
    built = _BUILT.get((table.name, key, dialect))
    if built is None:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        built = _BUILT[(table.name, key, dialect)] = (
            insert(table).on_conflict_do_nothing(index_elements=list(key)).execution_options(preserve_rowcount=True))
    return built
