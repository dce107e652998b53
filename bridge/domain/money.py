"""Money in integer minor units: which currencies exist, their minor-unit exponents, and
parsing of provider amount strings.

No floats anywhere: an amount is an ``int`` of the currency's minor unit (cents; whole yen).
The list of currencies and their exponents come from Babel (CLDR data, maintained upstream)
rather than from a table of our own: a currency is valid when it is the legal tender of some
territory today (ISO 4217's current codes you can pay in; withdrawn codes such as ``DEM`` and
the non-money codes ``XXX``/``XTS``/``XAU`` are not). Providers' own departures from ISO (Stripe
sends ISK with two decimals) are converted in the provider packages, never here.
"""
from __future__ import annotations

from babel.core import get_global
from babel.numbers import get_currency_precision


class InvalidCurrency(ValueError):
    """Not an ISO 4217 currency the bridge can book money in."""


def _tender_currencies() -> frozenset[str]:
    """Codes CLDR lists as the current (no end date) legal tender of at least one territory.

    Read from the pinned Babel's data, not from the clock, so the answer is the same on every
    run of one release (domain code never reads the time)."""
    codes = set()
    for currencies in get_global("territory_currencies").values():
        for code, _start, end, tender in currencies:
            if end is None and tender:
                codes.add(code)
    return frozenset(codes)


CURRENCIES: frozenset[str] = _tender_currencies()

# Largest magnitude of one amount, in minor units. No real payment, fee or refund comes near
# (10**15 cents is ten trillion dollars), and sums of millions of them still fit the BIGINT
# columns (9.2e18): an amount beyond it is a corrupt or hostile payload, never money.
MAX_MINOR = 10**15


def validate_currency(code: object) -> str:
    """The upper-case ISO 4217 code of ``code`` (providers disagree on case: Stripe lower,
    Paddle upper), or :class:`InvalidCurrency` naming it. ``"ZZZ"``, ``"NaN"``, ``"ÄÖÜ"``,
    ``"usdx"`` and withdrawn codes are refused."""
    if not isinstance(code, str):
        raise InvalidCurrency(f"not an ISO 4217 currency code: {code!r}")
    text = code.strip()
    upper = text.upper()
    if not (len(upper) == 3 and upper.isascii() and upper.isalpha() and upper in CURRENCIES):
        raise InvalidCurrency(f"not an ISO 4217 currency code: {code!r}")
    return upper


# The name the rest of the bridge has used since the start; same function.
normalize_currency = validate_currency


def is_currency(code: object) -> bool:
    try:
        validate_currency(code)
    except InvalidCurrency:
        return False
    return True


def minor_unit_exponent(currency: str) -> int:
    """Number of decimal places of the currency's minor unit (USD 2, JPY 0, KWD 3), from CLDR.

    Raises :class:`InvalidCurrency` for a code that is not a currency (never a silent 2)."""
    return get_currency_precision(validate_currency(currency))


exponent = minor_unit_exponent


def check_minor(amount: int, what: str = "amount") -> int:
    """``amount`` when its magnitude is one money can have (see ``MAX_MINOR``), else ValueError."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValueError(f"{what} is not an integer amount in minor units: {amount!r}")
    if abs(amount) > MAX_MINOR:
        raise ValueError(f"{what} out of range: its magnitude exceeds {MAX_MINOR}")
    return amount


def parse_minor(value: object) -> int:
    """An amount in minor units from an int or a string of ASCII digits (Paddle sends strings).

    Rejects floats and decimals (a provider amount with a fraction is a bug, not a rounding),
    digits of other scripts (``"²"``, ``"١٢"``) and magnitudes beyond ``MAX_MINOR``."""
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, int):
        return check_minor(value)
    if isinstance(value, str):
        text = value.strip()
        sign = -1 if text.startswith("-") else 1
        digits = text[1:] if text[:1] in "+-" else text
        # isdigit alone accepts superscripts and other scripts' digits; len bounds int()'s work.
        if digits.isascii() and digits.isdigit() and len(digits) <= 19:
            return check_minor(sign * int(digits))
        if digits.isascii() and digits.isdigit():
            raise ValueError(f"amount out of range: {value[:40]!r}")
    raise ValueError(f"not an amount in minor units: {value!r}")


def major_units(amount: int, currency: str) -> str:
    """``amount`` minor units as exact decimal text of the currency's major unit, digits by its
    exponent (integer arithmetic, never a float): 4900 USD -> '49.00', -5 USD -> '-0.05',
    4900 JPY -> '4900', 1234 KWD -> '1.234'."""
    exp = exponent(currency)
    if exp == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10 ** exp)
    return f"{sign}{whole}.{frac:0{exp}d}"


def format_amount(amount: int, currency: str) -> str:
    """Human form for summaries: 4728 USD -> '47.28 USD'; 500 JPY -> '500 JPY'."""
    return f"{major_units(amount, currency)} {currency.upper()}"
