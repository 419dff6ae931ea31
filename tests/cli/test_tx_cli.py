"""`inferchain tx transfer` through the real console entry, against a real dev node."""

from __future__ import annotations

import json

import pytest

from chain.client import Client
from chain.crypto import Keypair, dev_keypair
from tests.commands import inferchain, one_line_error
from tests.nodes import free_port


@pytest.fixture(scope="module")
def client(dev_node):
    with Client(dev_node.target) as client:
        yield client


def test_transfer_wait_json_reports_inclusion_and_moves_funds(dev_node, client):
    dest = Keypair.generate()
    result = inferchain(
        "tx", "transfer", "--from", "alice", "--to", dest.address, "--amount", "3000000", "--wait",
        "--node", dev_node.target, "--output", "json",
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "included" and document["receipt"]["success"] is True
    assert document["amount"] == "3000000" and document["to"] == dest.address
    assert client.account(dest).free == 3_000_000
    assert client.transaction(bytes.fromhex(document["hash"])).height == document["height"]


def test_transfer_without_wait_prints_the_hash(dev_node, client):
    result = inferchain("tx", "transfer", "--from", "Bob", "--to", "charlie", "--amount", "1000", "--node", dev_node.target)
    assert result.returncode == 0, result.stderr
    assert "submitted" in result.stdout
    transaction_hash = next(line.split()[-1] for line in result.stdout.splitlines() if line.startswith("hash"))
    assert client.wait_for_inclusion(bytes.fromhex(transaction_hash), timeout=20).receipt.success


def test_transfer_from_a_key_file(dev_node, client, tmp_path):
    key_file = tmp_path / "sender.json"
    assert inferchain("keys", "generate", str(key_file)).returncode == 0
    sender = json.loads(key_file.read_text())["address"]
    client.transfer(dev_keypair("alice"), sender, 50_000_000, wait=True, timeout=20)
    result = inferchain(
        "tx", "transfer", "--from", str(key_file), "--to", "dave", "--amount", "1000000", "--wait",
        "--node", dev_node.target, "--output", "json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["from"] == sender and client.account(sender).nonce == 1


def test_transfer_with_explicit_fee_and_nonce(dev_node, client):
    nonce = client.next_nonce("eve")
    result = inferchain(
        "tx", "transfer", "--from", "eve", "--to", "ferdie", "--amount", "1000", "--fee", "50000",
        "--nonce", str(nonce), "--wait", "--node", dev_node.target, "--output", "json",
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["nonce"] == nonce and document["fee"] == "50000"
    assert document["receipt"]["fee_paid"] == "50000"


def test_a_failed_call_is_reported_with_exit_1(dev_node):
    # Below the existential deposit to a new account: included (the fee is paid) but the call fails.
    result = inferchain(
        "tx", "transfer", "--from", "ferdie", "--to", Keypair.generate().address, "--amount", "5",
        "--wait", "--node", dev_node.target,
    )
    assert result.returncode == 1
    assert "ExistentialDeposit" in one_line_error(result)
    assert "included" in result.stdout


def test_an_unaffordable_transfer_is_refused_in_one_line(dev_node, client):
    before = client.account("charlie")
    result = inferchain(
        "tx", "transfer", "--from", "charlie", "--to", "bob", "--amount", str(10**19), "--node", dev_node.target
    )
    assert result.returncode == 1
    line = one_line_error(result)
    assert "FAILED_PRECONDITION" in line and "balance" in line
    after = client.account("charlie")
    assert (after.free, after.next_nonce) == (before.free, before.next_nonce)


def test_a_replayed_nonce_is_refused_in_one_line(dev_node, client):
    assert client.account("alice").nonce >= 1
    result = inferchain(
        "tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "1000", "--nonce", "0",
        "--node", dev_node.target,
    )
    assert result.returncode == 1 and "nonce" in one_line_error(result)


def test_an_address_cannot_sign(dev_node):
    result = inferchain(
        "tx", "transfer", "--from", dev_keypair("bob").address, "--to", "alice", "--amount", "1", "--node", dev_node.target
    )
    assert result.returncode == 1 and "cannot sign" in one_line_error(result)


@pytest.mark.parametrize(
    "option, value", [("--amount", "0"), ("--amount", "ten"), ("--amount", str(2**64)), ("--fee", "-1"), ("--nonce", "x")]
)
def test_bad_numbers_are_usage_errors(dev_node, option, value):
    args = {"--amount": "1000", option: value}
    flat = [item for pair in args.items() for item in pair]
    result = inferchain("tx", "transfer", "--from", "alice", "--to", "bob", *flat, "--node", dev_node.target)
    assert result.returncode == 2 and option in one_line_error(result)


def test_an_unknown_destination_is_aone_line_error(dev_node):
    result = inferchain("tx", "transfer", "--from", "alice", "--to", "mallory", "--amount", "1", "--node", dev_node.target)
    assert result.returncode == 1 and "mallory" in one_line_error(result)


def test_no_node_is_a_one_line_error_naming_the_target():
    target = f"127.0.0.1:{free_port()}"
    result = inferchain("tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "1", "--node", target)
    assert result.returncode == 1 and target in one_line_error(result)
