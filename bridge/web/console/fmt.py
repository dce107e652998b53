"""How the console writes money and time: amounts per currency by Babel (``$49.00``, JPY
``¥4,900`` with no decimals), times in UTC with the zone shown; and reading an amount a person
typed in major units back into integer minor units, exactly."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Optional

from babel.numbers import format_currency, format_decimal
from flask import Flask
from markupsafe import Markup, escape

from bridge.domain.money import exponent

LOCALE = "en_US"


def to_major(amount: int, currency: str) -> Decimal:
    # The stored minor unit decides the scale (the ledger's exponent), never a float.
    return Decimal(int(amount)).scaleb(-exponent(currency))


def money(amount: Optional[int], currency: Optional[str]) -> str:
    if amount is None:
        return "unknown"
    if not currency:
        return str(amount)
    return format_currency(to_major(amount, currency), currency.upper(), locale=LOCALE)


def major_input(amount: Optional[int], currency: str) -> str:
    """The value an amount field starts with: plain digits a person can edit (``47.28``)."""
    if amount is None:
        return ""
    exp = exponent(currency)
    return f"{to_major(amount, currency):.{exp}f}"


def parse_major(text: str, currency: str) -> int:
    """``"40"``, ``"40.00"`` or ``"1,234.50"`` -> minor units. Refuses more decimals than the
    currency has (JPY has none), negatives, and anything that is not a number."""
    raw = (text or "").strip().replace(",", "").replace("_", "")
    if not raw:
        raise ValueError("an amount is required")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"not an amount: {text!r}")
    if not value.is_finite() or value <= 0:
        raise ValueError("the amount must be more than zero")
    exp = exponent(currency)
    minor = value.scaleb(exp)
    if minor != minor.to_integral_value():
        raise ValueError(f"{currency} amounts have {exp} decimal place{'s' if exp != 1 else ''} at most"
                         if exp else f"{currency} amounts have no decimals")
    return int(minor)


def utc(value: Optional[datetime], seconds: bool = False) -> Markup:
    """``<time datetime="2026-03-01T10:00:00Z">2026-03-01 10:00 UTC</time>``."""
    if value is None:
        return Markup("&ndash;")
    if isinstance(value, str):  # an ISO 8601 time from a JSON view
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return escape(value)
    if isinstance(value, datetime):
        value = value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
        machine = value.strftime("%Y-%m-%dT%H:%M:%SZ")
        shown = value.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")
    elif isinstance(value, date):
        machine = shown = value.isoformat()
    else:
        return escape(str(value))
    return Markup(f'<time datetime="{machine}">{escape(shown)}</time>')


def number(value) -> str:
    return format_decimal(value, locale=LOCALE)


def label(value: Optional[str]) -> str:
    """``partially_refunded`` -> ``partially refunded``."""
    return (value or "").replace("_", " ")


def register(app: Flask) -> None:
    app.jinja_env.filters.update(money=money, utc=utc, number=number, label=label, major_input=major_input)
