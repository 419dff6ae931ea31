"""Properties of the state tree: its root is the reference root of its contents, whatever the history,
and its proofs pass exactly when they should."""

from __future__ import annotations

import tempfile
from contextlib import contextmanager

import plyvel
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.state.proof import compute_root, verify_proof
from chain.state.tree import EMPTY_ROOT, StateTree
from proto import proof_pb2

# Short keys from a small alphabet, so that later batches update and delete earlier keys.
keys = st.binary(max_size=1).map(lambda suffix: b"k" + suffix)
values = st.binary(max_size=6)
batches = st.dictionaries(keys, st.one_of(st.none(), values), max_size=24)
# A cache of 2 nodes evicts nearly everything, so reads go to disk and to the pinned updates.
cache_sizes = st.sampled_from([2, 100_000])
SETTINGS = settings(deadline=None, max_examples=150)


@contextmanager
def node_store():
    """A fresh LevelDB per example (hypothesis runs many examples in one test)."""
    with tempfile.TemporaryDirectory() as path:
        db = plyvel.DB(path, create_if_missing=True)
        try:
            yield db
        finally:
            db.close()


def apply(state: dict[bytes, bytes], changes: dict[bytes, bytes | None]) -> dict[bytes, bytes]:
    new_state = dict(state)
    for key, value in changes.items():
        if value is None:
            new_state.pop(key, None)
        else:
            new_state[key] = value
    return new_state


@SETTINGS
@given(history=st.lists(batches, max_size=8), cache_size=cache_sizes)
def test_root_is_the_reference_root_after_any_sequence_of_batches(history, cache_size):
    with node_store() as db:
        tree = StateTree(db, cache_size=cache_size)
        state: dict[bytes, bytes] = {}
        root = EMPTY_ROOT
        for changes in history:
            batch = db.write_batch()
            root = tree.update(root, changes, batch)
            batch.write()
            state = apply(state, changes)
            assert root == compute_root(state)
        assert all(tree.get(root, key) == value for key, value in state.items())
        assert (root == EMPTY_ROOT) == (not state)


@SETTINGS
@given(
    state=st.dictionaries(keys, values, max_size=24),
    order=st.randoms(use_true_random=False),
    cache_size=cache_sizes,
)
def test_root_does_not_depend_on_batching_or_order(state, order, cache_size):
    items = list(state.items())
    order.shuffle(items)
    with node_store() as db:
        tree = StateTree(db, cache_size=cache_size)
        root = EMPTY_ROOT
        position = 0
        while position < len(items):
            size = order.randint(1, 5)
            root = tree.update(root, dict(items[position : position + size]), db.write_batch())
            position += size
        assert root == tree.update(EMPTY_ROOT, state, db.write_batch()) == compute_root(state)
        assert tree.update(root, {key: None for key in state}, db.write_batch()) == EMPTY_ROOT


@SETTINGS
@given(history=st.lists(st.tuples(batches, st.booleans()), max_size=8), cache_size=cache_sizes)
def test_dropped_batches_never_break_committed_roots(history, cache_size):
    """Each update is written or dropped at random; the last committed root must be whole on disk."""
    with node_store() as db:
        tree = StateTree(db, cache_size=cache_size)
        state: dict[bytes, bytes] = {}
        root = EMPTY_ROOT
        for changes, written in history:
            batch = db.write_batch()
            new_root = tree.update(root, changes, batch)
            if written:
                batch.write()
                root, state = new_root, apply(state, changes)
        cold = StateTree(db)
        for key in [b"k"] + [b"k" + bytes([byte]) for byte in range(256)]:
            value, proof = cold.get_with_proof(root, key)
            assert value == state.get(key)
            assert verify_proof(root, key, value, proof)


@SETTINGS
@given(state=st.dictionaries(keys, values, min_size=1, max_size=24), key=keys, forged=values)
def test_proofs_verify_for_the_true_value_only(state, key, forged):
    with node_store() as db:
        tree = StateTree(db)
        root = tree.update(EMPTY_ROOT, state, db.write_batch())
        value, proof = tree.get_with_proof(root, key)
        assert value == state.get(key)
        assert verify_proof(root, key, value, proof)
        assert verify_proof(root, key, value, proof.SerializeToString())
        if forged != value:
            assert not verify_proof(root, key, forged, proof)
        if value is not None:
            assert not verify_proof(root, key, None, proof)


def _proof_fields():
    hashes = st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40))
    return st.builds(
        proof_pb2.StateProof,
        depth=st.integers(min_value=0, max_value=300),
        sibling_bitmap=st.binary(max_size=40),
        siblings=st.lists(hashes, max_size=8),
        other_key_hash=st.one_of(st.just(b""), hashes),
        other_value_hash=st.one_of(st.just(b""), hashes),
    )


@SETTINGS
@given(
    state=st.dictionaries(keys, values, min_size=1, max_size=24),
    key=keys,
    claimed=st.one_of(st.none(), values),
    proof=st.one_of(st.binary(max_size=200), _proof_fields()),
)
def test_arbitrary_proofs_never_raise_and_pass_only_when_canonical(state, key, claimed, proof):
    with node_store() as db:
        tree = StateTree(db)
        root = tree.update(EMPTY_ROOT, state, db.write_batch())
        true_proof = tree.prove(root, key)
    verdict = verify_proof(root, key, claimed, proof)
    assert isinstance(verdict, bool)
    if verdict:
        message = proof if isinstance(proof, proof_pb2.StateProof) else proof_pb2.StateProof.FromString(proof)
        assert message == true_proof
        assert claimed == state.get(key)


@SETTINGS
@given(
    state=st.dictionaries(keys, values, min_size=2, max_size=24),
    key=keys,
    position=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_flipping_any_bit_of_a_serialized_proof_makes_it_fail_or_leaves_it_equal(state, key, position, bit):
    with node_store() as db:
        tree = StateTree(db)
        root = tree.update(EMPTY_ROOT, state, db.write_batch())
        value, proof = tree.get_with_proof(root, key)
    encoded = bytearray(proof.SerializeToString())
    if not encoded:
        return
    encoded[position % len(encoded)] ^= 1 << bit
    if verify_proof(root, key, value, bytes(encoded)):
        # Only a flip that protobuf parses back to the same message may pass (e.g. into an unknown field).
        assert proof_pb2.StateProof.FromString(bytes(encoded)) == proof
