"""params: `whole_number`, the one reading of an integer a person writes, and genesis's `parse_integer` over it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.arithmetic import U64_MAX
from runtime.params import IntegerOutOfRange, NotAnInteger, ParamsInvalid, parse_integer, whole_number


@settings(max_examples=200, deadline=None)
@given(number=st.integers(-(10**40), 10**40), low=st.integers(-(2**63), 0), high=st.integers(0, U64_MAX))
def test_a_written_number_is_read_exactly_or_refused_as_out_of_range(number, low, high):
    try:
        assert whole_number(str(number), low, high) == number
        assert low <= number <= high
    except IntegerOutOfRange as refused:
        assert not low <= number <= high and refused.below == (number < low)
        digits = str(abs(number))
        assert refused.shown == (str(number) if len(digits) <= 24 else f"a {len(digits)}-digit number")


@pytest.mark.parametrize("text, value", [("0", 0), ("+7", 7), ("-0", 0), ("007", 7), ("-5", -5)])
def test_signs_and_leading_zeros_are_read(text, value):
    assert whole_number(text, -10, 10) == value


@pytest.mark.parametrize("text", ["", "+", "-", "1.5", "1e3", "٣", " 1", "0x10", "--1"])
def test_what_is_not_a_whole_number_is_refused_as_such(text):
    with pytest.raises(NotAnInteger):
        whole_number(text, 0, 100)


def test_a_number_of_a_million_digits_is_refused_by_its_length_before_it_is_read():
    with pytest.raises(IntegerOutOfRange, match="a 1000000-digit number"):
        whole_number("9" * 1_000_000, 0, U64_MAX)  # int() would refuse it (the 4,300-digit limit) or spend time


@pytest.mark.parametrize("value, message", [
    ("-5", "must be an integer written as a string of digits, got '-5'"),
    (-5, "must be in [0, 2^64), got -5"),
    (True, "must be an integer written as a string"),
    (str(U64_MAX + 1), f"must be in [0, 2^64): at most {U64_MAX} base units, got {U64_MAX + 1}"),
    ("9" * 30, f"must be in [0, 2^64): at most {U64_MAX} base units, got a 30-digit number"),
])
def test_genesis_integers_are_digits_only_and_name_their_limit(value, message):
    with pytest.raises(ParamsInvalid) as refused:
        parse_integer(value, "amount", U64_MAX, unit="base units")
    assert str(refused.value) == f"amount {message}"
