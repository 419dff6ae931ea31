"""runtime/randomness.py: the RANDAO mix from hash-onion reveals; each bad reveal makes the block invalid."""

from __future__ import annotations

from hashlib import blake2b

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.crypto import Keypair
from chain.node.randao import Randao
from proto import state_pb2
from runtime import randomness, system
from runtime.block import InvalidBlock
from runtime.executive import apply_block
from runtime.primitives import BlockContext
from runtime.state import MemoryState
from tests.runtime.helpers import ACCOUNTS, AUTHOR, GENESIS_HASH, assert_events_declared, genesis_state

# The same key as AUTHOR (tests/runtime/helpers.py derives its accounts from these seeds).
AUTHOR_KEY = Keypair.from_seed(blake2b(b"account 0", digest_size=32).digest())
ONIONS = Randao(AUTHOR_KEY)


def apply(state: MemoryState, reveal: bytes, author: bytes = AUTHOR.public_key):
    """Apply an empty block carrying `reveal`; its receipts (raises InvalidBlock, writing nothing)."""
    chain = system.read_chain(state)
    context = BlockContext(chain.height + 1, chain.time_ms + 1000, author, randao_reveal=reveal)
    writes, receipts = apply_block(state, context, [])
    assert_events_declared(receipts)
    state.apply(writes.changes())
    return receipts


def test_the_key_matches_the_runtime_test_author():
    assert AUTHOR_KEY.public_key == AUTHOR.public_key


def test_a_proposer_that_never_revealed_may_leave_the_reveal_empty_and_the_mix_stays():
    state = genesis_state()
    assert randomness.read_mix(state) == randomness.initial_mix(GENESIS_HASH)
    apply(state, b"")
    assert randomness.read_mix(state) == randomness.initial_mix(GENESIS_HASH)
    assert randomness.read_record(state, AUTHOR.public_key) is None


def test_the_first_reveal_registers_the_tip_and_adds_nothing_to_the_mix():
    state = genesis_state()
    tip = ONIONS.reveal(state)
    assert tip == ONIONS.layer(0, randomness.ONION_LAYERS)
    receipts = apply(state, tip)
    assert [event.name for event in receipts.block_events] == ["OnionRegistered"]
    assert randomness.read_mix(state) == randomness.initial_mix(GENESIS_HASH)
    assert randomness.read_record(state, AUTHOR.public_key) == state_pb2.RandaoRecord(last=tip, revealed=0, onion=0)


def test_each_later_block_reveals_the_next_layer_inward_and_moves_the_mix():
    state = genesis_state()
    apply(state, ONIONS.reveal(state))
    mix = randomness.read_mix(state)
    for revealed in range(1, 4):
        reveal = ONIONS.reveal(state)
        assert randomness.layer(reveal) == randomness.read_record(state, AUTHOR.public_key).last
        apply(state, reveal)
        mix = randomness.next_mix(mix, reveal)
        assert randomness.read_mix(state) == mix
        assert randomness.read_record(state, AUTHOR.public_key).revealed == revealed


@pytest.mark.parametrize(
    "reveal, error",
    [(b"", "MissingReveal"), (bytes(32), "WrongReveal"), (bytes(31), "MalformedReveal"), (bytes(33), "MalformedReveal")],
)
def test_a_committed_proposer_must_reveal_the_preimage_or_its_block_is_invalid(reveal, error):
    state = genesis_state()
    apply(state, ONIONS.reveal(state))
    before = dict(state.iter_prefix())
    with pytest.raises(InvalidBlock, match="reveal|RANDAO|preimage|onion"):
        apply(state, reveal)
    assert dict(state.iter_prefix()) == before
    with pytest.raises(randomness.RandomnessError) as raised:
        randomness.check_reveal(randomness.read_record(state, AUTHOR.public_key), reveal)
    assert raised.value.name == error


def test_a_malformed_reveal_is_refused_even_from_a_proposer_with_no_commitment():
    state = genesis_state()
    with pytest.raises(InvalidBlock, match="32 bytes"):
        apply(state, b"\x01" * 7)


def test_an_exhausted_onion_is_followed_by_the_tip_of_the_next_one_which_adds_nothing():
    state = genesis_state()
    apply(state, ONIONS.reveal(state))
    used_up = state_pb2.RandaoRecord(last=ONIONS.layer(0, 0), revealed=randomness.ONION_LAYERS, onion=0)
    state.apply({randomness.RECORD_PREFIX + AUTHOR.public_key: used_up.SerializeToString()})
    with pytest.raises(InvalidBlock, match="used up"):
        apply(state, b"")
    mix = randomness.read_mix(state)
    tip = ONIONS.reveal(state)
    assert tip == ONIONS.layer(1, randomness.ONION_LAYERS)
    apply(state, tip)
    assert randomness.read_mix(state) == mix
    assert randomness.read_record(state, AUTHOR.public_key) == state_pb2.RandaoRecord(last=tip, revealed=0, onion=1)
    apply(state, ONIONS.reveal(state))
    assert randomness.read_mix(state) != mix


def test_other_proposers_do_not_touch_a_validators_commitment():
    state = genesis_state()
    apply(state, ONIONS.reveal(state))
    record = randomness.read_record(state, AUTHOR.public_key)
    apply(state, b"", author=ACCOUNTS[1].public_key)
    assert randomness.read_record(state, AUTHOR.public_key) == record


def test_the_queries_answer_the_mix_and_a_record():
    state = genesis_state()
    apply(state, ONIONS.reveal(state))
    apply(state, ONIONS.reveal(state))
    assert randomness.query_mix(state, state_pb2.NoArguments()).mix == randomness.read_mix(state)
    record = randomness.query_record(state, state_pb2.AccountQuery(account=AUTHOR.public_key))
    assert record.revealed == 1
    with pytest.raises(KeyError):
        randomness.query_record(state, state_pb2.AccountQuery(account=ACCOUNTS[2].public_key))


def test_the_mix_recipe_matches_the_vector_in_the_protocol_doc():
    genesis = bytes.fromhex("11" * 32)
    assert randomness.initial_mix(genesis).hex() == "dc1c13131b03b39c2f6286c7704eaa1d2af990283eeccbdc13e720e78520c6d1"
    assert randomness.next_mix(randomness.initial_mix(genesis), bytes.fromhex("22" * 32)).hex() == (
        "8e47c4a9d9ba556e645101b9dab4eb79258a0174357f7e6999507b2d4f409ab0"
    )
    assert randomness.layer(bytes.fromhex("22" * 32)).hex() == (
        "bb461f3d269c8f9befb167af0b80b118c3c441c29d9c51b44e40b1877cd6bd7b"
    )
    from tests.nodes import ROOT

    doc = (ROOT / "docs" / "protocol.md").read_text()
    for vector in ("dc1c13131b03b39c2f6286c7704eaa1d2af990283eeccbdc13e720e78520c6d1",
                   "8e47c4a9d9ba556e645101b9dab4eb79258a0174357f7e6999507b2d4f409ab0",
                   "bb461f3d269c8f9befb167af0b80b118c3c441c29d9c51b44e40b1877cd6bd7b"):
        assert vector in doc


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reveal=st.binary(max_size=64))
def test_no_reveal_but_the_preimage_is_accepted_from_a_committed_proposer(reveal):
    state = genesis_state()
    apply(state, ONIONS.reveal(state))
    expected = ONIONS.reveal(state)
    before = dict(state.iter_prefix())
    if reveal == expected:
        apply(state, reveal)
        return
    with pytest.raises(InvalidBlock):
        apply(state, reveal)
    assert dict(state.iter_prefix()) == before
