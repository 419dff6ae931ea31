"""disputes hooks: draws at the start of a block (audits, committees), deadlines and verdicts at its end.

on_initialize runs after randomness's, so the mix it draws from includes this block's reveal: nobody
acting on a job when it settled or was disputed could know it. Each schedule bounds what is due at a
height (storage.schedule; params.py), and at most MAX_AUDITED_PER_BLOCK audits draw a committee in a
block, so the hooks' work is bounded (weights.py). A probe (runtime/jobs/probes.py) is audited with
probability 10^6 parts per million: always, unless its audit is skipped as any (too many open disputes,
too few eligible members).
"""

from __future__ import annotations

from proto import state_pb2
from runtime import randomness
import runtime.disputes.events as events
from runtime.disputes.calls import open_reveal
from runtime.disputes.committee import draw_committee, seat
from runtime.disputes.opening import AUDIT, COMMITTING, REVEALING, open_dispute
from runtime.disputes.params import MAX_AUDITED_PER_BLOCK, Params, audit_probability, read_params
from runtime.disputes.recipes import AUDIT_SCALE, audit_point
from runtime.disputes.sealed import prune_seals
from runtime.disputes.storage import (
    AUDITS_PREFIX,
    DEADLINES_PREFIX,
    DRAWS_PREFIX,
    open_count,
    read_dispute,
    take_due,
    take_ready,
    write_dispute,
)
from runtime.disputes.verdict import decide
from runtime.jobs.phases import SETTLED
from runtime.jobs.storage import read_job, write_job
from runtime.primitives import BlockContext
from runtime.state import Overlay


def on_initialize(state: Overlay, block: BlockContext) -> None:
    """Draw the committees due at this height, then the audits, from the mix after this block's reveal; at an
    epoch's first block, prune the sealed probes of the epoch before the last (sealed.py)."""
    prune_seals(state, block.height)
    params = read_params(state)
    mix = randomness.read_mix(state)
    for dispute_id in take_due(state, DRAWS_PREFIX, block.height):
        dispute = read_dispute(state, dispute_id)
        if dispute.status == COMMITTING and dispute.draw_height == block.height and not dispute.committee:
            _draw(state, dispute, mix, block.height, params)
    drawn = 0
    for job_id in take_due(state, AUDITS_PREFIX, block.height):
        drawn += _audit(state, job_id, mix, block.height, params, draw_now=drawn < MAX_AUDITED_PER_BLOCK)


def _draw(state: Overlay, dispute: state_pb2.Dispute, mix: bytes, height: int, params: Params) -> None:
    """Seat the dispute's committee; with too few eligible, decide at once (every verdict NONE)."""
    job = read_job(state, dispute.job)
    members = draw_committee(state, dispute.id, job, mix, height, params)
    if not members:
        decide(state, dispute, height)
        return
    seat(state, dispute, job, members, height, params)
    write_dispute(state, dispute)


def _audit(state: Overlay, job_id: bytes, mix: bytes, height: int, params: Params, draw_now: bool) -> bool:
    """Draw whether a settled job is audited; if so, its committee is drawn from the same mix and judges it (or,
    past the block's MAX_AUDITED_PER_BLOCK, audit_delay_blocks later). Whether a committee was drawn now."""
    job = read_job(state, job_id)
    if job is None or job.status != SETTLED or read_dispute(state, job_id) is not None:
        return False
    if audit_point(mix, job.id) >= _probability(state, job):
        return False
    if any(slot.released for slot in job.assignments):
        _skip(state, job, "a payment of the job was released before its audit was drawn (a full schedule pushed the "
                          "draw past the challenge window)")
        return False
    if open_count(state) >= params.max_open_disputes:
        _skip(state, job, f"{params.max_open_disputes} disputes are open (disputes.params.max_open_disputes)")
        return False
    if not draw_now:
        open_dispute(state, job, AUDIT, height)
        write_job(state, job)
        return False
    members = draw_committee(state, job.id, job, mix, height, params)
    if not members:
        _skip(state, job, f"fewer than {params.min_committee_size} validators may judge it "
                          "(disputes.params.min_committee_size)")
        return True
    dispute = open_dispute(state, job, AUDIT, height, draw_now=True)
    seat(state, dispute, job, members, height, params)
    write_dispute(state, dispute)
    write_job(state, job)
    return True


def _probability(state: Overlay, job: state_pb2.Job) -> int:
    """A settled job's chance of an audit in parts per million: a probe (runtime/jobs/probes.py) is always audited."""
    return AUDIT_SCALE if job.probe else audit_probability(state, job.request.model)


def _skip(state: Overlay, job: state_pb2.Job, reason: str) -> None:
    state.deposit_event(events.event(events.AUDIT_SKIPPED, job=job.id.hex(), reason=reason))


def on_finalize(state: Overlay, block: BlockContext, fees: int) -> None:
    """Decide the disputes whose every committed member revealed in this block; then the vote deadlines due."""
    height = block.height
    for dispute_id in take_ready(state):
        dispute = read_dispute(state, dispute_id)
        if dispute.status == REVEALING:
            decide(state, dispute, height)
    for dispute_id in take_due(state, DEADLINES_PREFIX, height):
        _on_deadline(state, read_dispute(state, dispute_id), height)


def _on_deadline(state: Overlay, dispute: state_pb2.Dispute, height: int) -> None:
    """The commit phase's end opens the reveal (or decides, when nobody committed); the reveal phase's end decides."""
    if dispute.status == COMMITTING and height >= dispute.commit_deadline:
        if not any(member.commitment for member in dispute.committee):
            decide(state, dispute, height)
            return
        open_reveal(state, dispute, dispute.commit_deadline + read_params(state).vote_reveal_blocks)
        write_dispute(state, dispute)
    elif dispute.status == REVEALING and height >= dispute.reveal_deadline:
        decide(state, dispute, height)
