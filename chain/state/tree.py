"""The state tree: a compressed binary sparse Merkle tree whose nodes live in LevelDB by hash.

Hashing and the canonical shape are defined in chain/state/proof.py. What this module adds:

Storage. Each node is stored under its hash, as the bytes that were hashed:
    leaf      0x00 || key_hash || value_hash || value   (the hash covers the first 65 bytes)
    internal  0x01 || left || right
The empty subtree (32 zero bytes) is never stored. Leaves keep the value itself, so `get` and
`get_with_proof` answer for any root, old ones included, without the caller's flat key/value map.
Nodes are immutable: an update writes new nodes beside the old ones and never deletes, so every root
ever committed stays readable and provable. Pruning (reference counts, or a sweep from the roots
still wanted) is future work; until then the node store grows with every changed path.

Cost. `update` applies a whole change set in one recursive pass over the sorted key hashes: a subtree
that no change reaches is kept by its hash, and each node on a changed path is hashed once, however
many changes pass through it. A leaf's hash does not depend on its depth, so moving a leaf up when
its sibling empties costs no hashing. With n keys, k changed keys hash about k * log2(n / k) + 2k
nodes (8 per key for 2,000 of 100,000): the state size enters only through the depth, where a plain
256-level tree would hash 256 nodes per key (DESIGN.md section 4).

Cache. A cache holds internal nodes only (about 215 bytes each): every path crosses them, while a
changed key's old leaf is read once and replaced. Nodes an update replaces leave the cache at once,
so it holds the live tree. A tree of n keys has about 1.44 n internal nodes (n / ln 2); with
cache_size at least 3 n (the cache runs as two halves), an update of k keys reads only the k old
leaves from disk. Measured with bench/state_tree.py (100,000 keys, blocks of 2,000): cache_size
100,000 reads 3 to 4 nodes per changed key, 300,000 reads 1.05 and updates 1.4 to 1.5 times as fast.

Unwritten batches. `update` puts its nodes into the caller's write batch and also keeps them in
memory, so that later calls can read a root whose batch is not written yet (a block built on a block
not yet committed). Two facts keep this sound:
- A node's record is determined by its hash, so a cached node can never be wrong, even when the
  batch that carried it was dropped; it can only be missing from disk.
- Every node an update creates is put into that update's batch, even when an earlier (perhaps dropped)
  batch created the same node. Skipping "known" nodes would let a committed root depend on a node
  that only a dropped batch carried.
Hence a root whose batch was written, on top of roots whose batches were written, is complete on disk.
The caller must not write a batch built on a root whose own batch was dropped. Nodes of the last
MAX_PINNED_UPDATES updates are pinned in memory (exempt from cache eviction) until their new root is
found on disk, which, by the argument above, means all their nodes are there too.

Threads: call `update` from one thread; `get` and `prove` may run on others beside it (each cache
operation is atomic under the GIL, and each tolerates the others).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter

from chain.state.proof import EMPTY_ROOT, HASH_SIZE, INTERNAL_TAG, KEY_BITS, LEAF_TAG, hash_key
from proto import proof_pb2

__all__ = ["EMPTY_ROOT", "MAX_PINNED_UPDATES", "MissingNodeError", "CorruptNodeError", "StateTree"]

# An update whose root is still not on disk after this many later updates is taken as dropped
# (a proposal that lost its round); its internal nodes stay in the cache until evicted.
MAX_PINNED_UPDATES = 16

_LEAF = LEAF_TAG[0]
_HASHED_SIZE = 1 + 2 * HASH_SIZE
_key_of = itemgetter(0)
# Copying a prepared hasher costs about two thirds of building one with keyword arguments (measured here).
_HASHER = hashlib.blake2b(digest_size=HASH_SIZE)


class MissingNodeError(LookupError):
    """A node that a root refers to is neither on disk nor held in memory."""


class CorruptNodeError(ValueError):
    """A stored node cannot be part of a valid tree."""


class StateTree:
    """Roots, updates, reads and proofs over the nodes stored in one LevelDB (or prefixed) database."""

    def __init__(self, node_db, cache_size: int = 100_000):
        self._db = node_db
        self._cache = _NodeCache(cache_size)
        self._pinned: list[tuple[int, bytes, dict[bytes, bytes]]] = []  # (update number, new root, its nodes)
        self._updates = 0
        self.node_hashes = 0  # node hashes computed by update() so far: the cost the tests measure
        self.node_reads = 0  # nodes read from disk so far (cache and pinned misses)

    def update(self, root: bytes, changes: Mapping[bytes, bytes | None], batch) -> bytes:
        """Apply changes (None deletes) to the tree at `root`; put the new nodes into `batch`; return the new root."""
        self._updates += 1
        self._unpin_written()
        if not changes:
            return root
        update_pass = _UpdatePass(self._load, changes)
        new_root = update_pass.apply(root)
        for node_hash, record in update_pass.created.items():
            batch.put(node_hash, record)
        self._hold(new_root, update_pass)
        self.node_hashes += len(update_pass.created)
        return new_root

    def get(self, root: bytes, key: bytes) -> bytes | None:
        """The value of `key` under `root`, or None when the key is absent."""
        key_hash = hash_key(key)
        _, record = self._descend(root, key_hash)
        return _value_of(record, key_hash)

    def prove(self, root: bytes, key: bytes) -> proof_pb2.StateProof:
        """A proof of the key's value (or of its absence) under `root`, for chain.state.proof.verify_proof."""
        return self.get_with_proof(root, key)[1]

    def get_with_proof(self, root: bytes, key: bytes) -> tuple[bytes | None, proof_pb2.StateProof]:
        """The value of `key` under `root` (None when absent) and the proof of it, from one walk down the tree."""
        key_hash = hash_key(key)
        siblings, record = self._descend(root, key_hash)
        return _value_of(record, key_hash), _encode_proof(siblings, record, key_hash)

    def _descend(self, root: bytes, key_hash: bytes) -> tuple[list[bytes], bytes | None]:
        """Follow the key's path: the siblings passed (root first) and the record where it ends (None: empty)."""
        path = int.from_bytes(key_hash, "big")
        siblings: list[bytes] = []
        node = root
        for depth in range(KEY_BITS + 1):
            if node == EMPTY_ROOT:
                return siblings, None
            record = self._load(node)
            if record[0] == _LEAF:
                return siblings, record
            if depth == KEY_BITS:
                break
            if (path >> (KEY_BITS - 1 - depth)) & 1:
                siblings.append(record[1:33])
                node = record[33:65]
            else:
                siblings.append(record[33:65])
                node = record[1:33]
        raise CorruptNodeError(f"state root {root.hex()} has an internal node below depth {KEY_BITS}")

    def _load(self, node_hash: bytes) -> bytes:
        """The record of a node, from memory or disk."""
        record = self._cache.get(node_hash)
        if record is not None:
            return record
        record = self._pinned_record(node_hash)
        if record is None:
            record = self._read(node_hash)
        # Leaves are never cached: a changed key costs one read of its old leaf, and the cache holds
        # the internal nodes instead, which many paths cross (about 1.44 per key in the state).
        if record[0] != _LEAF:
            self._cache.add(node_hash, record)
        return record

    def _read(self, node_hash: bytes) -> bytes:
        """A node's record from disk, checked against its hash (a read costs some 30 hashes)."""
        self.node_reads += 1
        record = self._db.get(node_hash)
        if record is None:
            raise MissingNodeError(
                f"state node {node_hash.hex()} is not in the node store: was the batch that carried it dropped?"
            )
        if not _is_well_formed(record) or _node_hash(record) != node_hash:
            raise CorruptNodeError(f"state node {node_hash.hex()} is stored with content of another hash")
        return record

    def _hold(self, new_root: bytes, update_pass: _UpdatePass) -> None:
        """Keep a pass's nodes readable before its batch is written: all pinned, the internal ones cached."""
        created = update_pass.created
        if created:
            self._pinned.append((self._updates, new_root, created))
        # Replaced nodes only serve old roots now; dropping them keeps the cache for the live tree.
        self._cache.discard_all(update_pass.replaced)
        self._cache.add_all({node_hash: record for node_hash, record in created.items() if record[0] != _LEAF})

    def _pinned_record(self, node_hash: bytes) -> bytes | None:
        for _, _, nodes in reversed(self._pinned):
            record = nodes.get(node_hash)
            if record is not None:
                return record
        return None

    def _unpin_written(self) -> None:
        """Unpin updates whose root is on disk (their batch was written), and those too old to be pending."""
        oldest = self._updates - MAX_PINNED_UPDATES
        self._pinned = [
            (number, root, nodes)
            for number, root, nodes in self._pinned
            if number > oldest and self._db.get(root) is None
        ]


class _NodeCache:
    """Recently used node records, up to `capacity` of them.

    Two plain dicts approximate LRU at dict speed (an OrderedDict LRU made updates a third slower):
    hits in `_older` move to `_recent`, and a full `_recent` becomes `_older`, dropping the rest.
    """

    def __init__(self, capacity: int):
        self._generation_size = max(1, capacity // 2)
        self._recent: dict[bytes, bytes] = {}
        self._older: dict[bytes, bytes] = {}

    def get(self, node_hash: bytes) -> bytes | None:
        record = self._recent.get(node_hash)
        if record is None:
            record = self._older.get(node_hash)
            if record is not None:
                self.add(node_hash, record)
        return record

    def add(self, node_hash: bytes, record: bytes) -> None:
        self._recent[node_hash] = record
        if len(self._recent) >= self._generation_size:
            self._rotate()

    def add_all(self, records: Mapping[bytes, bytes]) -> None:
        if len(records) >= self._generation_size:
            return  # a pass larger than the cache (a genesis) would only flush it, and outlive its bound
        self._recent.update(records)
        if len(self._recent) >= self._generation_size:
            self._rotate()

    def discard_all(self, node_hashes: Iterable[bytes]) -> None:
        recent_pop, older_pop = self._recent.pop, self._older.pop
        for node_hash in node_hashes:
            recent_pop(node_hash, None)
            older_pop(node_hash, None)

    def _rotate(self) -> None:
        self._older = self._recent
        self._recent = {}


class _UpdatePass:
    """One call of StateTree.update: the changes sorted by path, and the nodes created applying them."""

    def __init__(self, load: Callable[[bytes], bytes], changes: Mapping[bytes, bytes | None]):
        self._load = load
        entries = sorted(_change_entry(key, value) for key, value in changes.items())
        self.paths = [path for path, _ in entries]
        self.leaves = [leaf for _, leaf in entries]  # the new leaf record, None for a deletion
        self.created: dict[bytes, bytes] = {}  # every node of a pass is new and distinct: one hash each
        self.replaced: list[bytes] = []  # stored nodes that the new tree no longer holds

    def apply(self, root: bytes) -> bytes:
        """The root after all changes."""
        return self._update(root, 0, 0, len(self.paths))

    def _update(self, node: bytes, depth: int, low: int, high: int) -> bytes:
        """The new hash of the subtree `node` at `depth` after the changes paths[low:high], which all lie below it."""
        if node == EMPTY_ROOT:
            return self._build(self._live(low, high), depth)
        record = self._load(node)
        if record[0] == _LEAF:
            return self._update_leaf(node, record, depth, low, high)
        left = record[1:33]
        right = record[33:65]
        paths = self.paths
        split = bisect_left(paths, _right_boundary(paths[low], depth), low, high)
        new_left = self._update(left, depth + 1, low, split) if low < split else left
        new_right = self._update(right, depth + 1, split, high) if split < high else right
        if new_left == left and new_right == right:
            return node
        self.replaced.append(node)
        return self._join(new_left, new_right)

    def _update_leaf(self, node: bytes, record: bytes, depth: int, low: int, high: int) -> bytes:
        """Changes reaching a lone leaf: rebuild the subtree from the new leaves plus the old one if it stays."""
        live = self._live(low, high)
        leaf_path = int.from_bytes(record[1:33], "big")
        position = bisect_left(self.paths, leaf_path, low, high)
        if position == high or self.paths[position] != leaf_path:
            insort(live, (leaf_path, record, node), key=_key_of)
        elif len(live) == 1 and live[0][1] == record:
            return node  # the key is set to the value it already has
        else:
            self.replaced.append(node)
        return self._build(live, depth)

    def _live(self, low: int, high: int) -> list[tuple[int, bytes, bytes | None]]:
        """The insertions among paths[low:high] as (path, leaf record, hash if already stored)."""
        paths, leaves = self.paths, self.leaves
        return [(paths[i], leaves[i], None) for i in range(low, high) if leaves[i] is not None]

    def _build(self, live: list[tuple[int, bytes, bytes | None]], depth: int) -> bytes:
        """The canonical subtree at `depth` holding exactly the leaves in `live`."""
        return self._build_range(live, depth, 0, len(live))

    def _build_range(self, live: list, depth: int, low: int, high: int) -> bytes:
        count = high - low
        if count == 0:
            return EMPTY_ROOT
        if count == 1:
            _, record, stored = live[low]
            return stored if stored is not None else self._put(record)
        split = bisect_left(live, _right_boundary(live[low][0], depth), low, high, key=_key_of)
        left = self._build_range(live, depth + 1, low, split)
        right = self._build_range(live, depth + 1, split, high)
        # Two leaves or more: an internal node, even with one side empty (the other side is internal).
        return self._put(INTERNAL_TAG + left + right)

    def _join(self, left: bytes, right: bytes) -> bytes:
        """The node over two new children, collapsed to the child when that is a lone leaf."""
        if left == EMPTY_ROOT:
            if right == EMPTY_ROOT or self._is_leaf(right):
                return right
        elif right == EMPTY_ROOT and self._is_leaf(left):
            return left
        return self._put(INTERNAL_TAG + left + right)

    def _is_leaf(self, node: bytes) -> bool:
        # Nodes of this pass are neither cached nor on disk yet.
        record = self.created.get(node) or self._load(node)
        return record[0] == _LEAF

    def _put(self, record: bytes) -> bytes:
        node_hash = _node_hash(record)
        self.created[node_hash] = record
        return node_hash


def _node_hash(record: bytes) -> bytes:
    hasher = _HASHER.copy()
    hasher.update(record[:_HASHED_SIZE])
    return hasher.digest()


def _is_well_formed(record: bytes) -> bool:
    if record[:1] == LEAF_TAG:
        return len(record) >= _HASHED_SIZE
    return record[:1] == INTERNAL_TAG and len(record) == _HASHED_SIZE


def _change_entry(key: bytes, value: bytes | None) -> tuple[int, bytes | None]:
    """A change as (path as an integer, new leaf record or None for a deletion)."""
    key_hash = hash_key(key)
    path = int.from_bytes(key_hash, "big")
    if value is None:
        return path, None
    value_hash = hashlib.blake2b(value, digest_size=HASH_SIZE).digest()
    return path, LEAF_TAG + key_hash + value_hash + bytes(value)


def _right_boundary(path: int, depth: int) -> int:
    """The smallest path that shares `path`'s first `depth` bits and has bit `depth` set."""
    shift = KEY_BITS - 1 - depth
    return ((path >> shift) | 1) << shift


def _value_of(record: bytes | None, key_hash: bytes) -> bytes | None:
    if record is None or record[1:33] != key_hash:
        return None
    return record[_HASHED_SIZE:]


def _encode_proof(siblings: list[bytes], record: bytes | None, key_hash: bytes) -> proof_pb2.StateProof:
    depth = len(siblings)
    bits = 0
    for sibling in siblings:
        bits = (bits << 1) | (sibling != EMPTY_ROOT)
    size = (depth + 7) // 8
    proof = proof_pb2.StateProof(
        depth=depth,
        sibling_bitmap=(bits << (size * 8 - depth)).to_bytes(size, "big"),
        siblings=[sibling for sibling in siblings if sibling != EMPTY_ROOT],
    )
    if record is not None and record[1:33] != key_hash:
        proof.other_key_hash = record[1:33]
        proof.other_value_hash = record[33:65]
    return proof
