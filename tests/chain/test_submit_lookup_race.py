"""An accepted transaction is findable from the moment SubmitTransaction returns (issue 29, item 2).

The lookup itself reads the store and the pool in one look under the commit lock (chain/node/core.py,
`lookup`; tests/e2e/test_submit_lookup.py). What was left: a replacement (same sender and nonce, a
higher fee) accepted while the block being built already held the transaction it replaced. The block
used the nonce, the pool then pruned the replacement as stale without a word, and GetTransaction
answered NOT_FOUND ("neither pending nor included") for a transaction SubmitTransaction had accepted.
It is now remembered as rejected, with the reason.
"""

from __future__ import annotations

import json
import threading

import grpc
import pytest

from chain.client import Client, ClientError
from chain.crypto import dev_keypair
from chain.genesis import dev_genesis_document, parse_genesis
from chain.node.api import NodeApi
from chain.node.core import NodeCore
from chain.node.server import ApiServer
from chain.storage import ChainStore
from chain.transactions import FeeRule, sign_transaction
from proto import node_pb2, node_pb2_grpc, types_pb2
from tests.nodes import NodeProcess, free_port

GENESIS = parse_genesis(dev_genesis_document())
FEES = FeeRule(10**6, 10**4)


@pytest.fixture
def served(tmp_path):
    """A node core on LevelDB behind the real gRPC server; blocks are produced when the test says."""
    store = ChainStore(tmp_path / "db")
    store.initialize(GENESIS.chain_id, GENESIS.hash, GENESIS.initial_height, GENESIS.state())
    core = NodeCore(store, GENESIS, dev_keypair("alice"))
    core.produce_block()
    server = ApiServer(NodeApi(core, 1000), "127.0.0.1", 0)
    server.start()
    server.mark_serving()
    yield core, f"127.0.0.1:{server.port}"
    server.stop(grace=0)
    store.close()


def _transfer(sender: str, nonce: int, amount: int, fee: int):
    return sign_transaction(dev_keypair(sender), chain_id=GENESIS.chain_id, genesis_hash=GENESIS.hash, nonce=nonce,
                            call=types_pb2.Transfer(dest=dev_keypair("eve").public_key, amount=amount), fee=fee)


def _lookup(target: str, tx_hash: bytes) -> node_pb2.GetTransactionResponse:
    with grpc.insecure_channel(target) as channel:
        return node_pb2_grpc.NodeStub(channel).GetTransaction(
            node_pb2.GetTransactionRequest(transaction_hash=tx_hash), timeout=10)


def test_a_replacement_accepted_while_its_original_is_in_the_block_being_built_is_found(served):
    core, target = served
    original = _transfer("bob", 0, 10**6, 2 * 10**6)
    core.submit(original.raw)
    candidate = core.propose()  # the block holds the original; it is executed outside the pool's lock
    replacement = _transfer("bob", 0, 2 * 10**6, 4 * 10**6)
    assert core.submit(replacement.raw) == replacement.hash  # accepted: the original was still pending
    assert _lookup(target, replacement.hash).status == node_pb2.TRANSACTION_STATUS_PENDING
    core.commit(candidate, core._commit_for(candidate))

    # Before the fix: NOT_FOUND, "neither pending nor included", for an accepted transaction.
    reply = _lookup(target, replacement.hash)
    assert reply.status == node_pb2.TRANSACTION_STATUS_REJECTED
    assert reply.reason == "its nonce 0 was used by another transaction of this sender, included in block #2"
    assert _lookup(target, original.hash).status == node_pb2.TRANSACTION_STATUS_INCLUDED


def test_a_transaction_included_as_pooled_leaves_no_rejection_behind(served):
    core, target = served
    sent = _transfer("charlie", 0, 10**6, 2 * 10**6)
    core.submit(sent.raw)
    core.produce_block()
    assert core.pool.rejection(sent.hash) is None
    assert _lookup(target, sent.hash).status == node_pb2.TRANSACTION_STATUS_INCLUDED


# -- many concurrent submit-then-get pairs against a real node producing blocks fast ------------------

SENDERS = ("bob", "charlie", "dave", "eve", "ferdie")
ROUNDS = 200  # about 5 in 1,000 replacements hit the window before the fix: each run saw several
BLOCK_TIME_MS = 50


@pytest.fixture
def fast_node(tmp_path):
    document = dev_genesis_document()
    document["consensus_params"]["block"]["block_time_ms"] = str(BLOCK_TIME_MS)
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(document))
    node = NodeProcess(tmp_path / "node", free_port(), ("--chain", str(genesis), "--key", "alice")).start()
    yield node
    node.kill()


def test_every_accepted_submit_is_found_at_once_while_blocks_are_made_fast(fast_node):
    lost: list[str] = []
    errors: list[str] = []

    def found(client: Client, tx_hash: bytes, what: str) -> None:
        status = client.transaction(tx_hash)
        if status.status not in ("pending", "included", "rejected") or (status.status == "rejected" and not status.reason):
            lost.append(f"{what}: {status.status}")

    def submit_replace_and_get(name: str) -> None:
        sender = dev_keypair(name)
        try:
            with Client(fast_node.target) as client:
                for number in range(ROUNDS):
                    nonce = client.next_nonce(sender.public_key)
                    first = client.sign(sender, types_pb2.Transfer(dest=dev_keypair("alice").public_key,
                                                                   amount=10**6 + number), nonce=nonce)
                    client.submit_raw(first.raw)
                    found(client, first.hash, f"{name} #{number}")
                    # The same nonce at twice the fee: a replacement, racing the block that may hold the first.
                    second = client.sign(sender, types_pb2.Transfer(dest=dev_keypair("alice").public_key,
                                                                    amount=2 * 10**6 + number),
                                         nonce=nonce, fee=2 * first.fee)
                    try:
                        client.submit_raw(second.raw)
                    except ClientError:
                        continue  # refused: the first was included already (the nonce is used); not accepted
                    found(client, second.hash, f"{name} #{number} replacement")
        except Exception as error:  # reported below
            errors.append(f"{name}: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=submit_replace_and_get, args=(name,)) for name in SENDERS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not errors, errors
    assert not lost, lost
