"""A job's phases and an assignment's steps: the one list that the runtime, the worker and the client use.

The values are the protobuf enums of proto/state.proto (JobStatus, AssignmentStatus); the names
here say which of them end a job and which assignments still hold an executor's capacity.
"""

from __future__ import annotations

from proto import state_pb2

DRAWING = state_pb2.JOB_STATUS_DRAWING
QUEUED = state_pb2.JOB_STATUS_QUEUED
ASSIGNED = state_pb2.JOB_STATUS_ASSIGNED
REVEALING = state_pb2.JOB_STATUS_REVEALING
SETTLED = state_pb2.JOB_STATUS_SETTLED
DISPUTED = state_pb2.JOB_STATUS_DISPUTED
EXPIRED = state_pb2.JOB_STATUS_EXPIRED
CANCELLED = state_pb2.JOB_STATUS_CANCELLED
# Every revealed result was judged invalid (or none could be judged) by a dispute's committee: the escrow returned.
REJECTED = state_pb2.JOB_STATUS_REJECTED
# A job in one of these takes no more commits or reveals; only held payments may still be released. DISPUTED is
# not final: a committee's verdict follows (runtime/disputes), which settles or rejects the job.
FINAL_STATUSES = frozenset({SETTLED, REJECTED, EXPIRED, CANCELLED})

SLOT_ASSIGNED = state_pb2.ASSIGNMENT_STATUS_ASSIGNED
SLOT_COMMITTED = state_pb2.ASSIGNMENT_STATUS_COMMITTED
SLOT_REVEALED = state_pb2.ASSIGNMENT_STATUS_REVEALED
SLOT_MISSED = state_pb2.ASSIGNMENT_STATUS_MISSED
# Assignments that still hold one unit of their executor's capacity.
ACTIVE_SLOTS = (SLOT_ASSIGNED, SLOT_COMMITTED)

# The phase an executor missed a deadline in (the DeadlineMissed event's `phase`).
COMMIT_PHASE = "commit"
REVEAL_PHASE = "reveal"


def job_status_name(status: int) -> str:
    """"queued", "assigned", ... as shown to a person."""
    return state_pb2.JobStatus.Name(status).removeprefix("JOB_STATUS_").lower()


def slot_status_name(status: int) -> str:
    """"assigned", "committed", "revealed" or "missed"."""
    return state_pb2.AssignmentStatus.Name(status).removeprefix("ASSIGNMENT_STATUS_").lower()
