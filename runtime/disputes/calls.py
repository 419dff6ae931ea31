"""disputes calls: Challenge, CommitVote, RevealVote (and SealProbe, OpenProbe: sealed.py); each checks first, then
writes, then emits.

A member commits blake2b-256(VOTE_DOMAIN || dispute id || member || salt || vote encoding)
(recipes.py) while the dispute is COMMITTING, then reveals the votes and salt once it is
REVEALING, so no member can copy another's vote. A challenge reserves its bond.
"""

from __future__ import annotations

from proto import state_pb2, types_pb2
from runtime import balances, system, weights
import runtime.disputes.events as events
import runtime.disputes.sealed as sealed
import runtime.disputes.weights as dispute_weights
from runtime.disputes.errors import (
    AlreadyDisputed,
    AlreadyVoted,
    BondTooLow,
    ChallengeWindowClosed,
    InsufficientBalance,
    InvalidVote,
    NotMember,
    TooManyDisputes,
    UnknownCandidate,
    UnknownDispute,
    UnknownJob,
    VoteMismatch,
    VotingClosed,
    WrongPhase,
)
from runtime.disputes.committee import lock_parties
from runtime.disputes.opening import CHALLENGE, COMMITTING, DECIDED, REVEALING, open_dispute
from runtime.disputes.params import SALT_BYTES, read_params
from runtime.disputes.recipes import vote_commitment
from runtime.disputes.storage import DEADLINES_PREFIX, mark_ready, open_count, read_dispute, schedule, write_dispute
from runtime.jobs import params as jobs_params
from runtime.jobs.phases import SETTLED, SLOT_REVEALED, job_status_name
from runtime.jobs.storage import read_job, write_job
from runtime.module import AMOUNT, BYTES, HASH, INTEGER, CallSpec
from runtime.primitives import CallContext
from runtime.state import Overlay, StateReader

NONE = state_pb2.CANDIDATE_VERDICT_NONE

# --- challenge --------------------------------------------------------------------


def check_challenge(call: types_pb2.Challenge) -> None:
    """A challenge names a 32-byte job id and bonds something."""
    if len(call.job_id) != 32:
        raise UnknownJob(f"a job id is 32 bytes, got {len(call.job_id)}")
    if call.bond == 0:
        raise BondTooLow("a challenge's bond is 0; it must be at least disputes.params.min_challenge_bond")


def check_challenge_state(state: StateReader, call: types_pb2.Challenge) -> None:
    """The bond is at least min_challenge_bond."""
    least = read_params(state).min_challenge_bond
    if call.bond < least:
        raise BondTooLow(f"the bond {call.bond} is below disputes.params.min_challenge_bond {least}")


def challenge_cost(state: StateReader, call: types_pb2.Challenge) -> int:
    """The bond, reserved from the free balance until the verdict."""
    return call.bond


def _challengeable(state: StateReader, call: types_pb2.Challenge, height: int) -> state_pb2.Job:
    """The job a challenge may open a dispute on; the first rule it breaks otherwise."""
    job = read_job(state, call.job_id)
    if job is None:
        raise UnknownJob(f"no job has id {call.job_id.hex()}")
    earlier = read_dispute(state, job.id)
    if earlier is not None and not unjudged(earlier):
        raise AlreadyDisputed(f"job {job.id.hex()} has a dispute already; a job is judged once")
    if job.status != SETTLED:
        raise ChallengeWindowClosed(f"the job is {job_status_name(job.status)}: only a settled job may be challenged")
    window_end = job.final_height + jobs_params.read_params(state).challenge_window_blocks
    if height > window_end:
        raise ChallengeWindowClosed(f"the job's challenge window closed at height {window_end}; this is {height}")
    if call.candidate >= len(job.assignments) or job.assignments[call.candidate].status != SLOT_REVEALED:
        raise UnknownCandidate(f"assignment {call.candidate} of the job is not a revealed result "
                               f"(the job has {len(job.assignments)} assignments)")
    return job


def challenge(state: Overlay, context: CallContext, call: types_pb2.Challenge) -> None:
    """Bond a challenge of one revealed result of a settled job: its results go to a committee."""
    check_challenge(call)
    height = system.read_chain(state).height
    job = _challengeable(state, call, height)
    check_challenge_state(state, call)
    params = read_params(state)
    if open_count(state) >= params.max_open_disputes:
        raise TooManyDisputes(f"{params.max_open_disputes} disputes are open (disputes.params.max_open_disputes); "
                              "challenge again when one is decided")
    balances.reserve(state, context.origin, call.bond, InsufficientBalance)
    dispute = open_dispute(state, job, CHALLENGE, height, challenger=context.origin, bond=call.bond,
                           challenged=call.candidate)
    state.deposit_event(events.event(events.CHALLENGED, dispute=dispute.id.hex(), challenger=context.origin.hex(),
                                     candidate=call.candidate, bond=call.bond))
    write_job(state, job)


# --- votes ------------------------------------------------------------------------


def check_dispute_id(dispute_id: bytes) -> None:
    if len(dispute_id) != 32:
        raise UnknownDispute(f"a dispute id is 32 bytes, got {len(dispute_id)}")


def _dispute_for(state: StateReader, dispute_id: bytes) -> state_pb2.Dispute:
    dispute = read_dispute(state, dispute_id)
    if dispute is None:
        raise UnknownDispute(f"no dispute has id {dispute_id.hex()}")
    return dispute


def _member(dispute: state_pb2.Dispute, account: bytes) -> state_pb2.CommitteeMember:
    member = next((member for member in dispute.committee if member.account == account), None)
    if member is None:
        raise NotMember(f"this account is not on the committee of dispute {dispute.id.hex()}")
    return member


def check_commit_vote(call: types_pb2.CommitVote) -> None:
    check_dispute_id(call.dispute)
    if len(call.commitment) != 32:
        raise InvalidVote(f"a vote commitment is 32 bytes, got {len(call.commitment)}")


def unjudged(dispute: state_pb2.Dispute) -> bool:
    """A dispute decided with no verdict on any result (too few members or reveals): the job may be challenged
    again, so withheld votes cannot buy a forgery its payment."""
    return dispute.status == DECIDED and all(verdict == NONE for verdict in dispute.verdicts)


def commit_vote(state: Overlay, context: CallContext, call: types_pb2.CommitVote) -> None:
    """Record a member's commitment to its votes; when every member has committed, the reveal opens at once."""
    check_commit_vote(call)
    dispute = _dispute_for(state, call.dispute)
    member = _member(dispute, context.origin)
    if member.commitment:
        raise AlreadyVoted("this member has committed to its votes already")
    if dispute.status == DECIDED:
        raise WrongPhase(f"dispute {dispute.id.hex()} is decided")
    height = system.read_chain(state).height
    if dispute.status != COMMITTING or height > dispute.commit_deadline:
        raise VotingClosed(f"the commit phase ended at height {dispute.commit_deadline}; this is {height}")
    member.commitment = call.commitment
    state.deposit_event(events.event(events.VOTE_COMMITTED, dispute=dispute.id.hex(), member=context.origin.hex()))
    if all(other.commitment for other in dispute.committee):
        open_reveal(state, dispute, height + read_params(state).vote_reveal_blocks)
    write_dispute(state, dispute)


def open_reveal(state: Overlay, dispute: state_pb2.Dispute, deadline: int) -> None:
    """The commit phase is over: members reveal until `deadline` (the first height with room from it)."""
    dispute.status = REVEALING
    dispute.reveal_deadline = schedule(state, DEADLINES_PREFIX, deadline, dispute.id)
    lock_parties(state, dispute, read_job(state, dispute.job), dispute.reveal_deadline + 1)
    state.deposit_event(events.event(events.REVEAL_OPENED, dispute=dispute.id.hex(),
                                     reveal_deadline=dispute.reveal_deadline))


def check_reveal_vote(call: types_pb2.RevealVote) -> None:
    check_dispute_id(call.dispute)
    if len(call.salt) != SALT_BYTES:
        raise InvalidVote(f"the salt is {SALT_BYTES} bytes, got {len(call.salt)}")
    if not 1 <= len(call.votes) <= weights.MAX_REDUNDANCY:
        raise InvalidVote(f"a reveal holds one vote per candidate: 1 to {weights.MAX_REDUNDANCY}, got {len(call.votes)}")


def reveal_vote(state: Overlay, context: CallContext, call: types_pb2.RevealVote) -> None:
    """Check a member's revealed votes against its commitment; when every committed member has revealed, the
    dispute is decided in this block's on_finalize."""
    check_reveal_vote(call)
    dispute = _dispute_for(state, call.dispute)
    member = _member(dispute, context.origin)
    if member.revealed:
        raise AlreadyVoted("this member has revealed its votes already")
    if dispute.status == COMMITTING:
        raise WrongPhase("votes are revealed once the commit phase is over")
    height = system.read_chain(state).height
    if not member.commitment:
        raise VotingClosed("this member committed to no vote before the commit phase ended")
    if dispute.status == DECIDED or height > dispute.reveal_deadline:
        raise VotingClosed(f"the reveal phase ended at height {dispute.reveal_deadline}; this is {height}")
    candidates = [vote.candidate for vote in call.votes]
    if candidates != list(dispute.candidates):
        raise InvalidVote(f"the votes name candidates {candidates}; the dispute's candidates, in order, are "
                          f"{list(dispute.candidates)}")
    if vote_commitment(dispute.id, context.origin, call.salt, call.votes) != member.commitment:
        raise VoteMismatch("the revealed votes and salt do not hash to this member's commitment")
    member.revealed = True
    member.votes.extend(call.votes)
    state.deposit_event(events.event(events.VOTE_REVEALED, dispute=dispute.id.hex(), member=context.origin.hex()))
    if all(other.revealed for other in dispute.committee if other.commitment):
        mark_ready(state, dispute.id)
    write_dispute(state, dispute)


CALLS = (
    CallSpec(
        name="challenge",
        message=types_pb2.Challenge,
        doc="Challenge a revealed result of a settled job within its challenge window, bonding `bond`.",
        handler=challenge,
        cost=challenge_cost,
        check=check_challenge,
        check_state=check_challenge_state,
        fields={"job_id": HASH, "candidate": INTEGER, "bond": AMOUNT},
        weight=dispute_weights.challenge,
    ),
    CallSpec(
        name="commit_vote",
        message=types_pb2.CommitVote,
        doc="Commit to your votes on a dispute whose committee you are on.",
        handler=commit_vote,
        check=check_commit_vote,
        fields={"dispute": HASH, "commitment": HASH},
        weight=dispute_weights.commit_vote,
    ),
    CallSpec(
        name="reveal_vote",
        message=types_pb2.RevealVote,
        doc="Reveal the votes you committed to, with their salt, once the commit phase is over.",
        handler=reveal_vote,
        check=check_reveal_vote,
        # `votes` holds CandidateVote messages, built by the worker (runtime/disputes/recipes.py), not by field kinds.
        fields={"dispute": HASH, "salt": BYTES},
        weight=dispute_weights.reveal_vote,
    ),
    CallSpec(
        name="seal_probe",
        message=types_pb2.SealProbe,
        doc="Seal a probe: commit to blake2b-256(b\"inferchain/probe-seal/v1\" || job id || salt) of a job you post.",
        handler=sealed.seal_probe,
        check=sealed.check_seal_probe,
        fields={"commitment": HASH},
        weight=dispute_weights.seal_probe,
    ),
    CallSpec(
        name="open_probe",
        message=types_pb2.OpenProbe,
        doc="Open your sealed probe once its job settled: the job is audited and the probe fund pays its poster back.",
        handler=sealed.open_probe,
        check=sealed.check_open_probe,
        fields={"job_id": HASH, "salt": BYTES},
        weight=dispute_weights.open_probe,
    ),
)
