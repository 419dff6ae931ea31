"""A module joins the runtime in one place: a test-only module served by every edge built from the registry.

tests/runtime/notes_module.py declares a module (messages from protobuf's descriptor API, params
with genesis defaults, one call covering every field kind, events, one query, block hooks). Registered
beside the real modules in a test-only Runtime, and with no other file edited, its genesis section is
parsed with defaults, its call is found, checked and handled through the registry, fuzzed from its
declaration, built by the generic `tx` command, its events are shown by kind, its query is served by
the node's generic Query RPC and the generic `query MODULE QUERY` command, and a block carrying its
call is checked and applied, hooks included, by the real executive (runtime/executive.py) given that
Runtime.

The one edit a real module makes outside its own files is its call's field in proto/types.proto's
`TransactionBody` (here `body_carrying` adds it with the descriptor API); runtime/genesis.py still
builds the modules of the global RUNTIME (docs/runtime.md, "Adding a module").
"""

from __future__ import annotations

import argparse
import ast
import json
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings

from chain.cli import query as query_cli
from chain.cli import tx as tx_cli
from chain.cli.errors import EXIT_BAD_INPUT, EXIT_REFUSED, CliError
from chain.cli.module_queries import query_command
from chain.cli.output import Token
from chain.client import Client
from chain.client.calls import checked_call
from chain.client.results import Event
from chain.crypto import dev_keypair
from chain.genesis import dev_genesis_document, parse_genesis
from chain.node.api import NodeApi
from chain.node.core import NodeCore
from chain.node.queries import QueryApi
from chain.ss58 import encode_address
from chain.storage import ChainStore
from proto import query_pb2, query_pb2_grpc, types_pb2
from runtime import system
from runtime.block import InvalidBlock
from runtime.executive import (
    TRANSACTION_SIGNING_CONTEXT,
    check_transaction,
    hooks_weight,
    process_block,
    transaction_rules,
    validate_transaction,
)
from runtime.module import CallSpec, GenesisContext, GenesisInvalid
from runtime.params import ParamsInvalid
from runtime.primitives import BlockContext, CallContext, DispatchError
from runtime.registry import RUNTIME, Runtime
from runtime.state import MemoryState, Overlay
from tests.property.registry_calls import call_strategies, call_strategy
from tests.runtime import notes_module as notes

# Past the real calls' numbers (proto/types.proto): a field a real module would add there.
FIRST_TEST_CALL_FIELD = 1000


def body_carrying(base: type[Message], calls: tuple[CallSpec, ...]) -> type[Message]:
    """`base` (a TransactionBody) with one more field per call in its `call` oneof, named as the call and of its
    message type: the edit a real module makes to proto/types.proto."""
    file = descriptor_pb2.FileDescriptorProto(name="tests/runtime/notes_body.proto", package="inferchain.test.body",
                                              syntax="proto3")
    files = {base.DESCRIPTOR.file.name, *(call.message.DESCRIPTOR.file.name for call in calls)}
    file.dependency.extend(sorted(files))
    body = file.message_type.add()
    base.DESCRIPTOR.CopyToProto(body)
    [oneof] = [index for index, oneof in enumerate(body.oneof_decl) if oneof.name == "call"]
    for number, call in enumerate(calls, start=FIRST_TEST_CALL_FIELD):
        body.field.add(name=call.name, number=number, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                       type_name=f".{call.message.DESCRIPTOR.full_name}", oneof_index=oneof)
    pool = descriptor_pool.Default()
    pool.Add(file)
    return GetMessageClass(pool.FindMessageTypeByName(f"{file.package}.{body.name}"))


NOTES_BODY = body_carrying(types_pb2.TransactionBody, notes.SPEC.calls)
TEST_RUNTIME = Runtime(modules=RUNTIME.modules + (notes.SPEC,), transaction_body=NOTES_BODY)
GENESIS = parse_genesis(dev_genesis_document())
CONTEXT = GenesisContext(GENESIS.chain_id, GENESIS.hash, GENESIS.genesis_time_ms, 1, bytes.fromhex)
ALICE, BOB = dev_keypair("alice"), dev_keypair("bob")
TOPIC, REF = "ab" * 32, "cd" * 32


def dispatch(runtime: Runtime, state: Overlay, origin: bytes, call) -> list:
    """Find the call in the registry by its message (as the client does), check it, run it in its own layer; its events."""
    spec = runtime.calls[checked_call(call, runtime)]
    layer = state.child()
    spec.handler(layer, CallContext(origin, 0, bytes(32)), call)
    events = layer.take_events()
    layer.commit()
    return events


def notes_state() -> dict[bytes, bytes]:
    """The dev genesis state, the notes module's genesis with its defaults, and one note from Alice to Bob."""
    state = Overlay(MemoryState(GENESIS.state()))
    notes.SPEC.genesis.build(state, notes.SPEC.genesis.parse({}, CONTEXT))
    dispatch(TEST_RUNTIME, state, ALICE.public_key, notes.PostNote(to=BOB.public_key, tip=5, text="hello"))
    return {**GENESIS.state(), **state.changes()}


# --- the registry, genesis and dispatch ----------------------------------------------------------


def test_the_module_file_depends_on_the_runtime_alone():
    tree = ast.parse(Path(notes.__file__).read_text())
    imported = {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
    assert imported <= {"__future__", "dataclasses", "typing", "google", "runtime"}


def test_a_test_runtime_is_the_registry_plus_the_module():
    assert list(TEST_RUNTIME.calls) == [*RUNTIME.calls, "post_note"]
    assert TEST_RUNTIME.call_module("post_note") is notes.SPEC
    assert TEST_RUNTIME.event("notes", "NotePosted").attributes["tip"] == "amount"
    with pytest.raises(ValueError, match="registered twice"):
        Runtime(modules=TEST_RUNTIME.modules + (notes.SPEC,))


def test_its_genesis_section_takes_defaults_and_refuses_what_it_does_not_know():
    assert notes.SPEC.genesis.parse({}, CONTEXT) == notes.SPEC.genesis.default() == notes.Params(280)
    assert notes.SPEC.genesis.parse({"params": {"max_text_bytes": 5}}, CONTEXT) == notes.Params(5)
    with pytest.raises(GenesisInvalid, match="app_state.notes: unknown field 'color'"):
        notes.SPEC.genesis.parse({"color": "red"}, CONTEXT)
    with pytest.raises(ParamsInvalid, match="max_text_bytes must be from 1 to 10000"):
        notes.SPEC.genesis.parse({"params": {"max_text_bytes": 0}}, CONTEXT)
    state = MemoryState(notes_state())
    assert notes.SPEC.genesis.export(state, bytes.hex) == {"params": {"max_text_bytes": 280}}


def test_its_call_is_checked_and_handled_through_the_registry_with_its_declared_event():
    state = Overlay(MemoryState(notes_state()))
    events = dispatch(TEST_RUNTIME, state, BOB.public_key, notes.PostNote(to=ALICE.public_key, text="hi", tip=7))
    assert [(event.module, event.name) for event in events] == [("notes", "NotePosted")]
    declared = TEST_RUNTIME.event("notes", "NotePosted")
    assert [attribute.key for attribute in events[0].attributes] == list(declared.attributes)
    assert notes.read_note(state, BOB.public_key).count == 1
    with pytest.raises(notes.NoteTooLong, match="limit is 280"):
        dispatch(TEST_RUNTIME, state, BOB.public_key, notes.PostNote(to=ALICE.public_key, text="x" * 281))
    assert notes.read_note(state, BOB.public_key).count == 1  # a refused call wrote nothing


def test_the_real_runtime_does_not_know_the_call():
    from chain.client import ClientError

    with pytest.raises(ClientError, match="not a transaction call"):
        checked_call(notes.PostNote(to=BOB.public_key))


# --- a block through the real executive -------------------------------------------------------------

NOTE_FEE = 10**8  # above the dev chain's fee for a note transaction of a few hundred bytes


def note_transaction(call, nonce: int = 0, signer=ALICE, body: type[Message] = NOTES_BODY) -> bytes:
    """A signed transaction carrying a notes call in the test runtime's TransactionBody."""
    raw_body = body(chain_id=GENESIS.chain_id, genesis_hash=GENESIS.hash, sender=signer.public_key, nonce=nonce,
                    fee=NOTE_FEE, post_note=call).SerializeToString(deterministic=True)
    transaction = types_pb2.Transaction(body=raw_body, signature=signer.sign(TRANSACTION_SIGNING_CONTEXT + raw_body))
    return transaction.SerializeToString(deterministic=True)


def next_block(state) -> BlockContext:
    chain = system.read_chain(state)
    return BlockContext(chain.height + 1, chain.time_ms + 1000, ALICE.public_key)


def test_a_block_with_a_notes_call_runs_its_call_and_hooks_through_the_executive():
    state = MemoryState(notes_state())
    context = next_block(state)
    block = types_pb2.Block(transactions=[
        note_transaction(notes.PostNote(to=BOB.public_key, tip=3, text="in a block"), nonce=0),
        note_transaction(notes.PostNote(to=BOB.public_key, text="x" * 281), nonce=1),
    ])
    writes, receipts, checked = process_block(state, block, context, runtime=TEST_RUNTIME)
    posted, too_long = receipts.transactions
    assert posted.success and [(event.module, event.name) for event in posted.events] == [("notes", "NotePosted")]
    # A refused call keeps the fee and writes nothing, as any real call (the executive's rule, not the module's).
    assert (too_long.success, too_long.error_module, too_long.error_name) == (False, "notes", "NoteTooLong")
    assert too_long.fee_paid == NOTE_FEE
    closing = [event for event in receipts.block_events if event.module == "notes"]
    assert [(event.name, [(a.key, a.value) for a in event.attributes]) for event in closing] == [
        ("NotesInBlock", [("height", str(context.height)), ("count", "1")])]
    state.apply(writes.changes())
    assert notes.read_note(state, ALICE.public_key).last.text == "in a block"
    assert notes.read_note(state, ALICE.public_key).count == 2  # one from notes_state, one in the block
    assert state.get(notes.IN_BLOCK_KEY) is None  # on_finalize closed what on_initialize opened
    assert system.read_account(state, ALICE.public_key).nonce == 2


def test_the_notes_hooks_are_counted_in_the_blocks_declared_weight():
    state = MemoryState(notes_state())
    context = next_block(state)
    assert hooks_weight(state, context, runtime=TEST_RUNTIME) == hooks_weight(state, context) + notes.HOOKS_WEIGHT


def test_the_pool_dry_runs_a_notes_call_with_the_runtime_it_is_given():
    state = MemoryState(notes_state())
    rules = transaction_rules(state)
    checked = check_transaction(note_transaction(notes.PostNote(to=BOB.public_key, text="hi")), rules,
                                runtime=TEST_RUNTIME)
    receipt = validate_transaction(state, checked, rules, runtime=TEST_RUNTIME)
    assert receipt.success and receipt.events[0].name == "NotePosted"


def test_the_chains_runtime_refuses_a_block_with_a_call_it_does_not_carry():
    state = MemoryState(notes_state())
    block = types_pb2.Block(transactions=[note_transaction(notes.PostNote(to=BOB.public_key, text="hi"))])
    with pytest.raises(InvalidBlock, match=f"transaction 0 is invalid: .*unknown field {FIRST_TEST_CALL_FIELD}"):
        process_block(state, block, next_block(state))


def test_a_runtime_whose_body_carries_a_call_as_another_message_is_refused():
    from dataclasses import replace

    wrong = replace(notes.SPEC, calls=(replace(notes.SPEC.calls[0], name="transfer"),))
    with pytest.raises(ValueError, match="TransactionBody.transfer carries inferchain.types.Transfer"):
        Runtime(modules=(system.SPEC, wrong))


# --- fuzzed from its declaration -----------------------------------------------------------------


def test_its_call_is_fuzzed_with_no_edit():
    assert set(call_strategies(TEST_RUNTIME)) == set(TEST_RUNTIME.calls)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call_strategy(TEST_RUNTIME.calls["post_note"], [ALICE.public_key, BOB.public_key]))
def test_arbitrary_notes_are_refused_with_a_reason_or_posted_with_their_event(call):
    state = Overlay(MemoryState(FUZZ_STATE))
    try:
        events = dispatch(TEST_RUNTIME, state, ALICE.public_key, call)
    except Exception as error:  # the client's ClientError or the module's DispatchError, with a message
        assert isinstance(error, DispatchError) or type(error).__name__ == "ClientError"
        assert str(error)
        assert state.changes() == {}
        return
    assert [event.name for event in events] == ["NotePosted"]


FUZZ_STATE = notes_state()


# --- the tx command and the events, from the declaration -------------------------------------------


def notes_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inferchain")
    commands = parser.add_subparsers(dest="command")
    tx_cli.register(commands, runtime=TEST_RUNTIME)
    query_cli.register(commands, runtime=TEST_RUNTIME)
    return parser


def test_tx_builds_the_call_with_every_field_kind():
    args = notes_parser().parse_args([
        "tx", "post_note", "--from", "alice", "--to", "bob", "--tip", "1.5INFER", "--priority", "3",
        "--topic", TOPIC, "--text", "café, 0xab", "--payload", "0x00ff", "--pinned", "--labels", "a",
        "--labels", "b,c", "--title", "abcd", "--refs", f"{TOPIC},{REF}",
    ])
    call = tx_cli.build_call(args.call_spec, args, Token)
    assert call == notes.PostNote(
        to=BOB.public_key, tip=15 * 10**8, priority=3, topic=bytes.fromhex(TOPIC), text="café, 0xab",
        payload=b"\x00\xff", pinned=True, labels=["a", "b,c"], title=b"abcd", refs=[bytes.fromhex(TOPIC), bytes.fromhex(REF)],
    )
    document = tx_cli.arguments_document(args.call_spec, call)
    assert document["to"] == BOB.address and document["tip"] == str(15 * 10**8) and document["title"] == "abcd"
    assert document["payload"] == "00ff" and document["refs"] == [TOPIC, REF] and document["pinned"] is True
    shown = dict(tx_cli.argument_fields(args.call_spec, call, Token()))
    assert shown["tip"] == "1.500000000 INFER" and shown["labels"] == "a,b,c" and shown["to"] == BOB.address


def test_its_events_are_shown_by_their_declared_kinds():
    event = Event("notes", "NotePosted", (("author", ALICE.public_key.hex()), ("to", BOB.public_key.hex()),
                                          ("tip", "2000000000"), ("topic", TOPIC), ("count", "1")))
    line = query_cli.event_text(event, Token(), TEST_RUNTIME)
    assert f"author={ALICE.address}" in line and "tip=2.000000000 INFER" in line and f"topic={TOPIC}" in line
    assert query_cli.event_document(event, TEST_RUNTIME)["attributes"]["to"] == BOB.address


# --- the query, over gRPC and the command line -------------------------------------------------------


@pytest.fixture(scope="module")
def notes_node(tmp_path_factory):
    """A real store and node core whose state holds the notes module, served by the node's and the query's servicers."""
    store = ChainStore(tmp_path_factory.mktemp("notes") / "db")
    store.initialize(GENESIS.chain_id, GENESIS.hash, GENESIS.initial_height, notes_state())
    core = NodeCore(store, GENESIS, ALICE)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    from proto import node_pb2_grpc

    node_pb2_grpc.add_NodeServicer_to_server(NodeApi(core, 1000), server)
    query_pb2_grpc.add_QueryServicer_to_server(QueryApi(core, TEST_RUNTIME), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0).wait()
    store.close()


@pytest.fixture
def stub(notes_node):
    channel = grpc.insecure_channel(notes_node)
    yield query_pb2_grpc.QueryStub(channel)
    channel.close()


def _query(stub, request, module="notes", query="note"):
    raw = request if isinstance(request, bytes) else request.SerializeToString()
    return stub.Query(query_pb2.QueryRequest(module=module, query=query, request=raw), timeout=10)


def test_the_query_rpc_lists_and_serves_the_declared_query(stub):
    listed = {(query.module, query.name): query for query in stub.ListQueries(query_pb2.ListQueriesRequest()).queries}
    assert listed[("notes", "note")].request_type == "inferchain.test.notes.NoteQuery"
    assert listed[("notes", "note")].response_type == "inferchain.test.notes.NoteRecord"
    reply = _query(stub, notes.NoteQuery(author=ALICE.public_key))
    record = notes.NoteRecord.FromString(reply.response)
    assert (record.author, record.count, record.last.text) == (ALICE.public_key, 1, "hello")
    assert reply.height == 0 and len(reply.block_hash) == 32


@pytest.mark.parametrize(
    "request_bytes, module, query, code, words",
    [
        (notes.NoteQuery(author=BOB.public_key), "notes", "note", grpc.StatusCode.NOT_FOUND, "a note by"),
        (b"\xff\xff", "notes", "note", grpc.StatusCode.INVALID_ARGUMENT, "does not decode as inferchain.test.notes.NoteQuery"),
        (b"\x10\x05", "notes", "note", grpc.StatusCode.INVALID_ARGUMENT, "fields that inferchain.test.notes.NoteQuery does not have"),
        (notes.NoteQuery(author=b"\x01" * 5), "notes", "note", grpc.StatusCode.INVALID_ARGUMENT, "author must be an account id of 32 bytes, got 5"),
        (notes.NoteQuery(), "notes", "note", grpc.StatusCode.INVALID_ARGUMENT, "notes.InvalidNote: author must be"),
        (b"", "nothing", "note", grpc.StatusCode.NOT_FOUND, "no module 'nothing' declares queries"),
        (b"", "x" * 10_000, "note", grpc.StatusCode.NOT_FOUND, "declares queries"),
        (b"", "notes", "everything", grpc.StatusCode.NOT_FOUND, "module notes has no query 'everything' (its queries: note)"),
    ],
)
def test_a_bad_query_gets_a_clear_status_and_changes_nothing(stub, request_bytes, module, query, code, words):
    with pytest.raises(grpc.RpcError) as refused:
        _query(stub, request_bytes, module, query)
    assert refused.value.code() == code
    assert words in refused.value.details() and len(refused.value.details()) < 400
    assert notes.NoteRecord.FromString(_query(stub, notes.NoteQuery(author=ALICE.public_key)).response).count == 1


def test_the_query_command_is_built_from_the_declaration(notes_node, capsys):
    parser = notes_parser()
    args = parser.parse_args(["query", "notes", "note", "--author", "alice", "--node", notes_node, "--output", "json"])
    assert args.handler(args) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["module"], document["query"], document["height"]) == ("notes", "note", "0")
    response = document["response"]
    assert response["author"] == ALICE.address and response["count"] == "1"
    assert response["last"]["to"] == BOB.public_key.hex() and response["last"]["text"] == "hello"
    args = parser.parse_args(["query", "notes", "note", "--author", ALICE.address, "--node", notes_node])
    assert args.handler(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split() == ["author", ALICE.address] for line in lines)
    assert any(line.split() == ["count", "1"] for line in lines)


@pytest.mark.parametrize(
    "author, code, words",
    [
        ("bob", EXIT_REFUSED, "a note by"),
        ("mallory", EXIT_BAD_INPUT, "mallory"),
    ],
)
def test_a_query_command_that_cannot_be_answered_is_one_line(notes_node, author, code, words):
    args = notes_parser().parse_args(["query", "notes", "note", "--author", author, "--node", notes_node])
    with pytest.raises(CliError) as refused:
        args.handler(args)
    assert refused.value.exit_code == code and words in str(refused.value) and "\n" not in str(refused.value)


def test_the_client_reads_the_declared_response(notes_node):
    from chain.client.queries import ModuleQueries

    with Client(notes_node) as client:
        answer = ModuleQueries(client, TEST_RUNTIME).query("notes", "note", notes.NoteQuery(author=ALICE.public_key))
    assert answer.response.last.to == BOB.public_key and answer.height == 0
    assert encode_address(answer.response.author) == ALICE.address


def test_a_module_named_like_a_query_command_adds_its_queries_under_it():
    from dataclasses import replace

    from runtime import balances, system

    runtime = Runtime(modules=(system.SPEC, balances.SPEC, replace(notes.SPEC, name="models")))
    parser = argparse.ArgumentParser(prog="inferchain")
    query_cli.register(parser.add_subparsers(dest="command"), runtime=runtime)
    listing = parser.parse_args(["query", "models", "--output", "json"])
    assert listing.handler.__name__ == "query_models"  # `query models` alone still lists the models
    generic = parser.parse_args(["query", "models", "note", "--author", "alice"])
    assert generic.handler is query_command
    assert generic.query_module == "models" and generic.field_author == "alice"
