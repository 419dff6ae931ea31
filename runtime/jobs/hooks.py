"""jobs hooks: each block retries queued jobs and handles what is due (deadlines, timeouts, releases, pruning).

A disputed job due here waits for its verdict (runtime/disputes), which schedules it again once concluded.
An epoch's first block also posts that epoch's probes (probes.py); a probe whose executor missed its
deadline ends, refunded to the probe fund, instead of being reassigned.
"""

from __future__ import annotations

from proto import state_pb2
from runtime.jobs.assignment import RefusalBudget, draw_due, fill_or_queue
from runtime.jobs.params import Params, read_params
from runtime.jobs.phases import (
    CANCELLED,
    DISPUTED,
    EXPIRED,
    QUEUED,
    REJECTED,
    REVEALING,
    SETTLED,
    SLOT_ASSIGNED,
    SLOT_REVEALED,
    COMMIT_PHASE,
    REVEAL_PHASE,
)
from runtime.jobs.probes import post_probes
from runtime.jobs.queue import retry_batch, schedule, take_due, to_back
from runtime.jobs.settlement import end, miss, release_held, settle
from runtime.jobs.storage import active_slots, missing_slots, prune, read_job, write_job
from runtime.primitives import BlockContext
from runtime.state import Overlay


def on_initialize(state: Overlay, block: BlockContext) -> None:
    """Draw the executors of the jobs posted assignment_delay_blocks ago, before this block's transactions; at an
    epoch's first block, then post its probes (from the mix after this block's reveal)."""
    draw_due(state, block.height)
    post_probes(state, block.height)


def on_finalize(state: Overlay, block: BlockContext, fees: int) -> None:
    """Retry waiting jobs (at most assign_per_block, the models taking turns), then handle what is due at this height."""
    height = block.height
    params = read_params(state)
    budget = RefusalBudget()
    for job_id in retry_batch(state, params, height):
        job = read_job(state, job_id)
        fill_or_queue(state, job, params, height, budget)
        if job.status == QUEUED:
            to_back(state, job)
        write_job(state, job)
    for job_id in take_due(state, height):
        job = read_job(state, job_id)
        _on_due(state, job, params, height, budget)
        write_job(state, job)
        prune(state, job, params, height)


def _on_due(state: Overlay, job: state_pb2.Job, params: Params, height: int, budget: RefusalBudget) -> None:
    if job.status in (SETTLED, DISPUTED):
        release_held(state, job, params, height)
        return
    if job.status in (EXPIRED, CANCELLED, REJECTED):
        return
    if job.status == REVEALING:
        for slot in active_slots(job):
            if slot.deadline_height <= height:
                miss(state, job, slot, REVEAL_PHASE, params)
        if active_slots(job):
            return
        if any(slot.status == SLOT_REVEALED for slot in job.assignments):
            settle(state, job, params, height)
            return
        # Nothing was revealed, so nothing can be copied: the job starts over with new executors.
    else:
        for slot in active_slots(job):
            if slot.status == SLOT_ASSIGNED and slot.deadline_height <= height:
                miss(state, job, slot, COMMIT_PHASE, params)
    if job.probe and missing_slots(job) > 0:
        # The probe tested its one executor, which did not answer (and was slashed): nobody else is probed in its place.
        end(state, job, EXPIRED, "the probed executor missed its deadline; a probe is not reassigned")
        return
    if height >= job.timeout_height and missing_slots(job) > 0:
        end(state, job, EXPIRED, "executors missed their deadlines and the job's timeout has come")
        return
    if missing_slots(job) > 0:
        fill_or_queue(state, job, params, height, budget)
    if job.status == QUEUED:
        schedule(state, max(job.timeout_height, height + 1), job.id)
