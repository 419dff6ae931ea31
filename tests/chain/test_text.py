"""quote_input: what an error message quotes of the input stays short, whatever the input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chain.text import quote_input


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=400) | st.binary(max_size=400))
def test_a_quote_is_short_however_the_input_escapes(value):
    quoted = quote_input(value)
    # The quoted prefix (48 characters and its quotes), then "… (N characters)" when cut.
    assert len(quoted) <= 50 + len(" … (400 characters)") + 20


def test_short_input_is_quoted_whole_and_long_input_by_a_prefix_and_its_length():
    assert quote_input("alice") == "'alice'"
    assert quote_input("x" * 1000) == repr("x" * 48) + "… (1000 characters)"
    escaped = quote_input("\x1f" * 100)
    assert escaped.endswith("… (100 characters)") and len(escaped) < 80
