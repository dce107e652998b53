"""Rows created by the event being applied ("fresh"): nothing else refers to them yet, so
what they hold is known without reading it back (a new payment has no refund, a new order no
license, and their lines are the ones just written).

The mark lasts for one event, not for the transaction: a worker may apply several events in
one transaction, and a payment created by the first of them is an old payment to the second
(which may find a refund on it). ``forget`` is called when an event's apply ends, and when the
transaction ends.
"""
from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

_KEY = "bridge_fresh"
_ATTRS = ("_new_here", "_new_lines", "_new_items")


def mark(session: Session, obj) -> None:
    obj._new_here = True
    session.info.setdefault(_KEY, []).append(obj)


def is_fresh(obj) -> bool:
    return getattr(obj, "_new_here", False)


def all_fresh(objs) -> bool:
    """Whether these objects are known (not None) and every one of them is fresh."""
    return objs is not None and all(is_fresh(o) for o in objs)


def forget(session: Session) -> None:
    for obj in session.info.pop(_KEY, ()):
        for attr in _ATTRS:
            obj.__dict__.pop(attr, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_at_end(session: Session, transaction) -> None:
    if transaction.parent is None:
        forget(session)
