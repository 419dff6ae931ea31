"""Ed25519 keys, signatures and the development accounts."""

from __future__ import annotations

import pytest

from chain.crypto import DEV_ACCOUNT_NAMES, Keypair, dev_keypair, dev_seed, verify
from runtime.hashing import blake2b_256

# RFC 8032, section 7.1, test 1 (empty message).
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_keypair_from_seed_matches_rfc8032():
    keypair = Keypair.from_seed(RFC8032_SEED)
    assert keypair.public_key == RFC8032_PUBLIC
    assert keypair.sign(b"") == RFC8032_SIGNATURE


def test_rfc8032_signature_verifies():
    assert verify(RFC8032_PUBLIC, RFC8032_SIGNATURE, b"")


def test_a_signature_does_not_verify_for_another_message_or_key():
    keypair = Keypair.generate()
    signature = keypair.sign(b"message")
    assert verify(keypair.public_key, signature, b"message")
    assert not verify(keypair.public_key, signature, b"messagf")
    assert not verify(Keypair.generate().public_key, signature, b"message")


@pytest.mark.parametrize("public_key, signature", [(b"\0" * 31, b"\0" * 64), (RFC8032_PUBLIC, b"\0" * 63), (b"", b"")])
def test_verify_returns_false_on_malformed_input(public_key, signature):
    assert verify(public_key, signature, b"") is False


@pytest.mark.parametrize("size", [0, 31, 33])
def test_seeds_are_32_bytes(size):
    with pytest.raises(ValueError, match="32 bytes"):
        Keypair.from_seed(bytes(size))


def test_generated_keys_differ():
    assert Keypair.generate().public_key != Keypair.generate().public_key


def test_the_seed_is_not_in_the_repr():
    keypair = dev_keypair("alice")
    assert keypair.seed.hex() not in repr(keypair)


def test_dev_accounts_are_six_distinct_well_known_keys():
    keys = {dev_keypair(name).public_key for name in DEV_ACCOUNT_NAMES}
    assert len(keys) == 6
    assert dev_seed("alice") == blake2b_256(b"//Alice")


@pytest.mark.parametrize("name", ["alice", "Alice", "ALICE", " alice "])
def test_dev_names_are_case_insensitive(name):
    assert dev_keypair(name).public_key == dev_keypair("alice").public_key


def test_dev_alice_matches_genesis_json():
    assert dev_keypair("alice").address == "5ExeyawqGgiywa9zv4X2hmk9A6A92BSPZboU69pHBvchMHKk"


def test_unknown_dev_name_is_refused():
    with pytest.raises(ValueError, match="not a development account"):
        dev_keypair("mallory")
