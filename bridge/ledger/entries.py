"""Append-only ledger entries. Each is written once per ``effect_key`` (unique index): a
retried job or a replayed event cannot post the same movement of money twice."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.ledger.models import LedgerEntry

# Sign convention: from the merchant's side. Money in is positive, money out negative.
SIGN = {"sale": 1, "fee": -1, "refund": -1, "refund_reversal": 1, "chargeback": -1,
        "chargeback_fee": -1, "chargeback_reversal": 1, "chargeback_fee_reversal": 1}


# Built once per dialect (building an insert construct costs more CPU than executing it).
_POST: dict = {}


def _post_stmt(dialect: str):
    stmt = _POST.get(dialect)
    if stmt is None:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = _POST[dialect] = insert(LedgerEntry.__table__).on_conflict_do_nothing(index_elements=["effect_key"])
    return stmt


def post(session: Session, *, provider: str, kind: str, magnitude: int, currency: str,
         occurred_at: datetime, effect_key: str, now: datetime, order_pk: Optional[int] = None,
         payment_pk: Optional[int] = None, provider_ref: Optional[str] = None,
         corrects: Optional[int] = None) -> bool:
    """Post ``magnitude`` (>= 0) with the sign of its kind. True if newly written."""
    if magnitude < 0:
        raise ValueError("ledger magnitudes are non-negative; the kind gives the sign")
    values = dict(provider=provider, kind=kind, amount=SIGN[kind] * magnitude, currency=currency,
                  occurred_at=occurred_at, effect_key=effect_key, order_pk=order_pk, payment_pk=payment_pk,
                  provider_ref=provider_ref, corrects=corrects, created_at=now)
    return session.execute(_post_stmt(session.get_bind().dialect.name), values).rowcount == 1


def find(session: Session, effect_key: str) -> Optional[LedgerEntry]:
    return session.execute(select(LedgerEntry).where(LedgerEntry.effect_key == effect_key)).scalar_one_or_none()
