"""BFT time: a block's time is the stake-weighted median of its last commit's precommit times."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.consensus.commit import commit_time_ms, precommit_time_ms, sign_vote
from chain.crypto import dev_keypair
from chain.genesis import dev_genesis_document, parse_genesis
from chain.node.blocks import InvalidProposedBlock
from chain.node.core import NodeCore
from chain.storage import ChainStore
from proto import types_pb2

NAMES = ("alice", "bob", "charlie", "dave")
KEYS = [dev_keypair(name) for name in NAMES]


def commit_of(times: list[int], keys=KEYS) -> types_pb2.Commit:
    votes = [sign_vote(key, "c", types_pb2.VOTE_TYPE_PRECOMMIT, 1, 0, b"\x11" * 32, time_ms)
             for key, time_ms in zip(keys, times)]
    return types_pb2.Commit(height=1, block_hash=b"\x11" * 32, precommits=votes)


def test_the_median_is_weighted_by_power():
    powers = {key.public_key: power for key, power in zip(KEYS, (1, 1, 1, 10))}
    assert commit_time_ms(commit_of([100, 200, 300, 400]), powers) == 400  # dave holds most of the power
    equal = {key.public_key: 1 for key in KEYS}
    assert commit_time_ms(commit_of([100, 200, 300]), equal) == 200


@given(st.lists(st.integers(10**12, 2 * 10**12), min_size=3, max_size=3),
       st.integers(-10**9, 10**9), st.integers(0, 3))
@settings(max_examples=100, deadline=None)
def test_one_validator_of_four_cannot_move_chain_time_outside_the_honest_clocks(honest, skew, liar):
    equal = {key.public_key: 1 for key in KEYS}
    times = list(honest)
    times.insert(liar, honest[0] + skew)  # the liar's clock, anywhere
    signers = [list(range(4))] + [[i for i in range(4) if i != left_out] for left_out in range(4)]
    for chosen in signers:  # the whole set, or any 3 of 4: each is a valid commit
        commit = commit_of([times[i] for i in chosen], [KEYS[i] for i in chosen])
        assert min(honest) <= commit_time_ms(commit, equal) <= max(honest)


def test_a_precommit_is_always_after_the_block_it_commits():
    assert precommit_time_ms(now_ms=5, block_time_ms=100) == 101
    assert precommit_time_ms(now_ms=500, block_time_ms=100) == 500


@pytest.fixture
def core(tmp_path):
    genesis = parse_genesis(dev_genesis_document())
    store = ChainStore(tmp_path / "db")
    store.initialize(genesis.chain_id, genesis.hash, genesis.initial_height, genesis.state())
    clock = [genesis.genesis_time_ms / 1000 + 60]
    node = NodeCore(store, genesis, dev_keypair("alice"), clock=lambda: clock[0])
    yield node
    store.close()


def test_a_block_whose_time_is_not_its_commits_median_is_refused_whatever_the_local_clock(core):
    core.produce_block()
    candidate = core.propose()
    header = types_pb2.Header.FromString(candidate.block.header)
    assert core.blocks.check(candidate.block).block_hash == candidate.block_hash  # judged without a clock
    header.time_ms += 1
    forged = types_pb2.Block()
    forged.CopyFrom(candidate.block)
    forged.header = header.SerializeToString()
    with pytest.raises(InvalidProposedBlock, match="median time of its last commit"):
        core.blocks.check(forged)
