"""reputation: an integer score per executor, raised by settled jobs, lowered by missed deadlines.

The score weighs executor assignment (runtime/jobs.py: stake x reputation). It has no calls: the
jobs module moves it; its bounds and steps are jobs parameters (`reputation_*`), so this file only
keeps the storage. Slashing (after the multi-validator network) will lower it too.
"""

from __future__ import annotations

from runtime.state import Overlay, StateReader

PREFIX = b"reputation/"


def key(account: bytes) -> bytes:
    return PREFIX + account


def read_reputation(state: StateReader, account: bytes, initial: int = 0) -> int:
    """The account's score, or `initial` when it has none yet."""
    raw = state.get(key(account))
    return initial if raw is None else int.from_bytes(raw, "big")


def adjust(state: Overlay, account: bytes, delta: int, initial: int, maximum: int) -> int:
    """Move the score by `delta`, kept within [1, maximum]; the new score."""
    score = max(1, min(maximum, read_reputation(state, account, initial) + delta))
    state.set(key(account), score.to_bytes(4, "big"))
    return score
