"""`inferchain query account|block|chain|tx` and `query MODULE QUERY` through the real console entry, against a real dev node."""

from __future__ import annotations

import json

import pytest

from chain.cli.errors import EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_USAGE
from chain.client import Client
from chain.crypto import Keypair, dev_keypair
from runtime.registry import RUNTIME
from tests.commands import inferchain, one_line_error


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
    assert int(document["best_height"]) >= 1 and document["base_fee"] == "1000"
    # 64-bit on the wire: strings; 32-bit: numbers (docs/cli.md, "JSON output").
    for name in ("best_height", "finalized_height", "block_time_ms", "base_fee", "fee_per_byte",
                 "max_transaction_bytes", "existential_deposit"):
        assert isinstance(document[name], str) and document[name].isdigit(), name
    for name in ("pending_transactions", "ss58_prefix", "token_decimals", "spec_version"):
        assert isinstance(document[name], int), name
    assert document["spec_version"] == RUNTIME.spec_version >= 1
    assert document["token_symbol"] == "INFER" and document["token_decimals"] == 9


def test_query_chain_text_shows_fees_in_tokens(dev_node):
    result = inferchain("query", "chain", "--node", dev_node.target)
    assert result.returncode == 0 and "inferchain-dev" in result.stdout
    assert "0.001000000 INFER" in result.stdout  # the existential deposit, 1,000,000 base units


@pytest.mark.parametrize("name", ["bob", "Bob", dev_keypair("bob").address, dev_keypair("bob").public_key.hex()])
def test_query_account_json_for_every_account_form(dev_node, name):
    result = inferchain("query", "account", name, "--node", dev_node.target, "--output", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["address"] == dev_keypair("bob").address
    assert document["exists"] is True and int(document["free"]) > 0 and isinstance(document["free"], str)
    assert document["proof_verified"] is True
    assert all(isinstance(document[name], str) for name in ("nonce", "next_nonce", "height", "reserved"))


def test_query_account_after_a_transfer(dev_node, included):
    dest, _ = included
    result = inferchain("query", "account", dest.address, "--node", dev_node.target, "--output", "json")
    assert json.loads(result.stdout)["free"] == "7000000"


def test_query_account_text_says_the_proof_was_verified(dev_node):
    result = inferchain("query", "account", "alice", "--node", dev_node.target)
    assert result.returncode == 0 and "verified" in result.stdout


def test_query_account_text_shows_balances_in_tokens(dev_node, included):
    dest, _ = included
    result = inferchain("query", "account", dest.address, "--node", dev_node.target)
    assert result.returncode == 0, result.stderr
    assert "0.007000000 INFER" in result.stdout and "7000000\n" not in result.stdout


def test_query_account_nonsense_is_aone_line_error(dev_node):
    result = inferchain("query", "account", "mallory", "--node", dev_node.target)
    assert result.returncode == EXIT_BAD_INPUT and "mallory" in one_line_error(result)


def test_query_account_of_a_missing_key_file_says_it_does_not_exist(dev_node, tmp_path):
    result = inferchain("query", "account", "./missing.json", "--node", dev_node.target, cwd=tmp_path)
    line = one_line_error(result)
    assert result.returncode == EXIT_BAD_INPUT
    assert "key file './missing.json' does not exist" in line and "base58" not in line


def test_query_block_by_height_and_hash_json(dev_node, included):
    _, transfer = included
    height = transfer.inclusion.height
    by_height = inferchain("query", "block", str(height), "--node", dev_node.target, "--output", "json")
    assert by_height.returncode == 0, by_height.stderr
    block = json.loads(by_height.stdout)
    assert block["height"] == str(height) and block["transaction_count"] >= 1
    assert isinstance(block["time_ms"], str) and isinstance(block["transaction_count"], int)
    listed = {tx["hash"]: tx for tx in block["transactions"]}
    transaction = listed[transfer.hash.hex()]
    assert transaction["amount"] == "7000000" and isinstance(transaction["nonce"], str)
    assert transaction["receipt"]["success"] is True
    by_hash = inferchain("query", "block", block["hash"], "--node", dev_node.target, "--output", "json")
    assert json.loads(by_hash.stdout)["height"] == str(height)


def test_events_show_accounts_as_ss58_in_json_and_text(dev_node, included):
    dest, transfer = included
    alice = dev_keypair("alice")
    document = json.loads(inferchain("query", "tx", transfer.hash.hex(), "--node", dev_node.target,
                                     "--output", "json").stdout)
    [event] = [e for e in document["receipt"]["events"] if e["name"] == "Transfer"]
    # Amounts stay base-unit strings in JSON; accounts are addresses there too.
    assert event["attributes"] == {"sender": alice.address, "dest": dest.address, "amount": "7000000"}
    text = inferchain("query", "tx", transfer.hash.hex(), "--node", dev_node.target).stdout
    assert f"balances.Transfer sender={alice.address} dest={dest.address} amount=0.007000000 INFER" in text
    assert alice.public_key.hex() not in text and dest.public_key.hex() not in text
    assert "fee paid" in text and " INFER" in text.split("fee paid", 1)[1].splitlines()[0]


def test_block_text_shows_transfers_in_tokens_and_block_events_as_addresses(dev_node, included):
    _, transfer = included
    result = inferchain("query", "block", str(transfer.inclusion.height), "--node", dev_node.target)
    assert result.returncode == 0, result.stderr
    assert "transfer 0.007000000 INFER to " in result.stdout
    assert "system.FeesPaid author=" + dev_keypair("alice").address in result.stdout


def test_query_block_default_is_the_best_block(dev_node):
    result = inferchain("query", "block", "--node", dev_node.target)
    assert result.returncode == 0 and "height" in result.stdout


def test_query_block_unknown_height_is_a_one_line_not_found(dev_node):
    result = inferchain("query", "block", "999999999", "--node", dev_node.target)
    assert result.returncode == EXIT_REFUSED and "NOT_FOUND" in one_line_error(result)


@pytest.mark.parametrize("selector", ["tip", "\u0661\u0662"])  # Arabic-Indic digits pass str.isdigit()
def test_query_block_bad_selector_is_a_usage_error(dev_node, selector):
    result = inferchain("query", "block", selector, "--node", dev_node.target)
    assert result.returncode == EXIT_USAGE and selector in one_line_error(result)


def test_query_tx_json_shows_inclusion_and_receipt(dev_node, included):
    _, transfer = included
    result = inferchain("query", "tx", transfer.hash.hex(), "--node", dev_node.target, "--output", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "included" and document["height"] == str(transfer.inclusion.height)
    assert isinstance(document["index"], int) and document["receipt"]["fee_paid"].isdigit()
    assert document["receipt"]["success"] is True and document["transaction"]["amount"] == "7000000"


def test_query_tx_unknown_hash_is_aone_line_error(dev_node):
    result = inferchain("query", "tx", "00" * 32, "--node", dev_node.target)
    assert result.returncode == EXIT_REFUSED and "not known" in one_line_error(result)


def test_query_tx_malformed_hash_is_a_usage_error(dev_node):
    result = inferchain("query", "tx", "xyz", "--node", dev_node.target)
    assert result.returncode == EXIT_USAGE and "64 hex digits" in one_line_error(result)


# --- query MODULE QUERY: every query a module declares ---------------------------------------------

DECLARED_QUERIES = [(module.name, spec.name) for module in RUNTIME.modules for spec in module.queries]


@pytest.mark.parametrize("module, query", DECLARED_QUERIES)
def test_every_declared_query_is_a_command_answered_or_refused_in_one_line(dev_node, module, query):
    # Asked with no options: every request field zero or empty; the module answers or says why not.
    result = inferchain("query", module, query, "--node", dev_node.target, "--output", "json")
    if result.returncode == 0:
        document = json.loads(result.stdout)
        assert (document["module"], document["query"]) == (module, query) and int(document["height"]) >= 0
        assert isinstance(document["response"], dict)
    else:
        assert result.returncode == EXIT_REFUSED and one_line_error(result)


def test_an_unknown_module_query_is_a_usage_error():
    result = inferchain("query", "nothing-of-the-sort", "x")
    assert result.returncode == EXIT_USAGE and "invalid choice" in result.stderr and "Traceback" not in result.stderr
