"""Merkle inclusion proofs for a block header's transactions_root and receipts_root, checked with hashlib alone.

The trees have the RFC 6962 shape over blake2b-256 (runtime/hashing.py builds them; docs/protocol.md,
"Blocks", specifies them):

    leaf = H(0x00 || data)          node = H(0x01 || left || right)
    root = H(0x02 || u64be(leaf_count) || tree hash)

A proof (proto/proof.proto, MerkleProof) gives the leaf's index, the number of leaves and the audit
path, siblings from the leaf up. The tree hash is rebuilt as in RFC 9162 section 2.1.3.2: the index
and the count say at each level whether the sibling stands left or right, and where the node is the
odd one out and has no sibling; a path of any other length fails. The count is mixed into the root,
so a proof that verifies also fixes the leaf's index.
"""

from __future__ import annotations

import hashlib

from proto import proof_pb2

HASH_SIZE = 32
LEAF_TAG = b"\x00"
NODE_TAG = b"\x01"
SIZE_TAG = b"\x02"
U64_LIMIT = 2**64


def leaf_hash(data: bytes) -> bytes:
    """H(0x00 || data)."""
    return hashlib.blake2b(LEAF_TAG + data, digest_size=HASH_SIZE).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """H(0x01 || left || right)."""
    return hashlib.blake2b(NODE_TAG + left + right, digest_size=HASH_SIZE).digest()


def sized_root(leaf_count: int, tree_hash: bytes) -> bytes:
    """H(0x02 || u64be(leaf_count) || tree_hash): the root a header holds."""
    return hashlib.blake2b(SIZE_TAG + leaf_count.to_bytes(8, "big") + tree_hash, digest_size=HASH_SIZE).digest()


def verify_inclusion(root: bytes, leaf_data: bytes, proof: proof_pb2.MerkleProof) -> bool:
    """True when `proof` shows that `leaf_data` is leaf `proof.leaf_index` of `proof.leaf_count` under `root`."""
    index, count = proof.leaf_index, proof.leaf_count
    if not index < count < U64_LIMIT or len(root) != HASH_SIZE:
        return False
    if any(len(sibling) != HASH_SIZE for sibling in proof.siblings):
        return False
    tree_hash = _tree_hash_from_path(leaf_hash(leaf_data), index, count - 1, proof.siblings)
    return tree_hash is not None and sized_root(count, tree_hash) == root


def _tree_hash_from_path(node: bytes, index: int, last: int, siblings) -> bytes | None:
    """Fold the path into a tree hash (RFC 9162 2.1.3.2); None when the path's length does not fit the tree."""
    for sibling in siblings:
        if last == 0:
            return None  # more siblings than levels
        if index & 1 or index == last:
            node = node_hash(sibling, node)
            # Levels where this node was the odd one out at the end: carried up with no sibling.
            while not index & 1 and index != 0:
                index >>= 1
                last >>= 1
        else:
            node = node_hash(node, sibling)
        index >>= 1
        last >>= 1
    return node if last == 0 else None
