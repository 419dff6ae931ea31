"""The sign state: a validator never signs twice at one height, round and step, across restarts and lost databases."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.consensus.signer import Signer
from chain.consensus.signstate import STEP_ORDER, SignRefused, SignState, SignStateError, sign_state_path
from chain.crypto import dev_keypair
from proto import types_pb2

CHAIN, GENESIS = "inferchain-test", b"\x01" * 32
ALICE = dev_keypair("alice")
BLOCK_A, BLOCK_B = b"\xaa" * 32, b"\xbb" * 32


def state_at(path, chain=CHAIN, genesis=GENESIS) -> SignState:
    return SignState(path, chain, genesis, ALICE.public_key)


def test_a_new_state_allows_anything_and_records_it_durably(tmp_path):
    path = tmp_path / "sign_state.json"
    state = state_at(path)
    assert state.authorize(5, 0, "prevote", BLOCK_A) is None
    state.record(5, 0, "prevote", BLOCK_A, b"signed")
    reopened = state_at(path)
    assert reopened.last.position == (5, 0, STEP_ORDER["prevote"])
    assert reopened.authorize(5, 0, "prevote", BLOCK_A) == b"signed"  # the same vote: the bytes signed then


@pytest.mark.parametrize("height, round_number, step, block_hash", [
    (5, 0, "prevote", BLOCK_B),   # the same step, another block: a double-sign
    (5, 0, "prevote", b""),       # nil instead of the block
    (5, 0, "propose", BLOCK_A),   # an earlier step of the same round
    (4, 9, "precommit", BLOCK_A),  # an earlier height
    (1, 0, "propose", BLOCK_A),   # a resync from genesis
])
def test_anything_at_or_below_the_last_signature_but_the_same_message_is_refused(
        tmp_path, height, round_number, step, block_hash):
    state = state_at(tmp_path / "s.json")
    state.record(5, 0, "prevote", BLOCK_A, b"signed")
    with pytest.raises(SignRefused, match="double-sign"):
        state.authorize(height, round_number, step, block_hash)


def test_later_steps_rounds_and_heights_are_allowed(tmp_path):
    state = state_at(tmp_path / "s.json")
    state.record(5, 0, "prevote", BLOCK_A, b"signed")
    assert state.authorize(5, 0, "precommit", BLOCK_B) is None
    assert state.authorize(5, 1, "propose", BLOCK_B) is None
    assert state.authorize(6, 0, "prevote", b"") is None


@given(st.lists(st.tuples(st.integers(1, 6), st.integers(0, 3), st.sampled_from(sorted(STEP_ORDER)),
                          st.sampled_from([BLOCK_A, BLOCK_B, b""])), max_size=30))
@settings(max_examples=60, deadline=None)
def test_no_sequence_of_requests_gets_two_different_signatures_for_one_slot(tmp_path_factory, requests):
    path = tmp_path_factory.mktemp("signstate") / "s.json"
    signed: dict[tuple, bytes] = {}
    for height, round_number, step, block_hash in requests:
        state = state_at(path)  # a restart between any two requests
        try:
            earlier = state.authorize(height, round_number, step, block_hash)
        except SignRefused:
            continue
        if earlier is None:
            state.record(height, round_number, step, block_hash, block_hash)
        slot = (height, round_number, step)
        assert signed.setdefault(slot, block_hash) == block_hash


def test_a_state_of_another_genesis_is_not_applied(tmp_path):
    path = tmp_path / "s.json"
    state_at(path).record(50, 0, "precommit", BLOCK_A, b"x")
    assert state_at(path, genesis=b"\x02" * 32).last is None


@pytest.mark.parametrize("content", [b"{", b"[]", b'{"version": 1}', b"\xff" * 10, b"{}" + b" " * 70_000])
def test_an_unreadable_state_stops_the_node_with_one_line_instead_of_being_replaced(tmp_path, content):
    path = tmp_path / "s.json"
    path.write_bytes(content)
    with pytest.raises(SignStateError, match="sign state") as raised:
        state_at(path)
    assert "\n" not in str(raised.value)
    assert path.read_bytes() == content


def test_a_state_of_another_validator_key_is_refused(tmp_path):
    path = tmp_path / "s.json"
    SignState(path, CHAIN, GENESIS, dev_keypair("bob").public_key).record(3, 0, "prevote", b"", b"x")
    with pytest.raises(SignStateError, match="another validator key"):
        state_at(path)


def test_a_failed_write_signs_nothing(tmp_path):
    directory = tmp_path / "keys"
    signer = Signer(ALICE, CHAIN, state_at(directory / "s.json"))
    directory.write_bytes(b"")  # where the directory should be, a file: every write fails
    with pytest.raises(SignStateError, match="nothing was signed"):
        signer.vote(types_pb2.VOTE_TYPE_PREVOTE, 1, 0, BLOCK_A)
    assert signer.state.last is None


def test_the_signer_sends_the_first_signature_again_and_refuses_a_second_one(tmp_path):
    signer = Signer(ALICE, CHAIN, state_at(tmp_path / "s.json"))
    first = signer.vote(types_pb2.VOTE_TYPE_PRECOMMIT, 7, 1, BLOCK_A, time_ms=1_000)
    again = signer.vote(types_pb2.VOTE_TYPE_PRECOMMIT, 7, 1, BLOCK_A, time_ms=2_000)  # another clock reading
    assert again == first
    assert signer.vote(types_pb2.VOTE_TYPE_PRECOMMIT, 7, 1, BLOCK_B) is None
    assert signer.refused == 1
    assert json.loads((tmp_path / "s.json").read_text())["height"] == "7"


def test_a_key_file_keeps_its_sign_state_beside_it_and_a_dev_key_in_the_chain_directory(tmp_path):
    assert sign_state_path(tmp_path / "chain", None, CHAIN) == tmp_path / "chain" / "sign_state.json"
    key = tmp_path / "keys" / "v1.json"
    assert sign_state_path(tmp_path / "chain", key, CHAIN).parent == key.parent.resolve()
