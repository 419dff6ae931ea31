"""Opening a dispute, and scheduling a settled job's audit draw (called from runtime/jobs/settlement.py).

A dispute judges every revealed result of its job (the candidates). One opened on differing or
too few digests, or by a challenge, has its committee drawn audit_delay_blocks later, from a mix
that neither its opener nor the block's proposer knows when it opens; an audit's committee is
drawn at once, from the mix that drew the audit.

This file imports neither verdict.py nor anything that imports runtime/jobs/settlement.py: settlement
imports it. It imports nothing of runtime/jobs either (the package's __init__ imports settlement), so it
names the two job enums it needs from proto directly (runtime/jobs/phases.py names them too).
"""

from __future__ import annotations

from proto import state_pb2
import runtime.disputes.events as events
from runtime.disputes.params import read_params
from runtime.disputes.storage import AUDITS_PREFIX, DRAWS_PREFIX, index_open, schedule, write_dispute
from runtime.state import Overlay

DIGESTS = state_pb2.DISPUTE_REASON_DIGESTS
QUORUM = state_pb2.DISPUTE_REASON_QUORUM
AUDIT = state_pb2.DISPUTE_REASON_AUDIT
CHALLENGE = state_pb2.DISPUTE_REASON_CHALLENGE
# Nothing was paid for these: the verdict pays the valid results (runtime/jobs/settlement.py conclude).
UNPAID_REASONS = frozenset({DIGESTS, QUORUM})

# runtime/jobs/phases.py DISPUTED and SLOT_REVEALED.
JOB_DISPUTED = state_pb2.JOB_STATUS_DISPUTED
SLOT_REVEALED = state_pb2.ASSIGNMENT_STATUS_REVEALED

COMMITTING = state_pb2.DISPUTE_STATUS_COMMITTING
REVEALING = state_pb2.DISPUTE_STATUS_REVEALING
DECIDED = state_pb2.DISPUTE_STATUS_DECIDED


def reason_name(reason: int) -> str:
    """"digests", "quorum", "audit" or "challenge"."""
    return state_pb2.DisputeReason.Name(reason).removeprefix("DISPUTE_REASON_").lower()


def candidates_of(job: state_pb2.Job) -> list[int]:
    """The indexes in job.assignments of its revealed results."""
    return [index for index, slot in enumerate(job.assignments) if slot.status == SLOT_REVEALED]


def open_dispute(state: Overlay, job: state_pb2.Job, reason: int, height: int, *, draw_now: bool = False,
                 challenger: bytes = b"", bond: int = 0, challenged: int = 0) -> state_pb2.Dispute:
    """Open the job's dispute over its revealed results; the job becomes DISPUTED (the caller writes it).

    The committee is drawn audit_delay_blocks later (the first height with room), or, with draw_now,
    by the caller in this block (an audit)."""
    dispute = state_pb2.Dispute(
        id=job.id, job=job.id, candidates=candidates_of(job), reason=reason, challenger=challenger, bond=bond,
        challenged=challenged, opened_height=height, status=COMMITTING,
    )
    if draw_now:
        dispute.draw_height = height
    else:
        dispute.draw_height = schedule(state, DRAWS_PREFIX, height + read_params(state).audit_delay_blocks, job.id)
    index_open(state, dispute.id)
    write_dispute(state, dispute)
    job.status = JOB_DISPUTED
    state.deposit_event(events.event(events.DISPUTE_OPENED, dispute=dispute.id.hex(), reason=reason_name(reason),
                                     candidates=len(dispute.candidates), draw_height=dispute.draw_height))
    return dispute


def schedule_audit(state: Overlay, job_id: bytes, height: int) -> int:
    """Have a job that just settled drawn for an audit audit_delay_blocks later (the first height with room)."""
    return schedule(state, AUDITS_PREFIX, height + read_params(state).audit_delay_blocks, job_id)
