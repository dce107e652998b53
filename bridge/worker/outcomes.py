"""What a handler may tell the runner besides "done": run again later, with or without an attempt."""
from __future__ import annotations


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
