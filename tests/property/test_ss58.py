"""Property tests of SS58 addresses: round trips, and nothing but AddressError on any string."""

from __future__ import annotations

from hypothesis import given, strategies as st

from chain.ss58 import MAX_ADDRESS_LENGTH, AddressError, base58_decode, base58_encode, decode_address, encode_address

keys = st.binary(min_size=32, max_size=32)
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


@given(keys)
def test_address_round_trips_to_the_key(public_key):
    assert decode_address(encode_address(public_key)) == public_key


@given(keys, st.integers(min_value=0, max_value=63))
def test_an_address_decodes_only_under_its_own_prefix(public_key, prefix):
    address = encode_address(public_key, prefix=prefix)
    assert decode_address(address, prefix=prefix) == public_key
    other = (prefix + 1) % 64
    try:
        decode_address(address, prefix=other)
    except AddressError:
        return
    raise AssertionError("an address decoded under a foreign prefix")


@given(st.binary(max_size=64))
def test_base58_round_trips(data):
    assert base58_decode(base58_encode(data)) == data


@given(st.text(max_size=80))
def test_arbitrary_strings_raise_only_address_error(text):
    try:
        public_key = decode_address(text)
    except AddressError as error:
        assert len(str(error)) < 700  # repr of 48 characters: at most 480
        return
    assert len(public_key) == 32


@given(st.one_of(st.text(min_size=49, max_size=3000), st.text(alphabet=BASE58, min_size=49, max_size=3000)))
def test_text_longer_than_any_address_is_refused_by_its_length(text):
    if len(text.strip()) <= MAX_ADDRESS_LENGTH:
        return
    try:
        decode_address(text)
    except AddressError as error:
        assert f"at most {MAX_ADDRESS_LENGTH} characters" in str(error)
        assert len(str(error)) < 700  # repr of 48 characters: at most 480
        return
    raise AssertionError("an overlong address decoded")


@given(st.text(alphabet=BASE58, min_size=40, max_size=56))
def test_arbitrary_base58_strings_raise_only_address_error(text):
    try:
        public_key = decode_address(text)
    except AddressError:
        return
    assert encode_address(public_key) == text.strip()


@given(keys, st.integers(min_value=0, max_value=47), st.sampled_from(BASE58))
def test_a_changed_character_is_detected(public_key, position, replacement):
    address = encode_address(public_key)
    if address[position] == replacement:
        return
    mutated = address[:position] + replacement + address[position + 1 :]
    try:
        decoded = decode_address(mutated)
    except AddressError:
        return
    # A 16-bit checksum lets about 1 in 65,536 single changes through; they must still be real keys.
    assert decoded != public_key
