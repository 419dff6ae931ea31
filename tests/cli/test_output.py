"""Token amounts for people (`1.000000000 INFER`) and back, exactly, with no floats."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.cli.output import U64_MAX, Token, format_amount, parse_amount, token_of, u64


@pytest.mark.parametrize(
    "raw, decimals, symbol, text",
    [
        (10**9, 9, "INFER", "1.000000000 INFER"),
        (0, 9, "INFER", "0.000000000 INFER"),
        (7_000, 9, "INFER", "0.000007000 INFER"),
        (10**18, 18, "INFER", "1.000000000000000000 INFER"),
        (1_500_000, 6, "USDX", "1.500000 USDX"),
        (42, 0, "PTS", "42 PTS"),
        # The largest u64 balance, where a float would already be off by thousands of units.
        (U64_MAX, 9, "INFER", "18446744073.709551615 INFER"),
        (U64_MAX, 18, "INFER", "18.446744073709551615 INFER"),
        (U64_MAX, 0, "INFER", "18446744073709551615 INFER"),
    ],
)
def test_format_amount_is_exact(raw, decimals, symbol, text):
    assert format_amount(raw, decimals, symbol) == text


@pytest.mark.parametrize(
    "text, raw",
    [
        ("1.5INFER", 15 * 10**8),
        ("1.5 INFER", 15 * 10**8),
        ("1.5 infer", 15 * 10**8),
        ("  2 INFER ", 2 * 10**9),
        ("0.000000001 INFER", 1),
        ("1500", 1500),
        ("1_000_000", 1_000_000),
        ("1_000_000_000 INFER", 10**18),
        ("18446744073.709551615 INFER", U64_MAX),
    ],
)
def test_parse_amount_reads_tokens_with_the_symbol_and_base_units_without(text, raw):
    assert parse_amount(text, 9, "INFER") == raw


@pytest.mark.parametrize(
    "text, message",
    [
        ("1.5", "base units and must be whole"),
        ("0.0000000001 INFER", "more than the 9 decimals"),
        ("18446744073.709551616 INFER", "more than the largest amount, 18446744073.709551615 INFER"),
        ("18446744073709551616", "more than the largest amount"),
        ("18446744074 INFER", "more than the largest amount"),
        ("-1 INFER", "not an amount"),
        ("1e18", "not an amount"),
        ("INFER", "not an amount"),
        ("1.5 ATOM", "not an amount"),
        ("\u0661\u0662 INFER", "not an amount"),  # Arabic-Indic digits pass str.isdigit()
        ("1.5 \u0131nfer", "not an amount"),  # dotless i: upper() would make it INFER
        ("", "not an amount"),
        ("9" * 100_000, "a 100000-digit number is too long for an amount; the largest amount is 18446744073.709551615"),
    ],
)
def test_parse_amount_refuses_what_is_not_an_exact_amount(text, message):
    with pytest.raises(ValueError, match=message) as raised:
        parse_amount(text, 9, "INFER")
    assert len(str(raised.value)) < 200  # the input is quoted by a short prefix only


@given(st.integers(0, U64_MAX), st.integers(0, 19))
def test_parse_reads_back_what_format_writes(raw, decimals):
    assert parse_amount(format_amount(raw, decimals, "INFER"), decimals, "INFER") == raw


@given(st.integers(0, U64_MAX), st.integers(0, 19))
def test_format_keeps_every_digit(raw, decimals):
    number = format_amount(raw, decimals, "INFER").removesuffix(" INFER")
    assert int(number.replace(".", "")) == raw
    assert len(number.partition(".")[2]) == decimals


def test_token_of_chain_info_reads_the_reported_token():
    class Reported:
        token_symbol = "TST"
        token_decimals = 6

    assert token_of(Reported()) == Token("TST", 6)
    assert token_of(Reported()).format(1_500_000) == "1.500000 TST"
    # Without a node's ChainInfo: the runtime's default, 9 decimals (runtime/balances.py).
    assert Token().format(10**18) == "1000000000.000000000 INFER"


def test_u64_writes_decimal_strings():
    assert u64(U64_MAX) == "18446744073709551615" and u64(0) == "0"
