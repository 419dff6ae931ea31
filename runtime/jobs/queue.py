"""The queues of jobs waiting for executors (one per model), and the schedule of jobs due at each height.

Queues and lock-out (docs/economics.md): a job waits only when its draw found too few free
executors (assignment is tried first, the queue looked at after); it waits in its model's queue,
so a flood for one model never blocks another. A model's queue holds at most `max_queue` jobs and
one poster has at most `max_queued_per_poster` waiting over every model. A job that finds no free
executor and no room expires at once, refunded, unless it offers a higher max_price_per_token than
the cheapest job waiting for its model: that one is displaced (it expires, refunded; its queue fee
stays burned). A job waiting before its first assignment burns `queue_fee`, which its escrow holds
from post (returned with the rest when it never waits). Each block retries at most
`assign_per_block` waiting jobs, the models taking turns, and a job tried without success goes to
the back of its queue, so jobs that cannot be filled do not block the ones behind them.

The schedule: at most `max_due_per_height` jobs are due at one height, so the hook work of a block
is bounded; a job due at a full height is scheduled at the first later height with room, and the
caller stores that height (as the assignment's deadline, the payment's release height, the timeout).
A full height points to a later height to try (path compression), so finding room costs a few reads.
"""

from __future__ import annotations

import struct

from proto import state_pb2
from runtime import balances
import runtime.jobs.events as events
from runtime.jobs.errors import TooManyQueued
from runtime.jobs.params import Params, read_params
from runtime.jobs.storage import (
    QUEUE_PREFIX,
    QUEUED_BY_PREFIX,
    QUEUED_MODELS_KEY,
    SCHEDULE_FULL_PREFIX,
    SCHEDULE_PREFIX,
    add_to_count,
    read_count,
)
from runtime.id_list import read_ids, write_ids
from runtime.state import Overlay, StateReader

# --- the queues -----------------------------------------------------------------


def queue_key(model: bytes) -> bytes:
    return QUEUE_PREFIX + model


def read_queue(state: StateReader, model: bytes) -> list[tuple[bytes, int]]:
    """The jobs waiting for the model's executors, oldest first, each with its max_price_per_token."""
    raw = state.get(queue_key(model))
    if raw is None:
        return []
    stored = state_pb2.JobQueue.FromString(raw)
    return list(zip(stored.job_ids, stored.max_prices))


def queued(state: StateReader, model: bytes) -> list[bytes]:
    """The ids of the jobs waiting for the model's executors, oldest first."""
    return [job for job, _ in read_queue(state, model)]


def queued_models(state: StateReader) -> list[bytes]:
    """The models with jobs waiting, sorted."""
    raw = state.get(QUEUED_MODELS_KEY)
    return [] if raw is None else list(state_pb2.ModelIdList.FromString(raw).model_ids)


def queued_by(state: StateReader, poster: bytes) -> int:
    """How many of the poster's jobs wait, over every model."""
    return read_count(state, QUEUED_BY_PREFIX + poster)


def _count_poster(state: Overlay, poster: bytes, delta: int) -> None:
    add_to_count(state, QUEUED_BY_PREFIX + poster, delta)


def _write_models(state: Overlay, models: list[bytes]) -> None:
    if models:
        state.set(QUEUED_MODELS_KEY, state_pb2.ModelIdList(model_ids=sorted(models)).SerializeToString(deterministic=True))
    else:
        state.delete(QUEUED_MODELS_KEY)


def _write_queue(state: Overlay, model: bytes, entries: list[tuple[bytes, int]]) -> None:
    """Store a model's queue, and list (or unlist) the model among those with jobs waiting."""
    if entries:
        stored = state_pb2.JobQueue(job_ids=[job for job, _ in entries], max_prices=[price for _, price in entries])
        state.set(queue_key(model), stored.SerializeToString(deterministic=True))
    else:
        state.delete(queue_key(model))
    models = queued_models(state)
    if entries and model not in models:
        _write_models(state, models + [model])
    elif not entries and model in models:
        models.remove(model)
        _write_models(state, models)


def _without(entries: list[tuple[bytes, int]], job: bytes) -> list[tuple[bytes, int]]:
    return [entry for entry in entries if entry[0] != job]


def no_room(state: StateReader, job: state_pb2.Job, params: Params) -> str:
    """Why a job that found no free executor cannot wait, even by displacing a cheaper one ("" when it can).

    A job that had executors (all of whom missed) was admitted already and always waits again:
    such jobs are bounded by the executors' capacity.
    """
    waiting = queued(state, job.request.model)
    if job.assignments or job.id in waiting:
        return ""
    mine = queued_by(state, job.poster)
    if mine >= params.max_queued_per_poster:
        return f"no executor was free and {mine} of the poster's jobs already wait (the limit is {params.max_queued_per_poster})"
    if len(waiting) >= params.max_queue and displaced_by(state, job, params) is None:
        return (f"no executor was free and {len(waiting)} jobs already wait for this model (the limit is "
                f"{params.max_queue}), none at a max_price_per_token below {job.request.max_price_per_token}")
    return ""


def displaced_by(state: StateReader, job: state_pb2.Job, params: Params) -> bytes | None:
    """The waiting job a newcomer displaces from its model's full queue: the cheapest (the newest of
    those), when the newcomer offers a higher max_price_per_token; None when the queue has room or none is cheaper."""
    entries = read_queue(state, job.request.model)
    if job.assignments or len(entries) < params.max_queue or any(waiting == job.id for waiting, _ in entries):
        return None
    cheapest = min(price for _, price in entries)
    if job.request.max_price_per_token <= cheapest:
        return None
    return [waiting for waiting, price in entries if price == cheapest][-1]


def enqueue(state: Overlay, job: state_pb2.Job) -> bool:
    """Put a job at the end of its model's queue (burning the queue fee when it never had executors); False when it waits there already."""
    model = job.request.model
    entries = read_queue(state, model)
    if any(waiting == job.id for waiting, _ in entries):
        return False
    _write_queue(state, model, entries + [(job.id, job.request.max_price_per_token)])
    _count_poster(state, job.poster, 1)
    if not job.assignments and not job.queue_fee:
        _burn_queue_fee(state, job, read_params(state))
    return True


def _burn_queue_fee(state: Overlay, job: state_pb2.Job, params: Params) -> None:
    """Burn the queue fee from the escrow, which holds it from post."""
    fee = min(params.queue_fee, job.escrow)
    if not fee:
        return
    balances.burn_reserved(state, job.poster, fee)
    job.escrow -= fee
    job.queue_fee = fee
    state.deposit_event(events.event(events.QUEUE_FEE, job=job.id.hex(), poster=job.poster.hex(), amount=fee))


def dequeue(state: Overlay, job: state_pb2.Job) -> None:
    """Take a job out of its model's queue (nothing when it is not there)."""
    model = job.request.model
    entries = read_queue(state, model)
    kept = _without(entries, job.id)
    if len(kept) == len(entries):
        return
    _write_queue(state, model, kept)
    _count_poster(state, job.poster, -1)


def to_back(state: Overlay, job: state_pb2.Job) -> None:
    """Move a waiting job that was just tried to the back of its queue, behind the ones not yet tried."""
    model = job.request.model
    entries = read_queue(state, model)
    kept = _without(entries, job.id)
    if len(kept) < len(entries):
        _write_queue(state, model, kept + [(job.id, job.request.max_price_per_token)])


def check_poster_room(state: StateReader, poster: bytes, params: Params) -> None:
    """Refuse a post from a poster that has max_queued_per_poster jobs waiting already (known before the fee)."""
    mine = queued_by(state, poster)
    if mine >= params.max_queued_per_poster:
        raise TooManyQueued(f"{mine} of this poster's jobs already wait for executors (the limit is "
                            f"{params.max_queued_per_poster}); wait for them to be assigned, or cancel some")


def retry_batch(state: StateReader, params: Params, height: int) -> list[bytes]:
    """At most assign_per_block waiting jobs to try now: the models take turns (the first turn rotating by height),
    each giving its oldest job not yet taken."""
    models = queued_models(state)
    if not models:
        return []
    start = height % len(models)
    waiting = [queued(state, model) for model in models[start:] + models[:start]]
    batch = []
    for depth in range(max(len(ids) for ids in waiting)):
        for ids in waiting:
            if depth < len(ids) and len(batch) < params.assign_per_block:
                batch.append(ids[depth])
        if len(batch) >= params.assign_per_block:
            break
    return batch


# --- the schedule ---------------------------------------------------------------


def schedule_key(height: int) -> bytes:
    return SCHEDULE_PREFIX + struct.pack(">Q", height)


def full_key(height: int) -> bytes:
    return SCHEDULE_FULL_PREFIX + struct.pack(">Q", height)


def _next_to_try(state: StateReader, height: int) -> int | None:
    """The later height a full height points to; None when the height has room."""
    raw = state.get(full_key(height))
    return None if raw is None else struct.unpack(">Q", raw)[0]


def schedule(state: Overlay, height: int, job: bytes) -> int:
    """Have the job looked at again in the first block at or after `height` with room; that block's height.

    A height holds at most max_due_per_height jobs. Callers store the height returned (an
    assignment's deadline, a payment's release), so the rule a job is judged by is the one scheduled.
    """
    limit = read_params(state).max_due_per_height
    passed = []
    at = height
    while (later := _next_to_try(state, at)) is not None:
        passed.append(at)
        at = later
    key = schedule_key(at)
    ids = read_ids(state, key)
    if job not in ids:
        ids.append(job)
        write_ids(state, key, ids)
        if len(ids) >= limit:
            state.set(full_key(at), struct.pack(">Q", at + 1))
    for full in passed[:-1]:
        state.set(full_key(full), struct.pack(">Q", at))
    return at


def take_due(state: Overlay, height: int) -> list[bytes]:
    """The jobs scheduled for `height` (at most max_due_per_height), removed from the schedule."""
    key = schedule_key(height)
    due = read_ids(state, key)
    state.delete(key)
    state.delete(full_key(height))
    return due
