"""The module registry: every call, event, genesis section and hook comes from one declaration per module."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chain.ss58 import decode_address
from proto import types_pb2
from runtime import balances, system
from runtime.executive import apply_block, check_transaction, transaction_rules
from runtime.genesis import build_genesis_state, export_app_state, parse_app_state
from runtime.module import GenesisContext, GenesisInvalid
from runtime.params import ParamsInvalid
from runtime.primitives import BlockContext
from runtime.registry import RUNTIME, Runtime, event_attribute_kind
from runtime.state import MemoryState
from tests.runtime.helpers import ACCOUNTS, genesis_state, transfer

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = GenesisContext("registry-test", b"\x01" * 32, 1_700_000_000_000, 1, bytes.fromhex)


def test_every_call_field_of_the_transaction_body_has_exactly_one_declaration():
    oneof = types_pb2.TransactionBody.DESCRIPTOR.oneofs_by_name["call"]
    on_the_wire = {field.name: field.message_type for field in oneof.fields}
    assert set(RUNTIME.calls) == set(on_the_wire)
    for name, spec in RUNTIME.calls.items():
        assert spec.message.DESCRIPTOR is on_the_wire[name]
        assert set(spec.fields) <= set(spec.message.DESCRIPTOR.fields_by_name)
        assert spec.doc


def test_modules_are_registered_in_hook_order_and_twice_is_refused():
    assert [module.name for module in RUNTIME.modules][:2] == ["system", "balances"]
    with pytest.raises(ValueError, match="registered twice"):
        Runtime(modules=(system.SPEC, system.SPEC))


def test_every_emitted_event_is_declared_with_its_attributes():
    state = genesis_state()
    rules = transaction_rules(state)
    alice, newcomer = ACCOUNTS[1], ACCOUNTS[5]
    raws = [transfer(alice, newcomer.public_key, 2_000_000, nonce=0)]
    writes, receipts = apply_block(
        state, BlockContext(1, 1_700_000_001_000, ACCOUNTS[0].public_key), [check_transaction(raw, rules) for raw in raws]
    )
    events = [event for receipt in receipts.transactions for event in receipt.events] + list(receipts.block_events)
    assert {(event.module, event.name) for event in events} == {
        ("system", "NewAccount"), ("balances", "Transfer"), ("system", "FeesPaid")
    }
    for event in events:
        spec = RUNTIME.event(event.module, event.name)
        assert spec is not None, f"{event.module}.{event.name} is emitted but not declared"
        assert [attribute.key for attribute in event.attributes] == list(spec.attributes)


def test_event_attribute_kinds_tell_the_edges_how_to_show_values():
    assert event_attribute_kind("balances", "Transfer", "dest") == "account"
    assert event_attribute_kind("balances", "Transfer", "amount") == "amount"
    assert event_attribute_kind("system", "FeesPaid", "author") == "account"
    assert event_attribute_kind("balances", "Nothing", "amount") is None


def test_genesis_sections_are_parsed_by_their_modules_and_exported_back():
    document = json.loads((ROOT / "genesis.json").read_text())
    # The runtime knows no address format: the chain passes its decoder in.
    context = GenesisContext("registry-test", b"\x01" * 32, 1_700_000_000_000, 1, decode_address)
    config = parse_app_state(document["app_state"], context)
    state = MemoryState(build_genesis_state(config))
    exported = export_app_state(state, bytes.hex)
    assert exported["system"] == document["app_state"]["system"]
    assert exported["balances"]["params"] == document["app_state"]["balances"]["params"]
    rebuilt = MemoryState(build_genesis_state(parse_app_state(exported, CONTEXT)))
    assert rebuilt.items == state.items


def test_parameters_are_stored_as_protobuf_and_read_back_typed():
    state = genesis_state()
    assert system.read_params(state) == system.Params()
    assert balances.read_params(state) == balances.Params()
    stored = balances.PARAMS.message.FromString(state.get(balances.PARAMS_KEY))
    assert (stored.existential_deposit, stored.token_symbol, stored.token_decimals) == (1_000_000, "INFER", 18)


@pytest.mark.parametrize(
    "app_state, words",
    [
        ({"disputes": {}}, "unknown module 'disputes'"),
        ({"slashing": {"params": {}}}, "app_state.slashing: unknown field 'params'"),
        ({"balances": {"params": {}, "accounts": []}}, "app_state.balances: unknown field 'accounts'"),
        ({"system": {"params": {"base_fee": "²"}}}, "app_state.system.params.base_fee must be an integer"),
        ({"system": {"params": {"max_transaction_bytes": "12"}}}, "at least 128"),
        ({"balances": {"params": {"token_decimals": 20}}}, "token_decimals must be between 0 and 19"),
        ({"balances": {"params": {"token_decimals": 2**32}}}, r"token_decimals must be in \[0, 2\^32\)"),
        ({"balances": {"params": {"token_symbol": "IN FER"}}}, "token_symbol"),
        ({"balances": {"params": {"existential_deposit": "0"}}}, "existential_deposit must be a positive"),
        ({"balances": {"balances": [{"address": "zz", "amount": "5"}]}}, r"balances\[0\].address"),
        ({"balances": {"balances": "all"}}, "must be a list"),
    ],
)
def test_a_module_refuses_a_bad_genesis_section_naming_the_field(app_state, words):
    with pytest.raises((GenesisInvalid, ParamsInvalid), match=words):
        config = parse_app_state(app_state, CONTEXT)
        build_genesis_state(config)

