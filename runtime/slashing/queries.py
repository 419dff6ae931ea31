"""slashing queries: the slashes of one account or of every account, newest first; the brake (and, declared in
spec.py, the parameters)."""

from __future__ import annotations

from collections import deque
from typing import Iterator

from proto import state_pb2
from runtime.module import InvalidQuery, require_id
from runtime.slashing.brake import tally
from runtime.slashing.storage import RECENT_PREFIX, SLASH_PREFIX
from runtime.state import IterableState, StateReader

MAX_SLASHES = 100


def slashes_limit(requested: int) -> int:
    """The number of records a SlashQuery asks for: 1 to MAX_SLASHES, 0 meaning MAX_SLASHES."""
    if requested > MAX_SLASHES:
        raise InvalidQuery(f"limit must be at most {MAX_SLASHES} (0 means {MAX_SLASHES}), got {requested}")
    return requested or MAX_SLASHES


def _newest(state: IterableState, prefix: bytes, limit: int) -> Iterator[bytes]:
    """The values of the last `limit` keys under `prefix`, largest key first."""
    reverse = getattr(state, "iter_prefix_reverse", None)
    if reverse is not None:
        # The node's store walks backwards and reads only what it returns.
        walk = reverse(prefix)
        for _ in range(limit):
            item = next(walk, None)
            if item is None:
                return
            yield item[1]
        return
    # A state that walks forwards only still reads nothing outside the prefix.
    yield from (value for _, value in reversed(deque(state.iter_prefix(prefix), maxlen=limit)))


def query_slashes(state: IterableState, request: state_pb2.SlashQuery) -> state_pb2.SlashList:
    """The slashes of `request.account` (every account's when empty), newest first, at most `limit`."""
    limit = slashes_limit(request.limit)
    prefix = RECENT_PREFIX if not request.account else SLASH_PREFIX + require_id(request.account, "account")
    return state_pb2.SlashList(slashes=[state_pb2.SlashRecord.FromString(raw) for raw in _newest(state, prefix, limit)])


def query_brake(state: StateReader, request: state_pb2.NoArguments) -> state_pb2.BrakeStatus:
    """Whether the brake on dispute slashing holds against the current set, and who of the set pulls it."""
    now = tally(state)
    return state_pb2.BrakeStatus(engaged=now.engaged, engaged_power=now.engaged_power, total_power=now.total_power,
                                 validators=list(now.validators))
