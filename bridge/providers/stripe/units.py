"""Stripe's amounts where its minor unit is not ISO 4217's (../shared/reference/stripe.md A5).

The bridge keeps every amount in the ISO 4217 minor unit of its currency, with exponents from
Babel (``bridge.domain.money``). Stripe agrees for every currency but one it documents:

- **ISK** is zero-decimal in ISO 4217, but Stripe's API sends and takes it "as a two-decimal
  value, where the decimal amount is always 00" (500 = 5 ISK): divided by 100 on the way in,
  multiplied on the way out; an ISK amount that is not a multiple of 100 is not one Stripe
  can send, and is refused.

HUF and TWD charges use two decimals at Stripe as in ISO 4217 (only their payouts must be whole
units), and UGX is zero-decimal at both: no conversion. The exception lives here, in the
Stripe package, never in the domain.
"""
from __future__ import annotations

from dataclasses import fields, is_dataclass, replace
from typing import Optional

_SCALE = {"ISK": 100}

# The amount fields of the neutral events (bridge.domain.events) and of their lines.
_AMOUNT_FIELDS = ("amount", "tax", "fee", "funds_withdrawn", "funds_reinstated", "fee_reinstated",
                  "charge_amount_refunded")


def scale(currency: Optional[str]) -> int:
    return _SCALE.get((currency or "").upper(), 1)


def from_stripe(amount: Optional[int], currency: Optional[str]) -> Optional[int]:
    """A Stripe amount in the ISO 4217 minor unit of ``currency``."""
    k = scale(currency)
    if amount is None or k == 1:
        return amount
    if amount % k:
        raise ValueError(f"{currency.upper()} amount {amount} from Stripe is not a multiple of {k}")
    return amount // k


def to_stripe(amount: Optional[int], currency: Optional[str]) -> Optional[int]:
    """An ISO 4217 minor-unit amount as Stripe's API takes it."""
    return None if amount is None else amount * scale(currency)


def neutral_to_iso(event, currency: Optional[str] = None):
    """A neutral event (and its lines) with every amount converted from Stripe's unit."""
    currency = getattr(event, "currency", None) or currency
    if scale(currency) == 1 or not is_dataclass(event):
        return event
    changes = {}
    for f in fields(event):
        value = getattr(event, f.name)
        if f.name in _AMOUNT_FIELDS and isinstance(value, int) and not isinstance(value, bool):
            changes[f.name] = from_stripe(value, currency)
        elif f.name == "items" and value:
            changes[f.name] = tuple(neutral_to_iso(line, currency) for line in value)
    return replace(event, **changes)
