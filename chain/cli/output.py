"""Printing command results: a plain table for people, or JSON with `--output json`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Iterable, Sequence


def add_output_argument(parser: argparse.ArgumentParser) -> None:
    """Give a command the `--output text|json` option."""
    parser.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="print a table for people (text, the default) or one JSON document (json)",
    )


def print_json(document: Any) -> None:
    """Print one JSON document, keys in a stable order."""
    json.dump(document, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


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
