"""SS58 addresses: Substrate-compatible encoding, checksums, prefixes and clear errors."""

from __future__ import annotations

import time

import pytest

from chain.ss58 import MAX_ADDRESS_LENGTH, SS58_PREFIX, AddressError, base58_decode, base58_encode, decode_address, encode_address

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


def test_the_longest_address_is_48_characters():
    # 35 bytes (prefix, key, checksum) of all ones bits give the longest base58 text.
    assert MAX_ADDRESS_LENGTH == 48
    assert len(base58_encode(b"\xff" * 35)) == 48
    assert all(len(encode_address(b"\xff" * 32, prefix=prefix)) <= 48 for prefix in (0, 42, 63))


def test_a_huge_address_is_refused_before_decoding():
    huge = SUBSTRATE_ALICE_ADDRESS * 6_700  # about 320 KB: decoding it once took 10 s of CPU
    started = time.perf_counter()
    with pytest.raises(AddressError, match="at most 48 characters") as raised:
        decode_address(huge)
    assert time.perf_counter() - started < 0.2
    assert len(str(raised.value)) < 200
    assert f"({len(huge)} characters)" in str(raised.value)


def test_one_character_too_many_is_refused_by_length():
    with pytest.raises(AddressError, match="at most 48"):
        decode_address(SUBSTRATE_ALICE_ADDRESS + "1")


def test_a_character_outside_the_alphabet_is_named():
    with pytest.raises(AddressError, match="'é' is not a base58 character"):
        decode_address("5Grwva" + "é" + "x" * 20)


@pytest.mark.parametrize("text", ["0" * 48, "5" * 47 + "\u0661", "x" * 49 + "é" * 10_000])
def test_error_messages_quote_at_most_a_short_prefix(text):
    with pytest.raises(AddressError) as raised:
        decode_address(text)
    assert len(str(raised.value)) < 200
