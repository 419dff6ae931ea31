"""Ed25519 keys, signing and the well-known development accounts."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from chain.ss58 import encode_address
from runtime.hashing import blake2b_256
from runtime.signatures import verify_signature

DEV_ACCOUNT_NAMES = ("alice", "bob", "charlie", "dave", "eve", "ferdie")


@dataclass(frozen=True)
class Keypair:
    """An Ed25519 key pair from its 32-byte seed."""

    seed: bytes = field(repr=False)
    public_key: bytes
    _private: Ed25519PrivateKey = field(repr=False, compare=False)

    @classmethod
    def from_seed(cls, seed: bytes) -> "Keypair":
        if len(seed) != 32:
            raise ValueError(f"an Ed25519 seed is 32 bytes, got {len(seed)}")
        private = Ed25519PrivateKey.from_private_bytes(seed)
        public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return cls(seed=seed, public_key=public, _private=private)

    @classmethod
    def generate(cls) -> "Keypair":
        import os

        return cls.from_seed(os.urandom(32))

    @property
    def address(self) -> str:
        return encode_address(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)


def dev_seed(name: str) -> bytes:
    """The well-known seed of a development account: blake2b-256 of "//Name" (never use on a real chain)."""
    return blake2b_256(b"//" + name.strip().capitalize().encode())


def dev_keypair(name: str) -> Keypair:
    """Alice, Bob, Charlie, Dave, Eve or Ferdie."""
    if name.strip().lower() not in DEV_ACCOUNT_NAMES:
        raise ValueError(f"{name!r} is not a development account ({', '.join(DEV_ACCOUNT_NAMES)})")
    return Keypair.from_seed(dev_seed(name))


def verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """True when `signature` is `public_key`'s Ed25519 signature of `message`."""
    return verify_signature(public_key, signature, message)
