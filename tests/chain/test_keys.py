"""Resolving dev names, key files, addresses and hex keys; writing key files safely."""

from __future__ import annotations

import json
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.crypto import dev_keypair
from chain.keys import (
    KeyResolutionError,
    account_id,
    generate_key_file,
    key_file_path,
    load_key_file,
    load_signer,
    resolve_account,
    resolve_signer,
)

BOB = dev_keypair("bob")


@pytest.mark.parametrize("name", ["bob", "Bob", "BOB", " bob "])
def test_dev_names_resolve_case_insensitively_and_can_sign(name):
    resolved = resolve_account(name)
    assert resolved.public_key == BOB.public_key
    assert resolved.source == "dev account" and resolved.can_sign
    assert resolve_signer(name).public_key == BOB.public_key


def test_an_address_resolves_but_cannot_sign():
    resolved = resolve_account(BOB.address)
    assert resolved.public_key == BOB.public_key and resolved.source == "address"
    assert not resolved.can_sign
    with pytest.raises(KeyResolutionError, match="cannot sign"):
        resolve_signer(BOB.address)


@pytest.mark.parametrize("text", [BOB.public_key.hex(), "0x" + BOB.public_key.hex(), BOB.public_key.hex().upper()])
def test_hex_public_keys_resolve(text):
    resolved = resolve_account(text)
    assert resolved.public_key == BOB.public_key and resolved.source == "public key"


@pytest.mark.parametrize("text", ["", "   ", "mallory", "5" * 48, "ab" * 31, "zz" * 32])
def test_nonsense_is_refused_with_a_message_listing_what_is_accepted(text):
    with pytest.raises(KeyResolutionError, match="dev account|required"):
        resolve_account(text)


def test_generate_writes_a_private_json_file_that_loads_back(tmp_path):
    path, keypair = generate_key_file(tmp_path / "validator.json")
    assert path == tmp_path / "validator.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["seed"] == keypair.seed.hex()
    assert document["public_key"] == keypair.public_key.hex()
    assert document["address"] == keypair.address
    assert load_key_file(path).public_key == keypair.public_key


def test_a_name_without_suffix_means_name_json(tmp_path):
    path, keypair = generate_key_file(tmp_path / "validator")
    assert path == tmp_path / "validator.json"
    assert key_file_path(tmp_path / "validator") == path
    assert resolve_account(str(tmp_path / "validator")).public_key == keypair.public_key
    assert resolve_signer(str(path)).public_key == keypair.public_key


def test_generate_refuses_to_overwrite(tmp_path):
    path, keypair = generate_key_file(tmp_path / "k.json")
    with pytest.raises(KeyResolutionError, match="already exists"):
        generate_key_file(path)
    assert load_key_file(path).public_key == keypair.public_key


def test_generate_refuses_dev_names_and_missing_directories(tmp_path):
    with pytest.raises(KeyResolutionError, match="development account"):
        generate_key_file("alice")
    with pytest.raises(KeyResolutionError, match="does not exist"):
        generate_key_file(tmp_path / "missing" / "k.json")


def test_dev_names_win_over_files_of_the_same_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bob").write_text("{}")
    assert resolve_account("bob").source == "dev account"


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "not JSON"),
        ("[]", "no \"seed\""),
        ('{"seed": "xyz"}', "hex"),
        ('{"seed": "00"}', "32 bytes"),
        ('{"seed": "' + "11" * 32 + '", "type": "sr25519"}', "sr25519"),
        ('{"seed": "' + "11" * 32 + '", "public_key": "' + "22" * 32 + '"}', "does not match"),
    ],
)
def test_damaged_key_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "k.json"
    path.write_text(content)
    with pytest.raises(KeyResolutionError, match=message):
        load_key_file(path)
    with pytest.raises(KeyResolutionError, match=message):
        resolve_signer(str(path))


def test_an_unreadable_binary_file_is_not_a_key(tmp_path):
    path = tmp_path / "k.json"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(KeyResolutionError):
        load_key_file(path)


def test_account_id_accepts_every_form():
    assert account_id(BOB) == BOB.public_key
    assert account_id(BOB.public_key) == BOB.public_key
    assert account_id("bob") == BOB.public_key
    assert account_id(resolve_account(BOB.address)) == BOB.public_key
    with pytest.raises(KeyResolutionError, match="32-byte"):
        account_id(b"short")


def test_load_signer_serves_the_node_key_option(tmp_path):
    path, keypair = generate_key_file(tmp_path / "validator.json")
    assert load_signer("alice").public_key == dev_keypair("alice").public_key
    assert load_signer(str(path)).public_key == keypair.public_key
    with pytest.raises(ValueError, match="cannot sign"):
        load_signer(BOB.address)


@pytest.mark.parametrize("name", ["./missing.json", "missing.json", "MISSING.JSON", "keys/missing", "~/nowhere-inferchain/k"])
def test_a_name_that_can_only_be_a_file_says_the_file_does_not_exist(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    # It once fell through to SS58 decoding: "'.' is not a base58 character".
    with pytest.raises(KeyResolutionError, match=r"^key file .* does not exist$"):
        resolve_account(name)
    with pytest.raises(KeyResolutionError, match="does not exist"):
        resolve_signer(name)


def test_a_directory_is_not_a_key_file(tmp_path):
    with pytest.raises(KeyResolutionError, match="is not a key file"):
        resolve_account(str(tmp_path))


@pytest.mark.parametrize("name", ["k" * 5000, "d/" * 3000 + "k.json", "/", "a\x00b.json", "~no-such-user-inferchain/k"])
def test_names_the_file_system_refuses_are_resolution_errors(name):
    # An over-long name once raised OSError (ENAMETOOLONG) out of the key file lookup.
    with pytest.raises(KeyResolutionError):
        resolve_account(name)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40).map(lambda t: t + "/x"))
@settings(max_examples=200)
def test_any_missing_path_is_named_as_a_missing_file(tmp_path_factory, text):
    base = tmp_path_factory.getbasetemp() / "no-such-dir"
    name = f"{base}/{text}"
    with pytest.raises(KeyResolutionError) as raised:
        resolve_account(name)
    assert "does not exist" in str(raised.value) or "not a key file" in str(raised.value)


@pytest.mark.parametrize("text", ["x" * 5_000, "5" * 100_000])
def test_a_huge_account_name_is_quoted_by_a_short_prefix(text):
    with pytest.raises(KeyResolutionError) as raised:
        resolve_account(text)
    assert f"({len(text)} characters)" in str(raised.value)
    assert len(str(raised.value)) < 1_000
