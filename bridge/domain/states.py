"""States of orders, refunds and disputes, derived from facts so that the same facts give the
same state whatever order the events arrived in."""
from __future__ import annotations

from typing import Iterable

# Rank of each status within its life cycle: an event may move a record only to a status of
# equal or higher rank when it carries the same provider time (ties), never backwards in time.
REFUND_RANK = {"pending": 0, "succeeded": 1, "failed": 2, "canceled": 2}
DISPUTE_RANK = {"warning": 0, "open": 1, "won": 2, "lost": 2}
OPEN_DISPUTE = ("warning", "open")


def newer(new_at, new_rank: int, old_at, old_rank: int) -> bool:
    """Should a change seen at ``new_at`` replace the state recorded at ``old_at``?"""
    if old_at is None:
        return True
    if new_at != old_at:
        return new_at > old_at
    return new_rank >= old_rank


def order_status(paid: int, refunded: int, dispute_statuses: Iterable[str], has_payment: bool) -> str:
    """awaiting_payment | paid | partially_refunded | refunded | disputed | charged_back."""
    statuses = list(dispute_statuses)
    if not has_payment:
        return "awaiting_payment"
    if any(s in OPEN_DISPUTE for s in statuses):
        return "disputed"
    if any(s == "lost" for s in statuses):
        return "charged_back"
    if refunded > 0 and refunded >= paid:
        return "refunded"
    if refunded > 0:
        return "partially_refunded"
    return "paid"
