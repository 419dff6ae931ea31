"""Quoting what a person or a peer sent, in messages that must stay short whatever was sent."""

from __future__ import annotations


def quote_input(value, limit: int = 48) -> str:
    """repr() of a prefix of `value` at most about `limit` characters long once quoted, and its length when cut.

    The bound is on what is printed: a character repr() escapes (a control character, an
    unprintable code point) counts as its escape, up to 10 characters.
    """
    text = value if isinstance(value, str) else str(value)
    quoted = repr(text)
    if len(quoted) <= limit + 2:
        return quoted
    prefix = text[:limit]
    while len(repr(prefix)) > limit + 2:
        prefix = prefix[: len(prefix) // 2] if len(repr(prefix)) > 2 * (limit + 2) else prefix[:-1]
    return f"{prefix!r}… ({len(text)} characters)"
