"""Weights (runtime/weights.py, docs/protocol.md "Block validity" and "Transactions"): every call and hook declares
its worst case; a block declares at most max_block_weight, hooks first; the fee pays for the weight."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

import runtime.jobs.weights as job_weights
from proto import types_pb2
from runtime import jobs, staking, system, weights
from runtime.block import LIMITS, MIN_BLOCK_WEIGHT, BlockLimits, BlockOverweight, BlockSpace, check_block_weight
from runtime.executive import (
    BlockExecution,
    FeeTooLow,
    NoRoomInBlock,
    TooHeavy,
    check_transaction,
    check_weight_bounds,
    hooks_weight,
    process_block,
    transaction_rules,
    transaction_weight,
    validate_transaction,
)
from runtime.params import encode_params
from runtime.primitives import BlockContext
from runtime.registry import RUNTIME
from tests.runtime.helpers import ACCOUNTS, AUTHOR, CHAIN_ID, GENESIS_HASH, genesis_state, sign, transfer
from tests.runtime.worlds import World, posts

ALICE, BOB = ACCOUNTS[1], ACCOUNTS[2]


def _state(max_block_weight: int = BlockLimits.max_block_weight, **params):
    """A genesis state with these system params, and block limits whose weight limit is `max_block_weight`."""
    state = genesis_state(params=system.Params(**params))
    state.items[LIMITS.key] = encode_params(LIMITS, BlockLimits(max_block_weight=max_block_weight))
    return state


def _transfer(state, signer, nonce: int, *, fee: int | None = None) -> bytes:
    """A transfer at the minimum fee for its size and weight (or at `fee`)."""
    raw = transfer(signer, BOB.public_key, 2_000_000, nonce, fee=10**9)
    if fee is None:
        checked = check_transaction(raw, transaction_rules(state))
        fee = system.read_params(state).minimum_fee(len(raw), transaction_weight(checked.body, len(raw)))
    return transfer(signer, BOB.public_key, 2_000_000, nonce, fee=fee)


def _next_context(state) -> BlockContext:
    chain = system.read_chain(state)
    return BlockContext(chain.height + 1, chain.time_ms + 1000, AUTHOR.public_key)


# --- declarations -------------------------------------------------------------------------


def test_every_call_declares_a_measured_weight_not_the_default():
    for name, spec in RUNTIME.calls.items():
        declared = spec.weight(spec.message())
        assert 0 < declared != weights.UNDECLARED_CALL, f"{name} declares no weight of its own"


def test_every_module_with_hooks_declares_their_weight():
    for module in RUNTIME.modules:
        if module.on_initialize is not None or module.on_finalize is not None:
            assert module.hooks_weight is not None, f"{module.name} has hooks but declares no hooks_weight"


def test_a_call_weighs_more_with_more_work_in_it():
    small = types_pb2.RevealResult(tokens=[1], logprobs_micronats=[0], text="a")
    large = types_pb2.RevealResult(tokens=[1] * 4_000, logprobs_micronats=[0] * 4_000, text="a" * 16_000)
    reveal = RUNTIME.calls["reveal_result"].weight
    assert reveal(large) > reveal(small)
    offer = RUNTIME.calls["set_offer"].weight
    assert offer(types_pb2.SetOffer(models=[b"\x01" * 32] * 10)) > offer(types_pb2.SetOffer(models=[b"\x01" * 32]))


def test_a_post_job_declares_reading_every_executor_at_the_ceiling():
    declared = RUNTIME.calls["post_job"].weight(types_pb2.PostJob(prompt="hi", redundancy=1))
    assert declared >= weights.MAX_EXECUTORS_PER_MODEL * weights.CANDIDATE


# --- fees ---------------------------------------------------------------------------------


def test_the_minimum_fee_adds_fee_per_weight_per_million_weight_rounded_up():
    params = system.Params(base_fee=1_000, fee_per_byte=10, fee_per_weight=5_000)
    assert params.minimum_fee(100, 0) == 2_000
    assert params.minimum_fee(100, 1_000_000) == 7_000
    assert params.minimum_fee(100, 1) == 2_001  # a part of a unit still pays one base unit


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 65_536), st.integers(0, 10**10),
       st.integers(0, 10**9))
def test_the_fee_rule_is_the_exact_sum_rounded_up_and_grows_with_size_and_weight(base, per_byte, size, weight,
                                                                               per_weight):
    fee = system.minimum_fee(base, per_byte, size, per_weight, weight)
    exact = base + per_byte * size + Fraction(per_weight * weight, 1_000_000)
    assert exact <= fee < exact + 1
    assert system.minimum_fee(base, per_byte, size + 1, per_weight, weight) >= fee
    assert system.minimum_fee(base, per_byte, size, per_weight, weight + 1) >= fee


def test_a_transfer_stays_cheap_and_a_post_job_pays_for_its_work():
    params = system.Params()
    transfer_weight = weights.SIGNATURE + weights.TRANSACTION + 200 * weights.BYTE + RUNTIME.calls["transfer"].weight(
        types_pb2.Transfer())
    byte_fee = params.minimum_fee(200, 0)
    # A transfer pays at most 60% more than the size rule alone asked before weights.
    assert params.minimum_fee(200, transfer_weight) <= byte_fee * 16 // 10
    post = weights.SIGNATURE + weights.TRANSACTION + 200 * weights.BYTE + RUNTIME.calls["post_job"].weight(
        types_pb2.PostJob(prompt="hello", redundancy=5))
    # A PostJob takes about 40 transfers' weight, and pays about as much more for it.
    assert post > 25 * transfer_weight
    assert params.minimum_fee(200, post) - byte_fee > 10 * (params.minimum_fee(200, transfer_weight) - byte_fee)


def test_a_transaction_paying_for_its_bytes_but_not_its_weight_is_refused_with_the_weight_named():
    state = _state()
    rules = transaction_rules(state)
    size_only = transfer(ALICE, BOB.public_key, 2_000_000, 0, fee=10**9)
    size_fee = system.read_params(state).minimum_fee(len(size_only) + 2, 0)
    checked = check_transaction(transfer(ALICE, BOB.public_key, 2_000_000, 0, fee=size_fee), rules)
    with pytest.raises(FeeTooLow, match="and weight"):
        validate_transaction(state, checked, rules)


# --- the block weight rule ----------------------------------------------------------------


def test_a_transaction_declaring_more_than_a_whole_block_is_refused_statelessly():
    state = _state(max_block_weight=MIN_BLOCK_WEIGHT)
    models = [index.to_bytes(2, "big") * 16 for index in range(400)]
    body = types_pb2.TransactionBody(chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH, sender=ALICE.public_key, nonce=0,
                                     fee=10**12,
                                     set_offer=types_pb2.SetOffer(models=models, price_per_token=10**9, capacity=1))
    with pytest.raises(TooHeavy, match=f"more than a whole block may hold \\({MIN_BLOCK_WEIGHT}\\)"):
        check_transaction(sign(body, ALICE), transaction_rules(state))


def test_an_overweight_block_is_refused_by_the_weight_rule_before_any_transaction_runs():
    state = _state(max_block_weight=MIN_BLOCK_WEIGHT)
    raws = [_transfer(state, ALICE, nonce) for nonce in range(300)]
    # The last one skips a nonce: were the block executed, that would be its error; the weight rule comes first.
    raws.append(_transfer(state, ALICE, 999))
    block = types_pb2.Block(transactions=raws)
    with pytest.raises(BlockOverweight, match=f"the limit is {MIN_BLOCK_WEIGHT}"):
        process_block(state, block, _next_context(state))


def test_a_block_at_the_limit_is_accepted_and_one_more_transaction_is_not():
    state = _state(max_block_weight=MIN_BLOCK_WEIGHT)
    context = _next_context(state)
    rules = transaction_rules(state)
    limits = BlockLimits(max_block_weight=MIN_BLOCK_WEIGHT)
    execution = BlockExecution(state, context, rules)
    space = BlockSpace(limits, CHAIN_ID, types_pb2.Commit(), (), execution.hooks_weight)
    raws = []
    for nonce in range(400):
        raw = _transfer(state, ALICE, nonce)
        checked = check_transaction(raw, rules)
        weight = transaction_weight(checked.body, checked.size)
        if not space.fits(checked.size, weight):
            break
        execution.try_apply(checked)
        space.take(checked.size, weight)
        raws.append(raw)
    assert space.weight <= MIN_BLOCK_WEIGHT < space.weight + weight
    process_block(state, types_pb2.Block(transactions=raws), context)
    with pytest.raises(BlockOverweight):
        process_block(state, types_pb2.Block(transactions=raws + [raw]), context)
    with pytest.raises(NoRoomInBlock, match="passes the limit"):
        execution.try_apply(checked)  # a builder that ignored BlockSpace is stopped too; the transaction waits


def test_the_hooks_weight_is_counted_first():
    limits = BlockLimits(max_block_weight=MIN_BLOCK_WEIGHT)
    check_block_weight(limits, MIN_BLOCK_WEIGHT, [])  # hooks alone may fill the block
    with pytest.raises(BlockOverweight, match=f"hooks {MIN_BLOCK_WEIGHT - 10}"):
        check_block_weight(limits, MIN_BLOCK_WEIGHT - 10, [11])
    space = BlockSpace(limits, CHAIN_ID, types_pb2.Commit(), (), hooks_weight=MIN_BLOCK_WEIGHT)
    assert space.full and not space.fits(100, 1)


def test_hooks_weight_grows_with_evidence_in_the_block():
    state = _state()
    quiet = hooks_weight(state, _next_context(state))
    context = _next_context(state)
    evidence = (types_pb2.DuplicateVoteEvidence(),) * 3
    with_evidence = BlockContext(context.height, context.time_ms, context.author, evidence)
    assert hooks_weight(state, with_evidence) >= quiet + 3 * 2 * weights.SIGNATURE


# --- limits and genesis -------------------------------------------------------------------


def test_a_weight_limit_below_the_minimum_is_refused():
    with pytest.raises(ValueError, match="max_block_weight must be at least"):
        BlockLimits(max_block_weight=MIN_BLOCK_WEIGHT - 1).validate()


def test_parameters_above_the_ceilings_the_weights_assume_are_refused():
    check_weight_bounds(genesis_state())
    too_many = genesis_state(staking_params=staking.Params(max_executors_per_model=weights.MAX_EXECUTORS_PER_MODEL + 1))
    with pytest.raises(ValueError, match="staking.params.max_executors_per_model is 1001, above 1000"):
        check_weight_bounds(too_many)



def test_the_jobs_hooks_declare_each_first_draw_its_possible_retry_and_a_stale_draw_table():
    world = World.create(10)
    world.apply([])
    quiet = hooks_weight(world.state, world.next_context())
    world.apply(world.fill(posts(world, 5)))
    for _ in range(jobs.read_params(world.state).assignment_delay_blocks - 1):
        world.apply([])
    drawing = hooks_weight(world.state, world.next_context())
    # The model registers no class besides cpu: each draw counts one class table per region step.
    per_job = job_weights._job_in_hook(jobs.read_params(world.state).max_redundancy, classes=1)
    # Five first draws, each possibly retried in on_finalize, the model's first draw table, the model's
    # registration read (its classes), and the picks each of the two hooks may refuse.
    assert drawing - quiet == (10 * per_job + job_weights.TABLE_BUILD + weights.READ
                               + 2 * job_weights.REFUSALS)
    world.apply([])
    assert hooks_weight(world.state, world.next_context()) == quiet  # drawn, and the table is this epoch's
