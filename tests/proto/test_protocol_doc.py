"""docs/protocol.md says what a second implementation needs: its lists and vectors match the code.

Packed fields against the .proto descriptors, events against the registry's declarations, genesis
sections and parameters against the modules' parsers and ParamsSpecs, and the encoding vectors
against the real encoder and the node's canonical check (tests/protocol_doc.py reads the doc).
"""

from __future__ import annotations

import copy
import json
import os
import re
import struct
from pathlib import Path

import pytest
from google.protobuf.message_factory import GetMessageClass

from chain.ss58 import decode_address
from proto import state_pb2, types_pb2
from runtime import system
from runtime.encoding import EncodingError, decode_canonical
from runtime.executive import MalformedTransaction, check_transaction, transaction_rules
from runtime.genesis import build_genesis_state, default_app_state, parse_app_state
from runtime.module import ACCOUNT, AMOUNT, BOOLEAN, HASH, INTEGER, TEXT, GenesisContext, GenesisInvalid
from runtime.params import ParamsInvalid
from runtime.registry import RUNTIME
from runtime.state import MemoryState
from runtime.staking.events import OFFER_SET, event as staking_event
from tests.protocol_doc import (
    declared_events,
    declared_params,
    documented_events,
    documented_packed_fields,
    documented_params,
    missing_event_rows,
    missing_params_rows,
    packed_fields,
    section,
    table_rows,
)
from tests.runtime.helpers import ACCOUNTS, genesis_state
from tests.runtime.market import Market, commitment_of, output
from tests.wire import LENGTH_DELIMITED, VARINT, tag, varint

ROOT = Path(__file__).resolve().parents[2]
ALICE = bytes.fromhex("801787cfa29833898a4b542744872e579bcb56cb5009f99c4e273d7cb0b42d27")
HEX_CONTEXT = GenesisContext("doc-test", b"\x01" * 32, 1_700_000_000_000, 1, bytes.fromhex)


def spaced(raw: bytes) -> str:
    """Bytes as the doc writes them: `0a 01 63`."""
    return " ".join(f"{byte:02x}" for byte in raw)


def refusal(message_class, raw: bytes, what: str) -> str:
    with pytest.raises(EncodingError) as refused:
        decode_canonical(message_class, raw, what)
    return str(refused.value)


def one_line(text: str) -> str:
    """Doc text with its line breaks folded, so a quoted reason can be found across them."""
    return re.sub(r"\s+", " ", text)


# --- Canonical encoding: packed fields ------------------------------------------------------


def test_the_doc_lists_exactly_the_packed_fields_of_the_proto_files():
    derived = packed_fields()
    assert derived, "no packed field found: the descriptors were not read"
    documented = documented_packed_fields()
    assert documented == derived, (
        "'Canonical encoding' rule 5 must list every packed field; the descriptors give:\n"
        + "\n".join(f"   - `{field.name}` (field {field.number}, `{field.type}`)" for field in derived)
    )


def test_every_listed_field_is_packed_by_the_encoder_and_refused_unpacked():
    for field in packed_fields():
        package, message_name, field_name = field.name.split(".")
        module = {"types": types_pb2, "state": state_pb2}[package]
        message_class = getattr(module, message_name)
        values = [True, False, True] if field.type == "bool" else [1, 300, 0]
        message = message_class(**{field_name: values})
        packed = message.SerializeToString(deterministic=True)
        assert packed[:1] == tag(field.number, LENGTH_DELIMITED), f"{field.name} is not written packed"
        assert decode_canonical(message_class, packed, message_name) == message
        unpacked = b"".join(_unpacked_element(field, value) for value in values)
        reason = refusal(message_class, unpacked, message_name)
        wire_type = _FIXED[field.type][1] if field.type in _FIXED else VARINT
        assert f"field {field_name} ({field.number}) has wire type {wire_type}, its type needs 2" in reason


_FIXED = {"fixed32": ("<I", 5), "sfixed32": ("<i", 5), "float": ("<f", 5),
          "fixed64": ("<Q", 1), "sfixed64": ("<q", 1), "double": ("<d", 1)}


def _unpacked_element(field, value) -> bytes:
    """One element of a repeated scalar written with its own tag (the form rule 5 refuses)."""
    if field.type in _FIXED:
        layout, wire_type = _FIXED[field.type]
        return tag(field.number, wire_type) + struct.pack(layout, value)
    if field.type in ("sint32", "sint64"):  # zigzag
        value = (value << 1) ^ (value >> 63)
    return tag(field.number, VARINT) + varint(int(value))


def test_the_packed_field_vector_and_its_refused_unpacked_form():
    text = section("Canonical encoding")
    body = types_pb2.TransactionBody(chain_id="c", reveal_result=types_pb2.RevealResult(tokens=[1, 300]))
    canonical = body.SerializeToString(deterministic=True)
    assert spaced(canonical) == "0a 01 63 d2 01 05 22 03 01 ac 02"
    assert f"canonical `{spaced(canonical)}`" in one_line(text)
    assert decode_canonical(types_pb2.TransactionBody, canonical, "transaction body") == body

    unpacked = bytes.fromhex("0a0163d20105200120ac02")
    assert f"unpacked `{spaced(unpacked)}`" in one_line(text)
    reason = refusal(types_pb2.TransactionBody, unpacked, "transaction body")
    assert reason == "transaction body is not canonically encoded: field tokens (4) in reveal_result has wire type 0, its type needs 2"
    assert f"`{reason}`" in one_line(text)


def test_the_node_refuses_a_transaction_whose_body_is_unpacked():
    rules = transaction_rules(genesis_state())
    unpacked_body = bytes.fromhex("0a0163d20105200120ac02")
    raw = types_pb2.Transaction(body=unpacked_body, signature=b"\x01" * 64).SerializeToString()
    with pytest.raises(MalformedTransaction, match=r"field tokens \(4\) in reveal_result has wire type 0"):
        check_transaction(raw, rules)


# --- Canonical encoding: explicitly written defaults -----------------------------------------


@pytest.mark.parametrize(
    "hex_bytes, reason",
    [
        ("0a016320002805", "transaction body is not canonically encoded: field nonce (4) is written with its default value 0; "
                              "default values are left out"),
        ("0a0163c201024200", "field region (8) in post_job is written empty, its default value; default values are left out"),
    ],
)
def test_explicit_defaults_are_refused_with_the_documented_reason(hex_bytes, reason):
    raw = bytes.fromhex(hex_bytes)
    text = one_line(section("Canonical encoding"))
    assert f"`{spaced(raw)}`" in text
    assert reason in text
    assert reason in refusal(types_pb2.TransactionBody, raw, "transaction body")
    # The same bytes signed as a transaction: the node's admission refuses them with that reason.
    rules = transaction_rules(genesis_state())
    transaction = types_pb2.Transaction(body=raw, signature=b"\x01" * 64).SerializeToString()
    with pytest.raises(MalformedTransaction, match=re.escape(reason)):
        check_transaction(transaction, rules)


def test_pruning_the_defaults_gives_the_canonical_bytes_and_keeps_a_set_empty_message():
    assert types_pb2.TransactionBody(chain_id="c", nonce=0, fee=5).SerializeToString().hex() == "0a01632805"
    body = types_pb2.TransactionBody(withdraw_unbonded=types_pb2.WithdrawUnbonded())
    assert spaced(body.SerializeToString(deterministic=True)) == "9a 01 00"
    assert "`withdraw_unbonded: {}` is `9a 01 00`" in one_line(section("Canonical encoding"))
    assert decode_canonical(types_pb2.TransactionBody, bytes.fromhex("9a0100"), "transaction body") == body


# --- Events ---------------------------------------------------------------------------------


def test_the_events_table_lists_every_declared_event_with_its_attributes():
    declared, documented = declared_events(), documented_events()
    undocumented = [name for name in declared if name not in documented]
    assert not undocumented, (
        f"'Events' in docs/protocol.md does not list {undocumented}; add these rows and say what each value is:\n"
        + "\n".join(missing_event_rows())
    )
    stale = sorted(set(documented) - set(declared))
    assert not stale, f"'Events' lists {stale}, which no module declares: remove their rows"
    for name, attributes in declared.items():
        assert documented[name] == attributes, (
            f"'Events' lists {name} with {documented[name]}; its declaration says {attributes} (name, kind, in order)"
        )


def test_every_declared_kind_is_in_the_events_value_table():
    kinds = {row[0] for row in table_rows(section("Events"))}
    used = {kind for attributes in declared_events().values() for _, kind in attributes}
    assert used <= kinds


def test_the_event_encoding_example():
    text = one_line(section("Events"))
    raw = system.fees_paid_event(ALICE, 1234).SerializeToString(deterministic=True)
    author = b"\x0a\x06author\x12\x40" + ALICE.hex().encode()
    amount = b"\x0a\x06amount\x12\x041234"
    expected = (b"\x0a\x06system" + b"\x12\x08FeesPaid" + b"\x1a" + bytes([len(author)]) + author
                + b"\x1a" + bytes([len(amount)]) + amount)
    assert raw == expected
    assert f"the {len(raw)} bytes" in text and "1a 4a" in text and "1a 0e" in text
    empty_region = staking_event(OFFER_SET, account="aa", models="bb", price_per_token=5, region="", capacity=1)
    assert b"\x1a\x08\x0a\x06region" in empty_region.SerializeToString(deterministic=True)
    assert '`1a 08 0a 06 "region"`' in text


_FORMS = {
    ACCOUNT: r"[0-9a-f]{64}",
    HASH: r"[0-9a-f]{64}",
    AMOUNT: r"0|[1-9][0-9]*",
    INTEGER: r"0|[1-9][0-9]*",
    BOOLEAN: r"true|false",
    TEXT: r"(?s).*",
}


def _market_events(market: Market, raws=()) -> list[types_pb2.Event]:
    receipts = market.block(list(raws))
    return list(receipts.block_events) + [event for receipt in receipts.transactions for event in receipt.events]


def _assigned(market: Market, job_id: bytes, events: list, blocks: int = 20):
    """Blocks until the job has an executor (assignment may come some blocks after the post)."""
    for _ in range(blocks):
        executors = market.executors_of(job_id)
        if executors:
            return executors
        events.extend(_market_events(market))
    raise AssertionError("the job was never assigned")


def test_job_events_carry_values_in_their_kinds_forms_and_settled_paid_is_gross():
    market = Market.create()
    events = []
    job_id, receipt = market.post(redundancy=1, max_tokens=8)
    assert receipt.success, receipt.error_message
    events.extend(receipt.events)
    executor = _assigned(market, job_id, events)[0]
    result = output()
    reveal = types_pb2.RevealResult(job_id=job_id, salt=os.urandom(32), **result)
    events.extend(_market_events(market, [market.transaction(executor, reveal_result=reveal)]))
    events.extend(event for _ in range(12) for event in _market_events(market))

    for event in events:
        spec = RUNTIME.event(event.module, event.name)
        for attribute in event.attributes:
            form = _FORMS[spec.attributes[attribute.key]]
            assert re.fullmatch(form, attribute.value), (
                f"{event.module}.{event.name}.{attribute.key} = {attribute.value!r} is not a {spec.attributes[attribute.key]}"
            )

    names = [event.name for event in events]
    assert {"JobPosted", "ResultRevealed", "PaymentHeld", "JobSettled", "PaymentReleased"} <= set(names)
    settled = next(event for event in events if event.name == "JobSettled")
    paid = int(_value(settled, "paid"))
    gross = 0
    for index, event in enumerate(events):
        if event.name == "PaymentHeld":
            gross += int(_value(event, "amount"))
            before = events[index - 1]
            if before.name == "ProtocolFee":
                gross += int(_value(before, "amount"))
    net = sum(slot.payment for slot in market.job(job_id).assignments)  # what `job status` shows as paid
    assert paid == gross
    assert net < gross, "with a protocol fee the executors' net pay is below the gross JobSettled.paid"


def _value(event: types_pb2.Event, key: str) -> str:
    return next(attribute.value for attribute in event.attributes if attribute.key == key)


# --- Jobs: a redundancy-1 reveal records a commitment ----------------------------------------


def test_a_redundancy_one_reveal_without_commitment_records_the_commitment_recipe():
    market = Market.create()
    job_id, receipt = market.post(redundancy=1, max_tokens=8)
    assert receipt.success, receipt.error_message
    executor = _assigned(market, job_id, [])[0]
    result, salt = output(), bytes(range(32))
    market.ok(executor, reveal_result=types_pb2.RevealResult(job_id=job_id, salt=salt, **result))
    job = market.job(job_id)
    slot = next(slot for slot in job.assignments if slot.executor == executor.public_key)
    assert slot.commitment == commitment_of(job, executor, salt, result)
    text = one_line(section("Jobs (`jobs`)"))
    assert "With `redundancy = 1`, a `reveal_result` from an executor whose assignment has no commitment yet still records one" in text


# --- Genesis ------------------------------------------------------------------------------


def test_every_parameter_is_in_the_table_with_its_json_form_and_default():
    declared, documented = declared_params(), documented_params()
    missing = [name for name in declared if name not in documented]
    assert not missing, (
        f"'Genesis' in docs/protocol.md does not list the parameters {missing}; add these rows with their meaning:\n"
        + "\n".join(missing_params_rows())
    )
    stale = sorted(set(documented) - set(declared))
    assert not stale, f"'Genesis' lists the parameters {stale}, which no module declares: remove their rows"
    for name, (form, default) in declared.items():
        assert documented[name] == (form, default), f"{name}: the doc says {documented[name]}, the module {(form, default)}"


def _section_rows() -> dict[str, str]:
    """The "Module sections" table: each `app_state.<module>` named in a row's first cell -> the row's text."""
    rows = {}
    for cells in table_rows(section("Module sections")):
        for module in re.findall(r"`app_state\.(\w+)`", cells[0]):
            rows[module] = " | ".join(cells[1:])
    return rows


def _known_fields(app_state: dict, path: tuple) -> list[str] | None:
    """The fields the module's parser accepts at `path`: an unknown one is added and the refusal read."""
    document = copy.deepcopy(app_state)
    node = document
    for step in path:
        node = node[step]
    node["~unknown"] = 0
    context = GenesisContext("doc-test", b"\x01" * 32, 1_700_000_000_000, 1, decode_address)
    with pytest.raises((GenesisInvalid, ParamsInvalid)) as refused:
        parse_app_state(document, context)
    known = re.search(r"\(known: ([^)]*)\)", str(refused.value))
    return None if known is None else known.group(1).split(", ")


def _objects(node, path=()):
    """Every JSON object inside `node` with its path, parameters left out (they have their own table)."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key != "params":
                yield from _objects(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node[:1]):
            yield from _objects(value, path + (index,))


def test_every_module_section_and_its_fields_are_in_the_genesis_doc():
    app_state = json.loads((ROOT / "genesis.json").read_text())["app_state"]
    rows = _section_rows()
    for module in RUNTIME.modules:
        assert module.name in rows, f"'Module sections' has no row for app_state.{module.name}"
        if module.genesis is None:
            assert "absent or `{}`" in rows[module.name]
            with pytest.raises(GenesisInvalid, match=f"app_state.{module.name}: unknown field"):
                parse_app_state({module.name: {"anything": 1}}, HEX_CONTEXT)
            continue
        assert module.name in app_state, f"genesis.json has no app_state.{module.name} to read its fields from"
        fields = set()
        for path, _ in _objects(app_state[module.name], (module.name,)):
            fields.update(_known_fields(app_state, path) or ())
        assert "params" in fields or module.params is None
        absent = sorted(name for name in fields if not re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", rows[module.name]))
        assert not absent, f"'Module sections', app_state.{module.name}: the parser accepts {absent}, the row does not say"


def test_the_models_section_names_every_model_info_field():
    row = _section_rows()["models"]
    messages = [types_pb2.ModelInfo]
    while messages:
        descriptor = messages.pop().DESCRIPTOR
        for field in descriptor.fields:
            assert re.search(rf"(?<![\w.]){field.name}(?!\w)", row), f"app_state.models does not name {descriptor.name}.{field.name}"
            if field.message_type is not None:
                messages.append(GetMessageClass(field.message_type))


def test_a_genesis_stake_is_bonded_out_of_its_account_balance():
    alice, bob = ACCOUNTS[1].public_key, ACCOUNTS[2].public_key
    amount, bonded = 10**18, 3 * 10**17
    records = {
        "balances": {"balances": [{"address": alice.hex(), "amount": str(amount)},
                                  {"address": bob.hex(), "amount": str(amount)}]},
        "staking": {"stakes": [{"address": alice.hex(), "bonded": str(bonded), "validate": True}]},
    }
    state = MemoryState(build_genesis_state(parse_app_state(default_app_state(records), HEX_CONTEXT)))
    account = system.read_account(state, alice)
    assert (account.free, account.reserved) == (amount - bonded, bonded)
    assert system.read_supply(state).total_issuance == 2 * amount
    text = one_line(section("Genesis"))
    assert "`AccountInfo{free: amount − bonded, reserved: bonded}`" in text

    records["staking"]["stakes"][0]["bonded"] = str(amount + 1)
    with pytest.raises(GenesisInvalid, match=rf"app_state.staking.stakes \({alice.hex()}\): .*exceeds the free balance"):
        build_genesis_state(parse_app_state(default_app_state(records), HEX_CONTEXT))
