"""The chain's one hash function, blake2b-256, and the seeds the runtime derives from chain data."""

from __future__ import annotations

from hashlib import blake2b


def blake2b_256(data: bytes) -> bytes:
    """blake2b with a 32-byte digest."""
    return blake2b(data, digest_size=32).digest()


def transaction_hash(raw_transaction: bytes) -> bytes:
    """A transaction's id: the hash of its exact serialised bytes."""
    return blake2b(raw_transaction, digest_size=32).digest()


def transactions_root(hashes: list[bytes]) -> bytes:
    """The header's commitment to a block's transactions, in order."""
    return blake2b(b"".join(hashes), digest_size=32).digest()
