"""disputes storage: the keys under `disputes/`, the dispute records, their indexes, the evidence, and the schedules.

A dispute's id is its job's id (a job is judged at most once). The open index and each member's
duty index (value b"") are walked by the queries; the count of open disputes bounds challenges and
audits. Three schedules hold the ids due at a height (params.py bounds each): the audits and the
committee draws (on_initialize), and the deadlines (on_finalize: end of the commit and reveal phases).
A full height points to a later one to try, as jobs' schedule does (runtime/jobs/queue.py).
"""

from __future__ import annotations

import struct

from proto import state_pb2
from runtime.disputes.params import MAX_AUDITS_PER_HEIGHT, MAX_DUE_PER_HEIGHT
from runtime.state import Overlay, StateReader
from runtime.id_list import read_ids, write_ids

DISPUTE_PREFIX = b"disputes/dispute/"  # + dispute id -> Dispute
OPEN_PREFIX = b"disputes/open/"  # + dispute id -> b"" while the dispute is not decided
OPEN_COUNT_KEY = b"disputes/open_count"  # 4-byte big-endian count of open disputes
DUTY_PREFIX = b"disputes/duty/"  # + member + dispute id -> b"" while the dispute is open
EVIDENCE_PREFIX = b"disputes/evidence/"  # + executor + model -> EvidenceRecord
READY_KEY = b"disputes/ready"  # JobIdList: disputes whose every committed member revealed in this block
AUDITS_PREFIX = b"disputes/audits/"  # + u64be height -> JobIdList: settled jobs whose audit is drawn then
AUDITS_FULL_PREFIX = b"disputes/audits_full/"  # + u64be height -> u64be later height to try
DRAWS_PREFIX = b"disputes/draws/"  # + u64be height -> JobIdList: disputes whose committee is drawn then
DRAWS_FULL_PREFIX = b"disputes/draws_full/"  # + u64be height -> u64be later height to try
DEADLINES_PREFIX = b"disputes/deadlines/"  # + u64be height -> JobIdList: vote deadlines due then
DEADLINES_FULL_PREFIX = b"disputes/deadlines_full/"  # + u64be height -> u64be later height to try


def read_dispute(state: StateReader, dispute_id: bytes) -> state_pb2.Dispute | None:
    """The stored dispute, or None when no dispute has this id."""
    raw = state.get(DISPUTE_PREFIX + dispute_id)
    return None if raw is None else state_pb2.Dispute.FromString(raw)


def write_dispute(state: Overlay, dispute: state_pb2.Dispute) -> None:
    state.set(DISPUTE_PREFIX + dispute.id, dispute.SerializeToString(deterministic=True))


def open_count(state: StateReader) -> int:
    """How many disputes are not yet decided."""
    raw = state.get(OPEN_COUNT_KEY)
    return 0 if raw is None else int.from_bytes(raw, "big")


def _add_open(state: Overlay, delta: int) -> None:
    count = open_count(state) + delta
    if count:
        state.set(OPEN_COUNT_KEY, count.to_bytes(4, "big"))
    else:
        state.delete(OPEN_COUNT_KEY)


def index_open(state: Overlay, dispute_id: bytes) -> None:
    """List a new dispute as open."""
    state.set(OPEN_PREFIX + dispute_id, b"")
    _add_open(state, 1)


def index_members(state: Overlay, dispute: state_pb2.Dispute) -> None:
    """List the dispute under each member of its committee."""
    for member in dispute.committee:
        state.set(DUTY_PREFIX + member.account + dispute.id, b"")


def unindex(state: Overlay, dispute: state_pb2.Dispute) -> None:
    """A decided dispute leaves the open index and its members' duty indexes."""
    state.delete(OPEN_PREFIX + dispute.id)
    _add_open(state, -1)
    for member in dispute.committee:
        state.delete(DUTY_PREFIX + member.account + dispute.id)


def evidence_key(executor: bytes, model: bytes) -> bytes:
    return EVIDENCE_PREFIX + executor + model


def read_evidence(state: StateReader, executor: bytes, model: bytes) -> state_pb2.EvidenceRecord:
    """The executor's evidence for the model (zero when none was gathered)."""
    raw = state.get(evidence_key(executor, model))
    return state_pb2.EvidenceRecord() if raw is None else state_pb2.EvidenceRecord.FromString(raw)


def write_evidence(state: Overlay, executor: bytes, model: bytes, record: state_pb2.EvidenceRecord) -> None:
    key = evidence_key(executor, model)
    if record.jobs or record.positions or record.misses:
        state.set(key, record.SerializeToString(deterministic=True))
    else:
        state.delete(key)


def mark_ready(state: Overlay, dispute_id: bytes) -> None:
    """Have the dispute decided in this block's on_finalize (every committed member revealed)."""
    ids = read_ids(state, READY_KEY)
    if dispute_id not in ids:
        write_ids(state, READY_KEY, ids + [dispute_id])


def take_ready(state: Overlay) -> list[bytes]:
    ids = read_ids(state, READY_KEY)
    state.delete(READY_KEY)
    return ids


# --- the schedules ---------------------------------------------------------------


def due_key(prefix: bytes, height: int) -> bytes:
    return prefix + struct.pack(">Q", height)


# Each schedule: the key of a full height's pointer, and how many ids a height holds.
_SCHEDULES = {
    AUDITS_PREFIX: (AUDITS_FULL_PREFIX, MAX_AUDITS_PER_HEIGHT),
    DRAWS_PREFIX: (DRAWS_FULL_PREFIX, MAX_DUE_PER_HEIGHT),
    DEADLINES_PREFIX: (DEADLINES_FULL_PREFIX, MAX_DUE_PER_HEIGHT),
}


def _full_prefix(prefix: bytes) -> bytes:
    return _SCHEDULES[prefix][0]


def _next_to_try(state: StateReader, prefix: bytes, height: int) -> int | None:
    raw = state.get(due_key(_full_prefix(prefix), height))
    return None if raw is None else struct.unpack(">Q", raw)[0]


def schedule(state: Overlay, prefix: bytes, height: int, dispute_id: bytes) -> int:
    """Have the id looked at in the first block at or after `height` whose schedule (AUDITS_PREFIX, DRAWS_PREFIX or
    DEADLINES_PREFIX) has room; that block's height, which the caller stores as the draw height or deadline."""
    passed = []
    at = height
    while (later := _next_to_try(state, prefix, at)) is not None:
        passed.append(at)
        at = later
    key = due_key(prefix, at)
    ids = read_ids(state, key)
    if dispute_id not in ids:
        ids.append(dispute_id)
        write_ids(state, key, ids)
        if len(ids) >= _SCHEDULES[prefix][1]:
            state.set(due_key(_full_prefix(prefix), at), struct.pack(">Q", at + 1))
    for full in passed[:-1]:
        state.set(due_key(_full_prefix(prefix), full), struct.pack(">Q", at))
    return at


def take_due(state: Overlay, prefix: bytes, height: int) -> list[bytes]:
    """The ids due at `height` on one schedule (at most its limit), removed from it."""
    key = due_key(prefix, height)
    due = read_ids(state, key)
    state.delete(key)
    state.delete(due_key(_full_prefix(prefix), height))
    return due
