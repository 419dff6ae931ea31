"""Printing command results: a plain table for people, or JSON with `--output json`.

JSON numbers (docs/cli.md, "JSON output"): a value that is 64 bits on the wire (balances,
amounts, fees, nonces, heights, times in ms, byte sizes) is a decimal string, since JSON readers
such as JavaScript's lose digits above 2^53 (genesis.json writes them the same way); a smaller one
(counts, indexes, decimals, ports, SS58 prefix) is a number. `u64` writes the former.

Amounts: people read `1.000000000 INFER` (format_amount, the chain's decimals from ChainInfo); JSON
keeps the raw integer.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from chain.text import quote_number
from runtime.arithmetic import U64_MAX

# The dev genesis token (runtime/balances.py Params): what JSON-only paths use where they never
# show an amount in tokens.
DEFAULT_TOKEN_SYMBOL = "INFER"
DEFAULT_TOKEN_DECIMALS = 9
# Longer than any u64 amount with up to 19 decimals, `_` separators and a symbol: refused before parsing.
MAX_AMOUNT_TEXT = 64
_TOKEN_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]+))?", re.ASCII)


def add_output_argument(parser: argparse.ArgumentParser) -> None:
    """Give a command the `--output text|json` option."""
    parser.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="text: lines for people; json: one JSON document, 64-bit integers as strings "
             "(docs/cli.md) (default: text)",
    )


def print_json(document: Any) -> None:
    """Print one JSON document, keys in a stable order."""
    json.dump(document, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def u64(value: int) -> str:
    """A 64-bit integer as JSON output writes it: a decimal string."""
    return str(int(value))


def print_fields(fields: Sequence[tuple[str, Any]]) -> None:
    """Print `name: value` lines with the names aligned."""
    width = max((len(name) for name, _ in fields), default=0)
    for name, value in fields:
        print(f"{name.ljust(width)}  {value}")


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print rows under headers, each column as wide as its widest cell."""
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row)]
    print("  ".join(header.ljust(width) for header, width in zip(headers, widths)).rstrip())
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


# --- token amounts ------------------------------------------------------------------


def format_amount(raw: int, decimals: int, symbol: str) -> str:
    """`raw` base units as tokens, exactly: 10^9 with 9 decimals is '1.000000000 INFER'."""
    sign = "-" if raw < 0 else ""
    whole, fraction = divmod(abs(int(raw)), 10**decimals)
    digits = f"{whole}.{fraction:0{decimals}d}" if decimals else str(whole)
    return f"{sign}{digits} {symbol}".rstrip()


def parse_amount(text: str, decimals: int, symbol: str, maximum: int = U64_MAX) -> int:
    """Base units from '1.5 INFER' or '1.5INFER' (tokens, exact) or '1500' (base units); ValueError otherwise."""
    largest = f"{format_amount(maximum, decimals, symbol)} ({maximum} base units)"
    if len(text) > MAX_AMOUNT_TEXT:
        raise ValueError(f"{quote_number(text)} is too long for an amount; the largest amount is {largest}")
    cleaned = text.strip().replace("_", "")
    suffix = cleaned[-len(symbol):] if symbol else ""
    # ASCII only: case mapping sends some other letters onto ASCII ones (the Kelvin sign onto k).
    in_tokens = bool(suffix) and suffix.isascii() and suffix.lower() == symbol.lower()
    number = cleaned[: len(cleaned) - len(symbol)].rstrip() if in_tokens else cleaned
    match = _TOKEN_AMOUNT.fullmatch(number)
    if match is None:
        raise ValueError(f"{quote_number(text)} is not an amount: give base units (1500) or tokens (1.5 {symbol})")
    whole, fraction = match.group(1), match.group(2) or ""
    if not in_tokens and match.group(2) is not None:
        raise ValueError(f"{quote_number(text)}: a plain number is in base units and must be whole; "
                         f"write tokens with the symbol ({number} {symbol})")
    if len(fraction) > decimals:
        raise ValueError(f"{quote_number(text)} has more than the {decimals} decimals {symbol} has")
    raw = int(whole) * 10**decimals + int(fraction.ljust(decimals, "0") or "0") if in_tokens else int(whole)
    if raw > maximum:
        raise ValueError(f"{quote_number(text)} is more than the largest amount, {largest}")
    return raw


@dataclass(frozen=True)
class Token:
    """The chain's token: how many base units make one (10^decimals) and its symbol."""

    symbol: str = DEFAULT_TOKEN_SYMBOL
    decimals: int = DEFAULT_TOKEN_DECIMALS

    def format(self, raw: int) -> str:
        """`raw` base units for people, e.g. '0.000001000 INFER'."""
        return format_amount(raw, self.decimals, self.symbol)

    def parse(self, text: str, maximum: int = U64_MAX) -> int:
        """Base units from a person's amount (parse_amount)."""
        return parse_amount(text, self.decimals, self.symbol, maximum)


def token_of(chain_info: Any) -> Token:
    """The token a node reports in its ChainInfo (fixed at genesis in the balances parameters)."""
    return Token(chain_info.token_symbol, chain_info.token_decimals)
