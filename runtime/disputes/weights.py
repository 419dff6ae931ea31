"""disputes weights: the declared worst case of each call and of the block hooks (runtime/weights.py, the unit costs).

A committee draw reads every validator of the current set (at most staking.params.max_validators, whose
ceiling MAX_VALIDATORS genesis checks) and walks them once per member; a verdict slashes each candidate
(paying the poster, the challenger or every member), each member at most once, the challenger's bond,
and records the evidence. A call's weight is declared at the ceilings (MAX_COMMITTEE_SIZE members); the
hooks read the parameters and what is due at the height from the parent state: at most
MAX_AUDITS_PER_HEIGHT audits (MAX_AUDITED_PER_BLOCK of them drawing a committee) and MAX_DUE_PER_HEIGHT
committee draws and deadlines (params.py), and at an epoch's first block the pruning of an old epoch's sealed
probes. A dispute decided because its last member revealed is paid for by that RevealVote's weight.
"""

from __future__ import annotations

import struct

from proto import types_pb2
from runtime import staking, weights
from runtime.disputes.params import (
    MAX_AUDITED_PER_BLOCK,
    MAX_AUDITS_PER_HEIGHT,
    MAX_COMMITTEE_SIZE,
    MAX_DUE_PER_HEIGHT,
    MAX_PROBES_PER_EPOCH,
    read_params,
)
from runtime.disputes.storage import AUDITS_PREFIX, DEADLINES_PREFIX, DRAWS_PREFIX
from runtime.id_list import read_ids
from runtime.primitives import BlockContext
from runtime.slashing.weights import slash
from runtime.state import StateReader

MAX_VALIDATORS = weights.MAX_VALIDATORS
# A dispute record: its committee's votes decoded and encoded again, the record read and written.
DISPUTE_RECORD = 2 * weights.READ + 2 * weights.WRITE + MAX_COMMITTEE_SIZE * weights.MAX_REDUNDANCY * weights.LIST_ENTRY
# A job record read or written with its assignments (as jobs' JOB_RECORD), and its prune schedule entry.
JOB_RECORD = 2 * weights.READ + 3 * weights.WRITE + 1_000 * weights.LIST_ENTRY
# An id put on a height's draw or deadline schedule, and on its audit schedule.
SCHEDULE_ENTRY = 2 * weights.READ + weights.WRITE + MAX_DUE_PER_HEIGHT * weights.LIST_ENTRY
AUDIT_ENTRY = 2 * weights.READ + weights.WRITE + MAX_AUDITS_PER_HEIGHT * weights.LIST_ENTRY
# Opening a dispute: the record, the open index and count, the draw's schedule entry, the event.
OPEN = DISPUTE_RECORD + 2 * weights.READ + 2 * weights.WRITE + SCHEDULE_ENTRY
# An audit drawn: the job, its dispute and its model read, the audit point hashed.
AUDIT_CHECK = JOB_RECORD + 3 * weights.READ
# The binomial test of one executor's evidence (runtime/disputes/conviction.py; at most 0.2 ms measured on the
# reference machine), with its record and the model read and the record written.
CONVICTION_TEST = 500_000 + 2 * weights.READ + weights.WRITE
# The disputes decided in one block because their last member revealed (each RevealVote rewrites the list).
MAX_READY = 1_000
READY_ENTRY = weights.READ + weights.WRITE + MAX_READY * weights.LIST_ENTRY


def committee_draw(validators: int, members: int) -> int:
    """Drawing a committee: the model's registration read; per validator its ledger, bond, jail, offer and serving
    entry read; per member a walk over the validators; the members' duty entries written and the commit deadline
    scheduled."""
    return (3 * weights.READ + validators * (5 * weights.READ + weights.LIST_ENTRY) + members * validators
            * weights.LIST_ENTRY + members * weights.WRITE + SCHEDULE_ENTRY)


def verdict(members: int) -> int:
    """Deciding a dispute: every candidate judged (its tally, the executor slashed paying the poster and the
    challenger or every member, jailed, its reputation cut, its payment paid, revoked or released, its evidence
    recorded and perhaps convicted), every member slashed at most once, the challenger's bond burned and returned,
    the job concluded and written, the indexes removed."""
    candidate = members * weights.LIST_ENTRY + slash(members + 1) + 2 * weights.SLOT + CONVICTION_TEST + slash(0)
    return (DISPUTE_RECORD + JOB_RECORD + weights.MAX_REDUNDANCY * candidate + members * slash(0) + slash(0)
            + 2 * weights.SLOT + (members + 2) * weights.WRITE)


# At the ceilings: what a call declares for the verdict it may trigger.
VERDICT = verdict(MAX_COMMITTEE_SIZE)


def challenge(call: types_pb2.Challenge) -> int:
    """Read the job, its dispute and the dispute count, reserve the bond, open the dispute, write the job."""
    return JOB_RECORD + 4 * weights.READ + 2 * weights.WRITE + OPEN


def commit_vote(call: types_pb2.CommitVote) -> int:
    """Read and write the dispute; the last commitment schedules the reveal deadline."""
    return DISPUTE_RECORD + weights.READ + SCHEDULE_ENTRY


def reveal_vote(call: types_pb2.RevealVote) -> int:
    """Recompute the commitment over the votes, write the dispute; the last reveal has the dispute decided in this
    block's on_finalize, which this call declares."""
    votes = len(call.votes) * (21 * weights.BYTE + weights.LIST_ENTRY)
    return DISPUTE_RECORD + weights.READ + votes + call.ByteSize() * weights.BYTE + READY_ENTRY + VERDICT


def seal_probe(call: types_pb2.SealProbe) -> int:
    """The chain, both parameter records, the bond, the jail and the epoch's seals read (each seal's sealer at most
    MAX_PROBES_PER_EPOCH times), the seal and the list written."""
    return (6 + MAX_PROBES_PER_EPOCH) * weights.READ + MAX_PROBES_PER_EPOCH * weights.LIST_ENTRY + 2 * weights.WRITE


def open_probe(call: types_pb2.OpenProbe) -> int:
    """The commitment hashed, the seal, the job, its dispute, the parameters, the count and the fund read, the fund
    paid out (three balance moves), the seal deleted, the dispute opened, the job written."""
    return JOB_RECORD + 8 * weights.READ + 7 * weights.WRITE + OPEN


# Pruning an epoch's seals at an epoch's first block (runtime/disputes/sealed.py): the list read, every seal and the
# list deleted.
PRUNE_SEALS = weights.READ + (MAX_PROBES_PER_EPOCH + 1) * weights.WRITE


def hooks_weight(state: StateReader, block: BlockContext) -> int:
    """on_initialize's committee draws due at this height (each perhaps decided at once) and its audits (at most
    MAX_AUDITED_PER_BLOCK drawing a committee, the others opening a dispute); on_finalize's deadlines due at this
    height (the reveal opened, or the dispute decided)."""
    height = struct.pack(">Q", block.height)
    draws = len(read_ids(state, DRAWS_PREFIX + height))
    audits = len(read_ids(state, AUDITS_PREFIX + height))
    deadlines = len(read_ids(state, DEADLINES_PREFIX + height))
    members = read_params(state).committee_size
    staking_params = staking.read_params(state)
    draw = committee_draw(min(staking_params.max_validators, MAX_VALIDATORS), members)
    decide = verdict(members)
    prune = PRUNE_SEALS if staking.epoch_starts(block.height, staking_params.epoch_blocks) else 0
    return (6 * weights.READ + draws * (draw + decide) + audits * (AUDIT_CHECK + OPEN)
            + min(audits, MAX_AUDITED_PER_BLOCK) * draw + deadlines * (decide + SCHEDULE_ENTRY) + prune)
