"""What a handler may tell the runner besides "done": run again later, with or without an attempt;
or, in a batch run without savepoints, that the whole transaction must be undone."""
from __future__ import annotations

from sqlalchemy.orm import Session

_NO_SAVEPOINTS = "bridge_no_savepoints"  # session.info: this transaction's jobs take none


class Postpone(Exception):
    """Run the job again after ``delay`` seconds without spending an attempt."""

    def __init__(self, delay: float, note: str):
        super().__init__(note)
        self.delay = delay
        self.note = note


class Reschedule:
    """Returned by a handler whose work so far must be kept (committed) but which must run
    again later, counting an attempt: e.g. an event parked until what it refers to arrives."""

    def __init__(self, note: str):
        self.note = note


class UndoTransaction(Exception):
    """A job run without a savepoint of its own (``no_savepoints``) failed, parked or was held
    after writing: what it wrote cannot be undone alone. The batch runner rolls back the whole
    transaction and runs its jobs again, each in a savepoint."""

    def __init__(self, cause: BaseException):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


def no_savepoints(session: Session, on: bool) -> None:
    """For the batch runner: the jobs of this transaction run without savepoints (on), so that
    any failure among them raises ``UndoTransaction``; or each in its own (off)."""
    session.info[_NO_SAVEPOINTS] = on


def savepoints_off(session: Session) -> bool:
    return bool(session.info.get(_NO_SAVEPOINTS))
