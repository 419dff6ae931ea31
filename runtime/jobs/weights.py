"""jobs weights: the declared worst case of each call and of the block hooks (runtime/weights.py, the unit costs).

A job's assignment visits at most every executor serving its model (weights.MAX_EXECUTORS_PER_MODEL):
the offers scanned when no draw table answers, or the table built once an epoch; each draw then
writes its assignment. The hooks' work is bounded by parameters and read from the parent state:
the jobs whose first draw is at this height, at most `assign_per_block` queue retries, and the
jobs due at this height (at most `max_due_per_height`), each with one assignment attempt and its
slots handled, and a draw table per model whose table is stale. An epoch's first block also posts its
probes (probes.py): every executor serving a model of the last epoch's recent requests (at most
MAX_PROBE_MODELS models) read once, and per probe (at most MAX_PROBES_PER_EPOCH) a walk of them and a job
stored and assigned.
"""

from __future__ import annotations

import struct

from proto import types_pb2
from runtime import staking, weights
from runtime.disputes import weights as dispute_weights
from runtime.disputes.params import MAX_PROBES_PER_EPOCH
from runtime.disputes.params import read_params as read_dispute_params
from runtime.jobs.assignment import DRAW_DUE_PREFIX, MAX_REFUSALS_PER_HOOK
from runtime.models import MAX_ENGINE_CLASSES, model_for_job
from runtime.jobs.tables import current_epoch, read_header
from runtime.jobs.params import read_params
from runtime.jobs.queue import queued, queued_models
from runtime.id_list import read_ids
from runtime.jobs.storage import MAX_PROBE_MODELS, SCHEDULE_PREFIX, read_job, read_recent_models
from runtime.primitives import BlockContext
from runtime.slashing.weights import slash
from runtime.state import StateReader

# A job record read, changed and written back, with its event and the indexes it touches.
JOB_RECORD = 2 * weights.READ + 3 * weights.WRITE
# Putting a job id on a height's schedule: the list (at most max_due_per_height ids) read and written back.
SCHEDULE_ENTRY = 2 * weights.READ + weights.WRITE + 1_000 * weights.LIST_ENTRY
# The job's collateral (runtime/jobs/collateral.py: the dispute parameters and the model read) and, per pick, the
# executor's ledger read for its jail.
COLLATERAL = 3 * weights.READ
# Settling: a dispute opened (differing or too few digests) or an audit draw scheduled, whichever costs more.
SETTLE_DISPUTE = max(dispute_weights.OPEN, dispute_weights.AUDIT_ENTRY)
# A recent request kept at post (probes.py): the epoch's model list read and written, the request written.
RECENT_REQUEST = 2 * weights.READ + 2 * weights.WRITE + MAX_PROBE_MODELS * weights.LIST_ENTRY
# A recent request read and deleted at the next epoch's first block (its prompt decoded).
REQUEST_TAKEN = weights.READ + weights.WRITE + weights.MAX_PROMPT_BYTES * weights.BYTE
# One probe posted: the hash, the executor's load, the model and the fund read, the escrow reserved, the job
# (its prompt copied) stored with its timeout and deadline scheduled, its load and indexes written, its events.
PROBE = (JOB_RECORD + weights.MAX_PROMPT_BYTES * weights.BYTE + 2 * SCHEDULE_ENTRY + 6 * weights.READ
         + 6 * weights.WRITE)


# A draw's engine classes (assignment.draw), per class of the job's model and per region step (the job's region,
# then all): the class table's header read, a binary search for its entries within the job's price and its
# weight read; each such table may be tried and fail.
CLASS_STEP = weights.draw(weights.MAX_EXECUTORS_PER_MODEL, 0) + (weights.halvings(weights.MAX_EXECUTORS_PER_MODEL)
                                                              + 2) * weights.READ
REGION_STEPS = 2


def _job_in_hook(redundancy: int, classes: int) -> int:
    """One job handled by a hook: its record, a draw of every slot (collateral and jail read) in one of the
    `classes` class tables of its model (each tried in both region steps), each slot missed (and slashed), settled
    or released, the dispute or audit its settling opens, and its next schedule entry."""
    executors = weights.MAX_EXECUTORS_PER_MODEL
    draw = (weights.draw(executors, redundancy) + REGION_STEPS * classes * CLASS_STEP + COLLATERAL
            + redundancy * weights.READ)
    return (JOB_RECORD + draw + redundancy * (weights.SLOT + slash(0)) + SETTLE_DISPUTE
            + SCHEDULE_ENTRY)


def post_job(call: types_pb2.PostJob) -> int:
    """Store the job, check its executors (every offer of the model when no draw table answers), reserve,
    schedule its draw (made in a later block's on_initialize, whose hooks weight counts it) and its timeout."""
    prompt = len(call.prompt.encode("utf-8", "surrogatepass"))
    scan = weights.offers_scan(weights.MAX_EXECUTORS_PER_MODEL)
    return JOB_RECORD + 2 * prompt * weights.BYTE + scan + 2 * SCHEDULE_ENTRY + RECENT_REQUEST


def commit_result(call: types_pb2.CommitResult) -> int:
    """Read and write the job; the last commitment opens the reveal (each slot's deadline, one schedule entry)."""
    return JOB_RECORD + weights.MAX_REDUNDANCY * weights.READ + SCHEDULE_ENTRY


def reveal_result(call: types_pb2.RevealResult) -> int:
    """Check the result (stop rule) and recompute the digests over the prompt and output; the last reveal settles
    the job: every slot paid and held, the release and the audit draw scheduled (or a dispute opened)."""
    text = len(call.text.encode("utf-8", "surrogatepass"))
    result_bytes = text + 10 * (len(call.tokens) + len(call.logprobs_micronats)) + weights.MAX_PROMPT_BYTES
    return (
        JOB_RECORD + 2 * weights.READ + len(call.tokens) * weights.RESULT_TOKEN + result_bytes * weights.BYTE
        + weights.MAX_REDUNDANCY * weights.SLOT + SCHEDULE_ENTRY + SETTLE_DISPUTE
    )


def cancel_job(call: types_pb2.CancelJob) -> int:
    """Read the job, refund, take it out of its queue, write."""
    return JOB_RECORD + 2 * weights.READ + 2 * weights.WRITE + 1_000 * weights.LIST_ENTRY


def hooks_weight(state: StateReader, block: BlockContext) -> int:
    """on_initialize's table refresh and first draws at this height; on_finalize's queue retries and the jobs due
    at this height."""
    params = read_params(state)
    height = struct.pack(">Q", block.height)
    drawn = read_ids(state, DRAW_DUE_PREFIX + height)
    due = read_ids(state, SCHEDULE_PREFIX + height)
    models = queued_models(state)
    waiting = sum(len(queued(state, model)) for model in models)
    # A first draw that finds too few executors free joins the queue, and this block's on_finalize may retry it.
    retries = min(params.assign_per_block, waiting + len(drawn))
    handled = len(drawn) + retries + len(due)
    involved = set(models)
    builds = _table_builds(state, block.height, involved, drawn + due)
    # Each hook may refuse MAX_REFUSALS_PER_HOOK picks (full or departed executors) beyond the picks it keeps.
    refusals = 2 * REFUSALS if handled else 0
    # Every job counted at the most classes any involved model registers (tables follow the registry's classes).
    classes = max((class_count(state, model) for model in involved), default=1)
    return (4 * weights.READ + handled * _job_in_hook(params.max_redundancy, classes) + len(involved) * weights.READ
            + builds * TABLE_BUILD + refusals + probes_weight(state, block.height))


def class_count(state: StateReader, model: bytes) -> int:
    """The engine classes a model's jobs may be drawn from: cpu and those its registration names (at most
    MAX_ENGINE_CLASSES + 1)."""
    described = model_for_job(state, model)
    return 1 + (len(described.engine_classes) if described is not None else MAX_ENGINE_CLASSES)


def probes(executors: int, models: int, count: int) -> int:
    """Posting `count` probes drawn among `executors` serving-list entries of `models` recent requests' models: each
    executor's offer, bond and jail read once, each probe a walk of them and a job posted."""
    return (2 * weights.READ + models * REQUEST_TAKEN + executors * (weights.CANDIDATE + weights.LIST_ENTRY)
            + count * (PROBE + executors * weights.LIST_ENTRY))


def probes_weight(state: StateReader, height: int) -> int:
    """An epoch's first block: its probes, from the last epoch's recent requests in the parent state (else 0)."""
    staking_params = staking.read_params(state)
    if not staking.epoch_starts(height, staking_params.epoch_blocks):
        return 0
    models = read_recent_models(state, staking.epoch_of(height, staking_params) - 1)
    executors = sum(len(staking.serving(state, model)) for model in models)
    count = min(read_dispute_params(state).probes_per_epoch, MAX_PROBES_PER_EPOCH)
    return probes(executors, len(models), count)


# The probes at the ceilings: MAX_PROBE_MODELS models of MAX_EXECUTORS_PER_MODEL executors, MAX_PROBES_PER_EPOCH
# probes (0.37 s of the default 1 s max_block_weight).
PROBES_CEILING = probes(MAX_PROBE_MODELS * weights.MAX_EXECUTORS_PER_MODEL, MAX_PROBE_MODELS, MAX_PROBES_PER_EPOCH)


# The picks one hook may refuse, at the ceiling of executors.
REFUSALS = weights.draw(weights.MAX_EXECUTORS_PER_MODEL, MAX_REFUSALS_PER_HOOK)

# Building one model's draw tables at the ceiling of executors: with its header and one all-regions header per
# engine class written (the region headers are counted by table_build as before).
TABLE_BUILD = weights.table_build(weights.MAX_EXECUTORS_PER_MODEL) + (MAX_ENGINE_CLASSES + 2) * weights.WRITE


def _table_builds(state: StateReader, height: int, models: set[bytes], job_ids: list[bytes]) -> int:
    """How many of these models and of these jobs' models have no draw table for this epoch: on_initialize builds
    each (runtime/jobs/assignment.py refresh_tables)."""
    epoch = current_epoch(state, height)
    for job_id in job_ids:
        job = read_job(state, job_id)
        if job is not None:
            models.add(job.request.model)
    return sum(1 for model in models if (header := read_header(state, model)) is None or header.epoch != epoch)
