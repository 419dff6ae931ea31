"""runtime/jobs/queue.py: per-model queues, the poster's cap, the queue fee, fair retries, and the capped schedule."""

from __future__ import annotations

from dataclasses import replace

import pytest

from proto import state_pb2, types_pb2
from runtime import jobs, system
from runtime.executive import CallWouldFail, InvalidCall, check_transaction, transaction_rules, validate_transaction
from runtime.jobs import queue
from runtime.staking.genesis import GenesisStake
from runtime.state import Overlay
from tests.runtime.helpers import ACCOUNTS, GENESIS_HASH, genesis_state, sign
from tests.runtime.market import (
    CHAIN_ID,
    EXECUTORS,
    FEE,
    JOBS,
    MODEL,
    MODEL_ID,
    POSTER,
    STAKING,
    Market,
    commit_and_reveal,
    executor_stake,
    output,
)

OTHER_MODEL = types_pb2.ModelInfo()
OTHER_MODEL.CopyFrom(MODEL)
OTHER_MODEL.id = bytes(range(1, 33))
OTHER_MODEL.name = "other-model"
QUEUE_FEE = 10**7
# A job that keeps its executor busy for the whole test: a commit window of 3 + 400 / 8 blocks.
LONG = 400


def market_with(jobs_params: jobs.Params, stakes=None, models=(MODEL,)) -> Market:
    """A market on the test chain with these rules (queue fee 10^7 unless given), executors and models."""
    stakes = stakes if stakes is not None else (executor_stake(EXECUTORS[0], 1_000, capacity=1),)
    state = genesis_state(endowed=6, registered=models, stakes=stakes, jobs_params=jobs_params, staking_params=STAKING)
    return Market(state)


def rules(**changes) -> jobs.Params:
    return replace(JOBS, queue_fee=QUEUE_FEE, **changes)


def post_request(**fields) -> types_pb2.PostJob:
    request = dict(
        model=MODEL_ID, prompt="hello", prompt_format="chat", max_tokens=8,
        sampling=types_pb2.Sampling(top_k=40, top_p_ppm=950_000), max_price_per_token=5_000, redundancy=1,
    )
    request.update(fields)
    return types_pb2.PostJob(**request)


def post_many(market: Market, posts: list[tuple]) -> tuple[list[bytes], types_pb2.BlockReceipts]:
    """Apply many PostJobs (poster, fields) in one block; their job ids and the block's receipts."""
    nonces, raws, ids = {}, [], []
    for poster, fields in posts:
        nonce = nonces.get(poster.public_key, system.read_account(market.state, poster.public_key).nonce)
        nonces[poster.public_key] = nonce + 1
        body = types_pb2.TransactionBody(chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH, sender=poster.public_key,
                                         nonce=nonce, fee=FEE, post_job=post_request(**fields))
        raws.append(sign(body, poster))
        ids.append(jobs.job_id(GENESIS_HASH, poster.public_key, nonce))
    return ids, market.block(raws)


def burned(market: Market) -> int:
    return system.read_supply(market.state).burned


def waiting(market: Market, model: bytes = MODEL_ID) -> list[bytes]:
    return queue.queued(market.state, model)


def test_a_job_that_finds_no_free_executor_waits_in_its_model_s_queue_and_burns_the_queue_fee_once():
    market = market_with(rules())
    busy, _ = market.post(max_tokens=LONG)
    before = burned(market)
    job_id, receipt = market.post()
    job = market.job(job_id)
    assert job.status == jobs.QUEUED and waiting(market) == [job_id]
    assert job.queue_fee == QUEUE_FEE and burned(market) - before == QUEUE_FEE
    assert queue.queued_by(market.state, POSTER.public_key) == 1
    # Its executor frees: the job leaves the queue, and pays no second fee.
    commit_and_reveal(market, busy, output())
    market.advance(1)
    job = market.job(job_id)
    assert job.status == jobs.ASSIGNED and waiting(market) == [] and job.queue_fee == QUEUE_FEE
    assert queue.queued_by(market.state, POSTER.public_key) == 0 and queue.queued_models(market.state) == []


def test_a_job_that_never_waits_gets_the_queue_fee_its_escrow_held_back():
    market = market_with(rules())
    job_id, _ = market.post()
    commit_and_reveal(market, job_id, output())
    job = market.job(job_id)
    assert job.status == jobs.SETTLED and job.queue_fee == 0
    assert job.refunded >= QUEUE_FEE


def test_a_job_with_no_free_executor_and_a_full_model_queue_expires_at_its_draw_with_its_whole_escrow_back():
    market = market_with(rules(max_queue=2))
    market.post(max_tokens=LONG)
    for _ in range(2):
        market.post(ACCOUNTS[5])
    before = burned(market)
    job_id, receipt = market.post()
    assert receipt.success
    job = market.job(job_id)
    assert job.status == jobs.EXPIRED and "2 jobs already wait for this model" in job.reason
    assert job.queue_fee == 0 and job.refunded == jobs.escrow_of(job.request, rules()) + QUEUE_FEE
    assert burned(market) == before and len(waiting(market)) == 2


def test_a_job_offering_more_than_the_cheapest_waiting_job_displaces_it_from_a_full_queue():
    market = market_with(rules(max_queue=2))
    market.post(max_tokens=LONG, max_price_per_token=1_000)
    cheap = [market.post(ACCOUNTS[5], max_price_per_token=price)[0] for price in (2_000, 1_000)]
    before = burned(market)
    job_id, _ = market.post(max_price_per_token=1_500)
    assert market.job(job_id).status == jobs.QUEUED and market.job(job_id).queue_fee == QUEUE_FEE
    displaced = market.job(cheap[1])
    assert displaced.status == jobs.EXPIRED and "displaced from the model's full queue" in displaced.reason
    # Its queue fee stays burned; the rest of its escrow returned.
    assert displaced.queue_fee == QUEUE_FEE and displaced.escrow == 0 and displaced.refunded > 0
    assert waiting(market) == [cheap[0], job_id] and burned(market) - before == QUEUE_FEE
    assert queue.queued_by(market.state, ACCOUNTS[5].public_key) == 1
    # A job already waiting displaces nobody when it is retried (the queue is full, and it pays the most).
    assert queue.displaced_by(market.state, market.job(job_id), rules(max_queue=2)) is None


def test_a_poster_with_max_queued_per_poster_jobs_waiting_is_refused_by_the_pool_before_the_fee():
    market = market_with(rules(max_queued_per_poster=2))
    market.post(max_tokens=LONG)
    market.post()
    market.post()
    assert queue.queued_by(market.state, POSTER.public_key) == 2
    body = types_pb2.TransactionBody(chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH, sender=POSTER.public_key,
                                     nonce=system.read_account(market.state, POSTER.public_key).nonce, fee=FEE,
                                     post_job=post_request())
    state_rules = transaction_rules(market.state)
    with pytest.raises(CallWouldFail, match="jobs.TooManyQueued: 2 of this poster's jobs already wait"):
        validate_transaction(market.state, check_transaction(sign(body, POSTER), state_rules), state_rules)
    # Included anyway, it fails with that reason and changes nothing but the fee and nonce.
    before = list(market.state.iter_prefix(b"jobs/"))
    receipt = market.call(POSTER, post_job=post_request())
    assert receipt.error_name == "TooManyQueued"
    assert list(market.state.iter_prefix(b"jobs/")) == before
    # Another poster still waits behind them.
    _, receipt = market.post(ACCOUNTS[5])
    assert receipt.success and len(waiting(market)) == 3


def test_a_flood_for_one_model_leaves_another_model_s_jobs_untouched():
    stakes = (
        executor_stake(EXECUTORS[0], 1_000, capacity=1),
        GenesisStake(EXECUTORS[1].public_key, 10**13, False,
                                     state_pb2.Offer(models=[OTHER_MODEL.id], price_per_token=1_000, capacity=1)),
    )
    market = market_with(rules(max_queue=2), stakes, models=(MODEL, OTHER_MODEL))
    post_many(market, [(ACCOUNTS[5], {"max_tokens": LONG})] * 4)
    market.advance(JOBS.assignment_delay_blocks)
    assert len(waiting(market)) == 2
    job_id, receipt = market.post(model=OTHER_MODEL.id)
    assert receipt.success and market.job(job_id).status == jobs.ASSIGNED
    assert waiting(market, OTHER_MODEL.id) == []


def test_a_job_tried_without_success_goes_to_the_back_so_the_jobs_behind_it_are_tried():
    # The cheap executor is busy; a job at its price cannot be filled, one at a higher price can.
    stakes = (executor_stake(EXECUTORS[0], 1_000, capacity=1), executor_stake(EXECUTORS[1], 3_000, capacity=1))
    market = market_with(rules(assign_per_block=1), stakes)
    market.post(max_price_per_token=1_000, max_tokens=LONG)
    expensive_busy, _ = market.post(max_price_per_token=3_000, max_tokens=LONG)
    cheap_ids, _ = post_many(market, [(ACCOUNTS[5], {"max_price_per_token": 1_000})] * 3)
    market.advance(JOBS.assignment_delay_blocks)
    honest, _ = market.post(max_price_per_token=3_000)
    assert sorted(waiting(market)) == sorted(cheap_ids + [honest])
    commit_and_reveal(market, expensive_busy, output())
    # One try per block: the cheap jobs ahead fail in turn and go to the back; within four blocks the
    # honest one is tried and assigned (head-of-line retries would try the first cheap job forever).
    market.advance(4)
    assert market.job(honest).status == jobs.ASSIGNED
    assert sorted(waiting(market)) == sorted(cheap_ids)


def test_the_models_take_turns_in_the_retries():
    stakes = (executor_stake(EXECUTORS[0], 1_000, capacity=1),)
    market = market_with(rules(assign_per_block=3), stakes, models=(MODEL, OTHER_MODEL))
    layer = Overlay(market.state)
    first = [bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32, bytes([4]) * 32]
    other = [bytes([9]) * 32]
    for job_id in first:
        queue.enqueue(layer, state_pb2.Job(id=job_id, poster=POSTER.public_key, request=post_request(), assignments=[
            state_pb2.Assignment()]))
    for job_id in other:
        queue.enqueue(layer, state_pb2.Job(id=job_id, poster=POSTER.public_key, request=post_request(model=OTHER_MODEL.id),
                                           assignments=[state_pb2.Assignment()]))
    params = rules(assign_per_block=3)
    models = sorted([MODEL_ID, OTHER_MODEL.id])
    batch = queue.retry_batch(layer, params, height=0)
    assert batch == ([first[0], other[0], first[1]] if models[0] == MODEL_ID else [other[0], first[0], first[1]])
    assert set(queue.retry_batch(layer, params, height=1)[:2]) == {first[0], other[0]}


def test_a_zero_price_is_refused_before_the_fee_and_a_low_price_or_escrow_by_the_pool_s_dry_run():
    state = genesis_state(endowed=6, registered=(MODEL,), stakes=(executor_stake(EXECUTORS[0], 1_000),),
                          jobs_params=rules(min_job_escrow=10**9), staking_params=replace(STAKING, min_price_per_token=500))
    state_rules = transaction_rules(state)

    def checked(price: int):
        body = types_pb2.TransactionBody(chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH, sender=POSTER.public_key,
                                         nonce=0, fee=FEE, post_job=post_request(max_price_per_token=price))
        return check_transaction(sign(body, POSTER), state_rules)

    with pytest.raises(InvalidCall, match="max_price_per_token must be at least 1"):
        checked(0)
    with pytest.raises(CallWouldFail, match="jobs.PriceTooLow: max_price_per_token 499 is below"):
        validate_transaction(state, checked(499), state_rules)
    with pytest.raises(CallWouldFail, match="jobs.EscrowTooLow: the job's escrow .* is below jobs.params.min_job_escrow"):
        validate_transaction(state, checked(1_000), state_rules)


def test_a_price_below_staking_s_minimum_and_an_escrow_below_min_job_escrow_fail_with_their_reason():
    state = genesis_state(endowed=6, registered=(MODEL,), stakes=(executor_stake(EXECUTORS[0], 1_000),),
                          jobs_params=rules(min_job_escrow=10**9), staking_params=replace(STAKING, min_price_per_token=500))
    market = Market(state)
    before = list(market.state.iter_prefix(b"jobs/"))
    receipt = market.call(POSTER, post_job=post_request(max_price_per_token=499))
    assert receipt.error_name == "PriceTooLow" and "min_price_per_token 500" in receipt.error_message
    receipt = market.call(POSTER, post_job=post_request(max_price_per_token=1_000))
    assert receipt.error_name == "EscrowTooLow" and "min_job_escrow 1000000000" in receipt.error_message
    assert list(market.state.iter_prefix(b"jobs/")) == before


def test_no_height_has_more_than_max_due_per_height_jobs_and_each_deadline_is_the_height_scheduled():
    stakes = tuple(executor_stake(account, 1_000, capacity=8) for account in EXECUTORS)
    market = market_with(rules(max_due_per_height=3), stakes)
    ids, _ = post_many(market, [(POSTER, {}), (ACCOUNTS[5], {})] * 5)
    market.advance(JOBS.assignment_delay_blocks)
    due = {}
    for key, value in market.state.iter_prefix(jobs.SCHEDULE_PREFIX):
        due[int.from_bytes(key[len(jobs.SCHEDULE_PREFIX):], "big")] = list(state_pb2.JobIdList.FromString(value).job_ids)
    assert max(len(listed) for listed in due.values()) <= 3
    deadlines = set()
    for job_id in ids:
        job = market.job(job_id)
        assert job.status == jobs.ASSIGNED
        (slot,) = job.assignments
        assert job_id in due[slot.deadline_height]
        assert job_id in due[job.timeout_height]
        deadlines.add(slot.deadline_height)
    # Ten jobs drawn in one block, three at most per height: their deadlines spread over at least four heights.
    assert len(deadlines) >= 4


def test_schedule_skips_full_heights_in_a_few_reads_and_take_due_clears_them():
    market = market_with(rules(max_due_per_height=2))
    layer = Overlay(market.state)
    heights = [queue.schedule(layer, 100, bytes([index]) * 32) for index in range(7)]
    assert heights == [100, 100, 101, 101, 102, 102, 103]
    # Every full height now points past the run, so the next job lands at once at 103.
    assert queue.schedule(layer, 100, bytes([50]) * 32) == 103
    assert queue.schedule(layer, 101, bytes([51]) * 32) == 104
    assert queue.take_due(layer, 100) == [bytes([0]) * 32, bytes([1]) * 32]
    assert layer.get(queue.full_key(100)) is None and layer.get(queue.schedule_key(100)) is None
