"""disputes: differing or too few digests, audits and challenges judged by a committee's commit-reveal votes.

Every test runs the real runtime on an in-memory chain (tests/runtime/market.py), whose every block
checks the supply and reserved-balance invariants.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

from proto import state_pb2, types_pb2
from runtime import randomness, reputation
from runtime.arithmetic import apply_ppm
from runtime.block import read_block_limits
from runtime.disputes import conviction, hooks, storage, verdict
from runtime.disputes import params as disputes
from runtime.disputes import weights as dispute_weights
from runtime.disputes.storage import open_count, read_evidence
from runtime.jobs import collateral
from runtime.jobs.pricing import charge, protocol_fee
from runtime.module import GenesisInvalid
from runtime.primitives import BlockContext
from runtime.registry import RUNTIME
from runtime.slashing import penalties
from runtime.state import Overlay
from tests.runtime.helpers import ENDOWMENT, free, genesis_state
from tests.runtime.market import (
    BOND,
    PRICES,
    Market,
    executor_stake,
    EXECUTORS,
    FEE,
    FORGED,
    HONEST,
    JOBS,
    JUDGES,
    MODEL,
    OUTSIDER,
    output,
    POSTER,
    STAKING,
    commit_votes,
    committee_of,
    forged_at_redundancy_two,
    index_of,
    judge_stake,
    judge_votes,
    ledger,
    market_with,
    reveal_each,
    reveal_votes,
    salt_for,
    settled_alone,
    vote_all,
)

VALID = state_pb2.CANDIDATE_VERDICT_VALID
INVALID = state_pb2.CANDIDATE_VERDICT_INVALID
NONE = state_pb2.CANDIDATE_VERDICT_NONE


def _gross(job, slot) -> int:
    return charge(slot.price_per_token, slot.reveal.prompt_tokens, len(slot.reveal.tokens), job.prompt_price_ppm)


def _slot_fees(job) -> int:
    return sum(protocol_fee(_gross(job, slot), JOBS.protocol_fee_ppm) for slot in job.assignments if slot.payment)


# --- differing digests ------------------------------------------------------------------------


def test_differing_digests_go_to_a_committee_that_slashes_the_forger_and_pays_the_honest_executor():
    market = market_with()
    job_id, honest, forger, escrow = forged_at_redundancy_two(market)
    job = market.job(job_id)
    assert job.status == state_pb2.JOB_STATUS_DISPUTED and job.escrow == escrow  # held, not paid, not refunded
    dispute = market.dispute(job_id)
    assert dispute.reason == state_pb2.DISPUTE_REASON_DIGESTS and list(dispute.candidates) == [0, 1]
    assert dispute.draw_height == dispute.opened_height + 2 and not dispute.committee
    drawn = [event.name for event in market.advance_to(dispute.draw_height)]
    assert "CommitteeDrawn" in drawn
    assert sorted(committee_of(market, job_id), key=lambda a: a.public_key) == sorted(JUDGES, key=lambda a: a.public_key)

    honest_at, forger_at = index_of(job, honest), index_of(job, forger)
    valid = [position == honest_at for position in dispute.candidates]
    vote_all(market, job_id, {judge: judge_votes(dispute, valid) for judge in JUDGES})

    dispute, job = market.dispute(job_id), market.job(job_id)
    assert dispute.status == state_pb2.DISPUTE_STATUS_DECIDED and open_count(market.state) == 0
    assert [job.assignments[c].verdict for c in dispute.candidates] == [VALID if v else INVALID for v in valid]
    # The forger: half its stake slashed for the invalid result, jailed, nothing paid; punished once for the job:
    # its 20 misses in 64 positions do not go into its evidence across jobs as well.
    assert ledger(market, forger).bonded == BOND - apply_ppm(BOND, 500_000)
    assert storage.read_evidence(market.state, forger.public_key, MODEL.id).jobs == 0
    assert ledger(market, forger).jailed
    assert job.assignments[forger_at].payment == 0
    # The honest co-executor: paid and released at once.
    paid = job.assignments[honest_at]
    assert paid.payment > 0 and paid.released
    assert free(market.state, honest) == ENDOWMENT - BOND - 2 * FEE + paid.payment
    # The poster: the valid result, and the rest of the escrow back; never both the result and a full refund.
    assert job.status == state_pb2.JOB_STATUS_SETTLED and job.output_digest == paid.reveal.output_digest
    assert job.escrow == 0 and 0 < job.refunded < escrow
    assert job.refunded + _gross(job, paid) + (job.protocol_fee - _slot_fees(job)) + job.queue_fee == escrow
    # The members that voted the forgery invalid share slash_reward_ppm of the slash by stake.
    share = apply_ppm(apply_ppm(BOND, 500_000), 500_000) // 3
    for judge in JUDGES:
        assert free(market.state, judge) == ENDOWMENT - BOND - 2 * FEE + share
        assert ledger(market, judge).bonded == BOND


def test_a_lone_reveal_after_a_missed_one_goes_to_a_verdict_not_to_payment():
    market = market_with()
    job_id, _ = market.post(redundancy=2)
    honest, lazy = market.executors_of(job_id)
    reveal_each(market, job_id, {honest: HONEST, lazy: HONEST}, revealing={honest})
    market.advance(JOBS.reveal_blocks + 1)
    job = market.job(job_id)
    assert job.status == state_pb2.JOB_STATUS_DISPUTED
    assert all(slot.payment == 0 for slot in job.assignments)
    dispute = market.dispute(job_id)
    assert dispute.reason == state_pb2.DISPUTE_REASON_QUORUM and list(dispute.candidates) == [index_of(job, honest)]
    # The missed reveal: a small slash besides the reputation.
    assert ledger(market, lazy).bonded == BOND - apply_ppm(BOND, 1_000)
    market.advance_to(dispute.draw_height)
    vote_all(market, job_id, {judge: judge_votes(dispute, [True]) for judge in JUDGES})
    job = market.job(job_id)
    assert job.status == state_pb2.JOB_STATUS_SETTLED
    assert job.assignments[index_of(job, honest)].released and ledger(market, honest).bonded == BOND


def test_without_an_eligible_committee_every_verdict_is_none_nobody_is_slashed_and_the_escrow_returns():
    market = market_with(judges=())
    job_id, honest, forger, escrow = forged_at_redundancy_two(market)
    dispute = market.dispute(job_id)
    events = market.advance_to(dispute.draw_height)
    judged = [event for event in events if event.name == "CandidateJudged"]
    assert [attribute.value for event in judged for attribute in event.attributes if attribute.key == "verdict"] == [
        "none", "none"]
    dispute, job = market.dispute(job_id), market.job(job_id)
    assert dispute.status == state_pb2.DISPUTE_STATUS_DECIDED and list(dispute.verdicts) == [NONE, NONE]
    assert job.status == state_pb2.JOB_STATUS_REJECTED and "no revealed result was judged valid" in job.reason
    assert job.refunded + job.queue_fee == escrow and job.protocol_fee == 0
    assert ledger(market, honest).bonded == ledger(market, forger).bonded == BOND
    assert not ledger(market, forger).jailed


# --- audits -------------------------------------------------------------------------------------


def test_an_audit_at_probability_one_draws_the_committee_at_once_and_a_valid_verdict_releases_the_payment():
    market = market_with(executors=1, params=disputes.Params(audit_probability_ppm=1_000_000))
    job_id, executor = settled_alone(market)
    settled_at = market.height
    market.advance_to(settled_at + 2)
    dispute = market.dispute(job_id)
    assert dispute.reason == state_pb2.DISPUTE_REASON_AUDIT and dispute.draw_height == settled_at + 2
    assert len(dispute.committee) == 3 and dispute.status == state_pb2.DISPUTE_STATUS_COMMITTING
    assert market.job(job_id).status == state_pb2.JOB_STATUS_DISPUTED
    market.advance(JOBS.challenge_window_blocks)  # the window's end releases nothing while the audit is open
    assert not market.job(job_id).assignments[0].released
    vote_all(market, job_id, {judge: judge_votes(dispute, [True]) for judge in JUDGES})
    job = market.job(job_id)
    assert job.status == state_pb2.JOB_STATUS_SETTLED and job.assignments[0].released
    assert job.assignments[0].verdict == VALID
    assert read_evidence(market.state, executor.public_key, MODEL.id).jobs == 1


def test_an_audit_at_probability_zero_never_opens_and_the_payment_is_released_at_the_window_end():
    market = market_with(executors=1, params=disputes.Params(audit_probability_ppm=0))
    job_id, _ = settled_alone(market)
    market.advance(JOBS.challenge_window_blocks + 1)
    assert market.dispute(job_id) is None
    assert market.job(job_id).assignments[0].released


def test_an_audit_without_eligible_members_is_skipped_and_the_job_stays_settled():
    market = market_with(executors=1, judges=(), params=disputes.Params(audit_probability_ppm=1_000_000))
    job_id, _ = settled_alone(market)
    events = market.advance(2)
    assert "AuditSkipped" in [event.name for event in events]
    assert market.dispute(job_id) is None and market.job(job_id).status == state_pb2.JOB_STATUS_SETTLED


def test_a_model_s_own_audit_probability_overrides_the_default():
    model = types_pb2.ModelInfo()
    model.CopyFrom(MODEL)
    model.audit_probability_ppm = 123
    state = genesis_state(registered=(model,))
    assert disputes.audit_probability(state, MODEL.id) == 123
    assert disputes.audit_probability(state, bytes(32)) == disputes.Params().audit_probability_ppm


# --- challenges ---------------------------------------------------------------------------------


def test_a_poster_challenging_an_honest_result_loses_part_of_its_bond_and_the_result_stays_paid():
    market = market_with(executors=1)
    job_id, executor = settled_alone(market)
    bond = disputes.Params().min_challenge_bond
    before = free(market.state, POSTER)
    market.ok(POSTER, challenge=types_pb2.Challenge(job_id=job_id, candidate=0, bond=bond))
    assert free(market.state, POSTER) == before - FEE - bond
    dispute = market.dispute(job_id)
    market.advance_to(dispute.draw_height)
    vote_all(market, job_id, {judge: judge_votes(dispute, [True]) for judge in JUDGES})
    lost = apply_ppm(bond, 500_000)
    assert free(market.state, POSTER) == before - FEE - lost
    job = market.job(job_id)
    assert job.status == state_pb2.JOB_STATUS_SETTLED and job.assignments[0].released
    assert job.assignments[0].payment > 0 and job.assignments[0].verdict == VALID
    assert ledger(market, executor).bonded == BOND and not ledger(market, executor).jailed


def test_a_challenge_of_a_forged_result_rewards_the_challenger_and_makes_the_poster_whole():
    market = market_with(executors=1)
    poster_before = free(market.state, POSTER)
    job_id, forger = settled_alone(market, FORGED)
    job = market.job(job_id)
    payment = job.assignments[0].payment
    bond = disputes.Params().min_challenge_bond
    challenger_before = free(market.state, OUTSIDER)
    market.ok(OUTSIDER, challenge=types_pb2.Challenge(job_id=job_id, candidate=0, bond=bond))
    dispute = market.dispute(job_id)
    market.advance_to(dispute.draw_height)
    vote_all(market, job_id, {judge: judge_votes(dispute, [False]) for judge in JUDGES})
    job = market.job(job_id)
    assert job.status == state_pb2.JOB_STATUS_REJECTED and job.assignments[0].payment == 0
    slashed = apply_ppm(BOND, 500_000)
    # Punished once for the job: its 20 misses in 64 positions do not go into its evidence across jobs as well.
    assert ledger(market, forger).bonded == BOND - slashed and ledger(market, forger).jailed
    reward = apply_ppm(slashed, 500_000)
    assert free(market.state, OUTSIDER) == challenger_before - FEE + reward
    # The poster: its held payment back, and every fee the job burned made good from the slash; it is out only
    # its transaction fee and the storage deposit (reserved until the record is pruned).
    assert payment > 0 and job.refunded >= payment
    assert free(market.state, POSTER) == poster_before - FEE - job.storage_deposit


def test_a_challenge_no_member_judged_keeps_the_payment_held_and_the_job_open_to_a_new_challenge():
    # Members that withhold their votes (each slashed for it) cannot buy a forgery its payment.
    market = market_with(executors=1, jobs_params=replace(JOBS, challenge_window_blocks=12),
                         params=replace(disputes.Params(audit_probability_ppm=0), vote_commit_blocks=3,
                                        vote_reveal_blocks=3))
    job_id, forger = settled_alone(market, FORGED)
    bond = disputes.Params().min_challenge_bond
    market.ok(OUTSIDER, challenge=types_pb2.Challenge(job_id=job_id, candidate=0, bond=bond))
    dispute = market.dispute(job_id)
    market.advance_to(dispute.draw_height)
    market.advance_to(market.dispute(job_id).commit_deadline + 1)  # nobody commits: decided with no verdict
    dispute, job = market.dispute(job_id), market.job(job_id)
    assert dispute.status == state_pb2.DISPUTE_STATUS_DECIDED and list(dispute.verdicts) == [NONE]
    assert job.status == state_pb2.JOB_STATUS_SETTLED and not job.assignments[0].released
    assert market.height < job.assignments[0].release_height
    market.ok(POSTER, challenge=types_pb2.Challenge(job_id=job_id, candidate=0, bond=bond))
    dispute = market.dispute(job_id)
    assert dispute.status == state_pb2.DISPUTE_STATUS_COMMITTING and dispute.challenger == POSTER.public_key
    market.advance_to(dispute.draw_height)
    vote_all(market, job_id, {judge: judge_votes(market.dispute(job_id), [False]) for judge in JUDGES})
    job = market.job(job_id)
    assert job.status == state_pb2.JOB_STATUS_REJECTED and job.assignments[0].payment == 0
    assert ledger(market, forger).jailed
    # A job with a verdict is judged once.
    again = market.call(OUTSIDER, challenge=types_pb2.Challenge(job_id=job_id, candidate=0, bond=bond))
    assert (again.success, again.error_name) == (False, "AlreadyDisputed")


def test_an_executor_s_stake_is_locked_while_its_job_can_prove_an_offence_then_withdrawn():
    market = market_with(executors=1, staking_params=replace(STAKING, unbonding_period_blocks=50))
    job_id, executor = settled_alone(market, HONEST)
    market.ok(executor, clear_offer=types_pb2.ClearOffer())
    market.ok(executor, unbond=types_pb2.Unbond(amount=BOND))
    locked_until = ledger(market, executor).locked_until
    job = market.job(job_id)
    assert locked_until >= job.assignments[0].release_height  # an audit or a challenge can still come
    release = ledger(market, executor).unbonding[0].release_height
    assert release < locked_until
    market.advance_to(release)
    refused = market.call(executor, withdraw_unbonded=types_pb2.WithdrawUnbonded())
    assert (refused.success, refused.error_name) == (False, "NothingToWithdraw")
    assert f"locked until height {locked_until}" in refused.error_message
    market.advance_to(locked_until)
    market.ok(executor, withdraw_unbonded=types_pb2.WithdrawUnbonded())
    assert ledger(market, executor) is None  # nothing bonded or unbonding is left


# --- members ------------------------------------------------------------------------------------


def test_a_member_that_does_not_reveal_is_slashed_for_a_missed_vote():
    market = market_with()
    job_id, honest, forger, _ = forged_at_redundancy_two(market)
    dispute = market.dispute(job_id)
    market.advance_to(dispute.draw_height)
    job = market.job(job_id)
    valid = [position == index_of(job, honest) for position in dispute.candidates]
    ballots = {judge: judge_votes(dispute, valid) for judge in JUDGES}
    commit_votes(market, job_id, ballots)
    reveal_votes(market, job_id, {judge: ballots[judge] for judge in JUDGES[:2]})
    market.advance_to(market.dispute(job_id).reveal_deadline)
    assert market.dispute(job_id).status == state_pb2.DISPUTE_STATUS_DECIDED
    assert ledger(market, JUDGES[2]).bonded == BOND - apply_ppm(BOND, 10_000)
    assert ledger(market, JUDGES[0]).bonded == ledger(market, JUDGES[1]).bonded == BOND
    assert ledger(market, forger).jailed and not ledger(market, JUDGES[2]).jailed


def test_a_vote_against_a_supermajority_is_slashed_as_contrary():
    judges = (judge_stake(JUDGES[0], 2 * BOND), judge_stake(JUDGES[1], 2 * BOND), judge_stake(JUDGES[2]))
    market = market_with(judges=judges)
    job_id, honest, forger, _ = forged_at_redundancy_two(market)
    dispute = market.dispute(job_id)
    market.advance_to(dispute.draw_height)
    job = market.job(job_id)
    valid = [position == index_of(job, honest) for position in dispute.candidates]
    ballots = {JUDGES[0]: judge_votes(dispute, valid), JUDGES[1]: judge_votes(dispute, valid),
               JUDGES[2]: judge_votes(dispute, [True] * len(valid))}  # says the forgery is valid: 1/5 of the stake
    vote_all(market, job_id, ballots)
    assert ledger(market, JUDGES[2]).bonded == BOND - apply_ppm(BOND, 50_000)
    assert ledger(market, JUDGES[0]).bonded > 2 * BOND - 1  # rewarded in free balance, stake untouched
    assert ledger(market, forger).jailed


def test_an_offence_is_punished_once():
    market = market_with()
    job_id, honest, forger, _ = forged_at_redundancy_two(market)
    dispute = market.dispute(job_id)
    market.advance_to(dispute.draw_height)
    job = market.job(job_id)
    valid = [position == index_of(job, honest) for position in dispute.candidates]
    vote_all(market, job_id, {judge: judge_votes(dispute, valid) for judge in JUDGES})
    layer = Overlay(market.state)
    again = penalties.slash(layer, forger.public_key, 500_000, penalties.INVALID_RESULT, job_id, market.height)
    assert again is None and not layer.writes


# --- genesis --------------------------------------------------------------------------------------


def test_genesis_refuses_dispute_windows_that_outlast_the_unbonding_period():
    with pytest.raises(GenesisInvalid, match=r"challenge_window_blocks \(5\).*= 50 must be below "
                                             r"staking.params.unbonding_period_blocks \(50\)"):
        genesis_state(jobs_params=JOBS, staking_params=STAKING,
                      disputes_params=disputes.Params(vote_commit_blocks=33))
    genesis_state(jobs_params=JOBS, staking_params=STAKING, disputes_params=disputes.Params(vote_commit_blocks=32))
    with pytest.raises(GenesisInvalid, match="audit_delay_blocks"):
        genesis_state(jobs_params=JOBS, staking_params=STAKING, disputes_params=disputes.Params(audit_delay_blocks=5))


def test_the_registry_holds_the_disputes_module_after_jobs():
    names = [module.name for module in RUNTIME.modules]
    assert names.index("disputes") == names.index("jobs") + 1
    assert {"challenge", "commit_vote", "reveal_vote"} <= set(RUNTIME.calls)


def test_the_reputation_of_a_forger_judged_invalid_falls():
    market = market_with()
    job_id, honest, forger, _ = forged_at_redundancy_two(market)
    score = reputation.read_reputation(market.state, forger.public_key)
    dispute = market.dispute(job_id)
    market.advance_to(dispute.draw_height)
    job = market.job(job_id)
    valid = [position == index_of(job, honest) for position in dispute.candidates]
    vote_all(market, job_id, {judge: judge_votes(dispute, valid) for judge in JUDGES})
    assert reputation.read_reputation(market.state, forger.public_key) < score



# --- votes and deadlines --------------------------------------------------------------------------


def test_a_committee_that_commits_nothing_decides_none_at_the_commit_deadline_and_every_member_is_slashed():
    market = market_with()
    job_id, honest, forger, escrow = forged_at_redundancy_two(market)
    dispute = market.dispute(job_id)
    market.advance_to(dispute.draw_height)
    market.advance_to(market.dispute(job_id).commit_deadline)
    dispute, job = market.dispute(job_id), market.job(job_id)
    assert dispute.status == state_pb2.DISPUTE_STATUS_DECIDED and list(dispute.verdicts) == [NONE, NONE]
    assert job.status == state_pb2.JOB_STATUS_REJECTED and job.refunded + job.queue_fee == escrow
    assert ledger(market, forger).bonded == BOND and not ledger(market, forger).jailed
    assert all(ledger(market, judge).bonded == BOND - apply_ppm(BOND, 10_000) for judge in JUDGES)


def test_the_duties_query_lists_what_each_member_still_owes():
    market = market_with()
    job_id, honest, _, _ = forged_at_redundancy_two(market)
    dispute = market.dispute(job_id)
    market.advance_to(dispute.draw_height)
    dispute = market.dispute(job_id)
    job = market.job(job_id)
    ballots = {judge: judge_votes(dispute, [p == index_of(job, honest) for p in dispute.candidates]) for judge in JUDGES}
    duties = RUNTIME.module("disputes").queries

    def owes(member) -> list[bytes]:
        query = next(q for q in duties if q.name == "duties")
        return [d.id for d in query.handler(market.state, state_pb2.AccountQuery(account=member.public_key)).disputes]

    assert all(owes(judge) == [job_id] for judge in JUDGES) and owes(OUTSIDER) == []
    commit_votes(market, job_id, {JUDGES[0]: ballots[JUDGES[0]]})
    assert owes(JUDGES[0]) == [] and owes(JUDGES[1]) == [job_id]
    commit_votes(market, job_id, {judge: ballots[judge] for judge in JUDGES[1:]})
    assert all(owes(judge) == [job_id] for judge in JUDGES)  # now each owes its reveal
    listing = next(q for q in duties if q.name == "disputes")
    assert [d.id for d in listing.handler(market.state, state_pb2.DisputeListQuery(open=True)).disputes] == [job_id]
    reveal_votes(market, job_id, ballots)
    assert all(owes(judge) == [] for judge in JUDGES)
    assert listing.handler(market.state, state_pb2.DisputeListQuery(open=True)).disputes == []
    assert [d.id for d in listing.handler(market.state, state_pb2.DisputeListQuery()).disputes] == [job_id]


# --- evidence across jobs -------------------------------------------------------------------------


def test_evidence_across_audited_jobs_accumulates_and_convicts_an_executor_each_job_alone_would_pass():
    misses_per_job = 5  # of 64 positions at the model's 2.1% miss rate: one job alone passes the test
    assert not conviction.convicted(64, misses_per_job, MODEL.thresholds.miss_rate_ppm, 1_000)
    needed = next(n for n in range(1, 50) if conviction.convicted(64 * n, misses_per_job * n,
                                                                   MODEL.thresholds.miss_rate_ppm, 1_000))
    assert needed > 1
    market = market_with(executors=1, params=disputes.Params(audit_probability_ppm=1_000_000))
    executor = EXECUTORS[0]
    long_result = output(tokens=(5,) * 63 + (2,), text="x" * 63)  # 64 positions to judge
    for round_index in range(needed):
        job_id, _ = market.post(max_tokens=64)
        reveal_each(market, job_id, {executor: long_result})
        market.advance(2)
        dispute = market.dispute(job_id)
        ballots = {judge: judge_votes(dispute, [True], misses=[misses_per_job]) for judge in JUDGES}
        commit_votes(market, job_id, ballots)
        events = [event.name for event in market.block([market.transaction(judge, reveal_vote=types_pb2.RevealVote(
            dispute=job_id, salt=salt_for(job_id, judge), votes=ballots[judge])) for judge in JUDGES]).block_events]
        record = read_evidence(market.state, executor.public_key, MODEL.id)
        if round_index < needed - 1:
            assert (record.jobs, record.positions, record.misses) == (round_index + 1, 64 * (round_index + 1),
                                                                      misses_per_job * (round_index + 1))
            assert not ledger(market, executor).jailed
    assert "EvidenceConvicted" in events
    assert (record.jobs, record.positions, record.misses) == (0, 0, 0)
    assert ledger(market, executor).jailed and ledger(market, executor).bonded == BOND - apply_ppm(BOND, 500_000)


def test_a_committee_cannot_report_more_positions_or_misses_than_the_result_has_tokens():
    market = market_with(executors=1, params=disputes.Params(audit_probability_ppm=1_000_000))
    job_id, executor = settled_alone(market)  # a result of 4 tokens
    market.advance(2)
    dispute = market.dispute(job_id)
    ballots = {judge: judge_votes(dispute, [True], positions=2**32 - 1, misses=[0]) for judge in JUDGES}
    vote_all(market, job_id, ballots)
    record = read_evidence(market.state, executor.public_key, MODEL.id)
    assert (record.jobs, record.positions, record.misses) == (1, 4, 0)


def test_a_jailed_executor_is_not_drawn():
    market = market_with(executors=2)
    layer = Overlay(market.state)
    penalties.jail(layer, EXECUTORS[0].public_key, market.height)
    market.state.apply(layer.changes())
    for _ in range(3):
        job_id, _ = market.post()
        assert market.executors_of(job_id) == [EXECUTORS[1]]
        reveal_each(market, job_id, {EXECUTORS[1]: HONEST})


def test_an_executor_whose_stake_does_not_cover_the_job_is_not_drawn():
    # At an audit probability of 1 ppm and a slash of 1 ppm, covering a pay bound of ~2.6 x 10^5 takes ~2.6 x 10^17.
    rules = disputes.Params(audit_probability_ppm=1, slash_fraction_invalid_result_ppm=1)
    market = market_with(executors=1, params=rules)
    job = market.job(market.post()[0])
    assert collateral.collateral_stake(market.state, job) == -(-collateral.pay_bound(job) * 10**12 // 1) > BOND
    assert job.status == state_pb2.JOB_STATUS_QUEUED and not job.assignments
    covered = market_with(executors=1, params=replace(rules, collateral_ppm=0))  # the rule off: drawn
    assert covered.executors_of(covered.post()[0]) == [EXECUTORS[0]]


def test_a_stake_that_covers_one_job_is_not_drawn_for_a_second_one_at_once():
    # Each job it holds could be forged at once: the stake must cover the job's bound times (its load + 1).
    probe = market_with(executors=1, params=disputes.Params(collateral_ppm=0))
    bound = collateral.pay_bound(probe.job(probe.post()[0]))
    fraction = bound * 10**12 // (3 * BOND // 4)  # at an audit probability of 1 ppm: ~3/4 of the bond per job
    rules = disputes.Params(audit_probability_ppm=1, slash_fraction_invalid_result_ppm=fraction)
    for rule, drawn_twice in ((rules, False), (replace(rules, collateral_ppm=0), True)):
        market = Market.create(executors=(executor_stake(EXECUTORS[0], PRICES[0], capacity=2),),
                               judges=tuple(judge_stake(judge) for judge in JUDGES), disputes_params=rule)
        first, second = market.post()[0], market.post()[0]
        if rule.collateral_ppm:
            assert BOND // 2 < collateral.collateral_stake(market.state, market.job(first)) <= BOND
        assert market.executors_of(first) == [EXECUTORS[0]]
        assert bool(market.job(second).assignments) == drawn_twice


# --- bounded hook work ----------------------------------------------------------------------------


def test_a_height_takes_at_most_max_due_per_height_draws_and_the_hooks_declare_them():
    market = market_with()
    layer = Overlay(market.state)
    height = market.height + 5
    placed = [storage.schedule(layer, storage.DRAWS_PREFIX, height, bytes([index]) * 32)
              for index in range(disputes.MAX_DUE_PER_HEIGHT + 2)]
    assert placed == [height] * disputes.MAX_DUE_PER_HEIGHT + [height + 1] * 2
    block = BlockContext(height, 0, bytes(32))
    draw = dispute_weights.committee_draw(STAKING.max_validators, disputes.Params().committee_size)
    assert dispute_weights.hooks_weight(layer, block) >= disputes.MAX_DUE_PER_HEIGHT * draw
    # With the audits and the deadlines full too, the disputes hooks stay well inside a default block.
    for index in range(disputes.MAX_AUDITS_PER_HEIGHT):
        storage.schedule(layer, storage.AUDITS_PREFIX, height, index.to_bytes(32, "big"))
    for index in range(disputes.MAX_DUE_PER_HEIGHT):
        storage.schedule(layer, storage.DEADLINES_PREFIX, height, bytes([index]) * 32)
    assert dispute_weights.hooks_weight(layer, block) < read_block_limits(market.state).max_block_weight // 2


def test_an_audit_past_the_block_s_committee_draws_opens_and_draws_its_committee_later():
    market = market_with(executors=1, params=disputes.Params(audit_probability_ppm=1_000_000))
    job_id, _ = settled_alone(market)
    layer = Overlay(market.state)
    height = market.height + 1
    assert hooks._audit(layer, job_id, randomness.read_mix(layer), height, disputes.read_params(layer),
                        draw_now=False) is False
    dispute = storage.read_dispute(layer, job_id)
    assert dispute.reason == state_pb2.DISPUTE_REASON_AUDIT and not dispute.committee
    assert dispute.draw_height == height + disputes.Params().audit_delay_blocks
    assert job_id in storage.read_ids(layer, storage.DRAWS_PREFIX + dispute.draw_height.to_bytes(8, "big"))


# --- the tally --------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(members=st.lists(st.tuples(st.integers(1, 10**15), st.booleans(), st.lists(st.booleans(), min_size=2,
                                                                                  max_size=2)), max_size=6))
def test_the_tally_follows_the_revealed_stake_and_ties_favour_the_executor(members):
    dispute = state_pb2.Dispute(candidates=[0, 1])
    for stake, revealed, votes in members:
        dispute.committee.add(account=bytes(32), stake=stake, revealed=revealed,
                              votes=[types_pb2.CandidateVote(candidate=c, valid=v) for c, v in zip((0, 1), votes)]
                              if revealed else [])
    total = sum(stake for stake, _, _ in members)
    shown = sum(stake for stake, revealed, _ in members if revealed)
    for entry in verdict.tally(dispute):
        assert entry.valid_stake + entry.invalid_stake == shown
        if not members or 2 * shown <= total:
            assert entry.verdict == NONE
        else:
            assert entry.verdict == (INVALID if entry.invalid_stake > entry.valid_stake else VALID)


def test_a_three_way_job_with_one_missed_reveal_settles_on_its_quorum_of_two():
    market = market_with(executors=3)
    job_id, _ = market.post(redundancy=3)
    first, second, lazy = market.executors_of(job_id)
    reveal_each(market, job_id, {first: HONEST, second: HONEST, lazy: HONEST}, revealing={first, second})
    market.advance(JOBS.reveal_blocks + 1)
    job = market.job(job_id)
    assert job.status == state_pb2.JOB_STATUS_SETTLED and market.dispute(job_id) is None
    assert sum(1 for slot in job.assignments if slot.payment) == 2


def test_an_audit_that_finds_the_only_result_invalid_rejects_the_job_and_makes_the_poster_whole():
    market = market_with(executors=1, params=disputes.Params(audit_probability_ppm=1_000_000))
    poster_before = free(market.state, POSTER)
    job_id, forger = settled_alone(market, FORGED)
    market.advance(2)
    dispute = market.dispute(job_id)
    vote_all(market, job_id, {judge: judge_votes(dispute, [False], misses=[0]) for judge in JUDGES})
    job = market.job(job_id)
    assert job.status == state_pb2.JOB_STATUS_REJECTED and not job.output_digest
    assert job.assignments[0].verdict == INVALID and job.assignments[0].payment == 0
    assert ledger(market, forger).bonded == BOND - apply_ppm(BOND, 500_000) and ledger(market, forger).jailed
    assert free(market.state, POSTER) == poster_before - FEE - job.storage_deposit
    slashed = apply_ppm(BOND, 500_000)
    reward = min(apply_ppm(slashed, 500_000), slashed - job.protocol_fee)
    for judge in JUDGES:
        assert free(market.state, judge) == ENDOWMENT - BOND - 2 * FEE + reward // 3
