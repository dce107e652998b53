"""What an engine's connections run while a test watches: statements, BEGINs, COMMITs and
ROLLBACKs (to assert which look-ups and savepoints a path takes, not only what it ends with)."""
from __future__ import annotations

from sqlalchemy import event as sa_event


class Transactions:
    """Counts what the engine's connections begin and commit while it is installed."""

    def __init__(self, engine):
        self.begins: list[str] = []
        self.statements: list[str] = []
        self.commits = 0
        self.rollbacks = 0
        self._engine = engine
        sa_event.listen(engine, "before_cursor_execute", self._statement)
        sa_event.listen(engine, "commit", self._commit)
        sa_event.listen(engine, "rollback", self._rollback)

    def _statement(self, conn, cursor, statement, *args):
        self.statements.append(statement)
        if statement.startswith("BEGIN"):
            self.begins.append(statement)

    def _commit(self, conn):
        self.commits += 1

    def _rollback(self, conn):
        self.rollbacks += 1

    @property
    def savepoints(self) -> int:
        return sum(st.startswith("SAVEPOINT") for st in self.statements)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        sa_event.remove(self._engine, "before_cursor_execute", self._statement)
        sa_event.remove(self._engine, "commit", self._commit)
        sa_event.remove(self._engine, "rollback", self._rollback)

    def count(self, prefix: str) -> int:
        return sum(st.startswith(prefix) for st in self.statements)
