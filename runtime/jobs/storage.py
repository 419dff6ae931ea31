"""jobs storage: the keys under `jobs/`, the job records, executor load, the listing indexes, and pruning.

Listing indexes (value b"") are walked by the node's API, newest last in key order. A job's record
is pruned challenge_window_blocks after it ends: it keeps what a dispute or a reader needs (the
request without its prompt, statuses, payments, commitments and output digests) and its storage
deposit returns to the poster.

The probes' recent requests (runtime/jobs/probes.py): per staking epoch, the newest PostJob posted for each
model (at most MAX_PROBE_MODELS models an epoch), read and deleted at the next epoch's first block.
"""

from __future__ import annotations

import struct

from proto import state_pb2, types_pb2
from runtime import balances
import runtime.jobs.events as events
from runtime.jobs.params import Params
from runtime.jobs.phases import ACTIVE_SLOTS, FINAL_STATUSES, SLOT_MISSED
from runtime.state import Overlay, StateReader

JOB_PREFIX = b"jobs/job/"  # + job id -> Job
LOAD_PREFIX = b"jobs/load/"  # + executor -> 4-byte big-endian count of active assignments
QUEUE_PREFIX = b"jobs/queue/"  # + model id -> JobIdList waiting for that model's executors, oldest first
QUEUED_MODELS_KEY = b"jobs/queued_models"  # ModelIdList: the models whose queue is not empty, sorted
QUEUED_BY_PREFIX = b"jobs/queued_by/"  # + poster -> 4-byte big-endian count of its jobs waiting
SCHEDULE_PREFIX = b"jobs/schedule/"  # + u64 big-endian height -> JobIdList due then
SCHEDULE_FULL_PREFIX = b"jobs/schedule_full/"  # + u64 BE height -> u64 BE later height to try (that one is full)
JOBS_BY_HEIGHT = b"jobs/by_height/"  # + u64 BE posted height + job id
JOBS_BY_POSTER = b"jobs/by_poster/"  # + poster + u64 BE posted height + job id
JOBS_BY_EXECUTOR = b"jobs/by_executor/"  # + executor + u64 BE posted height + job id
RECENT_REQUEST_PREFIX = b"jobs/recent/request/"  # + u64 BE epoch + model id -> PostJob: the newest posted then
RECENT_MODELS_PREFIX = b"jobs/recent/models/"  # + u64 BE epoch -> ModelIdList: the models with a request then, sorted
# Models whose recent request an epoch keeps: the probe draw reads every executor serving them
# (runtime/jobs/weights.py declares it), so the list is bounded; a model first posted for after 16 others in
# an epoch is not probed from that epoch's requests.
MAX_PROBE_MODELS = 16


def read_job(state: StateReader, job: bytes) -> state_pb2.Job | None:
    """The stored job, or None when no job has this id."""
    raw = state.get(JOB_PREFIX + job)
    return None if raw is None else state_pb2.Job.FromString(raw)


def write_job(state: Overlay, job: state_pb2.Job) -> None:
    state.set(JOB_PREFIX + job.id, job.SerializeToString(deterministic=True))


def read_count(state: StateReader, key: bytes) -> int:
    """A 4-byte big-endian counter (0 when absent)."""
    raw = state.get(key)
    return 0 if raw is None else int.from_bytes(raw, "big")


def add_to_count(state: Overlay, key: bytes, delta: int) -> None:
    """Move a counter by `delta`; a counter at 0 is deleted."""
    count = read_count(state, key) + delta
    if count:
        state.set(key, count.to_bytes(4, "big"))
    else:
        state.delete(key)


def read_load(state: StateReader, account: bytes) -> int:
    """How many assignments the executor holds now (its capacity in use)."""
    return read_count(state, LOAD_PREFIX + account)


def add_load(state: Overlay, account: bytes, delta: int) -> None:
    add_to_count(state, LOAD_PREFIX + account, delta)


def index_posted(state: Overlay, job: state_pb2.Job) -> None:
    """List a new job by height and by poster."""
    position = struct.pack(">Q", job.posted_height) + job.id
    state.set(JOBS_BY_HEIGHT + position, b"")
    state.set(JOBS_BY_POSTER + job.poster + position, b"")


def index_assigned(state: Overlay, job: state_pb2.Job, executor: bytes) -> None:
    """List a job under an executor it was assigned to."""
    state.set(JOBS_BY_EXECUTOR + executor + struct.pack(">Q", job.posted_height) + job.id, b"")


def active_slots(job: state_pb2.Job) -> list[state_pb2.Assignment]:
    """The assignments still holding their executor's capacity."""
    return [slot for slot in job.assignments if slot.status in ACTIVE_SLOTS]


def missing_slots(job: state_pb2.Job) -> int:
    """How many executors the job still needs."""
    return job.request.redundancy - len(active_slots(job))


def slot_of(job: state_pb2.Job, executor: bytes) -> state_pb2.Assignment | None:
    """The executor's current (not missed) assignment in the job."""
    return next((slot for slot in job.assignments if slot.executor == executor and slot.status != SLOT_MISSED), None)


# --- recent requests (the probes' prompts) ---------------------------------------------


def record_request(state: Overlay, request: types_pb2.PostJob, epoch: int) -> None:
    """Keep a posted PostJob as its model's newest request of the epoch (a probe of the next epoch copies it)."""
    key = RECENT_MODELS_PREFIX + struct.pack(">Q", epoch)
    models = read_recent_models(state, epoch)
    if request.model not in models:
        if len(models) >= MAX_PROBE_MODELS:
            return
        state.set(key, state_pb2.ModelIdList(model_ids=sorted(models + [request.model])).SerializeToString(deterministic=True))
    state.set(_request_key(epoch, request.model), request.SerializeToString(deterministic=True))


def _request_key(epoch: int, model: bytes) -> bytes:
    return RECENT_REQUEST_PREFIX + struct.pack(">Q", epoch) + model


def read_recent_models(state: StateReader, epoch: int) -> list[bytes]:
    """The models with a request recorded in the epoch, sorted."""
    raw = state.get(RECENT_MODELS_PREFIX + struct.pack(">Q", epoch))
    return [] if raw is None else list(state_pb2.ModelIdList.FromString(raw).model_ids)


def take_recent_requests(state: Overlay, epoch: int) -> dict[bytes, types_pb2.PostJob]:
    """Each model's newest PostJob of the epoch (model id -> PostJob), deleted from state: read once, at the next
    epoch's first block."""
    requests = {}
    for model in read_recent_models(state, epoch):
        key = _request_key(epoch, model)
        requests[model] = types_pb2.PostJob.FromString(state.get(key))
        state.delete(key)
    state.delete(RECENT_MODELS_PREFIX + struct.pack(">Q", epoch))
    return requests


# --- pruning ------------------------------------------------------------------------


def prunable(job: state_pb2.Job, params: Params, height: int) -> bool:
    """The job ended at least challenge_window_blocks ago and holds nothing: no escrow, every payment released."""
    return (
        job.status in FINAL_STATUSES
        and not job.pruned_height
        and height >= job.final_height + params.challenge_window_blocks
        and job.escrow == 0
        and all(slot.released or not slot.payment for slot in job.assignments)
    )


def pruned_record(job: state_pb2.Job, height: int) -> state_pb2.Job:
    """The job without its prompt and its reveals' salts, tokens, text and log-probabilities."""
    record = state_pb2.Job()
    record.CopyFrom(job)
    record.request.ClearField("prompt")
    for slot in record.assignments:
        if slot.HasField("reveal"):
            slot.reveal.CopyFrom(
                state_pb2.Reveal(prompt_tokens=slot.reveal.prompt_tokens, output_digest=slot.reveal.output_digest,
                                 stop_reason=slot.reveal.stop_reason, height=slot.reveal.height)
            )
    record.storage_deposit = 0
    record.pruned_height = height
    return record


def prune(state: Overlay, job: state_pb2.Job, params: Params, height: int) -> bool:
    """Replace a prunable job's record by its pruned record and return its storage deposit; False if not prunable."""
    if not prunable(job, params, height):
        return False
    deposit = job.storage_deposit
    if deposit:
        balances.unreserve(state, job.poster, deposit)
    write_job(state, pruned_record(job, height))
    state.deposit_event(events.event(events.JOB_PRUNED, job=job.id.hex(), poster=job.poster.hex(), deposit=deposit))
    return True

