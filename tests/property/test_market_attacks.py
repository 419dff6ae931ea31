"""The market attacks of issue 24, as properties over the real runtime (docs/economics.md).

Wash trading: an executor that posts jobs to itself (from its own key or a sybil) and answers them
with one end token gains at most one reputation point per reputation_price burned, none from its
own key, and at most reputation_gain_cap_per_epoch a epoch. Before, every settled job added a
point whatever it paid: 900 pairs took a score from 100 to 1,000 for ~6·10⁻¹² INFER of fees.

Lock-out: an attacker keeps its own cheap executor busy and floods the queue with jobs at its price.
An honest job is still assigned at its draw when an executor within its price is free, and, when
every executor is busy, it waits (displacing a cheaper flood job from a full queue) and is assigned
within ceil((max_queue + 1) / assign_per_block) + 1 blocks of one freeing. Before,
posting checked a global queue before trying to assign: 1,000 zero-price jobs gave every honest
job QueueFull for 320 blocks.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime import jobs, reputation, system
from runtime.jobs import queue
from tests.runtime.market import (
    ACCOUNTS,
    EXECUTORS,
    JOBS,
    MODEL_ID,
    STAKING,
    Market,
    commit_and_reveal,
    executor_stake,
    output,
)
from tests.runtime.test_queues import LONG, post_many

# A point per 10^7 base units burned, so that a few jobs at test prices gain visible points.
WASH = replace(JOBS, reputation_price=10**7, queue_fee=10**7)
ATTACKER = EXECUTORS[0]
SYBIL = ACCOUNTS[5]


def burned(market: Market) -> int:
    return system.read_supply(market.state).burned


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    price=st.sampled_from([1, 1_000, 10**6, 10**9]),
    answers=st.lists(st.integers(1, 8), min_size=1, max_size=4),
    from_sybil=st.booleans(),
)
def test_wash_trading_gains_at_most_a_point_per_reputation_price_burned_and_nothing_from_its_own_key(
        price, answers, from_sybil):
    market = Market.create(executors=(executor_stake(ATTACKER, price, capacity=1),), jobs_params=WASH)
    poster = SYBIL if from_sybil else ATTACKER
    start_epoch = reputation.current_epoch(market.state)
    before = burned(market)
    for length in answers:
        job_id, receipt = market.post(poster, redundancy=1, max_tokens=8, max_price_per_token=price)
        assert receipt.success, receipt.error_message
        # The cheapest answer there is: length - 1 filler tokens and an end token.
        commit_and_reveal(market, job_id, output(tokens=[5] * (length - 1) + [2], prompt_tokens=1))
        assert market.job(job_id).status == jobs.SETTLED
    spent = burned(market) - before
    score = reputation.read_reputation(market.state, ATTACKER.public_key)
    gained = score - WASH.reputation_initial
    assert spent > 0
    assert gained * WASH.reputation_price <= spent
    epochs = reputation.current_epoch(market.state) - start_epoch + 1
    assert gained <= WASH.reputation_gain_cap_per_epoch * epochs
    if not from_sybil:
        assert gained == 0 and market.state.get(reputation.key(ATTACKER.public_key)) is None


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    flood=st.integers(0, 12),
    max_queue=st.integers(1, 6),
    per_poster=st.integers(1, 4),
    assign_per_block=st.integers(1, 3),
    honest_busy=st.booleans(),
)
def test_an_honest_job_is_assigned_while_an_attacker_fills_the_queue(flood, max_queue, per_poster, assign_per_block,
                                                                      honest_busy):
    params = replace(JOBS, max_queue=max_queue, max_queued_per_poster=per_poster, assign_per_block=assign_per_block,
                     queue_fee=10**7)
    honest_executor = EXECUTORS[1]
    stakes = (executor_stake(ATTACKER, 1_000, capacity=1), executor_stake(honest_executor, 3_000, capacity=1))
    market = Market.create(executors=stakes, jobs_params=params, staking_params=STAKING)
    # The attacker's executor, busy with the attacker's own long job, answers nothing else; the flood is at its price.
    market.post(SYBIL, max_tokens=LONG, max_price_per_token=1_000)
    busy = None
    if honest_busy:
        busy, _ = market.post(max_tokens=LONG, max_price_per_token=3_000)
    attackers = (SYBIL, ACCOUNTS[0])
    post_many(market, [(attackers[index % 2], {"max_price_per_token": 1_000}) for index in range(flood)])
    market.advance(params.assignment_delay_blocks)
    full = len(queue.queued(market.state, MODEL_ID))
    assert full <= max_queue
    assert all(queue.queued_by(market.state, account.public_key) <= per_poster for account in attackers)

    honest, receipt = market.post(max_price_per_token=3_000)
    assert receipt.success, receipt.error_message
    if honest_busy:
        # Every executor busy: it waits, displacing the newest of the cheapest flood jobs when the queue is full.
        assert market.job(honest).status == jobs.QUEUED
        assert len(queue.queued(market.state, MODEL_ID)) == min(full + 1, max_queue)
        commit_and_reveal(market, busy, output())
        # Each block tries assign_per_block waiting jobs and sends the failures to the back.
        for _ in range(-(-(max_queue + 1) // assign_per_block) + 1):
            if market.job(honest).status == jobs.ASSIGNED:
                break
            market.advance(1)
    job = market.job(honest)
    assert job.status == jobs.ASSIGNED
    assert [slot.executor for slot in job.assignments] == [honest_executor.public_key]

