"""A list of 32-byte ids stored under one key (proto JobIdList): the jobs and disputes schedules and queues.

One copy of the encoding, so the jobs and disputes modules (which may not import each other's storage
without a cycle) read and write the same form.
"""

from __future__ import annotations

from proto import state_pb2
from runtime.state import Overlay, StateReader


def read_ids(state: StateReader, key: bytes) -> list[bytes]:
    """The ids of a JobIdList stored under `key` (empty when absent)."""
    raw = state.get(key)
    return [] if raw is None else list(state_pb2.JobIdList.FromString(raw).job_ids)


def write_ids(state: Overlay, key: bytes, ids: list[bytes]) -> None:
    """Store the ids under `key`; an empty list deletes the key."""
    if ids:
        state.set(key, state_pb2.JobIdList(job_ids=ids).SerializeToString(deterministic=True))
    else:
        state.delete(key)
