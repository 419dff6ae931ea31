"""runtime/jobs/assignment.py: the delayed draw, price in the draw, frozen tables, locked offers, O(log n) reads."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from hashlib import blake2b

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.crypto import Keypair
from chain.node.randao import Randao
from proto import state_pb2, types_pb2
from runtime import balances, jobs, models, randomness, slashing, staking, system
from runtime.executive import InvalidCall, check_transaction, transaction_rules
from runtime.genesis import RuntimeGenesis, build_genesis_state
from runtime.disputes import params as disputes
from runtime.jobs import assignment
from runtime.jobs import tables as draw_tables
from runtime.jobs.recipes import draw_point
from runtime.staking.genesis import GenesisConfig as StakingGenesis
from runtime.staking.genesis import GenesisStake
from runtime.state import MemoryState, Overlay
from tests.runtime.helpers import CHAIN_ID, GENESIS_HASH, GENESIS_TIME_MS
from tests.runtime.market import (
    BOND,
    EXECUTORS,
    JOBS,
    MODEL,
    MODEL_ID,
    POSTER,
    STAKING,
    Market,
    executor_stake,
)

AUTHOR_KEY = Keypair.from_seed(blake2b(b"account 0", digest_size=32).digest())
# docs/protocol.md, "Assignment": the first draw point of the seed vector over the two-entry table.
POINT = 21092152834786562713622662051161171794680224683
# The model's table of every cpu executor.
WHOLE = draw_tables.Table(MODEL_ID)


def revealing(market: Market) -> Market:
    """The market with its author revealing, as a node does (chain/node/randao.py)."""
    market.randao = Randao(AUTHOR_KEY)
    return market


def a_job(max_price: int = 5_000, redundancy: int = 1, region: str = "", job_id: bytes = bytes(32)) -> state_pb2.Job:
    request = types_pb2.PostJob(model=MODEL_ID, prompt="hello", prompt_format="chat", max_tokens=8,
                                max_price_per_token=max_price, redundancy=redundancy, region=region)
    return state_pb2.Job(id=job_id, request=request, status=state_pb2.JOB_STATUS_QUEUED)


def tables(state, params: jobs.Params = JOBS) -> Overlay:
    """A layer over `state` with the model's tables built for the current epoch."""
    layer = Overlay(state)
    assignment.ensure_tables(layer, MODEL_ID, system.read_chain(state).height + 1, params)
    return layer


def shares(state, job: state_pb2.Job, draws: int = 300, params: jobs.Params = JOBS) -> Counter:
    """How often each executor is drawn for `job` over `draws` seeds."""
    layer = tables(state, params)
    counts = Counter()
    for index in range(draws):
        seed = blake2b(index.to_bytes(4, "big"), digest_size=32).digest()
        for entry in assignment.draw(layer, job, params, seed) or ():
            counts[entry.account] += 1
    return counts


def share_bound(draws: int, share: float) -> float:
    """An upper bound on how many of `draws` an executor with this share wins (mean plus five standard deviations)."""
    return draws * share + 5 * (draws * share * (1 - share)) ** 0.5 + 1


# --- the delayed draw ---------------------------------------------------------------------


def test_a_job_is_drawn_in_the_block_assignment_delay_blocks_after_its_inclusion():
    market = revealing(Market.create())
    job_id, receipt = market.post_only()
    posted = market.height
    assert [event.name for event in receipt.events] == ["JobPosted"]
    assert market.job(job_id).draw_height == posted + JOBS.assignment_delay_blocks
    assert not market.job(job_id).assignments
    market.advance(JOBS.assignment_delay_blocks - 1)
    assert not market.job(job_id).assignments
    events = market.advance(1)
    assert "JobAssigned" in [event.name for event in events]
    (slot,) = market.job(job_id).assignments
    assert slot.assigned_height == posted + JOBS.assignment_delay_blocks


def test_a_node_knows_a_draw_is_pending_until_the_block_that_makes_it():
    market = revealing(Market.create())
    assert not assignment.draws_pending(market.state, market.height)
    market.post_only()
    for _ in range(JOBS.assignment_delay_blocks):
        assert assignment.draws_pending(market.state, market.height)  # the node starts the next height early
        market.advance(1)
    assert not assignment.draws_pending(market.state, market.height)


def test_the_draw_uses_the_mix_after_the_draw_blocks_reveal_and_the_state_before_its_transactions():
    market = revealing(Market.create(executors=tuple(executor_stake(a, 1_000, capacity=8) for a in EXECUTORS)))
    job_id, _ = market.post_only()
    market.advance_to(market.job(job_id).draw_height - 1)
    before = MemoryState(dict(market.state.iter_prefix()))
    mix = randomness.next_mix(randomness.read_mix(before), market.randao.reveal(before))
    # The draw block also carries a big bond: it runs after the draw, so it cannot move it.
    market.block([market.transaction(EXECUTORS[0], bond=types_pb2.Bond(amount=10**14))])
    layer = Overlay(before)
    system.enter_next_block(layer)
    assignment.ensure_tables(layer, MODEL_ID, market.height, JOBS)
    job = market.job(job_id)
    seed = jobs.assignment_seed(job_id, mix, market.height, 0)
    (expected,) = assignment.draw(layer, a_job(job_id=job_id), JOBS, seed)
    assert [slot.executor for slot in job.assignments] == [expected.account]


def test_a_poster_who_knows_todays_mix_does_not_know_the_draw():
    market = revealing(Market.create(executors=tuple(executor_stake(a, 1_000, capacity=64) for a in EXECUTORS)))
    misses = 0
    for _ in range(12):
        guess_mix = randomness.read_mix(market.state)
        job_id, _ = market.post()
        job = market.job(job_id)
        seed = jobs.assignment_seed(job_id, guess_mix, job.draw_height, 0)
        (guess,) = assignment.draw(tables(market.state), a_job(job_id=job_id), JOBS, seed)
        misses += guess.account != job.assignments[0].executor
    assert misses >= 3  # each guess is right about one time in three (three equal executors)


# --- the sampler's boundary and its cost ---------------------------------------------------


def test_the_boundary_vector_of_the_protocol_doc():
    """Entry i is drawn when C(i-1) <= point < C(i), C(i) the running sum of weights to i (docs/protocol.md)."""
    params = replace(JOBS, reputation_initial=100, reputation_max=1_000)
    market = Market.create(executors=(executor_stake(EXECUTORS[0], 1_000), executor_stake(EXECUTORS[1], 2_000)),
                           jobs_params=params)
    layer = tables(market.state, params)
    first, second = (assignment.read_entry(layer, WHOLE, index) for index in (0, 1))
    assert first.weight == assignment.entry_weight(BOND, 100, 1_000) == (
        340282366920938463463374607431768211456000000000
    )
    assert second.weight == first.weight // 4 and second.cumulative == first.weight + second.weight
    assert assignment.locate(layer, WHOLE, 2, first.weight - 1).account == first.account
    assert assignment.locate(layer, WHOLE, 2, first.weight).account == second.account
    seed = jobs.assignment_seed(bytes.fromhex("b4b6f867831247c7da9edd9eca675d775872f7edd714326fd3523be00657210f"),
                                bytes.fromhex("44" * 32), 5, 0)
    point = draw_point(seed, 0, second.cumulative)
    assert point == POINT
    assert assignment.locate(layer, WHOLE, 2, point).account == first.account
    from tests.nodes import ROOT

    doc = (ROOT / "docs" / "protocol.md").read_text()
    for number in (first.weight, second.weight, second.cumulative, POINT):
        assert str(number) in doc


def wide_state(executors: int) -> MemoryState:
    """A chain with `executors` bonded executors of the model at prices 1,000 + i."""
    accounts = [blake2b(f"executor {i}".encode(), digest_size=32).digest() for i in range(executors)]
    stakes = tuple(
        GenesisStake(account, BOND, False, state_pb2.Offer(models=[MODEL_ID], price_per_token=1_000 + i, capacity=4))
        for i, account in enumerate(accounts)
    )
    config = RuntimeGenesis({
        "system": system.GenesisConfig(CHAIN_ID, GENESIS_HASH, GENESIS_TIME_MS, 1, system.Params()),
        "balances": balances.GenesisConfig(balances.Params(), tuple((a, 2 * BOND) for a in accounts)),
        "models": models.GenesisConfig(models.Params(), (MODEL,)),
        "staking": StakingGenesis(replace(STAKING, max_executors_per_model=executors), stakes),
        # Double-sign evidence may land for 40 blocks, within STAKING's 50-block unbonding period.
        "slashing": slashing.GenesisConfig(slashing.Params(max_evidence_age_blocks=40)),
        "jobs": jobs.GenesisConfig(JOBS),
    })
    return MemoryState(build_genesis_state(config))


class CountingReader:
    """A state reader that counts its reads."""

    def __init__(self, state):
        self.state, self.reads = state, 0

    def get(self, key: bytes):
        self.reads += 1
        return self.state.get(key)


def reads_per_draw(executors: int) -> float:
    layer = tables(wide_state(executors))
    reader = CountingReader(layer)
    for index in range(20):
        seed = blake2b(index.to_bytes(4, "big"), digest_size=32).digest()
        assert len(assignment.draw(reader, a_job(max_price=10**6, redundancy=3), JOBS, seed)) == 3
        reader.reads += 0
    return reader.reads / 20


def test_one_draw_reads_a_number_of_entries_logarithmic_in_the_executors():
    small, large = reads_per_draw(16), reads_per_draw(1024)
    # 64 times the executors: log2 grows from 4 to 10, so the reads grow by a bounded amount, not 64-fold.
    assert large < 2.5 * small, (small, large)
    assert large < 150


# --- price in the draw ---------------------------------------------------------------------


def test_an_executor_priced_five_times_its_peers_at_equal_stake_gets_a_small_share():
    market = Market.create(executors=(executor_stake(EXECUTORS[0], 1_000, capacity=64),
                                      executor_stake(EXECUTORS[1], 1_000, capacity=64),
                                      executor_stake(EXECUTORS[2], 5_000, capacity=64)))
    counts = shares(market.state, a_job(max_price=5_000))
    # Weight 1/25 of each peer's: a share of 1/51, against 1/3 when price played no part.
    assert counts[EXECUTORS[2].public_key] <= share_bound(300, 1 / 51) < 0.1 * 300
    alone = Market.create(executors=(executor_stake(EXECUTORS[0], 1_000, capacity=64),
                                     executor_stake(EXECUTORS[2], 5_000, capacity=64)))
    assert shares(alone.state, a_job(max_price=5_000))[EXECUTORS[2].public_key] <= share_bound(300, 1 / 26)


@pytest.mark.parametrize("max_price", [1_000, 1_100, 1_200, 2_000, 5_000])
def test_a_posters_maximum_price_cannot_pick_one_executor_when_several_qualify(max_price):
    market = Market.create(executors=(executor_stake(EXECUTORS[0], 1_000, capacity=64),
                                      executor_stake(EXECUTORS[1], 1_000, capacity=64),
                                      executor_stake(EXECUTORS[2], 1_200, capacity=64)))
    counts = shares(market.state, a_job(max_price=max_price))
    assert sum(counts.values()) == 300
    assert max(counts.values()) <= share_bound(300, 0.5)  # the two cheapest share; the dearer one gets ~1/3 of one


def test_only_the_cheapest_draw_candidates_are_drawn_with_ties_at_the_last_price():
    market = Market.create(executors=tuple(executor_stake(a, price, capacity=64)
                                           for a, price in zip(EXECUTORS, (1_000, 1_000, 1_500))))
    counts = shares(market.state, a_job(max_price=5_000), params=replace(JOBS, draw_candidates=1))
    assert set(counts) == {EXECUTORS[0].public_key, EXECUTORS[1].public_key}


def test_dearer_executors_are_drawn_when_the_cheapest_are_full():
    market = Market.create(executors=(executor_stake(EXECUTORS[0], 1_000, capacity=1),
                                      executor_stake(EXECUTORS[1], 3_000, capacity=1)))
    params = replace(JOBS, draw_candidates=1)
    first, _ = market.post()
    second, _ = market.post()
    assert market.executors_of(first) == [EXECUTORS[0]] and market.executors_of(second) == [EXECUTORS[1]]
    assert shares(market.state, a_job(), params=params) == Counter()  # both full: the job would wait


def test_a_hook_stops_drawing_once_it_refused_its_budget_of_picks_and_the_job_waits():
    market = Market.create(executors=(executor_stake(EXECUTORS[0], 1_000, capacity=1),
                                      executor_stake(EXECUTORS[1], 3_000, capacity=1)))
    params = replace(JOBS, draw_candidates=1)
    market.post()  # the cheapest is full now: a draw refuses it before it adds the dearer one
    layer = tables(market.state, params)
    seed = bytes(32)
    (drawn,) = assignment.draw(layer, a_job(), params, seed)
    assert drawn.account == EXECUTORS[1].public_key
    budget = assignment.RefusalBudget(0)
    assert assignment.draw(layer, a_job(), params, seed, budget) is None and budget.left < 0
    # A budget is shared by every draw of one hook: what one job refused, the next cannot.
    budget = assignment.RefusalBudget(1)
    assert assignment.draw(layer, a_job(), params, seed, budget) is not None and budget.left == 0
    assert assignment.draw(layer, a_job(), params, seed, budget) is None


# --- region ----------------------------------------------------------------------------------


def test_a_region_one_executor_owns_does_not_select_it():
    market = Market.create(executors=(executor_stake(EXECUTORS[0], 1_000, capacity=64, region="mine"),
                                      executor_stake(EXECUTORS[1], 1_000, capacity=64),
                                      executor_stake(EXECUTORS[2], 1_000, capacity=64)))
    counts = shares(market.state, a_job(region="mine"))
    assert counts[EXECUTORS[0].public_key] <= share_bound(300, 1 / 3) < 300


def test_a_region_with_enough_executors_is_preferred():
    market = Market.create(executors=tuple(executor_stake(a, 1_000, capacity=64, region="eu") for a in EXECUTORS)
                           + (executor_stake(POSTER, 1_000, capacity=64),))
    counts = shares(market.state, a_job(region="eu"))
    assert POSTER.public_key not in counts and sum(counts.values()) == 300


# --- offers: locked, frozen for the epoch, priced at least the minimum ---------------------------


def set_offer(price: int, capacity: int = 8, region: str = "") -> dict:
    return dict(set_offer=types_pb2.SetOffer(models=[MODEL_ID], price_per_token=price, region=region, capacity=capacity))


def test_a_second_offer_change_inside_the_lock_is_refused_with_the_height_it_may_change():
    market = Market.create()
    market.ok(EXECUTORS[0], **set_offer(1_500))
    set_at = market.height
    before = staking.read_offer(market.state, EXECUTORS[0].public_key)
    receipt = market.call(EXECUTORS[0], **set_offer(4_000))
    assert receipt.error_name == "OfferLocked"
    assert f"from height {set_at + STAKING.offer_lock_blocks}" in receipt.error_message
    assert staking.read_offer(market.state, EXECUTORS[0].public_key) == before
    market.ok(EXECUTORS[0], clear_offer=types_pb2.ClearOffer())  # leaving is always allowed ...
    assert market.call(EXECUTORS[0], **set_offer(4_000)).error_name == "OfferLocked"  # ... but not a way around the lock
    market.advance_to(set_at + STAKING.offer_lock_blocks - 1)
    market.ok(EXECUTORS[0], **set_offer(4_000))


def test_zero_and_sub_minimum_offer_prices_are_refused_and_change_nothing():
    market = Market.create(staking_params=replace(STAKING, min_price_per_token=500))
    with pytest.raises(InvalidCall, match="price_per_token must be at least 1"):
        check_transaction(market.transaction(EXECUTORS[0], **set_offer(0)), transaction_rules(market.state))
    before = staking.read_offer(market.state, EXECUTORS[0].public_key)
    receipt = market.call(EXECUTORS[0], **set_offer(499))
    assert receipt.error_name == "InvalidOffer" and "below the minimum 500" in receipt.error_message
    assert staking.read_offer(market.state, EXECUTORS[0].public_key) == before


def test_a_price_change_counts_from_the_next_epochs_table():
    market = revealing(Market.create(executors=(executor_stake(EXECUTORS[0], 1_000, capacity=64),)))
    market.post()
    market.ok(EXECUTORS[0], **set_offer(4_000, capacity=64))
    job_id, _ = market.post()
    assert market.job(job_id).assignments[0].price_per_token == 1_000  # the epoch's table: the old price
    epoch = draw_tables.current_epoch(market.state, market.height)
    while draw_tables.current_epoch(market.state, market.height + 1) == epoch:
        market.advance(1)
    job_id, _ = market.post()
    assert market.job(job_id).assignments[0].price_per_token == 4_000


# --- stake: an increase waits for the next epoch, a decrease counts at once ---------------------


def test_a_bond_placed_before_a_draw_in_the_same_epoch_does_not_move_it():
    executors = tuple(executor_stake(a, 1_000, capacity=64) for a in EXECUTORS)
    long_epochs = replace(STAKING, epoch_blocks=100)
    # Nobody commits here, so every job's executor misses: without the missed-result slash its stake stays as bonded.
    no_miss_slash = disputes.Params(slash_fraction_missed_result_ppm=0)
    plain, bonded = (revealing(Market.create(executors=executors, staking_params=long_epochs,
                                             disputes_params=no_miss_slash)) for _ in range(2))
    for market in (plain, bonded):
        market.post()  # builds the epoch's table
    bonded.ok(EXECUTORS[2], bond=types_pb2.Bond(amount=50 * BOND))
    plain.ok(EXECUTORS[2], bond=types_pb2.Bond(amount=0, validate=True))  # same height, nothing bonded
    drawn = [[m.executors_of(m.post()[0])[0] for _ in range(8)] for m in (plain, bonded)]
    assert drawn[0] == drawn[1]
    bonded.advance_to(100)
    bonded.post()  # the next epoch's table counts the bond
    weights = {entry.account: entry.weight for entry in
               (assignment.read_entry(bonded.state, WHOLE, index) for index in range(3))}
    assert weights[EXECUTORS[2].public_key] == 51 * weights[EXECUTORS[0].public_key]


def test_an_executor_that_unbonds_or_leaves_is_never_drawn_again_at_once():
    market = revealing(Market.create(executors=tuple(executor_stake(a, 1_000, capacity=64) for a in EXECUTORS)))
    market.post()
    market.ok(EXECUTORS[0], clear_offer=types_pb2.ClearOffer())
    market.ok(EXECUTORS[0], unbond=types_pb2.Unbond(amount=BOND))
    assert EXECUTORS[0].public_key not in shares(market.state, a_job())
    drawn = {market.executors_of(market.post()[0])[0] for _ in range(6)}
    assert EXECUTORS[0] not in drawn


def test_a_fallen_stake_weighs_at_once_by_rejection():
    market = Market.create(executors=tuple(executor_stake(a, 1_000, capacity=64) for a in EXECUTORS[:2]))
    layer = tables(market.state)
    ledger = staking.read_ledger(layer, EXECUTORS[0].public_key)
    ledger.bonded = BOND // 9
    layer.set(staking.LEDGER_PREFIX + EXECUTORS[0].public_key, ledger.SerializeToString(deterministic=True))
    counts = Counter()
    for index in range(400):
        seed = blake2b(index.to_bytes(4, "big"), digest_size=32).digest()
        counts.update(entry.account for entry in assignment.draw(layer, a_job(), JOBS, seed))
    # Weights 1/9 and 1: a share of 1/10 (it was 1/2 when the table was built).
    assert counts[EXECUTORS[0].public_key] <= share_bound(400, 0.1)
    assert counts[EXECUTORS[0].public_key] >= 400 * 0.1 - 5 * (400 * 0.09) ** 0.5


@settings(max_examples=25, deadline=None)
@given(price=st.integers(0, 3_000), gap=st.integers(1, 14), second=st.integers(1, 3_000))
def test_an_offer_is_taken_exactly_when_its_price_and_its_lock_allow_and_a_refusal_changes_nothing(price, gap, second):
    lock = replace(STAKING, min_price_per_token=500, offer_lock_blocks=10)
    market = Market.create(staking_params=lock)
    raw = market.transaction(EXECUTORS[0], **set_offer(price))
    if price == 0:
        with pytest.raises(InvalidCall):
            check_transaction(raw, transaction_rules(market.state))
        return
    first = market.block([raw]).transactions[0]
    assert first.success == (price >= 500), first.error_message
    if not first.success:
        return
    set_at = market.height
    market.advance(gap - 1)
    before = dict(market.state.iter_prefix(staking.OFFER_PREFIX))
    receipt = market.call(EXECUTORS[0], **set_offer(second))
    allowed = market.height >= set_at + 10 and second >= 500
    assert receipt.success == allowed, receipt.error_message
    if not allowed:
        assert receipt.error_name in ("OfferLocked", "InvalidOffer")
        assert dict(market.state.iter_prefix(staking.OFFER_PREFIX)) == before
