"""The gRPC edge around the API: a database that fails a read is DATA_LOSS with its reason, not INTERNAL;
request size limits come from the chain's transaction and block sizes; a node still at genesis."""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from chain.client import Client
from chain.crypto import dev_keypair
from chain.genesis import dev_genesis_document, parse_genesis
from chain.node.api import NodeApi
from chain.node.core import NodeCore
from chain.node.api import MAX_BATCH
from chain.node.server import ApiServer, RequestLimits, server_options
from chain.node.streams import StreamLimits
from chain.storage import ChainStore, StoreError
from proto import node_pb2, node_pb2_grpc

GENESIS = parse_genesis(dev_genesis_document())


@pytest.fixture
def served(tmp_path):
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


def test_a_failed_database_read_is_data_loss_naming_the_damage(served, monkeypatch):
    core, target = served

    def damaged(height):
        raise StoreError(f"{core.store.path} is damaged: reading it failed (Corruption: block checksum mismatch)")

    monkeypatch.setattr(core.store, "block_hash_at", damaged)
    with grpc.insecure_channel(target) as channel:
        stub = node_pb2_grpc.NodeStub(channel)
        with pytest.raises(grpc.RpcError) as failed:
            stub.GetBlock(node_pb2.GetBlockRequest(height=1), timeout=10)
        assert failed.value.code() == grpc.StatusCode.DATA_LOSS
        assert "checksum mismatch" in failed.value.details()
        assert stub.GetChainInfo(node_pb2.GetChainInfoRequest(), timeout=10).best_height == 1


def test_request_limits_follow_the_genesis_transaction_and_block_sizes():
    limits = RequestLimits.of_chain(max_transaction_bytes=65_536, max_block_bytes=4 * 1024 * 1024)
    assert limits.of_method("/inferchain.node.Node/SubmitTransaction") == limits.transaction == 65_536 + 1024
    assert limits.of_method("/inferchain.node.Node/SimulateTransaction") == limits.transaction
    assert limits.of_method("/inferchain.node.Node/SubmitTransactions") == limits.batch == 4 * 1024 * 1024 + 6 * MAX_BATCH
    assert limits.of_method("/inferchain.node.Node/GetBlock") == limits.largest
    assert limits.of_method("/grpc.health.v1.Health/Check") == limits.largest
    # gRPC's own limit is the largest, and far below the 30 MiB requests of issue 28.
    assert limits.largest == limits.batch < 5 * 1024 * 1024
    assert ("grpc.max_receive_message_length", limits.largest) in server_options(StreamLimits(), limits)


def test_a_batch_may_hold_one_transaction_larger_than_a_block():
    limits = RequestLimits.of_chain(max_transaction_bytes=8 * 1024 * 1024, max_block_bytes=4 * 1024 * 1024)
    assert limits.batch >= limits.transaction - 1024


def test_the_server_takes_its_limits_from_the_chain(served):
    core, _ = served
    server = ApiServer(NodeApi(core, 1000), "127.0.0.1", 0)
    try:
        assert server.requests == RequestLimits.of_chain(
            core.rules.params.max_transaction_bytes, GENESIS.consensus.max_block_bytes
        )
    finally:
        server.stop(grace=0)


def test_a_transaction_included_while_it_is_looked_up_is_found_not_lost_between_pool_and_store(served, monkeypatch):
    from chain.transactions import FeeRule, sign_transaction
    from proto import types_pb2

    core, target = served
    transfer = sign_transaction(
        dev_keypair("bob"), chain_id=GENESIS.chain_id, genesis_hash=GENESIS.hash, nonce=0,
        call=types_pb2.Transfer(dest=dev_keypair("eve").public_key, amount=10**6), fee_rule=FeeRule(10**6, 10**4),
    )
    core.submit(transfer.raw)
    looked_up = core.store.transaction_location
    committer = threading.Thread(target=core.produce_block)

    def location_then_a_block(tx_hash):
        found = looked_up(tx_hash)
        committer.start()  # the block with the transaction is committed now, if nothing holds it back
        committer.join(timeout=0.5)
        return found

    monkeypatch.setattr(core.store, "transaction_location", location_then_a_block)
    with grpc.insecure_channel(target) as channel:
        reply = node_pb2_grpc.NodeStub(channel).GetTransaction(
            node_pb2.GetTransactionRequest(transaction_hash=transfer.hash), timeout=10)
    committer.join(timeout=10)
    assert reply.status == node_pb2.TRANSACTION_STATUS_PENDING  # as it was when looked up; never NOT_FOUND
    assert core.store.head.height == 2


def test_an_account_asked_for_before_the_first_block_is_read_at_genesis(tmp_path):
    # Stop 33's CI: a worker asked for its account while the node was still at genesis, and the client
    # looked for a block with the genesis hash to check the state root against (genesis has no block).
    store = ChainStore(tmp_path / "db")
    store.initialize(GENESIS.chain_id, GENESIS.hash, GENESIS.initial_height, GENESIS.state())
    server = ApiServer(NodeApi(NodeCore(store, GENESIS, dev_keypair("alice")), 1000), "127.0.0.1", 0)
    server.start()
    server.mark_serving()
    try:
        with Client(f"127.0.0.1:{server.port}") as client:
            account = client.account("alice")
            assert account.exists and account.free > 0 and account.nonce == 0
            assert (account.height, account.block_hash) == (GENESIS.initial_height - 1, GENESIS.hash)
    finally:
        server.stop(grace=0)
        store.close()


def test_a_block_asked_for_by_the_genesis_hash_is_not_found_saying_genesis_has_none(served):
    _, target = served
    with grpc.insecure_channel(target) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            node_pb2_grpc.NodeStub(channel).GetBlock(node_pb2.GetBlockRequest(hash=GENESIS.hash), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "genesis has no block" in caught.value.details()


# --- memory held after refused requests ------------------------------------------------------------


def test_the_trimmer_trims_when_resident_memory_grew_though_no_large_request_was_read():
    """Requests larger than any valid one are refused by gRPC before the node reads them, so nothing notes them;
    glibc kept what their buffers took (CI once saw a node 385 MB larger after 40 of 30 MiB)."""
    from chain.node.server import TRIM_ON_GROWTH_BYTES, MemoryTrimmer

    resident = [100 << 20]
    trims = []
    trimmer = MemoryTrimmer(delay_s=0.02, trim=lambda pad: trims.append(resident[0]) or 1,
                            resident=lambda: resident[0])
    trimmer.start()
    try:
        time.sleep(0.2)
        assert trims == []  # no growth, no request: nothing to do
        resident[0] += TRIM_ON_GROWTH_BYTES - 1
        time.sleep(0.2)
        assert trims == []  # below the growth that pays a trim
        resident[0] += 2
        deadline = time.monotonic() + 5
        while not trims and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(trims) == 1
        time.sleep(0.2)
        assert len(trims) == 1  # measured again after the trim: the same size is no new growth
        trimmer.note(2 << 20)  # a large request read: trimmed once more a delay later, growth or not
        deadline = time.monotonic() + 5
        while len(trims) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(trims) == 2
    finally:
        trimmer.stop()
