"""Money in integer minor units: currency exponents and parsing of provider amount strings.

No floats anywhere: an amount is an ``int`` of the currency's minor unit (cents; whole yen).
"""
from __future__ import annotations

# ISO 4217 currencies without a minor unit (Stripe's zero-decimal list plus ISO's own).
ZERO_DECIMAL = frozenset({
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF",
    "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
})
THREE_DECIMAL = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})


def exponent(currency: str) -> int:
    """Number of decimal places of the currency's minor unit."""
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def normalize_currency(currency: str) -> str:
    """Providers disagree on case (Stripe lower, Paddle upper); we store upper."""
    code = (currency or "").strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise ValueError(f"not an ISO 4217 currency code: {currency!r}")
    return code


def parse_minor(value: object) -> int:
    """An amount in minor units from an int or a string of digits (Paddle sends strings).

    Rejects floats and decimals: a provider amount with a fraction is a bug, not a rounding.
    """
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        sign = -1 if text.startswith("-") else 1
        digits = text[1:] if text[:1] in "+-" else text
        if digits.isdigit():
            return sign * int(digits)
    raise ValueError(f"not an amount in minor units: {value!r}")


def format_amount(amount: int, currency: str) -> str:
    """Human form for summaries: 4728 USD -> '47.28 USD'; 500 JPY -> '500 JPY'."""
    exp = exponent(currency)
    if exp == 0:
        return f"{amount} {currency.upper()}"
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10 ** exp)
    return f"{sign}{whole}.{frac:0{exp}d} {currency.upper()}"


def is_iso4217(code: str) -> bool:
    """Whether ``code`` (upper case) is a currency of ISO 4217, by Babel's CLDR data."""
    from babel.numbers import list_currencies   # imported here: Babel's data loads on first use
    return isinstance(code, str) and len(code) == 3 and code in list_currencies()
