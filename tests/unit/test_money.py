"""bridge.domain.money: ISO 4217 currencies and minor-unit exponents from Babel, amounts."""
from __future__ import annotations

import pytest
from babel.numbers import get_currency_precision
from hypothesis import given, strategies as st

from bridge.domain.money import (CURRENCIES, MAX_MINOR, InvalidCurrency, format_amount, is_currency, major_units,
                                 minor_unit_exponent, parse_minor, validate_currency)


@pytest.mark.parametrize("code", ["USD", "usd", "Eur", "JPY", "KWD", "ISK", "HUF", "TWD", "UGX", "CLP"])
def test_current_currencies_are_valid_and_upper_cased(code):
    assert validate_currency(code) == code.upper()


@pytest.mark.parametrize("code", ["ZZZ", "NaN", "nan", "ÄÖÜ", "US", "USDX", "", "   ", "U$D", "DEM", "XXX",
                                  "XTS", "XAU", "１２３", "ＵＳＤ", None, 840, b"USD", ["USD"]])
def test_what_is_not_a_currency_is_refused(code):
    with pytest.raises(InvalidCurrency):
        validate_currency(code)
    assert not is_currency(code)


@pytest.mark.parametrize("code,exp", [("USD", 2), ("EUR", 2), ("JPY", 0), ("KRW", 0), ("VND", 0), ("KWD", 3),
                                      ("BHD", 3), ("TND", 3), ("ISK", 0), ("CLP", 0), ("UGX", 0), ("HUF", 2)])
def test_exponents(code, exp):
    assert minor_unit_exponent(code) == exp
    assert minor_unit_exponent(code.lower()) == exp


def test_exponents_are_babels_for_every_currency():
    """No table of our own can drift from the maintained data."""
    for code in CURRENCIES:
        assert minor_unit_exponent(code) == get_currency_precision(code)
    assert len(CURRENCIES) > 140


def test_exponent_of_a_non_currency_is_an_error_not_two():
    with pytest.raises(InvalidCurrency):
        minor_unit_exponent("ZZZ")


@pytest.mark.parametrize("text", ["²", "¹²", "١٢", "1.5", "1e3", "0x10", "1_000", "", "-", "+", "--1", " ", "NaN"])
def test_amount_strings_other_than_ascii_digits_are_refused(text):
    with pytest.raises(ValueError):
        parse_minor(text)


@pytest.mark.parametrize("value", [10**30, -(10**30), 2**63, str(10**30), "9" * 5000, MAX_MINOR + 1, 1.0, True])
def test_amounts_no_money_can_have_are_refused(value):
    with pytest.raises(ValueError):
        parse_minor(value)


@given(st.integers(min_value=-MAX_MINOR, max_value=MAX_MINOR))
def test_amounts_round_trip(n):
    assert parse_minor(n) == n
    assert parse_minor(str(n)) == n


def test_format_amount_uses_the_currency_exponent():
    assert format_amount(4728, "USD") == "47.28 USD"
    assert format_amount(500, "jpy") == "500 JPY"
    assert format_amount(-1234, "KWD") == "-1.234 KWD"


def test_major_units_are_exact_decimals_by_the_exponent():
    assert [major_units(a, "USD") for a in (4900, 5, -5, -172, 0, -100)] == ["49.00", "0.05", "-0.05", "-1.72",
                                                                           "0.00", "-1.00"]
    assert [major_units(a, "JPY") for a in (4900, -4900, 0)] == ["4900", "-4900", "0"]
    assert [major_units(a, "kwd") for a in (1234, -7, 1000)] == ["1.234", "-0.007", "1.000"]
    # Beyond a float's 53 bits: the digits stay exact (a float would round the last ones).
    assert major_units(MAX_MINOR - 1, "USD") == "9999999999999.99"
    assert major_units(-(2**60 + 1), "BHD") == "-1152921504606846.977"
    with pytest.raises(InvalidCurrency):
        major_units(100, "ZZZ")


@given(st.integers(min_value=-MAX_MINOR, max_value=MAX_MINOR), st.sampled_from(["USD", "JPY", "KWD", "BHD"]))
def test_major_units_read_back_as_the_same_amount(n, currency):
    from decimal import Decimal
    text = major_units(n, currency)
    assert Decimal(text).scaleb(minor_unit_exponent(currency)) == n
    assert len(text.partition(".")[2]) == minor_unit_exponent(currency)
