"""Integer arithmetic for the runtime: no floats, fractions as parts per million."""

from __future__ import annotations

PPM = 1_000_000
U64_MAX = 2**64 - 1  # the largest amount, height or count a uint64 field holds
U32_MAX = 2**32 - 1


def mul_div(a: int, b: int, c: int) -> int:
    """a * b // c, rounded down, exact for any size of a and b."""
    return a * b // c


def apply_ppm(amount: int, parts_per_million: int) -> int:
    """The share `parts_per_million` / 1,000,000 of `amount`, rounded down."""
    return mul_div(amount, parts_per_million, PPM)
