"""reputation: an integer score per executor, raised by settled jobs, lowered by missed deadlines.

The score weighs executor assignment (runtime/jobs/assignment.py: stake x reputation). The jobs
module moves it, with bounds and steps from its own parameters (`jobs.params.reputation_*`), so
this module holds the storage and the one rule for moving a score; it has no calls, no
parameters of its own and nothing in genesis (every account starts at the jobs module's
`reputation_initial`).

Shape: storage keys, storage access, queries, declaration.
"""

from __future__ import annotations

from proto import state_pb2
from runtime.module import ACCOUNT, INTEGER, ModuleSpec, QuerySpec, require_id
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


# --- queries --------------------------------------------------------------------


def query_score(state: StateReader, request: state_pb2.AccountQuery) -> state_pb2.ReputationScore:
    """An executor's stored score; KeyError when it has none yet (it starts at jobs.params.reputation_initial)."""
    account = require_id(request.account, "account")
    raw = state.get(key(account))
    if raw is None:
        raise KeyError(f"a score for {account.hex()} (none yet: it starts at jobs.params.reputation_initial)")
    return state_pb2.ReputationScore(account=account, score=int.from_bytes(raw, "big"))


QUERIES = (
    QuerySpec(name="score", doc="An executor's reputation score (its weight in assignment, with its stake).",
              request=state_pb2.AccountQuery, response=state_pb2.ReputationScore, handler=query_score,
              fields={"account": ACCOUNT, "score": INTEGER}),
)

# --- declaration ----------------------------------------------------------------

SPEC = ModuleSpec(
    name=MODULE,
    doc="An integer score per executor, used as an assignment weight.",
    params=None,
    genesis=None,
    queries=QUERIES,
)
