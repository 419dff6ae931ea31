"""reputation: an integer score per executor, raised by settled jobs, lowered by missed deadlines.

The score weighs executor assignment (runtime/jobs/assignment.py: stake x reputation). The jobs
module moves it, with bounds and steps from its own parameters (`jobs.params.reputation_*`), so
this module holds the storage and the one rule for moving a score; it has no calls, no
parameters of its own and nothing in genesis (every account starts at the jobs module's
`reputation_initial`).

Shape: storage keys, storage access, declaration.
"""

from __future__ import annotations

from runtime.module import ModuleSpec
from runtime.state import Overlay, StateReader

MODULE = "reputation"

# --- storage keys ---------------------------------------------------------------

PREFIX = b"reputation/"  # + account -> 4-byte big-endian score


def key(account: bytes) -> bytes:
    return PREFIX + account


# --- storage access -------------------------------------------------------------


def read_reputation(state: StateReader, account: bytes, initial: int = 0) -> int:
    """The account's score, or `initial` when it has none yet."""
    raw = state.get(key(account))
    return initial if raw is None else int.from_bytes(raw, "big")


def adjust(state: Overlay, account: bytes, delta: int, initial: int, maximum: int) -> int:
    """Move the score by `delta`, kept within [1, maximum]; the new score."""
    score = max(1, min(maximum, read_reputation(state, account, initial) + delta))
    state.set(key(account), score.to_bytes(4, "big"))
    return score


# --- declaration ----------------------------------------------------------------

SPEC = ModuleSpec(
    name=MODULE,
    doc="An integer score per executor, used as an assignment weight.",
    params=None,
    genesis=None,
)
