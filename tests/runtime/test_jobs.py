"""runtime/jobs/: post, assign, commit, reveal, settle, deadlines, queue, cancel; each error changes nothing."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from proto import state_pb2, types_pb2
from proto.digest import logprobs_digest
from runtime import jobs, reputation, system
from runtime.executive import InvalidCall, check_transaction, transaction_rules
from tests.runtime.market import (
    EXECUTORS,
    MODEL_ID,
    POSTER,
    PRICES,
    JOBS,
    Market,
    commit_and_reveal,
    commitment_of,
    executor_stake,
    output,
)

SETTLED = state_pb2.JOB_STATUS_SETTLED


def balance(market: Market, account) -> tuple[int, int]:
    info = system.read_account(market.state, account.public_key)
    return info.free, info.reserved


def test_a_job_with_redundancy_three_settles_and_each_executor_is_paid_its_own_price():
    market = Market.create()
    poster_before = balance(market, POSTER)
    job_id, receipt = market.post(redundancy=3, max_tokens=8, max_price_per_token=5_000)
    assert receipt.success
    job = market.job(job_id)
    assert job.status == state_pb2.JOB_STATUS_ASSIGNED
    assert sorted(slot.executor for slot in job.assignments) == sorted(a.public_key for a in EXECUTORS)
    # Prompt tokens are escrowed at their bound ("hello": 5 bytes + 64 for the template) and 0.65 of the price.
    params = jobs.Params()
    escrow = 3 * (5_000 * (8 * 1_000_000 + 69 * params.prompt_price_ppm) // 1_000_000) + params.min_protocol_fee
    escrow += params.queue_fee  # held in case the job had to wait; it did not, so it returns with the rest
    assert job.escrow == escrow

    commit_and_reveal(market, job_id, output(tokens=(5, 6, 7, 2)))
    job = market.job(job_id)
    assert job.status == SETTLED
    # Each is paid its 4 output tokens and the 9 prompt tokens it revealed, at its own price.
    gross = {slot.executor: slot.price_per_token * (4 * 1_000_000 + 9 * params.prompt_price_ppm) // 1_000_000
             for slot in job.assignments}
    assert sorted(gross.values()) == sorted(price * 4 + price * 9 * 65 // 100 for price in PRICES)
    fees = sum(-(-g * 10_000 // 1_000_000) for g in gross.values())
    assert job.protocol_fee == max(fees, params.min_protocol_fee)
    assert job.refunded == escrow - sum(gross.values()) - (job.protocol_fee - fees)
    # The poster paid exactly the executors' gross pay, the protocol's minimum and its own transaction
    # fees; the storage deposit stays reserved until the record is pruned.
    free, reserved = balance(market, POSTER)
    assert reserved == job.storage_deposit > 0
    assert poster_before[0] - free == (sum(gross.values()) + job.protocol_fee - fees + job.storage_deposit
                                       + market_fees(market, POSTER))

    # Payments are held until the challenge window closes, then released.
    held = {slot.executor: slot.payment for slot in job.assignments}
    for account in EXECUTORS:
        assert held[account.public_key] == gross[account.public_key] - -(-gross[account.public_key] * 10_000 // 1_000_000)
    before = {account.public_key: balance(market, account) for account in EXECUTORS}
    events = market.advance_to(job.assignments[0].release_height)
    assert sum(event.name == "PaymentReleased" for event in events) == 3
    for account in EXECUTORS:
        free, reserved = balance(market, account)
        assert free - before[account.public_key][0] == held[account.public_key]
    assert all(slot.released for slot in market.job(job_id).assignments)
    # The fee burned on each payment is credited toward its executor's reputation (a point costs reputation_price).
    rules = reputation.read_rules(market.state)
    for slot in job.assignments:
        record = reputation.read_record(market.state, slot.executor, rules)
        assert record.credit == -(-gross[slot.executor] * 10_000 // 1_000_000) and record.score == rules.initial


def market_fees(market: Market, account) -> int:
    """Transaction fees paid by the account so far (each transaction in these tests offers the same fee)."""
    from tests.runtime.market import FEE

    return FEE * system.read_account(market.state, account.public_key).nonce


def test_redundancy_one_commits_and_reveals_in_one_transaction():
    market = Market.create()
    job_id, _ = market.post(redundancy=1, max_tokens=4)
    (executor,) = market.executors_of(job_id)
    result = output(tokens=(9, 9, 9, 9), stop_reason="length")
    market.ok(executor, reveal_result=types_pb2.RevealResult(job_id=job_id, salt=os.urandom(32), **result))
    job = market.job(job_id)
    assert job.status == SETTLED
    assert job.output_digest == jobs.output_digest(job, 9, [9, 9, 9, 9], "abc", "length")


def test_a_reveal_that_does_not_match_its_commitment_is_refused():
    market = Market.create()
    job_id, _ = market.post(redundancy=2)
    first, second = market.executors_of(job_id)
    job = market.job(job_id)
    salt = os.urandom(32)
    for account in (first, second):
        market.ok(account, commit_result=types_pb2.CommitResult(job_id=job_id, commitment=commitment_of(job, account, salt, output(tokens=(5, 2)))))
    other = output(tokens=(6, 2))
    before = market.job(job_id)
    receipt = market.call(first, reveal_result=types_pb2.RevealResult(job_id=job_id, salt=salt, **other))
    assert (receipt.success, receipt.error_name) == (False, "CommitmentMismatch")
    assert market.job(job_id) == before


@pytest.mark.parametrize(
    "result, words",
    [
        (output(tokens=(5, 6, 7)), "eos needs the last token"),
        (output(tokens=(5, 2, 7, 2)), "goes on after it"),
        (output(tokens=(5, 6), stop_reason="length"), "length needs 8 tokens"),
        (output(tokens=tuple(range(10, 19)) + (2,)), "above the job's max_tokens"),
    ],
)
def test_a_reveal_that_breaks_the_token_count_or_stop_rule_is_refused(result, words):
    market = Market.create()
    job_id, _ = market.post(redundancy=1, max_tokens=8)
    (executor,) = market.executors_of(job_id)
    receipt = market.call(executor, reveal_result=types_pb2.RevealResult(job_id=job_id, salt=os.urandom(32), **result))
    assert receipt.error_name == "InvalidReveal" and words in receipt.error_message
    assert market.job(job_id).status == state_pb2.JOB_STATUS_ASSIGNED


def test_an_account_that_is_not_assigned_cannot_commit_or_reveal():
    market = Market.create()
    job_id, _ = market.post(redundancy=1)
    outsider = next(a for a in (POSTER, *EXECUTORS) if a not in market.executors_of(job_id))
    receipt = market.call(outsider, commit_result=types_pb2.CommitResult(job_id=job_id, commitment=bytes(32)))
    assert receipt.error_name == "NotAssigned"
    receipt = market.call(outsider, reveal_result=types_pb2.RevealResult(job_id=job_id, salt=bytes(32), **output()))
    assert receipt.error_name == "NotAssigned"


def test_reveals_wait_until_every_commitment_is_in():
    market = Market.create()
    job_id, _ = market.post(redundancy=2)
    first, _second = market.executors_of(job_id)
    receipt = market.call(first, reveal_result=types_pb2.RevealResult(job_id=job_id, salt=bytes(32), **output()))
    assert receipt.error_name == "WrongPhase"


def test_a_missed_commit_costs_reputation_and_the_job_is_reassigned():
    market = Market.create()
    job_id, _ = market.post(redundancy=1, max_tokens=8)
    (lazy,) = market.executors_of(job_id)
    deadline = market.job(job_id).assignments[0].deadline_height
    events = market.advance_to(deadline)
    names = [event.name for event in events]
    assert "DeadlineMissed" in names and "JobAssigned" in names
    job = market.job(job_id)
    assert [slot.status for slot in job.assignments] == [state_pb2.ASSIGNMENT_STATUS_MISSED, state_pb2.ASSIGNMENT_STATUS_ASSIGNED]
    assert job.assignments[1].executor != lazy.public_key
    assert reputation.read_reputation(market.state, lazy.public_key) == max(1, JOBS.reputation_initial - JOBS.reputation_loss)
    assert jobs.read_load(market.state, lazy.public_key) == 0
    # A commit after the deadline is refused.
    receipt = market.call(lazy, commit_result=types_pb2.CommitResult(job_id=job_id, commitment=bytes(32)))
    assert receipt.error_name == "NotAssigned"


def test_a_job_whose_executors_all_miss_is_refunded_at_its_timeout():
    market = Market.create(executors=(executor_stake(EXECUTORS[0], 1_000),))
    free_before, _ = balance(market, POSTER)
    job_id, _ = market.post(redundancy=1)
    market.advance_to(market.job(job_id).timeout_height)
    job = market.job(job_id)
    assert job.status == state_pb2.JOB_STATUS_EXPIRED
    assert job.escrow == 0 and job.refunded == jobs.escrow_of(job.request, JOBS) + JOBS.queue_fee
    free, reserved = balance(market, POSTER)
    # Only the storage deposit stays reserved, until the record is pruned.
    assert reserved == job.storage_deposit and free == free_before - job.storage_deposit - market_fees(market, POSTER)
    assert jobs.read_load(market.state, EXECUTORS[0].public_key) == 0


def test_a_job_waits_in_the_queue_while_executors_are_busy_and_is_assigned_when_one_frees():
    market = Market.create(executors=(executor_stake(EXECUTORS[0], 1_000, capacity=1),))
    first, _ = market.post(redundancy=1, max_tokens=4)
    second, receipt = market.post_only(redundancy=1, max_tokens=4)
    assert [event.name for event in receipt.events] == ["JobPosted"]
    # Its executors are drawn assignment_delay_blocks later; the only one is busy, so it is queued then.
    drawn = market.advance_to(market.job(second).draw_height)
    assert "JobQueued" in [event.name for event in drawn]
    assert market.job(second).status == state_pb2.JOB_STATUS_QUEUED
    executor = EXECUTORS[0]
    market.ok(executor, reveal_result=types_pb2.RevealResult(job_id=first, salt=bytes(32), **output(tokens=(1, 1, 1, 1), stop_reason="length")))
    market.advance(1)
    assert market.job(second).status == state_pb2.JOB_STATUS_ASSIGNED
    assert market.executors_of(second) == [executor]


def test_cancel_only_before_assignment_and_only_by_the_poster():
    market = Market.create(executors=(executor_stake(EXECUTORS[0], 1_000, capacity=1),))
    assigned, _ = market.post()
    queued, _ = market.post_only()  # cancelled before (or after) its draw, while it waits
    assert market.call(POSTER, cancel_job=types_pb2.CancelJob(job_id=assigned)).error_name == "NotCancellable"
    assert market.call(EXECUTORS[1], cancel_job=types_pb2.CancelJob(job_id=queued)).error_name == "NotPoster"
    market.ok(POSTER, cancel_job=types_pb2.CancelJob(job_id=queued))
    job = market.job(queued)
    assert job.status == state_pb2.JOB_STATUS_CANCELLED
    assert job.refunded + job.queue_fee == jobs.escrow_of(job.request, JOBS) + JOBS.queue_fee
    assert queued not in jobs.read_ids(market.state, jobs.QUEUE_PREFIX + MODEL_ID)


def test_differing_results_are_held_unpaid_for_a_verdict_and_without_a_committee_the_job_is_rejected_and_refunded():
    market = Market.create()
    job_id, _ = market.post(redundancy=2)
    first, second = market.executors_of(job_id)
    job = market.job(job_id)
    results = {first.public_key: output(tokens=(5, 2)), second.public_key: output(tokens=(6, 2))}
    salts = {}
    for account in (first, second):
        result = results[account.public_key]
        salts[account.public_key] = salt = os.urandom(32)
        market.ok(account, commit_result=types_pb2.CommitResult(job_id=job_id, commitment=commitment_of(job, account, salt, result)))
    for account in (first, second):
        market.ok(account, reveal_result=types_pb2.RevealResult(job_id=job_id, salt=salts[account.public_key], **results[account.public_key]))
    job = market.job(job_id)
    assert job.status == state_pb2.JOB_STATUS_DISPUTED and job.escrow == jobs.escrow_of(job.request, JOBS) + JOBS.queue_fee
    assert all(slot.payment == 0 for slot in job.assignments)
    # No validator serves the model here, so the committee drawn two blocks later is empty: every verdict is NONE
    # (tests/runtime/test_disputes.py has the committee's votes).
    market.advance(2)
    job = market.job(job_id)
    assert job.status == state_pb2.JOB_STATUS_REJECTED and job.escrow == 0
    assert job.refunded == jobs.escrow_of(job.request, JOBS) + JOBS.queue_fee


@pytest.mark.parametrize(
    "fields, error, words",
    [
        ({"model": bytes(32)}, "UnknownModel", "not registered"),
        ({"prompt": "x" * 20_000}, "JobTooLarge", "the prompt is 20000 bytes"),
        ({"max_tokens": 1_000}, "JobTooLarge", "the model's context 512"),
        ({"prompt": "x" * 400, "max_tokens": 100}, "JobTooLarge", "is 564, above the model's context 512"),
        ({"redundancy": 4}, "NoExecutors", "above the 3 executors"),
        ({"max_price_per_token": 999}, "NoExecutors", "the lowest prices are 1000"),
        ({"redundancy": 6}, "JobTooLarge", "above the limit 5"),
        ({"max_price_per_token": 10**17}, "InsufficientBalance", "exceeds the free balance"),
        ({"max_price_per_token": 10**18}, "JobTooLarge", "does not fit in 64 bits"),
    ],
)
def test_a_job_that_cannot_run_is_refused_with_a_clear_error_and_changes_nothing(fields, error, words):
    market = Market.create()
    before = dict(market.state.items)
    _, receipt = market.post(**fields)
    assert (receipt.success, receipt.error_name) == (False, error)
    assert words in receipt.error_message
    changed = {key for key in set(before) | set(market.state.items) if before.get(key) != market.state.items.get(key)}
    # Only the fee, nonce, block author's fee, clock and the block's own bookkeeping moved.
    assert all(key.startswith((system.ACCOUNT_PREFIX, system.CHAIN_KEY, system.SUPPLY_KEY)) for key in changed)


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"prompt": ""}, "the prompt is empty"),
        ({"prompt_format": "json"}, "prompt_format must be one of"),
        ({"max_tokens": 0}, "max_tokens must be at least 1"),
        ({"redundancy": 0}, "redundancy must be at least 1"),
        ({"sampling": types_pb2.Sampling(top_p_ppm=0)}, "top_p_ppm"),
        ({"sampling": types_pb2.Sampling(temperature_milli=100_001, top_p_ppm=1)}, "temperature_milli"),
        ({"model": b"short"}, "a model id is 32 bytes"),
        ({"region": "EU West"}, "a region is"),
    ],
)
def test_a_malformed_job_is_refused_before_it_costs_a_fee(fields, words):
    market = Market.create()
    request = dict(model=MODEL_ID, prompt="hi", prompt_format="chat", max_tokens=8,
                   sampling=types_pb2.Sampling(top_p_ppm=1_000_000), max_price_per_token=5_000, redundancy=1)
    request.update(fields)
    raw = market.transaction(POSTER, post_job=types_pb2.PostJob(**request))
    with pytest.raises(InvalidCall, match=words):
        check_transaction(raw, transaction_rules(market.state))


def test_the_preferred_region_is_chosen_when_it_has_enough_executors():
    stakes = (executor_stake(EXECUTORS[0], 1_000, region="eu"), executor_stake(EXECUTORS[1], 1_000, region="us"))
    # One executor is "enough" here (region_min_candidates = 1); tests/runtime/test_assignment_draw.py
    # shows that by default a region one executor owns is ignored.
    enough = replace(JOBS, region_min_candidates=1)
    for _ in range(5):
        market = Market.create(executors=stakes, jobs_params=enough)
        job_id, _ = market.post(region="us")
        assert market.executors_of(job_id) == [EXECUTORS[1]]
    market = Market.create(executors=stakes, jobs_params=enough)
    job_id, _ = market.post(region="asia")  # nobody there: any region will do
    assert len(market.executors_of(job_id)) == 1


def test_assignment_is_the_same_on_every_node_and_spreads_over_executors():
    chosen = []
    for _ in range(2):
        market = Market.create(executors=tuple(executor_stake(a, 1_000, capacity=64) for a in EXECUTORS))
        chosen.append([market.executors_of(market.post()[0])[0].public_key for _ in range(30)])
    assert chosen[0] == chosen[1]
    assert len(set(chosen[0])) == 3


def test_the_output_digest_is_the_inference_packages_digest():
    from inference.result import InferenceJob, InferenceResult
    from inference.sampler import SamplingParams

    market = Market.create()
    job_id, _ = market.post(prompt="Say hi ☃", prompt_format="raw", sampling=types_pb2.Sampling(temperature_milli=700, top_k=40, top_p_ppm=950_000, seed=2**63 + 5))
    job = market.job(job_id)
    request = job.request
    result = InferenceResult(
        job=InferenceJob(model=MODEL_ID.hex(), job_id=job_id, prompt=request.prompt, max_tokens=request.max_tokens,
                         sampling=SamplingParams(700, 40, 950_000, 2**63 + 5), prompt_format="raw"),
        prompt_tokens=12, tokens=(5, 6, 2), text="h☃i", logprobs_micronats=(-1, -2, -3), stop_reason="eos",
    )
    assert jobs.output_digest(job, 12, [5, 6, 2], "h☃i", "eos") == result.output_digest()


def test_the_recipes_match_the_vectors_in_the_protocol_doc():
    genesis, alice = bytes.fromhex("11" * 32), bytes.fromhex("801787cfa29833898a4b542744872e579bcb56cb5009f99c4e273d7cb0b42d27")
    job_id = jobs.job_id(genesis, alice, 7)
    assert job_id.hex() == "b4b6f867831247c7da9edd9eca675d775872f7edd714326fd3523be00657210f"
    assert jobs.commitment(job_id, alice, bytes(range(32)), bytes.fromhex("22" * 32), bytes.fromhex("33" * 32)).hex() == (
        "9220a5924da5a9a31e5a8a9dce0f190f874c6fe8b3871fe23f93b3a59288aa21"
    )
    assert logprobs_digest([-476035, -380637, -86725, -48266]).hex() == (
        "56395c19ec379c1256e02e2ab574ba5aadc4ff25d39ee8ae243bd42e9e2fdbe0"
    )
    assert jobs.assignment_seed(job_id, bytes.fromhex("44" * 32), 5, 0).hex() == (
        "100e2f3209d52407f7cd5056496db9faf31422f230585b4fbc68c2a6319a24f4"
    )
    from tests.nodes import ROOT

    doc = (ROOT / "docs" / "protocol.md").read_text()
    for vector in ("b4b6f867831247c7da9edd9eca675d775872f7edd714326fd3523be00657210f",
                   "9220a5924da5a9a31e5a8a9dce0f190f874c6fe8b3871fe23f93b3a59288aa21",
                   "56395c19ec379c1256e02e2ab574ba5aadc4ff25d39ee8ae243bd42e9e2fdbe0",
                   "100e2f3209d52407f7cd5056496db9faf31422f230585b4fbc68c2a6319a24f4"):
        assert vector in doc
