"""SS58-style addresses (as Substrate): base58 of prefix, public key and a blake2b checksum."""

from __future__ import annotations

from hashlib import blake2b

# The generic Substrate prefix; addresses start with "5".
SS58_PREFIX = 42
SS58_PREFIX_NAME = "substrate"
_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {char: index for index, char in enumerate(_ALPHABET)}
_CHECKSUM_CONTEXT = b"SS58PRE"


class AddressError(ValueError):
    """A string that is not a valid address of this chain."""


def base58_encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    chars = []
    while number:
        number, remainder = divmod(number, 58)
        chars.append(_ALPHABET[remainder])
    leading_zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * leading_zeros + "".join(reversed(chars))


def base58_decode(text: str) -> bytes:
    number = 0
    for char in text:
        if char not in _INDEX:
            raise AddressError(f"{char!r} is not a base58 character")
        number = number * 58 + _INDEX[char]
    leading_ones = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * leading_ones + body


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
    raw = base58_decode(address.strip())
    if len(raw) != 35:
        raise AddressError(f"{address!r} is not an SS58 address of a 32-byte key")
    payload, checksum = raw[:33], raw[33:]
    if _checksum(payload) != checksum:
        raise AddressError(f"{address!r} has a wrong checksum (a typo?)")
    if payload[0] != prefix:
        raise AddressError(f"{address!r} has network prefix {payload[0]}, this chain uses {prefix}")
    return payload[1:]
