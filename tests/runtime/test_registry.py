"""The module registry: every call, event, genesis section and hook comes from one declaration per module."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from chain.ss58 import decode_address
from proto import types_pb2
from runtime import balances, jobs, models, slashing, staking, system
from runtime.executive import CannotAfford, apply_block, check_transaction, transaction_rules, validate_transaction
from runtime.genesis import RuntimeGenesis, build_genesis_state, default_app_state, export_app_state, parse_app_state
from runtime.module import AMOUNT, BOOLEAN, HASH, INTEGER, TEXT, CallSpec, GenesisContext, GenesisInvalid, ModuleSpec
from runtime.params import ParamsInvalid, params_to_json
from runtime.primitives import BlockContext, make_event
from runtime.registry import RUNTIME, SPEC_VERSION, Runtime, event_attribute_kind
from runtime.state import MemoryState
from tests.runtime.helpers import ACCOUNTS, ENDOWMENT, assert_events_declared, genesis_state, transfer
from tests.runtime.market import JOBS, MODEL, POSTER, Market

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
    events = assert_events_declared(receipts)
    assert {(event.module, event.name) for event in events} == {
        ("system", "NewAccount"), ("balances", "Transfer"), ("system", "FeesPaid")
    }


def test_the_event_check_refuses_an_undeclared_event_or_attribute_set():
    receipts = types_pb2.BlockReceipts(block_events=[make_event("balances", "Transfer", sender="aa", dest="bb")])
    with pytest.raises(AssertionError, match=r"balances.Transfer carries \['sender', 'dest'\]"):
        assert_events_declared(receipts)
    receipts = types_pb2.BlockReceipts(block_events=[make_event("balances", "Minted", amount=1)])
    with pytest.raises(AssertionError, match="balances.Minted is emitted but its module does not declare it"):
        assert_events_declared(receipts)


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
    assert (stored.existential_deposit, stored.token_symbol, stored.token_decimals) == (1_000_000, "INFER", 9)


@pytest.mark.parametrize(
    "app_state, words",
    [
        ({"auctions": {}}, "unknown module 'auctions'"),
        ({"reputation": {"params": {}}}, "app_state.reputation: unknown field 'params'"),
        ({"balances": {"params": {}, "accounts": []}}, "app_state.balances: unknown field 'accounts'"),
        ({"staking": {"params": {"jail_blocks": "1000"}}},
         "app_state.staking.params: jail_blocks moved to app_state.slashing.params: set it there"),
        ({"slashing": {"params": {"slash_fraction_double_sign_ppm": 1_000_001}}},
         "slashing.params.slash_fraction_double_sign_ppm must be at most 1000000"),
        ({"slashing": {"params": {"max_evidence_age_blocks": "0"}}}, "slashing.params.max_evidence_age_blocks must be at least 1"),
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



# --- declarations checked at start-up, costs and checks under state, genesis defaults --------------


def _module_with(call: CallSpec) -> ModuleSpec:
    return ModuleSpec(name="probe", doc="A module built only to be refused.", params=None, genesis=None, calls=(call,))


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"validate": INTEGER}, "probe.bond.validate: declared integer, but the protobuf field is a bool"),
        ({"amount": TEXT}, "probe.bond.amount: declared text, but the protobuf field is a uint64"),
        ({"amount": "money"}, "probe.bond.amount: unknown kind 'money'"),
        ({"stake": AMOUNT}, "probe.bond: no field 'stake' \\(fields: amount, validate\\)"),
    ],
)
def test_a_field_kind_that_contradicts_the_protobuf_is_refused_when_the_runtime_is_built(fields, words):
    call = CallSpec(name="bond", message=types_pb2.Bond, doc="Bond.", handler=lambda state, context, call: None,
                    fields=fields)
    with pytest.raises(ValueError, match=words):
        Runtime(modules=(_module_with(call),))


def test_declared_kinds_match_the_protobuf_and_a_repeated_field_has_the_kind_of_each_value():
    assert RUNTIME.calls["bond"].fields["validate"] == BOOLEAN
    assert RUNTIME.calls["vote_model"].fields["approve"] == BOOLEAN
    assert RUNTIME.calls["set_offer"].fields["models"] == HASH  # `repeated bytes models`
    call = CallSpec(name="set_offer", message=types_pb2.SetOffer, doc="Offer.", handler=lambda state, context, call: None,
                    fields={"models": HASH, "capacity": INTEGER})
    assert Runtime(modules=(_module_with(call),)).calls["set_offer"] is call
    assert RUNTIME.spec_version == SPEC_VERSION >= 1


def test_a_cost_is_declared_under_the_state_rules_and_the_pool_checks_it_before_the_dry_run():
    deposit = 2 * ENDOWMENT
    market = Market.create(models_params=models.Params(proposal_deposit=deposit))
    proposal = types_pb2.ProposeModel(model=types_pb2.ModelInfo(**{**_model_fields(), "id": b"\x07" * 32}))
    assert RUNTIME.calls["propose_model"].cost(market.state, proposal) == deposit
    rules = transaction_rules(market.state)
    checked = check_transaction(market.transaction(POSTER, propose_model=proposal), rules)
    with pytest.raises(CannotAfford, match=f"plus {deposit} spent by the call"):
        validate_transaction(market.state, checked, rules)


def _model_fields() -> dict:
    # A proposal names the file validators fetch (runtime/models.py check_fetchable).
    return {**{field.name: value for field, value in MODEL.ListFields()},
            "source": "https://example.com/model.gguf", "size_bytes": 1}


def test_a_stateful_check_is_declared_once_and_refuses_without_writing():
    market = Market.create(jobs_params=replace(JOBS, max_prompt_bytes=4))
    call = types_pb2.PostJob(model=MODEL.id, prompt="hello", prompt_format="chat", max_tokens=4, redundancy=1,
                             sampling=types_pb2.Sampling(top_p_ppm=1), max_price_per_token=1_000)
    before = dict(market.state.items)
    with pytest.raises(jobs.JobTooLarge, match="the prompt is 5 bytes, the limit is 4"):
        RUNTIME.calls["post_job"].check_state(market.state, call)
    receipt = market.call(POSTER, post_job=call)  # the handler runs the same declared check
    assert (receipt.error_name, receipt.error_message) == ("JobTooLarge", "the prompt is 5 bytes, the limit is 4")
    assert {key: value for key, value in market.state.items.items() if not key.startswith(b"system/")} == {
        key: value for key, value in before.items() if not key.startswith(b"system/")
    }


def test_a_module_left_out_of_genesis_takes_its_declared_defaults():
    system_only = RuntimeGenesis({"system": system.GenesisConfig("defaults", b"\x02" * 32, 1_700_000_000_000, 1, system.Params())})
    state = MemoryState(build_genesis_state(system_only))
    assert staking.read_params(state) == staking.Params()
    assert jobs.read_params(state) == jobs.Params()
    assert models.read_params(state) == models.Params()
    assert slashing.read_params(state) == slashing.Params()
    assert staking.read_validator_set(state).validators == []
    from_json = MemoryState(build_genesis_state(parse_app_state({"system": {}}, CONTEXT)))
    assert from_json.get(staking.PARAMS_KEY) == state.get(staking.PARAMS_KEY)


def test_genesis_without_a_module_that_has_no_defaults_or_with_an_unknown_one_is_refused():
    with pytest.raises(GenesisInvalid, match="app_state.system: the system module has no defaults"):
        build_genesis_state(RuntimeGenesis({}))
    with pytest.raises(GenesisInvalid, match="unknown module 'auctions'"):
        build_genesis_state(RuntimeGenesis({"auctions": object()}))


def test_the_default_app_state_holds_every_module_s_declared_defaults_plus_the_records_given():
    document = default_app_state({"balances": {"balances": [{"address": ACCOUNTS[1].public_key.hex(), "amount": "5000000"}]}})
    assert list(document) == [module.name for module in RUNTIME.modules if module.genesis is not None]
    assert document["jobs"] == {"params": params_to_json(jobs.PARAMS, jobs.Params())}
    state = MemoryState(build_genesis_state(parse_app_state(document, CONTEXT)))
    assert balances.read_params(state) == balances.Params()
    assert system.read_account(state, ACCOUNTS[1].public_key).free == 5_000_000
    with pytest.raises(GenesisInvalid, match="unknown module 'auctions'"):
        default_app_state({"auctions": {}})
