"""The verdict: the committee's revealed stake decides each candidate, and the consequences follow.

If the committee is empty, or at most half its stake revealed, every candidate is NONE (nobody paid
for it, nobody slashed for it). Else a candidate is INVALID when the stake voting invalid exceeds the
stake voting valid, and VALID otherwise (ties favour the executor). Then, through runtime/slashing:
an INVALID result's executor is slashed and jailed (the poster's burned fee on it made good first,
then slash_reward_ppm to the winning challenger or to the members that voted it invalid, the rest
burned); a member that did not reveal, or voted against a supermajority, is slashed; a challenger
gets its bond back and its reward, or loses challenge_loss_ppm of it; the job is concluded (paid,
revoked, refunded: runtime/jobs/settlement.py conclude) and the evidence recorded (evidence.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from proto import state_pb2
from runtime import balances, reputation
from runtime.arithmetic import PPM, apply_ppm
import runtime.disputes.events as events
from runtime.disputes.evidence import record_evidence
from runtime.disputes.opening import CHALLENGE, DECIDED
from runtime.disputes.params import Params, read_params
from runtime.disputes.storage import unindex, write_dispute
from runtime.jobs.phases import job_status_name
from runtime.jobs.settlement import conclude
from runtime.jobs.storage import read_job, write_job
from runtime.slashing.penalties import CONTRARY_VOTE, FAILED_CHALLENGE, INVALID_RESULT, MISSED_VOTE, burn_bond, slash
from runtime.state import Overlay

VALID = state_pb2.CANDIDATE_VERDICT_VALID
INVALID = state_pb2.CANDIDATE_VERDICT_INVALID
NONE = state_pb2.CANDIDATE_VERDICT_NONE


def verdict_name(verdict: int) -> str:
    """"valid", "invalid" or "none"."""
    return state_pb2.CandidateVerdict.Name(verdict).removeprefix("CANDIDATE_VERDICT_").lower()


@dataclass(frozen=True)
class Tally:
    """One candidate's votes: its index in the job's assignments, the revealed stake on each side, the verdict."""

    position: int
    candidate: int
    valid_stake: int
    invalid_stake: int
    verdict: int


def revealed_stake(dispute: state_pb2.Dispute) -> int:
    return sum(member.stake for member in dispute.committee if member.revealed)


def tally(dispute: state_pb2.Dispute) -> list[Tally]:
    """Each candidate's verdict from the revealed votes (every one NONE without a majority of the stake revealed)."""
    committee_stake = sum(member.stake for member in dispute.committee)
    revealed = revealed_stake(dispute)
    decisive = bool(dispute.committee) and 2 * revealed > committee_stake
    tallies = []
    for position, candidate in enumerate(dispute.candidates):
        valid = sum(member.stake for member in dispute.committee if member.revealed and member.votes[position].valid)
        invalid = revealed - valid
        verdict = NONE if not decisive else INVALID if invalid > valid else VALID
        tallies.append(Tally(position, candidate, valid, invalid, verdict))
    return tallies


def decide(state: Overlay, dispute: state_pb2.Dispute, height: int) -> None:
    """Judge every candidate and apply the consequences; the dispute is DECIDED (and written)."""
    params = read_params(state)
    job = read_job(state, dispute.job)
    tallies = tally(dispute)
    fees = conclude(state, job, {t.candidate: t.verdict for t in tallies}, dispute.reason, height)
    write_job(state, job)
    rewards = {}
    for entry in tallies:
        executor = job.assignments[entry.candidate].executor
        state.deposit_event(events.event(
            events.CANDIDATE_JUDGED, dispute=dispute.id.hex(), candidate=entry.candidate, executor=executor.hex(),
            verdict=verdict_name(entry.verdict), valid_stake=entry.valid_stake, invalid_stake=entry.invalid_stake,
        ))
        if entry.verdict == INVALID:
            rewards[entry.candidate] = _punish_executor(state, dispute, job, entry, fees.get(entry.candidate, 0),
                                                        params, height)
    _punish_members(state, dispute, tallies, params, height)
    _settle_challenge(state, dispute, tallies, rewards, params, height)
    for entry in tallies:
        # An invalid result was punished for this job already: its misses never count toward a second punishment.
        if entry.verdict == VALID:
            record_evidence(state, dispute, job, entry.position, params, height)
    _close(state, dispute, job, tallies, height)


def _punish_executor(state: Overlay, dispute: state_pb2.Dispute, job: state_pb2.Job, entry: Tally, fee: int,
                     params: Params, height: int) -> int:
    """Slash and jail an invalid result's executor: the poster's burned fee made good, then the reward, the rest
    burned; the challenger's reward (0 unless this is the challenged result)."""
    challenged = dispute.reason == CHALLENGE and entry.candidate == dispute.challenged
    paid_to_challenger = 0

    def payouts(amount: int) -> list[tuple[bytes, int]]:
        nonlocal paid_to_challenger
        to_poster = min(fee, amount)
        reward = min(apply_ppm(amount, params.slash_reward_ppm), amount - to_poster)
        if challenged:
            paid_to_challenger = reward
            return [(job.poster, to_poster), (dispute.challenger, reward)]
        return [(job.poster, to_poster), *_shares(dispute, entry.position, reward)]

    executor = job.assignments[entry.candidate].executor
    slash(state, executor, params.slash_fraction_invalid_result_ppm, INVALID_RESULT, job.id, height, jail=True,
          payouts=payouts)
    reputation.penalize(state, executor)
    return paid_to_challenger


def _shares(dispute: state_pb2.Dispute, position: int, reward: int) -> list[tuple[bytes, int]]:
    """The reward split by stake among the members that revealed INVALID for the candidate (rounded down)."""
    voters = [member for member in dispute.committee if member.revealed and not member.votes[position].valid]
    total = sum(member.stake for member in voters)
    return [(member.account, reward * member.stake // total) for member in voters] if total else []


def _contrary(dispute: state_pb2.Dispute, member: state_pb2.CommitteeMember, tallies: list[Tally],
              params: Params) -> bool:
    """Whether a revealed member voted against a verdict that holds supermajority_ppm of the revealed stake."""
    revealed = revealed_stake(dispute)
    for entry in tallies:
        if entry.verdict == NONE or member.votes[entry.position].valid == (entry.verdict == VALID):
            continue
        winning = entry.valid_stake if entry.verdict == VALID else entry.invalid_stake
        if winning * PPM >= params.supermajority_ppm * revealed:
            return True
    return False


def _punish_members(state: Overlay, dispute: state_pb2.Dispute, tallies: list[Tally], params: Params,
                    height: int) -> None:
    """A member that did not reveal is slashed missed_vote; one that voted against a supermajority, contrary_vote."""
    for member in dispute.committee:
        if not member.revealed:
            slash(state, member.account, params.slash_fraction_missed_vote_ppm, MISSED_VOTE, dispute.id, height)
        elif _contrary(dispute, member, tallies, params):
            slash(state, member.account, params.slash_fraction_contrary_vote_ppm, CONTRARY_VOTE, dispute.id, height)


def _settle_challenge(state: Overlay, dispute: state_pb2.Dispute, tallies: list[Tally], rewards: dict[int, int],
                      params: Params, height: int) -> None:
    """Return a challenger's bond: in full with its reward when the challenged result is invalid, less
    challenge_loss_ppm (burned) when it is valid, in full when nobody could judge it."""
    if dispute.reason != CHALLENGE:
        return
    verdict = next(entry.verdict for entry in tallies if entry.candidate == dispute.challenged)
    lost = 0
    if verdict == VALID:
        # What was burned: nothing while the brake holds (or for an offence punished already).
        record = burn_bond(state, dispute.challenger, apply_ppm(dispute.bond, params.challenge_loss_ppm),
                           FAILED_CHALLENGE, dispute.id, height)
        lost = record.amount if record is not None else 0
    balances.unreserve(state, dispute.challenger, dispute.bond - lost)
    state.deposit_event(events.event(
        events.CHALLENGE_SETTLED, dispute=dispute.id.hex(), challenger=dispute.challenger.hex(),
        returned=dispute.bond - lost, lost=lost, reward=rewards.get(dispute.challenged, 0),
    ))


def _close(state: Overlay, dispute: state_pb2.Dispute, job: state_pb2.Job, tallies: list[Tally], height: int) -> None:
    """Record the verdicts; the dispute leaves the open and duty indexes."""
    dispute.status = DECIDED
    dispute.decided_height = height
    del dispute.verdicts[:]
    dispute.verdicts.extend(entry.verdict for entry in tallies)
    judged = ", ".join(f"result {entry.candidate} {verdict_name(entry.verdict)}" for entry in tallies)
    dispute.outcome = f"{judged}; the job is {job_status_name(job.status)}"
    unindex(state, dispute)
    write_dispute(state, dispute)
    state.deposit_event(events.event(events.DISPUTE_DECIDED, dispute=dispute.id.hex(), outcome=dispute.outcome))
