"""`inferchain query account|block|chain|tx` through the real console entry, against a real dev node."""

from __future__ import annotations

import json

import pytest

from chain.client import Client
from chain.crypto import Keypair, dev_keypair
from tests.commands import inferchain, one_line_error
from tests.nodes import free_port


@pytest.fixture(scope="module")
def included(dev_node):
    """A transfer from Alice to a fresh account, included in a block."""
    dest = Keypair.generate()
    with Client(dev_node.target) as client:
        result = client.transfer(dev_keypair("alice"), dest.public_key, 7_000_000, wait=True, timeout=20)
    return dest, result


def test_query_chain_json(dev_node):
    result = inferchain("query", "chain", "--node", dev_node.target, "--output", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["chain_id"] == "inferchain-dev" and len(document["genesis_hash"]) == 64
    assert document["best_height"] >= 1 and document["base_fee"] == "1000"


def test_query_chain_text(dev_node):
    result = inferchain("query", "chain", "--node", dev_node.target)
    assert result.returncode == 0 and "inferchain-dev" in result.stdout


@pytest.mark.parametrize("name", ["bob", "Bob", dev_keypair("bob").address, dev_keypair("bob").public_key.hex()])
def test_query_account_json_for_every_account_form(dev_node, name):
    result = inferchain("query", "account", name, "--node", dev_node.target, "--output", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["address"] == dev_keypair("bob").address
    assert document["exists"] is True and int(document["free"]) > 0 and isinstance(document["free"], str)
    assert document["proof_verified"] is True and isinstance(document["nonce"], int)


def test_query_account_after_a_transfer(dev_node, included):
    dest, _ = included
    result = inferchain("query", "account", dest.address, "--node", dev_node.target, "--output", "json")
    assert json.loads(result.stdout)["free"] == "7000000"


def test_query_account_text_says_the_proof_was_verified(dev_node):
    result = inferchain("query", "account", "alice", "--node", dev_node.target)
    assert result.returncode == 0 and "verified" in result.stdout


def test_query_account_nonsense_is_aone_line_error(dev_node):
    result = inferchain("query", "account", "mallory", "--node", dev_node.target)
    assert result.returncode == 1 and "mallory" in one_line_error(result)


def test_query_block_by_height_and_hash_json(dev_node, included):
    _, transfer = included
    height = transfer.inclusion.height
    by_height = inferchain("query", "block", str(height), "--node", dev_node.target, "--output", "json")
    assert by_height.returncode == 0, by_height.stderr
    block = json.loads(by_height.stdout)
    assert block["height"] == height and block["transaction_count"] >= 1
    listed = {tx["hash"]: tx for tx in block["transactions"]}
    assert listed[transfer.hash.hex()]["amount"] == "7000000"
    assert listed[transfer.hash.hex()]["receipt"]["success"] is True
    by_hash = inferchain("query", "block", block["hash"], "--node", dev_node.target, "--output", "json")
    assert json.loads(by_hash.stdout)["height"] == height


def test_query_block_default_is_the_best_block(dev_node):
    result = inferchain("query", "block", "--node", dev_node.target)
    assert result.returncode == 0 and "height" in result.stdout


def test_query_block_unknown_height_is_a_one_line_not_found(dev_node):
    result = inferchain("query", "block", "999999999", "--node", dev_node.target)
    assert result.returncode == 1 and "NOT_FOUND" in one_line_error(result)


def test_query_block_bad_selector_is_a_usage_error(dev_node):
    result = inferchain("query", "block", "tip", "--node", dev_node.target)
    assert result.returncode == 2 and "tip" in one_line_error(result)


def test_query_tx_json_shows_inclusion_and_receipt(dev_node, included):
    _, transfer = included
    result = inferchain("query", "tx", transfer.hash.hex(), "--node", dev_node.target, "--output", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "included" and document["height"] == transfer.inclusion.height
    assert document["receipt"]["success"] is True and document["transaction"]["amount"] == "7000000"


def test_query_tx_unknown_hash_is_aone_line_error(dev_node):
    result = inferchain("query", "tx", "00" * 32, "--node", dev_node.target)
    assert result.returncode == 1 and "not known" in one_line_error(result)


def test_query_tx_malformed_hash_is_a_usage_error(dev_node):
    result = inferchain("query", "tx", "xyz", "--node", dev_node.target)
    assert result.returncode == 2 and "64 hex digits" in one_line_error(result)


def test_no_node_listening_is_a_one_line_error_naming_the_target():
    target = f"127.0.0.1:{free_port()}"
    result = inferchain("query", "chain", "--node", target)
    assert result.returncode == 1
    line = one_line_error(result)
    assert target in line and "refused" in line


def test_a_malformed_node_address_is_a_usage_error():
    result = inferchain("query", "chain", "--node", "localhost")
    assert result.returncode == 2 and "HOST:PORT" in one_line_error(result)
