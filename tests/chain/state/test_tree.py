"""The state tree on a real LevelDB: roots, reads, proofs, persistence, unwritten batches and cost."""

from __future__ import annotations

import math
import random
from itertools import count

import plyvel
import pytest

from chain.state.proof import INTERNAL_TAG, compute_root, hash_key, hash_value, internal_hash, leaf_hash, verify_proof
from chain.state.tree import EMPTY_ROOT, MAX_PINNED_UPDATES, CorruptNodeError, MissingNodeError, StateTree
from proto import proof_pb2


@pytest.fixture
def db(tmp_path):
    database = plyvel.DB(str(tmp_path / "nodes"), create_if_missing=True)
    yield database
    database.close()


def commit(tree: StateTree, db, root: bytes, changes) -> bytes:
    """Apply changes and write their batch, as block commit does."""
    batch = db.write_batch()
    new_root = tree.update(root, changes, batch)
    batch.write()
    return new_root


def accounts(size: int, prefix: bytes = b"account/") -> dict[bytes, bytes]:
    return {prefix + str(i).encode(): b"balance=%d" % (i * 7) for i in range(size)}


def keys_sharing_prefix(bits: int) -> tuple[bytes, bytes]:
    """Two keys whose paths share at least their first `bits` bits (found by search)."""
    seen: dict[int, bytes] = {}
    for i in count():
        key = b"k%d" % i
        prefix = int.from_bytes(hash_key(key), "big") >> (256 - bits)
        if prefix in seen:
            return seen[prefix], key
        seen[prefix] = key


def absent_keys_by_kind(tree: StateTree, root: bytes) -> tuple[bytes, bytes]:
    """An absent key whose path ends at an empty subtree, and one whose path ends at another key's leaf."""
    at_empty = at_leaf = None
    for i in count():
        key = b"absent/%d" % i
        proof = tree.prove(root, key)
        if proof.other_key_hash:
            at_leaf = at_leaf or key
        else:
            at_empty = at_empty or key
        if at_empty and at_leaf:
            return at_empty, at_leaf


def test_empty_tree_has_the_empty_root_and_proves_absence(db):
    tree = StateTree(db)
    assert tree.get(EMPTY_ROOT, b"alice") is None
    proof = tree.prove(EMPTY_ROOT, b"alice")
    assert proof.depth == 0
    assert verify_proof(EMPTY_ROOT, b"alice", None, proof)
    assert not verify_proof(EMPTY_ROOT, b"alice", b"", proof)


def test_a_single_key_tree_has_its_leaf_as_root(db):
    root = commit(StateTree(db), db, EMPTY_ROOT, {b"alice": b"100"})
    assert root == leaf_hash(hash_key(b"alice"), hash_value(b"100"))


def test_root_matches_the_reference_after_inserts_updates_and_deletes(db):
    tree = StateTree(db)
    state = accounts(300)
    root = commit(tree, db, EMPTY_ROOT, state)
    assert root == compute_root(state)
    changes = {b"account/%d" % i: (None if i % 3 == 0 else b"new%d" % i) for i in range(0, 300, 5)}
    changes.update({b"fresh/%d" % i: b"x" for i in range(40)})
    root = commit(tree, db, root, changes)
    for key, value in changes.items():
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
    assert root == compute_root(state)
    assert all(tree.get(root, key) == value for key, value in state.items())
    assert tree.get(root, b"account/0") is None


def test_root_is_independent_of_batching_and_order(tmp_path):
    state = accounts(200)
    roots = set()
    for attempt, batch_size in enumerate([200, 1, 7, 64]):
        db = plyvel.DB(str(tmp_path / f"db{attempt}"), create_if_missing=True)
        tree = StateTree(db)
        items = list(state.items())
        random.Random(attempt).shuffle(items)
        root = EMPTY_ROOT
        for start in range(0, len(items), batch_size):
            root = commit(tree, db, root, dict(items[start : start + batch_size]))
        roots.add(root)
        db.close()
    assert roots == {compute_root(state)}


def test_history_does_not_change_the_root(db):
    tree = StateTree(db)
    direct = commit(tree, db, EMPTY_ROOT, {b"a": b"1", b"b": b"2"})
    root = commit(tree, db, EMPTY_ROOT, {b"a": b"0", b"c": b"3", b"d": b"4"})
    root = commit(tree, db, root, {b"c": None, b"b": b"2", b"a": b"1"})
    root = commit(tree, db, root, {b"d": None})
    assert root == direct


def test_deleting_every_key_returns_the_empty_root(db):
    tree = StateTree(db)
    state = accounts(100)
    root = commit(tree, db, EMPTY_ROOT, state)
    keys = list(state)
    root = commit(tree, db, root, {key: None for key in keys[:60]})
    root = commit(tree, db, root, {key: None for key in keys[60:]})
    assert root == EMPTY_ROOT


def test_deleting_a_key_collapses_its_long_shared_prefix_to_the_remaining_leaf(db):
    tree = StateTree(db)
    first, second = keys_sharing_prefix(12)
    root = commit(tree, db, EMPTY_ROOT, {first: b"1", second: b"2"})
    assert root == compute_root({first: b"1", second: b"2"})
    assert tree.prove(root, first).depth >= 13
    root = commit(tree, db, root, {second: None})
    assert root == leaf_hash(hash_key(first), hash_value(b"1"))
    assert tree.prove(root, first).depth == 0


def test_a_leaf_moves_up_when_its_neighbour_is_deleted_inside_a_larger_tree(db):
    tree = StateTree(db)
    first, second = keys_sharing_prefix(12)
    state = accounts(50)
    state.update({first: b"1", second: b"2"})
    root = commit(tree, db, EMPTY_ROOT, state)
    del state[second]
    root = commit(tree, db, root, {second: None})
    assert root == compute_root(state)
    assert tree.prove(root, first).depth < 12


def test_setting_unchanged_values_or_deleting_absent_keys_keeps_the_root_and_hashes_nothing(db):
    tree = StateTree(db)
    state = accounts(100)
    root = commit(tree, db, EMPTY_ROOT, state)
    before = tree.node_hashes
    unchanged = {b"account/5": state[b"account/5"], b"ghost": None, b"account/9": state[b"account/9"]}
    same = commit(tree, db, root, unchanged)
    assert same == root
    assert tree.node_hashes == before


def test_membership_and_both_kinds_of_absence_proofs_verify(db):
    tree = StateTree(db)
    state = accounts(64)
    root = commit(tree, db, EMPTY_ROOT, state)
    for key, value in state.items():
        found, proof = tree.get_with_proof(root, key)
        assert found == value
        assert verify_proof(root, key, value, proof)
        assert verify_proof(root, key, value, proof.SerializeToString())
    for key in absent_keys_by_kind(tree, root):
        found, proof = tree.get_with_proof(root, key)
        assert found is None
        assert verify_proof(root, key, None, proof)


def tampered_proofs(proof: proof_pb2.StateProof):
    """Every single-field tampering of a valid proof, each of which must fail."""
    for index in range(len(proof.siblings)):
        changed = proof_pb2.StateProof.FromString(proof.SerializeToString())
        changed.siblings[index] = bytes([proof.siblings[index][0] ^ 1]) + proof.siblings[index][1:]
        yield changed
        dropped = proof_pb2.StateProof.FromString(proof.SerializeToString())
        del dropped.siblings[index]
        yield dropped
    for depth in (proof.depth - 1, proof.depth + 1, 300):
        if depth >= 0:
            yield proof_pb2.StateProof(
                depth=depth, sibling_bitmap=proof.sibling_bitmap, siblings=proof.siblings,
                other_key_hash=proof.other_key_hash, other_value_hash=proof.other_value_hash,
            )
    for bit in range(len(proof.sibling_bitmap) * 8):
        changed = proof_pb2.StateProof.FromString(proof.SerializeToString())
        bitmap = bytearray(proof.sibling_bitmap)
        bitmap[bit // 8] ^= 0x80 >> (bit % 8)
        changed.sibling_bitmap = bytes(bitmap)
        yield changed
    extra = proof_pb2.StateProof.FromString(proof.SerializeToString())
    extra.siblings.append(bytes(range(32)))
    yield extra
    other = proof_pb2.StateProof.FromString(proof.SerializeToString())
    other.other_key_hash = hash_key(b"someone else")
    other.other_value_hash = hash_value(b"")
    yield other
    if proof.other_value_hash:
        changed = proof_pb2.StateProof.FromString(proof.SerializeToString())
        changed.other_value_hash = hash_value(b"forged")
        yield changed
        changed = proof_pb2.StateProof.FromString(proof.SerializeToString())
        changed.ClearField("other_key_hash")
        changed.ClearField("other_value_hash")
        yield changed


def test_tampered_proofs_values_roots_and_keys_fail(db):
    tree = StateTree(db)
    state = accounts(64)
    root = commit(tree, db, EMPTY_ROOT, state)
    absent_at_empty, absent_at_leaf = absent_keys_by_kind(tree, root)
    cases = [(b"account/3", state[b"account/3"]), (absent_at_empty, None), (absent_at_leaf, None)]
    for key, value in cases:
        proof = tree.prove(root, key)
        assert verify_proof(root, key, value, proof)
        for changed in tampered_proofs(proof):
            assert not verify_proof(root, key, value, changed), changed
        assert not verify_proof(root, key, b"forged", proof)
        assert not verify_proof(root, key, None if value is not None else b"", proof)
        assert not verify_proof(compute_root({b"other": b"tree"}), key, value, proof)
        assert not verify_proof(root, key + b"!", value, proof)
    membership = tree.prove(root, b"account/3")
    assert not verify_proof(root, b"account/3", None, membership)


def test_empty_siblings_spelled_out_as_zero_hashes_fail(db):
    tree = StateTree(db)
    first, second = keys_sharing_prefix(12)
    root = commit(tree, db, EMPTY_ROOT, {first: b"1", second: b"2"})
    proof = tree.prove(root, first)
    assert len(proof.siblings) < proof.depth
    size = len(proof.sibling_bitmap)
    every_level = ((1 << proof.depth) - 1) << (size * 8 - proof.depth)
    spelled_out = proof_pb2.StateProof(
        depth=proof.depth,
        sibling_bitmap=every_level.to_bytes(size, "big"),
        siblings=[EMPTY_ROOT] * (proof.depth - 1) + list(proof.siblings),
    )
    assert not verify_proof(root, first, b"1", spelled_out)


def test_proofs_through_nodes_a_canonical_tree_cannot_hold_fail():
    left_key = next(b"k%d" % i for i in count() if hash_key(b"k%d" % i)[0] < 0x80)
    right_key = next(b"k%d" % i for i in count() if hash_key(b"k%d" % i)[0] >= 0x80)
    left_leaf = leaf_hash(hash_key(left_key), hash_value(b"1"))
    # A lone leaf beside an empty subtree (canonically it would be the root itself).
    uncollapsed = internal_hash(left_leaf, EMPTY_ROOT)
    assert not verify_proof(uncollapsed, left_key, b"1", proof_pb2.StateProof(depth=1, sibling_bitmap=b"\x00"))
    # A leaf on the wrong side of its path, offered as the leaf that excludes a key.
    misplaced = internal_hash(leaf_hash(hash_key(right_key), hash_value(b"2")), left_leaf)
    absence = proof_pb2.StateProof(
        depth=1, sibling_bitmap=b"\x80", siblings=[left_leaf],
        other_key_hash=hash_key(right_key), other_value_hash=hash_value(b"2"),
    )
    assert not verify_proof(misplaced, left_key, None, absence)


@pytest.mark.parametrize("proof", [None, "proof", 7, b"\xff\xff\xff", b"\x0a", object()])
def test_verification_of_garbage_returns_false_without_raising(proof):
    root = compute_root({b"alice": b"1", b"bob": b"2"})
    assert verify_proof(root, b"alice", b"1", proof) is False


def test_verification_with_malformed_arguments_returns_false():
    state = {b"alice": b"1", b"bob": b"2"}
    root = compute_root(state)
    bob_leaf = leaf_hash(hash_key(b"bob"), hash_value(b"2"))
    proof = proof_pb2.StateProof(depth=1, sibling_bitmap=b"\x80", siblings=[bob_leaf])
    assert verify_proof(root[:31], b"alice", b"1", proof) is False
    assert verify_proof(root, "alice", b"1", proof) is False
    assert verify_proof(root, b"alice", 1, proof) is False
    assert verify_proof(None, b"alice", b"1", proof) is False


def test_old_roots_stay_readable_and_provable_after_later_updates(db):
    tree = StateTree(db)
    history = []
    state: dict[bytes, bytes] = {}
    root = EMPTY_ROOT
    for block in range(6):
        changes = {b"account/%d" % ((block * 13 + i) % 40): b"block%d" % block for i in range(10)}
        root = commit(tree, db, root, changes)
        state.update(changes)
        history.append((root, dict(state)))
    for old_root, old_state in history:
        for i in range(45):
            key = b"account/%d" % i
            value = tree.get(old_root, key)
            assert value == old_state.get(key)
            assert verify_proof(old_root, key, value, tree.prove(old_root, key))


def test_a_reopened_database_gives_the_same_roots_values_and_proofs(tmp_path):
    path = str(tmp_path / "nodes")
    db = plyvel.DB(path, create_if_missing=True)
    tree = StateTree(db)
    state = accounts(200)
    first = commit(tree, db, EMPTY_ROOT, state)
    second = commit(tree, db, first, {b"account/1": None, b"carol": b"5"})
    keys = (b"account/1", b"carol", b"account/2")
    answers = {(root, key): tree.get_with_proof(root, key) for root in (first, second) for key in keys}
    db.close()

    db = plyvel.DB(path)
    reopened = StateTree(db)
    for (root, key), (value, proof) in answers.items():
        assert reopened.get_with_proof(root, key) == (value, proof)
    third = commit(reopened, db, second, {b"dave": b"9"})
    del state[b"account/1"]
    assert third == compute_root({**state, b"carol": b"5", b"dave": b"9"})
    db.close()


def test_works_on_a_prefixed_database(db):
    nodes = db.prefixed_db(b"state/")
    tree = StateTree(nodes)
    batch = nodes.write_batch()
    root = tree.update(EMPTY_ROOT, accounts(20), batch)
    batch.write()
    assert root == compute_root(accounts(20))
    assert all(key.startswith(b"state/") for key, _ in db)
    assert StateTree(nodes).get(root, b"account/4") == accounts(20)[b"account/4"]


def test_unwritten_batches_are_readable_and_can_be_built_on_before_they_are_written(db):
    tree = StateTree(db, cache_size=4)  # far smaller than one update: pinning, not caching, must carry it
    state = accounts(300)
    first_batch, second_batch = db.write_batch(), db.write_batch()
    first = tree.update(EMPTY_ROOT, state, first_batch)
    second = tree.update(first, {b"account/7": None, b"eve": b"1"}, second_batch)
    assert tree.get(first, b"account/7") == state[b"account/7"]
    assert verify_proof(second, b"eve", b"1", tree.prove(second, b"eve"))
    first_batch.write()
    second_batch.write()
    cold = StateTree(db)
    assert cold.get(second, b"account/8") == state[b"account/8"]
    assert cold.get(second, b"account/7") is None


def test_a_dropped_batch_never_leaves_a_committed_root_incomplete(tmp_path):
    path = str(tmp_path / "nodes")
    db = plyvel.DB(path, create_if_missing=True)
    tree = StateTree(db)
    base = commit(tree, db, EMPTY_ROOT, accounts(100))
    # A proposal that loses its round: its nodes reach the cache, never the disk.
    dropped = tree.update(base, {b"account/1": b"shared", b"account/2": b"only here"}, db.write_batch())
    # The committed block creates some of the same nodes (the leaf for account/1) again.
    committed = commit(tree, db, base, {b"account/1": b"shared", b"account/3": b"other"})
    db.close()

    db = plyvel.DB(path)
    reopened = StateTree(db)
    for i in range(100):
        key = b"account/%d" % i
        value = reopened.get(committed, key)
        assert verify_proof(committed, key, value, reopened.prove(committed, key))
    assert reopened.get(committed, b"account/1") == b"shared"
    with pytest.raises(MissingNodeError):
        reopened.get(dropped, b"account/2")
    db.close()


def test_updates_are_unpinned_once_written_and_dropped_ones_after_a_bounded_number_of_updates(db):
    tree = StateTree(db)
    root = commit(tree, db, EMPTY_ROOT, accounts(10))
    tree.update(root, {b"y": b"2"}, db.write_batch())  # dropped: its root never reaches the disk
    for block in range(MAX_PINNED_UPDATES - 2):
        root = commit(tree, db, root, {b"z": b"%d" % block})
    tree.update(root, {}, db.write_batch())
    assert len(tree._pinned) == 1  # only the dropped update: every written one was released
    tree.update(root, {}, db.write_batch())
    assert tree._pinned == []


def test_a_node_stored_with_wrong_content_is_reported_as_corrupt(db):
    tree = StateTree(db)
    root = commit(tree, db, EMPTY_ROOT, accounts(10))
    db.put(root, INTERNAL_TAG + bytes(range(64)))
    with pytest.raises(CorruptNodeError):
        StateTree(db).get(root, b"account/1")


def test_a_root_that_was_never_stored_raises_missing_node(db):
    with pytest.raises(MissingNodeError):
        StateTree(db).get(hash_value(b"no such root"), b"alice")


def test_with_a_cache_of_three_entries_per_key_an_update_reads_only_the_old_leaves(db):
    tree = StateTree(db, cache_size=3 * 2000)
    root = commit(tree, db, EMPTY_ROOT, accounts(2000))
    before = tree.node_reads
    commit(tree, db, root, {b"account/%d" % (i * 13): b"changed" for i in range(100)})
    assert tree.node_reads - before == 100


def average_hashes_per_single_key_change(size: int, tmp_path, samples: int = 40) -> float:
    db = plyvel.DB(str(tmp_path / f"cost{size}"), create_if_missing=True)
    tree = StateTree(db)
    root = commit(tree, db, EMPTY_ROOT, accounts(size))
    costs = []
    for i in range(samples):
        before = tree.node_hashes
        root = commit(tree, db, root, {b"account/%d" % (i * 97 % size): b"changed%d" % i})
        costs.append(tree.node_hashes - before)
    db.close()
    return sum(costs) / len(costs)


def test_cost_of_one_changed_key_grows_with_depth_not_state_size(tmp_path):
    small = average_hashes_per_single_key_change(625, tmp_path)
    large = average_hashes_per_single_key_change(10_000, tmp_path)
    # One new leaf plus the internal nodes on its path, about log2(n) + 1 of them.
    assert math.log2(10_000) - 2 <= large <= math.log2(10_000) + 5
    # 16 times the keys costs about log2(16) = 4 more hashes, not 16 times as many.
    assert 1 <= large - small <= 8


def test_cost_of_a_block_grows_with_changed_keys_times_depth(db):
    tree = StateTree(db)
    root = commit(tree, db, EMPTY_ROOT, accounts(10_000))
    for changed in (1, 10, 100, 1000):
        before = tree.node_hashes
        root = commit(tree, db, root, {b"account/%d" % (i * 7 % 10_000): b"block%d" % changed for i in range(changed)})
        cost = tree.node_hashes - before
        # Paths share their top levels, so a block hashes fewer than changed * (log2(n) + 1) nodes.
        assert changed <= cost <= changed * (math.log2(10_000) + 5)
