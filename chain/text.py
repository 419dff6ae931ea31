"""Quoting what a person or a peer sent, in messages that must stay short whatever was sent."""

from __future__ import annotations

import re

# A number as a person writes one: digits with `_` separators, a sign, a fraction, a unit (1_000.5 INFER).
_NUMBER = re.compile(r"\s*[+-]?([0-9][0-9_]*)(?:\.([0-9_]*))?\s*[A-Za-z]{0,12}\s*", re.ASCII)


def quote_input(value, limit: int = 48) -> str:
    """repr() of a prefix of `value` at most about `limit` characters long once quoted, and its length when cut.

    The bound is on what is printed: a character repr() escapes (a control character, an
    unprintable code point) counts as its escape, up to 10 characters. Where a number is meant,
    quote_number: a number cut short reads as a smaller one.
    """
    if isinstance(value, int) and value.bit_length() > 14_000:  # str() refuses ints past 4,300 digits
        return f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = value if isinstance(value, str) else str(value)
    quoted = repr(text)
    if len(quoted) <= limit + 2:
        return quoted
    prefix = text[:limit]
    while len(repr(prefix)) > limit + 2:
        prefix = prefix[: len(prefix) // 2] if len(repr(prefix)) > 2 * (limit + 2) else prefix[:-1]
    return f"{prefix!r}… ({len(text)} characters)"


def quote_number(value, limit: int = 48) -> str:
    """What a person gave where a number is meant: quoted whole when short; a long number described by its
    digits ('a 28-digit number'), never cut (a genesis balance of 10^27 was once quoted as 24 digits,
    which read as a valid smaller amount); anything else as quote_input."""
    if isinstance(value, int) and value.bit_length() > 14_000:
        return quote_input(value, limit)
    text = value if isinstance(value, str) else str(value)
    if len(repr(text)) > limit + 2 and _NUMBER.fullmatch(text):
        return describe_number(text)
    return quote_input(text, limit)


def describe_number(text: str) -> str:
    """A long number by its size ('a 28-digit number'), for messages that must not quote it cut short."""
    match = _NUMBER.fullmatch(text)
    if match is None:
        return f"a {len(text)}-character value"
    whole = match.group(1).replace("_", "").lstrip("0") or "0"
    fraction = (match.group(2) or "").replace("_", "")
    if fraction:
        return f"a number with {len(whole)} digits before the point and {len(fraction)} after"
    return f"a {len(whole)}-digit number"
