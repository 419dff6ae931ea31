"""Block sync serving: answered from the store on the block server's own bounded worker, never on the thread
that reads a peer, over real Network instances on loopback and a real LevelDB store."""

from __future__ import annotations

import threading
import time

import pytest

from chain.consensus.block_server import BlockServer
from chain.consensus.sync import SYNC_BATCH
from chain.crypto import dev_keypair
from chain.genesis import dev_genesis_document, parse_genesis
from chain.node.core import NodeCore
from chain.storage import ChainStore
from proto import p2p_pb2
from tests.p2p.conftest import addr, make_network, peer_ids, wait_until  # noqa: F401  (make_network is a fixture)

READ_DELAY_S = 1.5


@pytest.fixture
def chain(tmp_path):
    """A real store holding blocks #1..#5 of a one-validator dev chain."""
    genesis = parse_genesis(dev_genesis_document())
    store = ChainStore(tmp_path / "db")
    store.initialize(genesis.chain_id, genesis.hash, genesis.initial_height, genesis.state())
    core = NodeCore(store, genesis, dev_keypair("alice"))
    for _ in range(5):
        core.produce_block()
    yield store
    store.close()


class SlowReads:
    """The real store, with every finalized-block read taking READ_DELAY_S (a large range from a busy disk)."""

    def __init__(self, store: ChainStore):
        self.store = store
        self.reading = threading.Event()

    def block_hash_at(self, height: int):
        return self.store.block_hash_at(height)

    def finalized_block(self, block_hash: bytes):
        self.reading.set()
        time.sleep(READ_DELAY_S)
        return self.store.finalized_block(block_hash)


def serving_node(make_network, store) -> tuple[object, object, BlockServer]:
    """A network whose handler gives block requests to a block server and records everything else."""
    network, handler = make_network()
    server = BlockServer(store, network.send)
    handler.extra = lambda peer_id, envelope: (
        envelope.WhichOneof("message") == "blocks_request" and server.submit(peer_id, envelope.blocks_request) is None
    )
    server.start()
    return network, handler, server


def test_a_slow_store_read_does_not_stall_the_thread_that_reads_the_peer(make_network, chain):  # noqa: F811
    slow = SlowReads(chain)
    server_net, server_seen, server = serving_node(make_network, slow)
    try:
        asker, asker_seen = make_network([addr(server_net)])
        wait_until(lambda: peer_ids(server_net) == {asker.node_id} and peer_ids(asker) == {server_net.node_id})
        asker.send(server_net.node_id, p2p_pb2.Envelope(blocks_request=p2p_pb2.BlocksRequest(from_height=1, count=1)))
        wait_until(slow.reading.is_set, timeout=5, what="the block server to start reading")
        sent = time.monotonic()
        asker.send(server_net.node_id, p2p_pb2.Envelope(status=p2p_pb2.Status(height=9)))
        wait_until(lambda: server_seen.kinds("status"), timeout=READ_DELAY_S, what="the status behind the request")
        assert time.monotonic() - sent < READ_DELAY_S / 2  # read while the store read was still going on
        assert not asker_seen.kinds("blocks_response")
        wait_until(lambda: asker_seen.kinds("blocks_response"), timeout=10, what="the answer")
        answer = asker_seen.kinds("blocks_response")[0].blocks_response
        assert [finalized.commit.height for finalized in answer.blocks] == [1]
        assert server.served == 1 and server.refused == 0
    finally:
        server.stop()


def test_requests_beyond_the_queue_or_a_peers_share_are_refused_with_a_reason_and_counted(chain):
    sent = []
    server = BlockServer(chain, lambda peer, envelope: sent.append((peer, envelope)), max_waiting=3, max_per_peer=2)
    request = p2p_pb2.BlocksRequest(from_height=1, count=2)
    # Not started: nothing is taken out, so the queue fills.
    assert server.submit(b"a", request) is None and server.submit(b"a", request) is None
    assert "2 requests of this peer wait already" in server.submit(b"a", request)
    assert server.submit(b"b", request) is None
    assert "3 requests wait already" in server.submit(b"c", request)
    assert server.refused == 2 and not sent
    server.start()
    deadline = time.monotonic() + 10
    while len(sent) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(peer for peer, _ in sent) == [b"a", b"a", b"b"]
    assert server.submit(b"a", request) is None  # the peer's share is free again once answered
    server.stop()
    assert server.submit(b"a", request) == "the node is stopping"


def test_an_answer_holds_at_most_a_batch_and_ends_with_the_chain(chain):
    server = BlockServer(chain, lambda peer, envelope: None)
    answer = server.answer(p2p_pb2.BlocksRequest(from_height=4, count=10**9))
    assert [finalized.commit.height for finalized in answer.blocks] == [4, 5]
    assert len(server.answer(p2p_pb2.BlocksRequest(from_height=1, count=SYNC_BATCH + 100)).blocks) == 5
    assert not server.answer(p2p_pb2.BlocksRequest(from_height=6, count=1)).blocks
