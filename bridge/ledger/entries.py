"""Append-only ledger entries. Each is written once per ``effect_key`` (unique index): a
retried job or a replayed event cannot post the same movement of money twice.

An entry never changes once written (``bridge.ledger.append_only`` refuses it, and so does a
database trigger). When the provider later reports a different figure for a movement already
booked (a refund's amount, a dispute's fee), :func:`settle` books the difference as a new
entry of the same kind whose ``corrects`` names the original: the sum of an original and its
corrections is what the provider says now, and the history of what was believed when stays.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from bridge.ledger import insert_once, reads, write_behind
from bridge.ledger.models import LedgerEntry
from bridge.ledger.reads import read

# Sign convention: from the merchant's side. Money in is positive, money out negative.
SIGN = {"sale": 1, "fee": -1, "refund": -1, "refund_reversal": 1, "chargeback": -1,
        "chargeback_fee": -1, "chargeback_reversal": 1, "chargeback_fee_reversal": 1}


def _post_stmt(dialect: str):
    return insert_once.statement(LedgerEntry.__table__, ("effect_key",), dialect)


def _row(*, provider: str, kind: str, amount: int, currency: str, occurred_at: datetime, effect_key: str,
         now: datetime, order_pk: Optional[int] = None, payment_pk: Optional[int] = None,
         provider_ref: Optional[str] = None, corrects: Optional[int] = None) -> dict:
    return dict(provider=provider, kind=kind, amount=amount, currency=currency, occurred_at=occurred_at,
                effect_key=effect_key, order_pk=order_pk, payment_pk=payment_pk, provider_ref=provider_ref,
                corrects=corrects, created_at=now)


def _signed(kind: str, magnitude: int) -> int:
    if magnitude < 0:
        raise ValueError("ledger magnitudes are non-negative; the kind gives the sign")
    return SIGN[kind] * magnitude


def _write(session: Session, **row) -> bool:
    return reads.write(session, _post_stmt(session.get_bind().dialect.name), [_row(**row)]) == 1


def post(session: Session, *, provider: str, kind: str, magnitude: int, currency: str,
         occurred_at: datetime, effect_key: str, now: datetime, order_pk: Optional[int] = None,
         payment_pk: Optional[int] = None, provider_ref: Optional[str] = None,
         corrects: Optional[int] = None) -> bool:
    """Post ``magnitude`` (>= 0) with the sign of its kind. True if newly written."""
    return _write(session, provider=provider, kind=kind, amount=_signed(kind, magnitude), currency=currency,
                  occurred_at=occurred_at, effect_key=effect_key, now=now, order_pk=order_pk,
                  payment_pk=payment_pk, provider_ref=provider_ref, corrects=corrects)


def post_many(session: Session, movements: list[dict], now: datetime) -> None:
    """Several ``post`` calls in one statement (a sale and its fee): each a dict of ``post``'s
    keyword arguments but ``now``. Which of them were newly written is not told."""
    rows = [_row(**{k: v for k, v in m.items() if k != "magnitude"}, amount=_signed(m["kind"], m["magnitude"]),
                 now=now) for m in movements]
    if not rows:
        return
    stmt = _post_stmt(session.get_bind().dialect.name)
    if write_behind.enabled(session):
        write_behind.add(session, stmt, rows)
    else:
        reads.write(session, stmt, rows)


# Built once. Rows, not objects (reads.py): an entry is never changed once written.
_E = LedgerEntry.__table__
_FIND = select(_E).where(_E.c.effect_key == bindparam("key"))
_CORRECTIONS = select(_E.c.amount).where(_E.c.corrects == bindparam("e"))


def find(session: Session, effect_key: str):
    """The entry booked under ``effect_key`` (its row), or None."""
    return read(session, _FIND, {"key": effect_key}).one_or_none()


def booked(session: Session, effect_key: str) -> Optional[int]:
    """The signed amount booked under ``effect_key``: its entry plus its corrections (None
    when nothing is booked under that key)."""
    original = find(session, effect_key)
    if original is None:
        return None
    return original.amount + sum(read(session, _CORRECTIONS, {"e": original.id}).scalars())


def settle(session: Session, *, provider: str, kind: str, magnitude: int, currency: str,
           occurred_at: datetime, effect_key: str, now: datetime, order_pk: Optional[int] = None,
           payment_pk: Optional[int] = None, provider_ref: Optional[str] = None,
           first: bool = False) -> Optional[int]:
    """Make the ledger hold ``magnitude`` of ``kind`` under ``effect_key``: the first time, an
    entry; when the figure changed since, a correction entry of the difference (a signed amount,
    possibly of the other sign than the kind's) with ``corrects`` naming the original, dated
    ``occurred_at`` (when the provider reported the new figure). Idempotent: the same figure
    again writes nothing. Returns the signed amount written, or None.

    Callers hold the keyed locks of the movement's payment and order (``bridge.ledger.locks``), so reading the booked sum and writing the
    correction cannot interleave with another writer of the same movement."""
    target = _signed(kind, magnitude)
    # ``first``: the caller just created the record this movement belongs to, so nothing is
    # booked under its key yet: write without looking first. Were something there after all, the
    # write does nothing and the look-up below settles the difference as always.
    original = None if first and magnitude > 0 else find(session, effect_key)
    if original is None:
        if magnitude == 0:
            return None
        if _write(session, provider=provider, kind=kind, amount=target, currency=currency, occurred_at=occurred_at,
                  effect_key=effect_key, now=now, order_pk=order_pk, payment_pk=payment_pk,
                  provider_ref=provider_ref):
            return target
        original = find(session, effect_key) if first else None  # ``first`` and booked after all
        if original is None:
            return None  # written meanwhile by another (the caller's locks say it cannot be)
    if original.currency != currency:
        raise ValueError(f"{effect_key}: booked in {original.currency}, now reported in {currency}")
    corrections = list(read(session, _CORRECTIONS, {"e": original.id}).scalars())
    delta = target - (original.amount + sum(corrections))
    if delta == 0:
        return None
    _write(session, provider=original.provider, kind=original.kind, amount=delta, currency=original.currency,
           occurred_at=max(occurred_at, original.occurred_at), effect_key=f"{effect_key}#{len(corrections) + 1}",
           now=now, order_pk=original.order_pk if original.order_pk is not None else order_pk,
           payment_pk=original.payment_pk if original.payment_pk is not None else payment_pk,
           provider_ref=original.provider_ref, corrects=original.id)
    return delta
