"""The queue of jobs waiting for executors, and the schedule of jobs due at each height.

Both are bounded lists read by key, so the per-block hook never walks state: the queue is
retried `assign_per_block` jobs at a time, and a height's schedule is read once and deleted.
"""

from __future__ import annotations

import struct

from runtime.jobs.storage import QUEUE_KEY, SCHEDULE_PREFIX, read_ids, write_ids
from runtime.state import Overlay, StateReader


def queued(state: StateReader) -> list[bytes]:
    """The ids of the jobs waiting for executors, oldest first."""
    return read_ids(state, QUEUE_KEY)


def enqueue(state: Overlay, job: bytes) -> bool:
    """Put a job at the end of the queue; False when it waits there already."""
    ids = read_ids(state, QUEUE_KEY)
    if job in ids:
        return False
    write_ids(state, QUEUE_KEY, ids + [job])
    return True


def dequeue(state: Overlay, job: bytes) -> None:
    ids = read_ids(state, QUEUE_KEY)
    if job in ids:
        ids.remove(job)
        write_ids(state, QUEUE_KEY, ids)


def schedule_key(height: int) -> bytes:
    return SCHEDULE_PREFIX + struct.pack(">Q", height)


def schedule(state: Overlay, height: int, job: bytes) -> None:
    """Have the job looked at again in the block at `height`."""
    key = schedule_key(height)
    ids = read_ids(state, key)
    if job not in ids:
        write_ids(state, key, ids + [job])


def take_due(state: Overlay, height: int) -> list[bytes]:
    """The jobs scheduled for `height`, removed from the schedule."""
    key = schedule_key(height)
    due = read_ids(state, key)
    state.delete(key)
    return due
