"""genesis.json: the committed file is the dev genesis; validation names the bad field; the hash is canonical."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.crypto import DEV_ACCOUNT_NAMES, dev_keypair
from chain.genesis import (
    DEV_BOND,
    DEV_ENDOWMENT,
    GenesisError,
    dev_genesis_document,
    dev_stake,
    genesis_hash,
    load_genesis,
    parse_genesis,
    validator_entry,
)
from inference.registration import EMBEDDED_MODEL_ID
from runtime import models, staking, system
from tests.nodes import ROOT


def test_committed_genesis_json_is_the_dev_genesis():
    committed = json.loads((ROOT / "genesis.json").read_text())
    assert committed == dev_genesis_document()


def test_dev_genesis_endows_the_dev_accounts_and_alice_validates():
    genesis = load_genesis(ROOT / "genesis.json")
    assert [validator.public_key for validator in genesis.validators] == [dev_keypair("alice").public_key]
    state = genesis.state()
    for name in DEV_ACCOUNT_NAMES:
        account = system.read_account(_Reader(state), dev_keypair(name).public_key)
        assert account.free + account.reserved == DEV_ENDOWMENT
    # Alice, the validator, bonded part of hers and offers the embedded model (make dev executes jobs).
    alice = dev_keypair("alice").public_key
    assert staking.read_ledger(_Reader(state), alice).bonded == system.read_account(_Reader(state), alice).reserved
    assert staking.read_offer(_Reader(state), alice).models == [bytes.fromhex(EMBEDDED_MODEL_ID)]
    assert models.read_model(_Reader(state), bytes.fromhex(EMBEDDED_MODEL_ID)).context_length == 8192
    assert genesis.consensus.block_time_ms == 1000


class _Reader:
    def __init__(self, items):
        self.items = items

    def get(self, key):
        return self.items.get(key)


def test_hash_ignores_formatting_but_not_content():
    document = dev_genesis_document()
    reformatted = json.loads(json.dumps(document, indent=7))
    assert genesis_hash(reformatted) == genesis_hash(document)
    changed = copy.deepcopy(document)
    changed["chain_id"] = "other"
    assert genesis_hash(changed) != genesis_hash(document)


def mutated(path: list, value):
    document = dev_genesis_document()
    target = document
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


_DELETE = object()


@pytest.mark.parametrize(
    "path, value, words",
    [
        (["chain_id"], "", "chain_id"),
        (["genesis_time"], "yesterday", "genesis_time"),
        (["genesis_time"], "2026-11-01T00:00:00", "time zone"),
        (["initial_height"], "0", "initial_height"),
        (["validators"], [], "validators"),
        (["validators", 0, "address"], "5NotAnAddress", "validators[0].address"),
        (["validators", 0, "power"], "0", "validators[0].power"),
        (["consensus_params", "block", "block_time_ms"], "1", "block_time_ms"),
        (["app_state", "system", "params", "base_fee"], "-5", "base_fee"),
        (["app_state", "system", "params", "gas"], "5", "unknown parameter 'gas'"),
        (["app_state", "balances", "balances", 0, "amount"], "12", "existential deposit"),
        (["app_state", "balances", "balances", 0, "amount"], str(2**64), "2^64"),
        (["app_state"], _DELETE, "app_state"),
        # Double-sign evidence that could land after the offender's unbonded stake is released.
        (["app_state", "slashing", "params", "max_evidence_age_blocks"], "1000",
         "max_evidence_age_blocks .1000. must be below staking.params.unbonding_period_blocks .1000."),
        (["app_state", "disputes", "params", "same_class_share_ppm"], 400_000, "same_class_share_ppm is 400000"),
    ],
)
def test_invalid_genesis_names_the_field(path, value, words):
    with pytest.raises(GenesisError, match=words.replace("[", r"\[").replace("]", r"\]").replace("^", r"\^")):
        parse_genesis(mutated(path, value))


def test_total_issuance_beyond_64_bits_is_refused():
    document = dev_genesis_document()
    for entry in document["app_state"]["balances"]["balances"]:
        entry["amount"] = str(2**63)
    with pytest.raises(GenesisError, match="the total issuance must be at most 18446744073709551615 base units"):
        parse_genesis(document)


def test_unreadable_files_are_clear_errors(tmp_path):
    with pytest.raises(GenesisError, match="cannot read"):
        load_genesis(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json")
    with pytest.raises(GenesisError, match="not valid JSON"):
        load_genesis(broken)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
                    max_leaves=20))
def test_arbitrary_json_is_refused_with_genesis_error_only(document):
    try:
        parse_genesis(document)
    except GenesisError as error:
        assert str(error)


def _leaf_paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaf_paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaf_paths(value, prefix + (index,))
    yield prefix


LEAF_PATHS = [path for path in _leaf_paths(dev_genesis_document()) if path]


@settings(max_examples=300, deadline=None)
@given(
    path=st.sampled_from(LEAF_PATHS),
    value=st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=12) | st.lists(st.integers(), max_size=2),
)
def test_any_one_field_replaced_is_valid_or_a_genesis_error(path, value):
    try:
        parse_genesis(mutated(list(path), value))
    except GenesisError as error:
        assert str(error)


# --- the validator set: staking's, and a `validators` list that must agree with it -----------------


def test_without_a_validators_list_the_set_is_staking_s():
    document = dev_genesis_document(validator_names=("alice", "bob"))
    del document["validators"]
    genesis = parse_genesis(document)
    assert [(v.name, v.power) for v in genesis.validators] == sorted(
        [("alice", DEV_BOND), ("bob", DEV_BOND)], key=lambda entry: dev_keypair(entry[0]).public_key
    )


def test_an_extra_validating_stake_that_is_not_listed_is_refused_with_the_reason():
    """Before: genesis validate passed, the node started, and block 1 never finalized (nothing in the log)."""
    document = dev_genesis_document(validator_names=("alice",))
    document["app_state"]["staking"]["stakes"].append(dev_stake("eve"))
    with pytest.raises(GenesisError, match="eve validates by stake .* but is not in validators"):
        parse_genesis(document)


def test_a_listed_validator_without_a_validating_stake_is_refused():
    document = dev_genesis_document(validator_names=("alice",))
    document["validators"].append(validator_entry("bob", dev_keypair("bob").public_key))
    with pytest.raises(GenesisError, match=r"validators\[1\] \(bob\) does not validate by stake"):
        parse_genesis(document)


def test_a_listed_power_that_is_not_the_bonded_stake_is_refused():
    document = dev_genesis_document()
    document["validators"][0]["power"] = "100"
    with pytest.raises(GenesisError, match=r"validators\[0\].power is 100, but its bonded stake gives it"):
        parse_genesis(document)


def test_a_genesis_where_nobody_validates_cannot_reach_a_quorum_and_is_refused():
    document = dev_genesis_document()
    del document["validators"]
    document["app_state"]["staking"]["stakes"][0]["validate"] = False
    with pytest.raises(GenesisError, match="no validator at genesis"):
        parse_genesis(document)


def test_consensus_params_block_unknown_fields_and_limits_are_refused():
    for block, words in [
        ({"max_block_evidance": "3"}, "unknown parameter 'max_block_evidance'"),
        ({"max_block_transactions": "0"}, "too small"),
        ({"max_evidence_bytes": "5000000"}, "max_evidence_bytes must be below max_block_bytes"),
    ]:
        document = dev_genesis_document()
        document["consensus_params"]["block"].update(block)
        with pytest.raises(GenesisError, match=words):
            parse_genesis(document)
