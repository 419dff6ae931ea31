"""Sealed probes (docs/protocol.md, "Sealed probes"): probes that look like any job until they are opened.

The protocol's own probes (runtime/jobs/probes.py) are plain to see: poster the probe fund, posted by a
hook, flagged in state. A sealed probe is an ordinary PostJob, posted by a staker from any account, that
the staker committed to beforehand:

    SealProbe{commitment}   commitment = blake2b-256(b"inferchain/probe-seal/v1" || job id || salt)
                            (recipes.probe_seal). From an account bonded at least staking's min_bond and not
                            jailed; at most sealed_probes_per_epoch seals an epoch, one per account.
    OpenProbe{job_id, salt} by the sealer, once the job (of at most probe_max_tokens tokens) has settled
                            and while its challenge window is open (no payment released, no dispute):
                            the job is audited (a dispute opened, its committee drawn audit_delay_blocks
                            later, as a challenge's) and the probe fund pays the poster back what the
                            job's results were paid, at most max_probe_reimbursement (the protocol fee
                            stays paid, so no fund money buys reputation). Job.probe is set, and
                            Job.probe_fund_claim records what the fund paid: a revoked payment returns
                            that much to the fund, the rest to the poster (settlement.py _revoke).

The job id is known before posting (job_id(genesis hash, poster, nonce)), so a seal made at or before the
job's posting height binds a job whose executor nobody knew yet. An epoch's seals are kept through the
next epoch and pruned at the first block after it (hooks.py), so state holds at most two epochs' seals.
"""

from __future__ import annotations

import struct

from proto import state_pb2, types_pb2
from runtime import balances, staking, system
import runtime.disputes.events as events
from runtime.disputes.errors import (
    AlreadyDisputed,
    ChallengeWindowClosed,
    ProbeNotSealed,
    SealRefused,
    TooManyDisputes,
    UnknownJob,
)
from runtime.disputes.opening import AUDIT, open_dispute
from runtime.disputes.params import SALT_BYTES, read_params
from runtime.disputes.recipes import probe_seal
from runtime.disputes.storage import open_count, read_dispute
from runtime.id_list import read_ids, write_ids
from runtime.jobs import params as jobs_params
from runtime.jobs.phases import SETTLED, SLOT_REVEALED, job_status_name
from runtime.jobs.recipes import PROBE_FUND
from runtime.jobs.storage import read_job, write_job
from runtime.primitives import CallContext
from runtime.slashing.penalties import jailed
from runtime.state import Overlay, StateReader

SEAL_PREFIX = b"disputes/seal/"  # + commitment -> SealedProbe
SEALS_PREFIX = b"disputes/seals/"  # + u64be epoch -> JobIdList: the commitments sealed in that epoch, in order
# An epoch's seals may be opened through the end of the next epoch.
SEAL_EPOCHS = 2


def _seals_key(epoch: int) -> bytes:
    return SEALS_PREFIX + struct.pack(">Q", epoch)


def read_seal(state: StateReader, commitment: bytes) -> state_pb2.SealedProbe | None:
    raw = state.get(SEAL_PREFIX + commitment)
    return None if raw is None else state_pb2.SealedProbe.FromString(raw)


def epoch_seals(state: StateReader, epoch: int) -> list[bytes]:
    """The commitments sealed in `epoch`, in the order they were sealed."""
    return read_ids(state, _seals_key(epoch))


# --- SealProbe ----------------------------------------------------------------------


def check_seal_probe(call: types_pb2.SealProbe) -> None:
    if len(call.commitment) != 32:
        raise SealRefused(f"a probe's seal is a 32-byte commitment, got {len(call.commitment)} bytes")


def _check_sealer(state: StateReader, origin: bytes, call: types_pb2.SealProbe) -> tuple[int, int]:
    """The sender may seal now: bonded at least min_bond, not jailed, the epoch's seals not all taken, none of them
    its own, and this commitment not sealed before. The height and its epoch."""
    height = system.read_chain(state).height
    staking_params = staking.read_params(state)
    bond = staking.bonded(state, origin)
    if bond < staking_params.min_bond:
        raise SealRefused(f"only an account bonded at least staking.params.min_bond {staking_params.min_bond} seals "
                          f"probes; this one has {bond} bonded")
    if jailed(state, origin, height):
        raise SealRefused("a jailed account seals no probe")
    limit = read_params(state).sealed_probes_per_epoch
    epoch = staking.epoch_of(height, staking_params)
    sealed = epoch_seals(state, epoch)
    if len(sealed) >= limit:
        raise SealRefused(f"{len(sealed)} probes are sealed in epoch {epoch}, disputes.params.sealed_probes_per_epoch "
                          f"is {limit}; seal in the next epoch")
    if read_seal(state, call.commitment) is not None:
        raise SealRefused("this commitment is sealed already")
    if any(read_seal(state, commitment).sealer == origin for commitment in sealed):
        raise SealRefused(f"this account has sealed a probe in epoch {epoch} already (one an epoch)")
    return height, epoch


def seal_probe(state: Overlay, context: CallContext, call: types_pb2.SealProbe) -> None:
    """Record the sender's commitment to a job it posts (or has posted) as a probe."""
    check_seal_probe(call)
    height, epoch = _check_sealer(state, context.origin, call)
    seal = state_pb2.SealedProbe(sealer=context.origin, height=height, epoch=epoch)
    state.set(SEAL_PREFIX + call.commitment, seal.SerializeToString(deterministic=True))
    write_ids(state, _seals_key(epoch), [*epoch_seals(state, epoch), call.commitment])
    state.deposit_event(events.event(events.PROBE_SEALED, sealer=context.origin.hex(), commitment=call.commitment.hex(),
                                     epoch=epoch))


# --- OpenProbe ----------------------------------------------------------------------


def check_open_probe(call: types_pb2.OpenProbe) -> None:
    if len(call.job_id) != 32:
        raise UnknownJob(f"a job id is 32 bytes, got {len(call.job_id)}")
    if len(call.salt) != SALT_BYTES:
        raise ProbeNotSealed(f"a probe's salt is {SALT_BYTES} bytes, got {len(call.salt)}")


def _openable(state: StateReader, context: CallContext, call: types_pb2.OpenProbe,
              height: int) -> tuple[state_pb2.Job, bytes, state_pb2.SealedProbe]:
    """The job a probe opening audits, its seal's commitment and the seal; the first rule the opening breaks
    otherwise."""
    commitment = probe_seal(call.job_id, call.salt)
    seal = read_seal(state, commitment)
    if seal is None:
        raise ProbeNotSealed("no seal matches this job id and salt (never sealed, or pruned after the epoch that "
                             "followed its own)")
    if seal.opened_height:
        raise ProbeNotSealed(f"this seal was opened at height {seal.opened_height}; a seal opens once")
    if seal.sealer != context.origin:
        raise ProbeNotSealed("the seal is another account's: only its sealer opens it")
    job = read_job(state, call.job_id)
    if job is None:
        raise UnknownJob(f"no job has id {call.job_id.hex()}")
    if job.posted_height < seal.height:
        raise ProbeNotSealed(f"the job was posted at height {job.posted_height}, before its seal at {seal.height}: a "
                             "seal binds a job no executor was drawn for yet")
    if job.poster == PROBE_FUND:
        raise ProbeNotSealed("the job is a protocol probe: it is audited already")
    params = read_params(state)
    if job.request.max_tokens > params.probe_max_tokens:
        raise ProbeNotSealed(f"the job asks for up to {job.request.max_tokens} tokens; a probe the fund pays for asks "
                             f"for at most disputes.params.probe_max_tokens {params.probe_max_tokens}")
    if read_dispute(state, job.id) is not None:
        raise AlreadyDisputed(f"job {job.id.hex()} has a dispute already; its verdict judges it")
    if job.status != SETTLED:
        raise ChallengeWindowClosed(f"the job is {job_status_name(job.status)}: a probe is opened once its job settled")
    window_end = job.final_height + jobs_params.read_params(state).challenge_window_blocks
    if height > window_end or any(slot.released for slot in job.assignments):
        raise ChallengeWindowClosed(f"the job's challenge window closed at height {window_end}; this is {height}")
    if open_count(state) >= params.max_open_disputes:
        raise TooManyDisputes(f"{params.max_open_disputes} disputes are open (disputes.params.max_open_disputes); "
                              "open the probe when one is decided")
    return job, commitment, seal


def reimbursement(state: StateReader, job: state_pb2.Job) -> int:
    """What the probe fund pays the poster: the held payments of the job's revealed results, at most
    max_probe_reimbursement and the fund's free balance."""
    held = sum(slot.payment for slot in job.assignments if slot.status == SLOT_REVEALED and not slot.released)
    fund = system.read_account(state, PROBE_FUND)
    return min(held, read_params(state).max_probe_reimbursement, 0 if fund is None else fund.free)


def open_probe(state: Overlay, context: CallContext, call: types_pb2.OpenProbe) -> None:
    """Open a sealed probe: its job is audited, and the probe fund pays its poster back the results' payments."""
    check_open_probe(call)
    height = system.read_chain(state).height
    job, commitment, seal = _openable(state, context, call, height)
    amount = reimbursement(state, job)
    if amount:
        balances.reserve(state, PROBE_FUND, amount)
        balances.repatriate_reserved(state, PROBE_FUND, job.poster, amount)
        balances.unreserve(state, job.poster, amount)
    # Kept, marked opened, until its epoch's seals are pruned: the epoch's count and its one-per-account rule read it.
    seal.opened_height = height
    state.set(SEAL_PREFIX + commitment, seal.SerializeToString(deterministic=True))
    job.probe = True
    job.probe_fund_claim = amount
    dispute = open_dispute(state, job, AUDIT, height)
    state.deposit_event(events.event(events.PROBE_OPENED, dispute=dispute.id.hex(), sealer=context.origin.hex(),
                                     poster=job.poster.hex(), reimbursed=amount))
    write_job(state, job)


# --- pruning (hooks.py) -------------------------------------------------------------


def prune_seals(state: Overlay, height: int) -> None:
    """At an epoch's first block, delete the seals of the epoch SEAL_EPOCHS before it that were never opened."""
    params = staking.read_params(state)
    if not staking.epoch_starts(height, params.epoch_blocks):
        return
    old = staking.epoch_of(height, params) - SEAL_EPOCHS
    if old < 0:
        return
    for commitment in epoch_seals(state, old):
        state.delete(SEAL_PREFIX + commitment)
    write_ids(state, _seals_key(old), [])
