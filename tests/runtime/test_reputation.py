"""runtime/reputation.py: a score bought with burned fees, capped per epoch, decaying to a low start, lost by misses."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proto import state_pb2
from runtime import jobs, reputation
from runtime.arithmetic import PPM, U64_MAX
from runtime.registry import RUNTIME
from runtime.state import Overlay
from tests.runtime.helpers import ACCOUNTS
from tests.runtime.market import EXECUTORS, JOBS, POSTER, STAKING, Market, commit_and_reveal, executor_stake, output

EXECUTOR = EXECUTORS[0].public_key
PRICE = JOBS.reputation_price


def move(market: Market, step):
    """Run one of the rule's moves on the market's real state, keep its writes, and return what it returned."""
    layer = Overlay(market.state)
    result = step(layer)
    market.state.apply(layer.changes())
    return result


def reward(market: Market, burned: int, executor: bytes = EXECUTOR, poster: bytes = POSTER.public_key) -> int:
    return move(market, lambda state: reputation.reward(state, executor, poster, burned))


def record(market: Market, account: bytes = EXECUTOR) -> state_pb2.ReputationRecord:
    return reputation.read_record(market.state, account, reputation.read_rules(market.state))


def next_epoch(market: Market, epochs: int = 1) -> None:
    """Advance to the first block `epochs` epochs later (staking epochs: heights e x epoch_blocks + 1 ... )."""
    epoch = reputation.current_epoch(market.state)
    market.advance_to((epoch + epochs) * STAKING.epoch_blocks + 1)
    assert reputation.current_epoch(market.state) == epoch + epochs


def test_a_fresh_key_is_at_the_low_starting_value_and_the_genesis_default_is_below_a_used_key():
    market = Market.create()
    assert reputation.read_reputation(market.state, ACCOUNTS[5].public_key) == JOBS.reputation_initial
    assert jobs.Params().reputation_initial * 10 <= jobs.Params().reputation_max
    reward(market, 30 * PRICE)
    assert reputation.read_reputation(market.state, EXECUTOR) == JOBS.reputation_initial + 30


def test_a_point_costs_reputation_price_burned_and_the_remainder_is_credit_toward_the_next():
    market = Market.create()
    assert reward(market, 2 * PRICE + PRICE // 2) == 2
    assert record(market).credit == PRICE // 2
    assert reward(market, PRICE // 2) == 1
    assert record(market).credit == 0
    assert record(market).score == JOBS.reputation_initial + 3
    assert reward(market, PRICE - 1) == 0 and record(market).credit == PRICE - 1


def test_a_job_its_own_executor_posted_earns_nothing_and_writes_nothing():
    market = Market.create()
    assert reward(market, 100 * PRICE, poster=EXECUTOR) == 0
    assert market.state.get(reputation.key(EXECUTOR)) is None
    assert reward(market, 0) == 0


def test_gain_is_capped_per_epoch_and_fee_beyond_the_cap_buys_nothing():
    market = Market.create()
    cap = JOBS.reputation_gain_cap_per_epoch
    assert reward(market, (cap + 7) * PRICE + 5) == cap
    assert record(market).credit == 0 and record(market).gained == cap
    assert reward(market, 10 * PRICE) == 0
    next_epoch(market)
    assert record(market).gained == 0
    assert reward(market, 3 * PRICE) == 3


def test_a_score_never_passes_reputation_max():
    market = Market.create(jobs_params=jobs.Params(**{**JOBS.__dict__, "reputation_max": 15}))
    assert reward(market, 40 * PRICE) == 5
    assert record(market).score == 15


def test_the_part_above_the_start_decays_each_epoch_and_a_score_below_it_does_not():
    market = Market.create()
    reward(market, 40 * PRICE)
    missed = EXECUTORS[1].public_key
    move(market, lambda state: reputation.penalize(state, missed))
    assert reputation.read_reputation(market.state, missed) == max(1, JOBS.reputation_initial - JOBS.reputation_loss)
    next_epoch(market)
    # 40 above the start of 10, less 1% (rounded down): 39.
    assert reputation.read_reputation(market.state, EXECUTOR) == JOBS.reputation_initial + 39
    next_epoch(market, 10)
    # Eleven epochs after it was earned: 40 x 0.99^11 = 35.8, rounded down.
    assert reputation.read_reputation(market.state, EXECUTOR) == JOBS.reputation_initial + 35
    assert reputation.read_reputation(market.state, missed) == max(1, JOBS.reputation_initial - JOBS.reputation_loss)


def test_the_decay_vectors_of_the_protocol_doc():
    rules = reputation.Rules(initial=10, maximum=1_000, loss=10, price=PRICE, gain_cap_per_epoch=50, decay_ppm=10_000, epoch=0)
    assert [reputation.decay_factor_ppm(10_000, n) for n in (0, 1, 2, 10, 69)] == [PPM, 990_000, 980_100, 904_381, 499_831]
    assert [reputation.decayed(1_000, n, rules) for n in (1, 10, 69, 500, 1_000)] == [990, 905, 504, 16, 10]
    assert reputation.decay_factor_ppm(10_000, U64_MAX) == 0
    assert reputation.decayed(5, 1_000, rules) == 5


@settings(max_examples=200, deadline=None)
@given(st.integers(1, PPM), st.integers(0, 10_000))
def test_decay_by_squaring_stays_within_rounding_of_the_exact_power_and_never_rises(decay_ppm, epochs):
    factor = reputation.decay_factor_ppm(decay_ppm, epochs)
    exact = Fraction(PPM - decay_ppm, PPM) ** epochs * PPM
    assert factor <= exact
    # Rounding down loses under 1 ppm per epoch's worth of multiplication: never more decay than that.
    assert exact - factor <= epochs + 1
    assert reputation.decay_factor_ppm(decay_ppm, epochs + 1) <= factor


def test_a_miss_costs_reputation_loss_and_never_takes_a_score_below_one():
    market = Market.create()
    reward(market, 25 * PRICE)
    assert move(market, lambda state: reputation.penalize(state, EXECUTOR)) == JOBS.reputation_initial + 25 - JOBS.reputation_loss
    for _ in range(5):
        move(market, lambda state: reputation.penalize(state, EXECUTOR))
    assert record(market).score == 1


def test_the_query_answers_the_score_decayed_to_now_with_this_epoch_s_gain_and_credit():
    market = Market.create()
    reward(market, 20 * PRICE + 3)
    score = next(spec for spec in RUNTIME.module("reputation").queries if spec.name == "score")
    answer = score.handler(market.state, state_pb2.AccountQuery(account=EXECUTOR))
    assert (answer.score, answer.gained_this_epoch, answer.credit) == (JOBS.reputation_initial + 20, 20, 3)
    next_epoch(market, 69)
    answer = score.handler(market.state, state_pb2.AccountQuery(account=EXECUTOR))
    assert (answer.score, answer.gained_this_epoch, answer.credit) == (JOBS.reputation_initial + 20 * 499_831 // PPM, 0, 3)
    with pytest.raises(KeyError, match="reputation_initial"):
        score.handler(market.state, state_pb2.AccountQuery(account=ACCOUNTS[5].public_key))


def test_a_settled_payment_credits_its_executor_with_the_fee_burned_on_it():
    # At 10^9 per token (the devnet's price) a 4-token answer burns 1% of its pay, credited in full.
    price = 10**9
    market = Market.create(executors=(executor_stake(EXECUTORS[0], price),))
    job_id, receipt = market.post(redundancy=1, max_tokens=8, max_price_per_token=price)
    assert receipt.success
    commit_and_reveal(market, job_id, output())
    job = market.job(job_id)
    assert job.status == jobs.SETTLED
    fee_on_payment = job.protocol_fee
    assert record(market).credit + record(market).gained * PRICE == fee_on_payment


def test_a_job_an_executor_posts_to_itself_settles_but_buys_it_no_reputation():
    price = 10**9
    market = Market.create(executors=(executor_stake(EXECUTORS[0], price),))
    job_id, receipt = market.post(EXECUTORS[0], redundancy=1, max_tokens=8, max_price_per_token=price)
    assert receipt.success
    commit_and_reveal(market, job_id, output())
    assert market.job(job_id).status == jobs.SETTLED and market.job(job_id).protocol_fee > 0
    assert market.state.get(reputation.key(EXECUTOR)) is None
