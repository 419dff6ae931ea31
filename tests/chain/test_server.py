"""The gRPC edge around the API: a database that fails a read is DATA_LOSS with its reason, not INTERNAL."""

from __future__ import annotations

import grpc
import pytest

from chain.crypto import dev_keypair
from chain.genesis import dev_genesis_document, parse_genesis
from chain.node.api import NodeApi
from chain.node.core import NodeCore
from chain.node.server import ApiServer
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
