"""SS58 addresses: Substrate-compatible encoding, checksums, prefixes and clear errors."""

from __future__ import annotations

import pytest

from chain.ss58 import SS58_PREFIX, AddressError, base58_decode, base58_encode, decode_address, encode_address

# Substrate's well-known //Alice sr25519 key and its generic (prefix 42) address.
SUBSTRATE_ALICE_KEY = bytes.fromhex("d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d")
SUBSTRATE_ALICE_ADDRESS = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


def test_encoding_matches_substrate_for_a_known_key():
    assert encode_address(SUBSTRATE_ALICE_KEY) == SUBSTRATE_ALICE_ADDRESS


def test_decoding_returns_the_public_key():
    assert decode_address(SUBSTRATE_ALICE_ADDRESS) == SUBSTRATE_ALICE_KEY


def test_generic_prefix_addresses_start_with_5():
    assert SS58_PREFIX == 42
    assert encode_address(bytes(32)).startswith("5")
    assert encode_address(b"\xff" * 32).startswith("5")


def test_surrounding_whitespace_is_ignored():
    assert decode_address(f"  {SUBSTRATE_ALICE_ADDRESS}\n") == SUBSTRATE_ALICE_KEY


def test_a_typo_fails_the_checksum():
    typo = SUBSTRATE_ALICE_ADDRESS[:10] + ("a" if SUBSTRATE_ALICE_ADDRESS[10] != "a" else "b") + SUBSTRATE_ALICE_ADDRESS[11:]
    with pytest.raises(AddressError, match="checksum"):
        decode_address(typo)


def test_an_address_of_another_network_is_refused():
    polkadot = encode_address(SUBSTRATE_ALICE_KEY, prefix=0)
    with pytest.raises(AddressError, match="prefix 0"):
        decode_address(polkadot)


@pytest.mark.parametrize("text", ["", "0OIl", "5Grwva", "not an address", SUBSTRATE_ALICE_ADDRESS + "1"])
def test_malformed_addresses_raise_address_error(text):
    with pytest.raises(AddressError):
        decode_address(text)


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_only_32_byte_keys_have_addresses(size):
    with pytest.raises(AddressError, match="32 bytes"):
        encode_address(bytes(size))


def test_address_error_is_a_value_error():
    assert issubclass(AddressError, ValueError)


@pytest.mark.parametrize("data", [b"", b"\0", b"\0\0\1", b"\1\0", bytes(range(40))])
def test_base58_round_trips_including_leading_zeros(data):
    assert base58_decode(base58_encode(data)) == data
