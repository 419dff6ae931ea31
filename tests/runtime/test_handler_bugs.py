"""A call whose code raises a bug (runtime/executive.py HANDLER_BUGS): its transaction fails as system.CallFailed,
keeping its fee, instead of making every block that carries it impossible to build or import; the pool refuses
it before any fee with one line; what is not a deterministic bug (MemoryError, a storage failure) still stops
the block. Also the node's admission: a bug in a call's cost or check is refused as INTERNAL with one line."""

from __future__ import annotations

from concurrent import futures
from dataclasses import replace

import grpc
import pytest

from chain.client import Client, ClientError
from chain.crypto import dev_keypair
from chain.node.api import NodeApi
from chain.node.core import NodeCore, Rejected
from chain.storage import ChainStore
from chain.transactions import sign_transaction, transfer_call
from proto import node_pb2_grpc, types_pb2
from runtime import executive, system
from runtime.executive import CallWouldFail, check_transaction, process_block, transaction_rules, validate_transaction
from runtime.primitives import make_event
from runtime.registry import RUNTIME, Runtime
from runtime.state import MemoryState, Overlay
from tests.runtime import notes_module as notes
from tests.runtime.test_module_joins import (
    ALICE, BOB, GENESIS, NOTE_FEE, NOTES_BODY, next_block, note_transaction, notes_state,
)


def runtime_whose_note_raises(error: BaseException) -> Runtime:
    """The test runtime with the notes call's handler replaced by one that writes, then raises `error`."""
    def handler(state, context, call) -> None:
        state.set(b"notes/half-done", b"x")
        state.deposit_event(make_event(notes.MODULE, "NotePosted"))
        raise error

    buggy = replace(notes.SPEC, calls=(replace(notes.SPEC.calls[0], handler=handler),))
    return Runtime(modules=RUNTIME.modules + (buggy,), transaction_body=NOTES_BODY)


@pytest.mark.runtime_bug
def test_a_call_that_raises_a_bug_fails_in_its_block_keeping_the_fee_and_nothing_it_wrote(caplog):
    runtime = runtime_whose_note_raises(AttributeError("'NoneType' object has no attribute 'seals' at 0x7f00"))
    state = MemoryState(notes_state())
    nonce = system.read_account(state, BOB.public_key).nonce  # Bob sends: Alice authors the block and gets the fee
    free = system.read_account(state, BOB.public_key).free
    raw = note_transaction(notes.PostNote(to=ALICE.public_key, text="hi"), nonce=nonce, signer=BOB)
    block = next_block(state)
    writes, receipts, _ = process_block(state, types_pb2.Block(transactions=[raw]), block, runtime=runtime)
    [receipt] = receipts.transactions
    assert (receipt.success, receipt.error_module, receipt.error_name) == (False, "system", "CallFailed")
    assert receipt.error_message == (
        "the post_note call failed inside the runtime (AttributeError): a bug in this chain's code, not a rule of "
        "the call; nothing it did was kept")  # the type only: the error's text differs between nodes (0x7f00)
    assert receipt.fee_paid == NOTE_FEE and not receipt.events
    changes = writes.changes()
    assert b"notes/half-done" not in changes
    state.apply(changes)
    account = system.read_account(state, BOB.public_key)
    assert account.nonce == nonce + 1 and account.free == free - NOTE_FEE
    # Every node computes the same block: the same receipts, byte for byte.
    _, again, _ = process_block(MemoryState(notes_state()), types_pb2.Block(transactions=[raw]), block,
                                runtime=runtime)
    assert again.SerializeToString(deterministic=True) == receipts.SerializeToString(deterministic=True)
    assert "raised AttributeError inside the runtime (a bug)" in caplog.text  # the node's log has the traceback


@pytest.mark.runtime_bug
def test_the_pool_refuses_such_a_call_before_any_fee_with_one_line():
    runtime = runtime_whose_note_raises(KeyError("missing"))
    state = Overlay(MemoryState(notes_state()))
    rules = transaction_rules(state)
    nonce = system.read_account(state, ALICE.public_key).nonce
    checked = check_transaction(note_transaction(notes.PostNote(to=BOB.public_key, text="hi"), nonce=nonce), rules,
                                runtime=runtime)
    with pytest.raises(CallWouldFail) as refused:
        validate_transaction(state, checked, rules, runtime=runtime)
    assert str(refused.value).startswith("system.CallFailed: the post_note call failed inside the runtime (KeyError)")
    assert "\n" not in str(refused.value)
    assert not state.changes()


@pytest.mark.parametrize("error", [MemoryError(), RecursionError("deep"), OSError(5, "Input/output error")])
def test_what_is_not_a_deterministic_bug_still_stops_the_block(error):
    runtime = runtime_whose_note_raises(error)
    state = MemoryState(notes_state())
    nonce = system.read_account(state, ALICE.public_key).nonce
    raw = note_transaction(notes.PostNote(to=BOB.public_key, text="hi"), nonce=nonce)
    with pytest.raises(type(error)):
        process_block(state, types_pb2.Block(transactions=[raw]), next_block(state), runtime=runtime)


@pytest.mark.runtime_bug
def test_a_bug_in_a_calls_cost_is_refused_by_the_node_as_internal_with_one_line(tmp_path, monkeypatch):
    """Before, the exception reached gRPC, which answered UNKNOWN "Exception calling application: ..."."""
    store = ChainStore(tmp_path / "db")
    store.initialize(GENESIS.chain_id, GENESIS.hash, GENESIS.initial_height, GENESIS.state())
    core = NodeCore(store, GENESIS, ALICE)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    node_pb2_grpc.add_NodeServicer_to_server(NodeApi(core, 1000), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()

    def broken_cost(state, body, *, runtime=RUNTIME):
        raise TypeError("unsupported operand type(s) for +: 'int' and 'NoneType'")

    monkeypatch.setattr(executive, "call_cost", broken_cost)
    try:
        with Client(f"127.0.0.1:{port}") as client:
            info = client.chain_info()
            transfer = sign_transaction(dev_keypair("eve"), chain_id=info.chain_id, genesis_hash=info.genesis_hash,
                                        nonce=0, call=transfer_call(BOB.public_key, 10), fee_rule=info.fee_rule)
            with pytest.raises(ClientError) as refused:
                client.submit_raw(transfer.raw)
            assert refused.value.code == "INTERNAL"
            assert "the node failed to check this transaction (TypeError): a bug in this chain's code" in str(
                refused.value)
            with pytest.raises(Rejected) as rejected:
                core.submit(transfer.raw)
            assert rejected.value.status == "INTERNAL" and len(core.pool) == 0
    finally:
        server.stop(0).wait()
        store.close()


def test_a_test_that_lets_a_call_raise_a_bug_unmarked_fails(tmp_path):
    """The autouse guard (tests/conftest.py): the fuzzers would otherwise no longer see a handler's bug."""
    import subprocess
    import sys

    from tests.commands import ROOT

    (tmp_path / "test_bug.py").write_text(
        "import logging\n\n"
        "def test_bug():\n"
        "    try:\n"
        "        raise AttributeError('x')\n"
        "    except AttributeError:\n"
        "        logging.getLogger('inferchain.runtime').error('the call raised', exc_info=True)\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-c", "/dev/null", "--rootdir", str(tmp_path),
                           "-p", "tests.conftest", "-p", "no:cacheprovider", str(tmp_path / "test_bug.py")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "a call raised inside the runtime: the call raised" in done.stdout, done.stdout
