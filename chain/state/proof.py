"""State proofs, checked with hashlib alone: the client imports this module without LevelDB.

The tree (chain/state/tree.py) is a compressed binary sparse Merkle tree over 256-bit paths
path = blake2b-256(key), read most significant bit first. Its node hashes, all blake2b-256:

    empty subtree   32 zero bytes
    leaf            H(0x00 || key_hash || value_hash)      value_hash = H(value)
    internal        H(0x01 || left || right)

A subtree holding exactly one leaf is that leaf, wherever it would sit below, so the root of a set of
key/value pairs is one value whatever the order and batching of the updates that made it. The tag
bytes separate leaves from internal nodes, so neither can pass for the other.

A proof (proto/proof.proto, StateProof) lists the siblings of the key's path from the root down to
where the path ends: at the key's own leaf (membership), or at an empty subtree or at another key's
leaf (absence). Verification rebuilds the root from the bottom up and compares. Only the canonical
proof of a (root, key) passes: any other values of its fields fail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from proto import proof_pb2

HASH_SIZE = 32
KEY_BITS = 256
EMPTY_ROOT = bytes(HASH_SIZE)
LEAF_TAG = b"\x00"
INTERNAL_TAG = b"\x01"


def hash_key(key: bytes) -> bytes:
    """The key's path in the tree: blake2b-256 of the key."""
    return hashlib.blake2b(key, digest_size=HASH_SIZE).digest()


def hash_value(value: bytes) -> bytes:
    """The value's digest as a leaf commits to it."""
    return hashlib.blake2b(value, digest_size=HASH_SIZE).digest()


def leaf_hash(key_hash: bytes, value_hash: bytes) -> bytes:
    """The hash of a leaf: H(0x00 || key_hash || value_hash)."""
    return hashlib.blake2b(LEAF_TAG + key_hash + value_hash, digest_size=HASH_SIZE).digest()


def internal_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an internal node: H(0x01 || left || right)."""
    return hashlib.blake2b(INTERNAL_TAG + left + right, digest_size=HASH_SIZE).digest()


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: proof_pb2.StateProof | bytes) -> bool:
    """True when `proof` shows that `key` holds `value` under `root` (value None: the key is absent)."""
    try:
        return _verify(root, key, value, _as_message(proof))
    except Exception:  # the contract is a verdict: a proof malformed in any way is a failed proof
        return False


def compute_root(items: Mapping[bytes, bytes]) -> bytes:
    """The root of a whole key/value set, computed naively: the reference the tree is tested against."""
    leaves = sorted((hash_key(key), hash_value(value)) for key, value in items.items())
    return _subtree_root(leaves, 0)


def _subtree_root(leaves: list[tuple[bytes, bytes]], depth: int) -> bytes:
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaf_hash(*leaves[0])
    left = [leaf for leaf in leaves if not _bit(leaf[0], depth)]
    right = [leaf for leaf in leaves if _bit(leaf[0], depth)]
    return internal_hash(_subtree_root(left, depth + 1), _subtree_root(right, depth + 1))


def _bit(path: bytes, depth: int) -> int:
    return (path[depth >> 3] >> (7 - (depth & 7))) & 1


def _as_message(proof: proof_pb2.StateProof | bytes) -> proof_pb2.StateProof:
    if isinstance(proof, proof_pb2.StateProof):
        return proof
    if isinstance(proof, (bytes, bytearray, memoryview)):
        return proof_pb2.StateProof.FromString(bytes(proof))
    raise TypeError(f"a proof is a StateProof or its bytes, not {type(proof).__name__}")


def _verify(root: bytes, key: bytes, value: bytes | None, proof: proof_pb2.StateProof) -> bool:
    if not isinstance(root, bytes) or len(root) != HASH_SIZE:
        return False
    key_hash = hash_key(key)
    depth = proof.depth
    present = _present_levels(proof)
    if present is None:
        return False
    node = _path_end(key_hash, value, proof)
    if node is None:
        return False
    return _fold_to_root(node, key_hash, depth, present, proof.siblings) == root


def _present_levels(proof: proof_pb2.StateProof) -> int | None:
    """The bitmap as an integer, bit (depth - 1 - level) set where that level's sibling is non-empty; None if malformed."""
    depth = proof.depth
    bitmap = proof.sibling_bitmap
    if depth > KEY_BITS or len(bitmap) != (depth + 7) // 8:
        return None
    padding = len(bitmap) * 8 - depth
    bits = int.from_bytes(bitmap, "big")
    if bits & ((1 << padding) - 1):
        return None
    present = bits >> padding
    if present.bit_count() != len(proof.siblings):
        return None
    # A path never ends below an empty sibling: that one child would have been collapsed upward.
    if depth > 0 and not present & 1:
        return None
    if any(len(sibling) != HASH_SIZE or sibling == EMPTY_ROOT for sibling in proof.siblings):
        return None
    return present


def _path_end(key_hash: bytes, value: bytes | None, proof: proof_pb2.StateProof) -> bytes | None:
    """The hash of the node where the key's path ends, as the proof and value claim it; None if they disagree."""
    other_key_hash = proof.other_key_hash
    other_value_hash = proof.other_value_hash
    if value is not None:
        if other_key_hash or other_value_hash:
            return None
        return leaf_hash(key_hash, hash_value(value))
    if not other_key_hash and not other_value_hash:
        return EMPTY_ROOT
    if len(other_key_hash) != HASH_SIZE or len(other_value_hash) != HASH_SIZE or other_key_hash == key_hash:
        return None
    # The other leaf must lie on the key's path, i.e. share the path's first `depth` bits.
    shared = int.from_bytes(other_key_hash, "big") ^ int.from_bytes(key_hash, "big")
    if shared >> (KEY_BITS - proof.depth):
        return None
    return leaf_hash(other_key_hash, other_value_hash)


def _fold_to_root(node: bytes, key_hash: bytes, depth: int, present: int, siblings) -> bytes:
    path = int.from_bytes(key_hash, "big")
    remaining = len(siblings)
    for level in range(depth - 1, -1, -1):
        if (present >> (depth - 1 - level)) & 1:
            remaining -= 1
            sibling = siblings[remaining]
        else:
            sibling = EMPTY_ROOT
        if (path >> (KEY_BITS - 1 - level)) & 1:
            node = internal_hash(sibling, node)
        else:
            node = internal_hash(node, sibling)
    return node
