"""Quoting what a person or a peer sent, in messages that must stay short whatever was sent."""

from __future__ import annotations


def quote_input(value, limit: int = 48) -> str:
    """repr() of at most `limit` characters of `value`, and its length when it was cut."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"
