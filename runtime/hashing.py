"""The chain's one hash function, blake2b-256, and the Merkle trees the block header commits to.

Merkle trees (transactions_root, receipts_root) follow RFC 6962 section 2.1 with blake2b-256 in
place of SHA-256 (docs/protocol.md, "Blocks"):

    leaf        = H(0x00 || data)
    node        = H(0x01 || left || right)
    MTH()       = H("")                           (no leaves)
    MTH(d0..dn-1) = node(MTH(d0..dk-1), MTH(dk..dn-1)),  k the largest power of two below n

Level by level that is: pair neighbours from the left; an odd node out at the end of a level is
carried up unchanged (never duplicated, so no two leaf lists share a tree hash). The tags keep a
leaf from passing for a node.

The header holds the tree hash with the leaf count mixed in, root = H(0x02 || u64be(n) || MTH),
as SSZ's mix_in_length does: RFC 6962 leaves the tree size to a signed tree head, and without it
one audit path fits several (index, count) pairs (leaf 2 of 3 verifies as leaf 1 of 2), so a proof
could not fix a transaction's position. An audit path lists the siblings from the leaf up;
chain/state/inclusion.py checks one with hashlib alone.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import Sequence

from proto import proof_pb2, types_pb2

MERKLE_LEAF_TAG = b"\x00"
MERKLE_NODE_TAG = b"\x01"
MERKLE_SIZE_TAG = b"\x02"


def blake2b_256(data: bytes) -> bytes:
    """blake2b with a 32-byte digest."""
    return blake2b(data, digest_size=32).digest()


EMPTY_TREE_HASH = blake2b_256(b"")


def transaction_hash(raw_transaction: bytes) -> bytes:
    """A transaction's id: the hash of its bytes, which the runtime accepts only in canonical form."""
    return blake2b(raw_transaction, digest_size=32).digest()


# --- Merkle trees ---------------------------------------------------------------


def merkle_leaf_hash(data: bytes) -> bytes:
    """H(0x00 || data)."""
    return blake2b_256(MERKLE_LEAF_TAG + data)


def merkle_node_hash(left: bytes, right: bytes) -> bytes:
    """H(0x01 || left || right)."""
    return blake2b_256(MERKLE_NODE_TAG + left + right)


def merkle_tree_hash(leaf_data: Sequence[bytes]) -> bytes:
    """The tree hash over `leaf_data`, in order (RFC 6962 MTH)."""
    if not leaf_data:
        return EMPTY_TREE_HASH
    level = [merkle_leaf_hash(data) for data in leaf_data]
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def merkle_root(leaf_data: Sequence[bytes]) -> bytes:
    """The root a header holds: the tree hash with the leaf count mixed in, H(0x02 || u64be(n) || MTH)."""
    return sized_root(len(leaf_data), merkle_tree_hash(leaf_data))


def sized_root(leaf_count: int, tree_hash: bytes) -> bytes:
    """H(0x02 || u64be(leaf_count) || tree_hash)."""
    return blake2b_256(MERKLE_SIZE_TAG + leaf_count.to_bytes(8, "big") + tree_hash)


def merkle_path(leaf_data: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf `index`: its siblings from the leaf up (RFC 6962 PATH)."""
    if not 0 <= index < len(leaf_data):
        raise IndexError(f"leaf {index} of a tree of {len(leaf_data)} leaves")
    level = [merkle_leaf_hash(data) for data in leaf_data]
    path = []
    while len(level) > 1:
        sibling = index ^ 1
        # The odd node out at the end of a level has no sibling there: it is carried up as it is.
        if sibling < len(level):
            path.append(level[sibling])
        level = _next_level(level)
        index //= 2
    return path


def merkle_proof(leaf_data: Sequence[bytes], index: int) -> proof_pb2.MerkleProof:
    """The proof that leaf `index` is in the tree over `leaf_data`."""
    return proof_pb2.MerkleProof(
        leaf_index=index, leaf_count=len(leaf_data), siblings=merkle_path(leaf_data, index)
    )


def _next_level(level: list[bytes]) -> list[bytes]:
    parents = [merkle_node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        parents.append(level[-1])
    return parents


# --- what the header commits to -----------------------------------------------------


def transactions_root(hashes: Sequence[bytes]) -> bytes:
    """The header's commitment to a block's transactions: the Merkle root over their hashes, in order."""
    return merkle_root(hashes)


def receipt_bytes(receipt: types_pb2.Receipt) -> bytes:
    """A receipt's canonical bytes: what its receipts_root leaf hashes, and what GetTransaction serves."""
    return receipt.SerializeToString(deterministic=True)


def block_events_bytes(receipts: types_pb2.BlockReceipts) -> bytes:
    """The block hooks' events as committed: a BlockReceipts holding only `block_events`, canonical."""
    return types_pb2.BlockReceipts(block_events=receipts.block_events).SerializeToString(deterministic=True)


def receipt_leaves(receipts: types_pb2.BlockReceipts) -> list[bytes]:
    """The leaf data of receipts_root: H(receipt) per transaction in block order, then H(block events)."""
    leaves = [blake2b_256(receipt_bytes(receipt)) for receipt in receipts.transactions]
    leaves.append(blake2b_256(block_events_bytes(receipts)))
    return leaves


def receipts_root(receipts: types_pb2.BlockReceipts) -> bytes:
    """The header's commitment to a block's outcome: the Merkle root over receipt_leaves."""
    return merkle_root(receipt_leaves(receipts))


def evidence_root(evidence: Sequence[types_pb2.DuplicateVoteEvidence]) -> bytes:
    """The header's commitment to a block's evidence: empty for none, else the Merkle root over each serialised piece."""
    if not evidence:
        return b""
    return merkle_root([piece.SerializeToString(deterministic=True) for piece in evidence])
