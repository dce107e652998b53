"""Processing-fee arithmetic of spec/policies.md: a payment's fee shared over its items, and
the part of it one refund keeps. Pure integer arithmetic; nothing here reads a clock or a file.

- ``share_fee(fee, amounts)``: largest remainder, so the shares add up to the fee exactly
  (100 over 3333/3333/3334 is 33/33/34; rounding each share up would keep 102).
- ``fee_to_keep(share, amount, base, kept)``: ``ceil(share * base / amount)`` for one refund of
  ``base``, but never more than what is left of the share after the fee already ``kept`` by
  earlier refunds of the item, and never more than ``base``: over all refunds of an item the
  kept fee never exceeds its share, so over all items never more than the provider took.
"""
from __future__ import annotations

from typing import Sequence


def share_fee(fee: int, amounts: Sequence[int]) -> list[int]:
    """The fee shared in proportion to ``amounts`` by the largest-remainder method.

    Each item first gets ``floor(fee * amount / total)``; the units left over go, one each,
    to the items with the largest remainders (ties: the earlier item). The shares add up to
    ``fee`` exactly. With a total of 0 there is nothing to share in proportion to: every share
    is 0 (nothing paid, nothing refundable, nothing to keep).
    """
    if fee < 0 or any(a < 0 for a in amounts):
        raise ValueError("a fee and the amounts it is shared over are never negative")
    total = sum(amounts)
    if not amounts or total == 0:
        return [0] * len(amounts)
    shares = []
    remainders = []
    for i, amount in enumerate(amounts):
        whole, rest = divmod(fee * amount, total)
        shares.append(whole)
        remainders.append((-rest, i))
    left = fee - sum(shares)
    for _, i in sorted(remainders)[:left]:
        shares[i] += 1
    return shares


def fee_to_keep(share: int, amount: int, base: int, kept: int = 0) -> int:
    """The fee one refund of ``base`` (out of an item of ``amount``) keeps: rounded up (the
    merchant's favour), capped at the rest of the item's ``share`` and at ``base``."""
    if amount <= 0 or base <= 0 or share <= 0:
        return 0
    wanted = -(-(share * base) // amount)
    return max(0, min(wanted, share - kept, base))
