"""SS58-style addresses (as Substrate): base58 of prefix, public key and a blake2b checksum."""

from __future__ import annotations

import math
from hashlib import blake2b

import base58

from chain.text import quote_input

# The generic Substrate prefix; addresses start with "5".
SS58_PREFIX = 42
SS58_PREFIX_NAME = "substrate"
BASE58_ALPHABET = base58.BITCOIN_ALPHABET.decode("ascii")
_CHECKSUM_CONTEXT = b"SS58PRE"
# One prefix byte (prefixes below 64), the 32-byte key, a 2-byte checksum.
_ADDRESS_BYTES = 1 + 32 + 2
# The longest base58 text of _ADDRESS_BYTES bytes: each character carries log2(58) bits, and a
# leading zero byte becomes one "1", which is never longer. 35 bytes give at most 48 characters.
MAX_ADDRESS_LENGTH = math.ceil(_ADDRESS_BYTES * 8 / math.log2(58))


class AddressError(ValueError):
    """A string that is not a valid address of this chain."""


def base58_encode(data: bytes) -> str:
    """Bitcoin-alphabet base58 of `data`, leading zero bytes as "1"."""
    return base58.b58encode(data).decode("ascii")


def base58_decode(text: str) -> bytes:
    """The bytes of a base58 text; AddressError naming the first character outside the alphabet.

    Decoding costs time quadratic in the length: callers bound the length first.
    """
    stray = next((char for char in text if char not in BASE58_ALPHABET), None)
    if stray is not None:
        raise AddressError(f"{quote_input(stray)} is not a base58 character")
    return base58.b58decode(text)


def _checksum(payload: bytes) -> bytes:
    return blake2b(_CHECKSUM_CONTEXT + payload, digest_size=64).digest()[:2]


def encode_address(public_key: bytes, prefix: int = SS58_PREFIX) -> str:
    """The SS58 address of a 32-byte public key."""
    if len(public_key) != 32:
        raise AddressError(f"a public key is 32 bytes, got {len(public_key)}")
    payload = bytes([prefix]) + public_key
    return base58_encode(payload + _checksum(payload))


def decode_address(address: str, prefix: int = SS58_PREFIX) -> bytes:
    """The public key inside an SS58 address; AddressError when it is malformed or foreign."""
    text = address.strip()
    if len(text) > MAX_ADDRESS_LENGTH:
        raise AddressError(
            f"{quote_input(text)} is not an SS58 address: an address of a 32-byte key "
            f"is at most {MAX_ADDRESS_LENGTH} characters"
        )
    raw = base58_decode(text)
    if len(raw) != _ADDRESS_BYTES:
        raise AddressError(f"{quote_input(text)} is not an SS58 address of a 32-byte key")
    payload, checksum = raw[:33], raw[33:]
    if _checksum(payload) != checksum:
        raise AddressError(f"{quote_input(text)} has a wrong checksum (a typo?)")
    if payload[0] != prefix:
        raise AddressError(f"{quote_input(text)} has network prefix {payload[0]}, this chain uses {prefix}")
    return payload[1:]
