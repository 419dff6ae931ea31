"""Challenge-response probes (runtime/jobs/probes.py): the probe fund, probes posted at each epoch's first block
to executors drawn by stake, always audited, paid from the fund; ignored or forged probes punished.

Every test runs the real runtime on an in-memory chain (tests/runtime/market.py), whose every block checks
the supply and reserved-balance invariants. Audits of real jobs are off, so every dispute seen is a probe's.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import pytest

from proto import state_pb2, types_pb2
from runtime import randomness, reputation, staking, system
from runtime.arithmetic import apply_ppm
from runtime.block import read_block_limits
from runtime.disputes import params as disputes
from runtime.executive import InvalidTransaction, check_transaction, transaction_rules
from runtime.jobs import weights as job_weights
from runtime.jobs.pricing import charge, escrow_of, protocol_fee
from runtime.jobs.probes import Candidate, pick, probe_request
from runtime.staking import epoch_starts
from runtime.jobs.recipes import PROBE_FUND, job_id, probe_hash, probe_nonce
from runtime.jobs.storage import MAX_PROBE_MODELS, read_recent_models
from runtime.primitives import BlockContext
from runtime.slashing import penalties
from runtime.state import Overlay
from tests.runtime.helpers import CHAIN_ID, GENESIS_HASH, free, sign
from tests.runtime.market import (
    BOND,
    EXECUTORS,
    FEE,
    FORGED,
    HONEST,
    JOBS,
    JUDGES,
    OUTSIDER,
    Market,
    STAKING,
    executor_stake,
    committee_of,
    judge_votes,
    ledger,
    market_with,
    output,
    reveal_each,
    vote_all,
)

# Probes on (the defaults), audits of real jobs off.
PROBES = disputes.Params(audit_probability_ppm=0)
EPOCH = STAKING.epoch_blocks
FIRST_OF_EPOCH_1 = EPOCH + 1
PROMPT = "Name three rivers of Europe, one per line."
# Enough for every probe of an epoch (each escrows its charge at the limits plus min_protocol_fee).
FUNDING = 10**9
BY_KEY = {account.public_key: account for account in (*EXECUTORS, *JUDGES)}


def _market(params: disputes.Params = PROBES, **create):
    return market_with(executors=3, params=params, **create)


def _fund(market, amount: int = FUNDING) -> None:
    """Anyone may pay into the probe fund (a transfer to its account); nobody can pay out of it."""
    market.ok(OUTSIDER, transfer=types_pb2.Transfer(dest=PROBE_FUND, amount=amount))


def _real_job(market, **fields) -> bytes:
    """A real job of redundancy 1, revealed honestly and settled."""
    job_id_, receipt = market.post(prompt=PROMPT, **fields)
    assert receipt.success, receipt.error_message
    (executor,) = market.executors_of(job_id_)
    reveal_each(market, job_id_, {executor: HONEST})
    assert market.job(job_id_).status == state_pb2.JOB_STATUS_SETTLED
    return job_id_


def _probes_at(market, height: int = FIRST_OF_EPOCH_1) -> tuple[list, list]:
    """Advance to `height`: the ProbePosted and ProbeSkipped events of the block at it (and none before it)."""
    before = market.advance_to(height - 1)
    assert not [event for event in before if event.name in ("ProbePosted", "ProbeSkipped")]
    events = market.advance(1)
    return ([event for event in events if event.name == "ProbePosted"],
            [event for event in events if event.name == "ProbeSkipped"])


def _attribute(event, key: str) -> str:
    return next(attribute.value for attribute in event.attributes if attribute.key == key)


def _probe_jobs(market, posted) -> list[state_pb2.Job]:
    return [market.job(bytes.fromhex(_attribute(event, "job"))) for event in posted]


def _fund_total(market) -> int:
    account = system.read_account(market.state, PROBE_FUND)
    return 0 if account is None else account.free + account.reserved


def _one_probe(market) -> state_pb2.Job:
    """A world with one real job last epoch and a funded fund, at the first block of epoch 1: its first probe."""
    _real_job(market, max_tokens=100)
    _fund(market)
    posted, skipped = _probes_at(market)
    assert posted and not skipped
    return _probe_jobs(market, posted)[0]


# --- the fund ---------------------------------------------------------------------------------


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fund_ppm=st.integers(0, 1_000_000), price=st.sampled_from([1, 999, 10**6, 10**9]), tokens=st.integers(1, 8))
def test_the_fund_receives_its_share_of_each_protocol_fee_the_rest_is_burned_and_only_that_buys_reputation(
        fund_ppm, price, tokens):
    market = Market.create(executors=(executor_stake(EXECUTORS[0], price),),
                           disputes_params=replace(PROBES, probe_fund_ppm=fund_ppm),
                           jobs_params=replace(JOBS, min_job_escrow=1))
    burned_before = system.read_supply(market.state).burned
    job_id_, receipt = market.post(max_tokens=tokens, max_price_per_token=price)
    assert receipt.success, receipt.error_message
    (executor,) = market.executors_of(job_id_)
    result = output(tokens=(9,) * tokens, stop_reason="length", prompt_tokens=20)
    reveal_each(market, job_id_, {executor: result})
    job = market.job(job_id_)
    assert job.status == state_pb2.JOB_STATUS_SETTLED
    gross = charge(price, 20, tokens, JOBS.prompt_price_ppm)
    fee = protocol_fee(gross, JOBS.protocol_fee_ppm)
    top_up = max(0, JOBS.min_protocol_fee - fee)
    assert job.protocol_fee == fee + top_up
    # Each fee (the payment's and the minimum's top-up) pays its share to the fund's free balance, the rest burns.
    share = apply_ppm(fee, fund_ppm) + apply_ppm(top_up, fund_ppm)
    fund = system.read_account(market.state, PROBE_FUND)
    assert (0 if fund is None else fund.free) == share and (fund is None or fund.reserved == 0)
    assert system.read_supply(market.state).burned - burned_before == job.protocol_fee - share
    # The executor's reputation credit is the fee burned on its payment: the fund's share buys nothing.
    rules = reputation.read_rules(market.state)
    record = reputation.read_record(market.state, executor.public_key, rules)
    assert record.credit + record.gained * rules.price == fee - apply_ppm(fee, fund_ppm)


def test_the_probe_recipes_reproduce_the_pinned_vectors():
    """docs/protocol.md, "Probes", pins these: an independent client computes the same fund, draw and job id."""
    assert PROBE_FUND.hex() == "d115e223060c8c90e36a8732c9e393c0c232cb8c38122551cf9d41fd8e5d1695"
    assert probe_hash(bytes(32), 0).hex() == "f1a2993c54616377bf41844d15fdc4ac68572de54b775e4564fcd556fdc80d80"
    assert probe_hash(bytes(range(32)), 1).hex() == "d34cbf6a048cabf5b2d46c6647e6859a7a87d2770ef4c35486b018968af2dff0"
    assert probe_nonce(101, 0) == 25_856
    assert job_id(bytes(32), PROBE_FUND, 25_856).hex() == (
        "17e80b7b8cbc99ec789f4e0a7be6de155025365c27df798ca7224130bfcdc6ed")


def test_nobody_can_spend_from_the_fund_a_transaction_in_its_name_fails_the_signature_check():
    market = _market()
    _fund(market, 10**8)
    # Its id is a domain hash, not a public key derived from a secret: a transaction naming it as sender carries
    # some other key's signature, and is refused before it runs.
    body = types_pb2.TransactionBody(chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH, sender=PROBE_FUND, nonce=0, fee=FEE,
                                     transfer=types_pb2.Transfer(dest=OUTSIDER.public_key, amount=10**8))
    with pytest.raises(InvalidTransaction):
        check_transaction(sign(body, OUTSIDER), transaction_rules(market.state))
    assert free(market.state, PROBE_FUND) == 10**8


# --- posting probes ----------------------------------------------------------------------------


def _expected_draw(market) -> list[bytes]:
    """The rule of docs/protocol.md "Probes", computed here independently: each probe's executor."""
    mix = randomness.read_mix(market.state)
    pool = sorted((account.public_key, staking.bonded(market.state, account.public_key))
                  for account in (*EXECUTORS, *JUDGES))
    drawn = []
    for index in range(PROBES.probes_per_epoch):
        digest = probe_hash(mix, index)
        point = int.from_bytes(digest[:16], "big") % sum(stake for _, stake in pool)
        running = 0
        for position, (account, stake) in enumerate(pool):
            running += stake
            if running > point:
                break
        drawn.append(pool.pop(position)[0])
    return drawn


def test_probes_are_posted_at_the_epoch_s_first_block_to_stake_drawn_executors_with_a_copied_request():
    market = _market()
    real = market.job(_real_job(market, max_tokens=100, max_price_per_token=5_000))
    _fund(market)
    assert read_recent_models(market.state, 0) == [real.request.model]
    fund_before = free(market.state, PROBE_FUND)
    market.advance_to(FIRST_OF_EPOCH_1 - 1)
    expected = _expected_draw(market)
    posted, skipped = _probes_at(market)
    assert not skipped and len(posted) == PROBES.probes_per_epoch
    probes = _probe_jobs(market, posted)
    mix = randomness.read_mix(market.state)
    assert [job.assignments[0].executor for job in probes] == expected  # distinct: nobody is probed twice
    params = JOBS
    for index, job in enumerate(probes):
        offer = staking.read_offer(market.state, job.assignments[0].executor)
        price = min(offer.price_per_token, real.request.max_price_per_token)
        assert job.probe and job.poster == PROBE_FUND and job.status == state_pb2.JOB_STATUS_ASSIGNED
        assert job.id == job_id(GENESIS_HASH, PROBE_FUND, probe_nonce(FIRST_OF_EPOCH_1, index))
        assert job.request.prompt == PROMPT and job.request.prompt_format == real.request.prompt_format
        assert job.request.sampling.top_k == real.request.sampling.top_k
        assert job.request.max_tokens == PROBES.probe_max_tokens == 64 < real.request.max_tokens
        assert job.request.redundancy == 1 and job.request.max_price_per_token == price
        assert job.request.sampling.seed == int.from_bytes(probe_hash(mix, index)[24:32], "big")
        slot = job.assignments[0]
        assert slot.price_per_token == price and slot.status == state_pb2.ASSIGNMENT_STATUS_ASSIGNED
        assert slot.deadline_height == FIRST_OF_EPOCH_1 + params.commit_window(64)
        assert job.escrow == escrow_of(job.request, params) and job.storage_deposit == 0
    assert free(market.state, PROBE_FUND) == fund_before - sum(job.escrow for job in probes)
    # The epoch's recent requests were read once and deleted.
    assert read_recent_models(market.state, 0) == []


def test_no_probe_is_posted_when_no_job_was_posted_in_the_previous_epoch():
    market = _market()
    _fund(market)
    posted, skipped = _probes_at(market)
    assert posted == skipped == []
    # A job of epoch 0 is no request for epoch 2's probes: only the previous epoch's newest counts.
    market = _market()
    _real_job(market)
    _fund(market)
    market.advance_to(2 * EPOCH)
    posted, skipped = _probes_at(market, 2 * EPOCH + 1)
    assert posted == skipped == []


def test_no_probe_is_posted_when_the_fund_cannot_pay_it_and_each_skip_says_why():
    market = _market(replace(PROBES, probe_fund_ppm=0))
    _real_job(market)
    assert system.read_account(market.state, PROBE_FUND) is None
    posted, skipped = _probes_at(market)
    assert posted == [] and len(skipped) == PROBES.probes_per_epoch
    assert all("the probe fund holds 0" in _attribute(event, "reason") for event in skipped)
    assert system.read_account(market.state, PROBE_FUND) is None


def test_a_probe_drawn_to_a_full_executor_is_skipped_and_no_one_else_takes_its_place():
    market = _market(replace(PROBES, probes_per_epoch=6))
    _real_job(market)
    _fund(market)
    # Every one of the six executors is drawn once; the one holding a real job at the boundary is full.
    busy, _ = market.post_only(prompt=PROMPT)
    market.advance_to(market.job(busy).draw_height)
    (full,) = market.executors_of(busy)
    posted, skipped = _probes_at(market)
    assert len(posted) == 5 and len(skipped) == 1
    assert _attribute(skipped[0], "executor") == full.public_key.hex()
    assert "capacity" in _attribute(skipped[0], "reason")


@settings(max_examples=50, deadline=None)
@given(stakes=st.lists(st.integers(1, 10**15), min_size=1, max_size=12), digest=st.binary(min_size=32, max_size=32))
def test_the_draw_picks_the_candidate_whose_stake_interval_holds_the_point(stakes, digest):
    pool = [Candidate(bytes([index]) * 32, stake, state_pb2.Offer(), (b"m",)) for index, stake in enumerate(stakes)]
    position = pick(pool, digest)
    point = int.from_bytes(digest[:16], "big") % sum(stakes)
    assert sum(stakes[:position]) <= point < sum(stakes[:position + 1])


@settings(max_examples=50, deadline=None)
@given(max_tokens=st.integers(1, 4096), template_price=st.integers(1, 10**12), offer_price=st.integers(1, 10**12),
       redundancy=st.integers(1, 5), probe_max_tokens=st.integers(1, 4096), digest=st.binary(min_size=32, max_size=32))
def test_a_probe_request_is_the_recent_one_shortened_at_redundancy_one_within_both_prices_with_a_new_seed(
        max_tokens, template_price, offer_price, redundancy, probe_max_tokens, digest):
    template = types_pb2.PostJob(model=bytes(32), prompt="p", prompt_format="chat", max_tokens=max_tokens,
                                 sampling=types_pb2.Sampling(top_k=40, top_p_ppm=950_000, seed=7),
                                 max_price_per_token=template_price, redundancy=redundancy, region="eu")
    request = probe_request(template, state_pb2.Offer(price_per_token=offer_price), digest,
                            replace(PROBES, probe_max_tokens=probe_max_tokens))
    assert request.max_tokens == min(max_tokens, probe_max_tokens) and request.redundancy == 1
    assert request.max_price_per_token == min(offer_price, template_price)
    assert request.sampling.seed == int.from_bytes(digest[24:32], "big")
    assert (request.prompt, request.sampling.top_k, request.region) == ("p", 40, "eu")


# --- a probe's life ------------------------------------------------------------------------------


def test_an_honest_probe_settles_is_audited_by_a_committee_and_pays_its_executor_from_the_fund():
    market = _market()
    probe = _one_probe(market)
    executor = BY_KEY[probe.assignments[0].executor]
    fund_before, executor_free = _fund_total(market), free(market.state, executor)
    score_before = reputation.read_reputation(market.state, executor.public_key)
    market.ok(executor, reveal_result=types_pb2.RevealResult(job_id=probe.id, salt=bytes(32), **HONEST))
    settled = market.job(probe.id)
    assert settled.status == state_pb2.JOB_STATUS_SETTLED
    # Audited although audit_probability_ppm is 0: a probe's audit draw is 10^6 parts per million.
    market.advance_to(settled.final_height + PROBES.audit_delay_blocks)
    dispute = market.dispute(probe.id)
    assert dispute.reason == state_pb2.DISPUTE_REASON_AUDIT and dispute.committee
    members = committee_of(market, probe.id)
    assert executor not in members
    vote_all(market, probe.id, {member: judge_votes(dispute, [True]) for member in members})
    job = market.job(probe.id)
    slot = job.assignments[0]
    assert market.dispute(probe.id).status == state_pb2.DISPUTE_STATUS_DECIDED
    assert job.status == state_pb2.JOB_STATUS_SETTLED and slot.verdict == state_pb2.CANDIDATE_VERDICT_VALID
    assert slot.released and slot.payment > 0
    # Paid from the fund: the executor's pay, and the fee's burned part, left it (its share came back to it).
    gross = charge(slot.price_per_token, HONEST["prompt_tokens"], len(HONEST["tokens"]), job.prompt_price_ppm)
    assert slot.payment == gross - protocol_fee(gross, JOBS.protocol_fee_ppm)
    assert free(market.state, executor) == executor_free + slot.payment - FEE  # its one reveal's transaction fee
    assert fund_before - _fund_total(market) == slot.payment + job.protocol_fee - _fund_shares(job, gross)
    # A probe buys no reputation: its fee is the fund's money.
    assert reputation.read_reputation(market.state, executor.public_key) == score_before
    assert ledger(market, executor).bonded == BOND and not ledger(market, executor).jailed


def _fund_shares(job: state_pb2.Job, gross: int) -> int:
    """What of a settled job's protocol fees went back to the fund: its share of the payment's fee and of the
    minimum fee's top-up."""
    fee = protocol_fee(gross, JOBS.protocol_fee_ppm)
    return apply_ppm(fee, PROBES.probe_fund_ppm) + apply_ppm(job.protocol_fee - fee, PROBES.probe_fund_ppm)


def _next_boundary(height: int) -> int:
    """The first block of the epoch after the one holding `height`."""
    return ((height - 1) // EPOCH + 1) * EPOCH + 1


def test_an_ignored_probe_slashes_missed_result_lowers_reputation_and_returns_its_escrow_to_the_fund():
    market = _market()
    probe = _one_probe(market)
    executor = BY_KEY[probe.assignments[0].executor]
    score_before = reputation.read_reputation(market.state, executor.public_key)
    fund_before = _fund_total(market)
    events = market.advance_to(probe.assignments[0].deadline_height + 1)
    assert any(event.name == "DeadlineMissed" for event in events)
    job = market.job(probe.id)
    assert job.status == state_pb2.JOB_STATUS_EXPIRED and "probe is not reassigned" in job.reason
    assert len(job.assignments) == 1 and job.escrow == 0
    assert ledger(market, executor).bonded == BOND - apply_ppm(BOND, PROBES.slash_fraction_missed_result_ppm)
    rules = reputation.read_rules(market.state)
    assert reputation.read_reputation(market.state, executor.public_key) == max(1, score_before - rules.loss)
    assert _fund_total(market) == fund_before and free(market.state, PROBE_FUND) == fund_before


def test_a_forged_probe_is_slashed_and_jailed_and_its_pay_returns_to_the_fund():
    market = _market()
    probe = _one_probe(market)
    executor = BY_KEY[probe.assignments[0].executor]
    fund_before = _fund_total(market)
    market.ok(executor, reveal_result=types_pb2.RevealResult(job_id=probe.id, salt=bytes(32), **FORGED))
    slot = market.job(probe.id).assignments[0]
    gross = charge(slot.price_per_token, FORGED["prompt_tokens"], len(FORGED["tokens"]), probe.prompt_price_ppm)
    market.advance_to(market.job(probe.id).final_height + PROBES.audit_delay_blocks)
    dispute = market.dispute(probe.id)
    assert dispute.reason == state_pb2.DISPUTE_REASON_AUDIT
    members = committee_of(market, probe.id)
    vote_all(market, probe.id, {member: judge_votes(dispute, [False]) for member in members})
    job = market.job(probe.id)
    assert job.status == state_pb2.JOB_STATUS_REJECTED
    assert job.assignments[0].verdict == state_pb2.CANDIDATE_VERDICT_INVALID and job.assignments[0].payment == 0
    assert ledger(market, executor).bonded == BOND - apply_ppm(BOND, PROBES.slash_fraction_invalid_result_ppm)
    assert ledger(market, executor).jailed and penalties.jailed(market.state, executor.public_key, market.height)
    # The fund is whole again, and a little more: the revoked pay back, and every protocol fee on the probe made
    # good from the slash (the shares of it the fund had kept are its gain).
    assert _fund_total(market) == fund_before + _fund_shares(job, gross)
    # A jailed executor is drawn for no probe of the next epoch.
    real = market.job(_real_job(market))
    market.advance_to(_next_boundary(real.posted_height) - 1)
    posted, _ = _probes_at(market, _next_boundary(real.posted_height))
    assert posted
    assert executor.public_key not in {job.assignments[0].executor for job in _probe_jobs(market, posted)}


# --- parameters and weight ------------------------------------------------------------------------


def test_params_refuse_more_probes_than_the_weight_is_declared_for_and_a_fund_share_above_the_whole():
    with pytest.raises(ValueError, match="probes_per_epoch is 65, above 64"):
        replace(PROBES, probes_per_epoch=65).validate()
    with pytest.raises(ValueError, match="probe_fund_ppm must be at most"):
        replace(PROBES, probe_fund_ppm=1_000_001).validate()
    with pytest.raises(ValueError, match="probe_max_tokens must be at least 1"):
        replace(PROBES, probe_max_tokens=0).validate()
    replace(PROBES, probes_per_epoch=0, probe_fund_ppm=0).validate()
    assert (disputes.Params().probe_fund_ppm, disputes.Params().probes_per_epoch,
            disputes.Params().probe_max_tokens) == (100_000, 4, 64)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(count=st.integers(0, disputes.MAX_PROBES_PER_EPOCH))
def test_the_jobs_hook_declares_the_epoch_s_probes(count):
    market = _market(replace(PROBES, probes_per_epoch=count))
    _real_job(market)
    market.advance_to(FIRST_OF_EPOCH_1 - 1)
    executors = len(staking.serving(market.state, read_recent_models(market.state, 0)[0]))
    probes = job_weights.probes_weight(market.state, FIRST_OF_EPOCH_1)
    assert probes == job_weights.probes(executors, 1, count) >= count * job_weights.PROBE
    block = BlockContext(FIRST_OF_EPOCH_1, 0, b"\0" * 32)
    assert job_weights.hooks_weight(Overlay(market.state), block) >= probes
    assert job_weights.probes_weight(market.state, FIRST_OF_EPOCH_1 + 1) == 0
    # The block posts what was declared: `count` probes (each of the six executors at most once).
    posted, skipped = _probes_at(market)
    assert len(posted) + len(skipped) == min(count, executors)


def test_at_the_ceilings_the_probes_fit_well_inside_a_block():
    assert job_weights.PROBES_CEILING < read_block_limits(_market().state).max_block_weight // 2
    assert MAX_PROBE_MODELS == 16 and epoch_starts(EPOCH + 1, EPOCH) and not epoch_starts(EPOCH, EPOCH)
