"""`inferchain keys generate|inspect` through the real console entry."""

from __future__ import annotations

import json
import os
import stat

import pytest

from chain.cli.errors import EXIT_BAD_INPUT
from chain.crypto import dev_keypair
from tests.commands import inferchain, one_line_error


def test_generate_writes_a_private_key_file_and_never_prints_the_seed(tmp_path):
    result = inferchain("keys", "generate", str(tmp_path / "validator.json"), "--output", "json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    path = tmp_path / "validator.json"
    stored = json.loads(path.read_text())
    assert printed == {"file": str(path), "public_key": stored["public_key"], "address": stored["address"]}
    assert stored["seed"] not in result.stdout + result.stderr
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_generate_a_bare_name_in_the_current_directory(tmp_path):
    result = inferchain("keys", "generate", "operator", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "operator.json").is_file()
    inspected = inferchain("keys", "inspect", "operator", "--output", "json", cwd=tmp_path)
    assert json.loads(inspected.stdout)["source"] == "key file"


def test_generate_refuses_to_overwrite(tmp_path):
    path = tmp_path / "k.json"
    assert inferchain("keys", "generate", str(path)).returncode == 0
    before = path.read_text()
    again = inferchain("keys", "generate", str(path))
    assert again.returncode == EXIT_BAD_INPUT and "already exists" in one_line_error(again)
    assert path.read_text() == before


def test_generate_refuses_a_dev_name(tmp_path):
    result = inferchain("keys", "generate", "alice", cwd=tmp_path)
    assert result.returncode == EXIT_BAD_INPUT and "development account" in one_line_error(result)


@pytest.mark.parametrize("name", ["alice", "Alice", "ALICE"])
def test_inspect_dev_name(name):
    result = inferchain("keys", "inspect", name, "--output", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    alice = dev_keypair("alice")
    assert document == {
        "source": "dev account", "public_key": alice.public_key.hex(), "address": alice.address, "can_sign": True
    }


def test_inspect_text_output_names_the_address():
    result = inferchain("keys", "inspect", "bob")
    assert result.returncode == 0 and dev_keypair("bob").address in result.stdout
    assert dev_keypair("bob").seed.hex() not in result.stdout


@pytest.mark.parametrize("form", ["address", "hex"])
def test_inspect_an_address_or_public_key_cannot_sign(form):
    bob = dev_keypair("bob")
    text = bob.address if form == "address" else bob.public_key.hex()
    result = inferchain("keys", "inspect", text, "--output", "json")
    document = json.loads(result.stdout)
    assert document["public_key"] == bob.public_key.hex() and document["address"] == bob.address
    assert document["can_sign"] is False


def test_show_secret_prints_the_seed_of_a_key_file(tmp_path):
    path = tmp_path / "k.json"
    inferchain("keys", "generate", str(path))
    result = inferchain("keys", "inspect", str(path), "--show-secret", "--output", "json")
    assert json.loads(result.stdout)["seed"] == json.loads(path.read_text())["seed"]


def test_show_secret_of_an_address_is_an_error():
    result = inferchain("keys", "inspect", dev_keypair("bob").address, "--show-secret")
    assert result.returncode == EXIT_BAD_INPUT and "no secret" in one_line_error(result)


@pytest.mark.parametrize("text", ["mallory", "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ", "ab" * 31])
def test_inspect_nonsense_is_aone_line_error(text):
    result = inferchain("keys", "inspect", text)
    # Messages quote at most 48 characters of what was typed (chain.text.quote_input).
    assert result.returncode == EXIT_BAD_INPUT and text[:48] in one_line_error(result)


def test_inspect_a_damaged_key_file_is_aone_line_error(tmp_path):
    path = tmp_path / "k.json"
    path.write_text('{"seed": "12"}')
    result = inferchain("keys", "inspect", str(path))
    assert result.returncode == EXIT_BAD_INPUT and "32 bytes" in one_line_error(result)


@pytest.mark.parametrize("name", ["./missing.json", "missing.json", "keys/missing", "~/no-such-dir-inferchain/k.json"])
def test_inspect_a_missing_key_file_says_it_does_not_exist(tmp_path, name):
    result = inferchain("keys", "inspect", name, cwd=tmp_path)
    line = one_line_error(result)
    assert result.returncode == EXIT_BAD_INPUT
    assert f"key file {name!r} does not exist" in line and "base58" not in line


@pytest.mark.parametrize("name", ["k" * 5000, "a/" + "k" * 5000 + ".json", "/", "~no-such-user-inferchain/k.json"])
def test_a_name_the_file_system_refuses_is_a_one_line_error(name):
    # A 5,000-character name once raised OSError (file name too long) out of the key file lookup.
    result = inferchain("keys", "inspect", name)
    assert result.returncode == EXIT_BAD_INPUT and one_line_error(result)
