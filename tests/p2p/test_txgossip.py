"""Transaction gossip: hashes are announced, each node fetches a transaction it lacks once."""

from __future__ import annotations

import threading

from chain.p2p.txgossip import MAX_BATCH_BYTES, MAX_HASHES_PER_MESSAGE, TxGossip, TxGossipLimits
from proto import p2p_pb2
from runtime.hashing import transaction_hash
from tests.p2p.conftest import addr, wait_until
from tests.p2p.test_network import raw_peers  # noqa: F401  (the fixture)


class Pool:
    """A dict standing in for the mempool: submit adds and announces, as the node's pool will."""

    def __init__(self):
        self.lock = threading.Lock()
        self.transactions: dict[bytes, bytes] = {}
        self.gossip: TxGossip | None = None

    def has(self, tx_hash: bytes) -> bool:
        with self.lock:
            return tx_hash in self.transactions

    def get_raw(self, tx_hash: bytes) -> bytes | None:
        with self.lock:
            return self.transactions.get(tx_hash)

    def submit(self, raw: bytes) -> None:
        tx_hash = transaction_hash(raw)
        with self.lock:
            if tx_hash in self.transactions:
                return
            self.transactions[tx_hash] = raw
        self.gossip.announce(tx_hash)


def gossiping_node(make_network, bootnodes=()):
    network, handler = make_network(bootnodes)
    pool = Pool()
    pool.gossip = TxGossip(network, has=pool.has, get_raw=pool.get_raw, submit=pool.submit)
    handler.extra = pool.gossip.on_message
    return network, pool


def test_a_transaction_reaches_every_node_and_each_fetches_it_once(make_network):
    nodes = [gossiping_node(make_network)]
    for _ in range(3):
        nodes.append(gossiping_node(make_network, [addr(n) for n, _ in nodes]))
    wait_until(lambda: all(len(n.peers()) == 3 for n, _ in nodes), what="a full mesh")
    transactions = [b"transaction %d" % n for n in range(50)]
    for raw in transactions:
        nodes[0][1].submit(raw)
    hashes = {transaction_hash(raw) for raw in transactions}
    wait_until(lambda: all(set(pool.transactions) == hashes for _, pool in nodes), what="every pool to fill")
    assert nodes[0][1].gossip.hashes_requested == 0
    for _, pool in nodes[1:]:
        assert pool.gossip.hashes_requested == 50 and pool.gossip.transactions_received == 50
        assert pool.gossip.unsolicited == 0


# --- one node against a recording network, with a hand-driven clock ---


class FakeNetwork:
    def __init__(self):
        self.now = 0.0
        self.sent: list[tuple[bytes | None, p2p_pb2.Envelope]] = []
        self.disconnected: list[tuple[bytes, str]] = []
        self.accept_sends = True

    def clock(self) -> float:
        return self.now

    def broadcast(self, envelope, exclude=None):
        self.sent.append((None, envelope))

    def send(self, peer_id, envelope):
        self.sent.append((peer_id, envelope))
        return self.accept_sends

    def disconnect(self, peer_id, reason):
        self.disconnected.append((peer_id, reason))

    def call_every(self, interval_s, callback):
        self.tick = callback

    def take(self, kind: str) -> list[tuple[bytes | None, p2p_pb2.Envelope]]:
        found = [(peer, e) for peer, e in self.sent if e.WhichOneof("message") == kind]
        self.sent = [(peer, e) for peer, e in self.sent if e.WhichOneof("message") != kind]
        return found


PEER_A, PEER_B, PEER_C = b"\x0a" * 32, b"\x0b" * 32, b"\x0c" * 32


def gossip_on(network: FakeNetwork, pool: Pool | None = None, **limits) -> tuple[TxGossip, Pool]:
    pool = pool or Pool()
    pool.gossip = TxGossip(network, has=pool.has, get_raw=pool.get_raw, submit=pool.submit,
                           limits=TxGossipLimits(**limits))
    return pool.gossip, pool


def announce(*hashes: bytes) -> p2p_pb2.Envelope:
    return p2p_pb2.Envelope(tx_announce=p2p_pb2.TxAnnounce(hashes=list(hashes)))


def test_announcements_are_batched_at_most_4096_hashes_a_message():
    network = FakeNetwork()
    gossip, _ = gossip_on(network)
    for n in range(5000):
        gossip.announce(n.to_bytes(32, "big"))
    gossip.tick()
    batches = [e.tx_announce.hashes for _, e in network.take("tx_announce")]
    assert [len(b) for b in batches] == [4096, 904]
    gossip.tick()
    assert network.take("tx_announce") == []


def test_a_hash_announced_by_two_peers_is_asked_of_the_first_only_then_of_the_second_after_a_timeout():
    network = FakeNetwork()
    gossip, pool = gossip_on(network, request_timeout_s=2.0)
    raw = b"a transaction"
    tx_hash = transaction_hash(raw)
    gossip.on_message(PEER_A, announce(tx_hash))
    gossip.on_message(PEER_B, announce(tx_hash))
    assert [(peer, list(e.tx_request.hashes)) for peer, e in network.take("tx_request")] == [(PEER_A, [tx_hash])]
    network.now = 2.5
    gossip.tick()
    assert [peer for peer, _ in network.take("tx_request")] == [PEER_B]
    # A's late answer is not taken; B's is.
    batch = p2p_pb2.Envelope(tx_batch=p2p_pb2.TxBatch(transactions=[raw]))
    gossip.on_message(PEER_A, batch)
    assert not pool.has(tx_hash) and gossip.unsolicited == 1
    gossip.on_message(PEER_B, batch)
    assert pool.has(tx_hash)
    gossip.on_message(PEER_C, announce(tx_hash))
    assert network.take("tx_request") == []


def test_a_hash_the_pool_has_or_received_lately_is_not_fetched():
    network = FakeNetwork()
    pool = Pool()
    pool.transactions[b"\x01" * 32] = b"x"
    gossip, _ = gossip_on(network, pool)
    gossip.on_message(PEER_A, announce(b"\x01" * 32))
    assert network.take("tx_request") == []


def test_outstanding_requests_are_bounded():
    network = FakeNetwork()
    gossip, _ = gossip_on(network, max_outstanding=10)
    gossip.on_message(PEER_A, announce(*(n.to_bytes(32, "big") for n in range(100))))
    (_, request), = network.take("tx_request")
    assert len(request.tx_request.hashes) == 10


def test_a_request_that_cannot_be_sent_frees_its_hashes():
    network = FakeNetwork()
    network.accept_sends = False
    gossip, _ = gossip_on(network)
    gossip.on_message(PEER_A, announce(b"\x02" * 32))
    network.accept_sends = True
    gossip.on_message(PEER_B, announce(b"\x02" * 32))
    assert [peer for peer, _ in network.take("tx_request")] == [PEER_A, PEER_B]


def test_an_answer_is_capped_at_4_mib():
    network = FakeNetwork()
    pool = Pool()
    big = [bytes([n]) * (1024 * 1024) for n in range(6)]
    for raw in big:
        pool.transactions[transaction_hash(raw)] = raw
    gossip, _ = gossip_on(network, pool)
    gossip.on_message(PEER_A, p2p_pb2.Envelope(tx_request=p2p_pb2.TxRequest(hashes=[transaction_hash(r) for r in big])))
    (peer, answer), = network.take("tx_batch")
    assert peer == PEER_A and list(answer.tx_batch.transactions) == big[:4]
    assert sum(len(r) for r in answer.tx_batch.transactions) <= MAX_BATCH_BYTES


def test_hash_lists_over_the_limits_disconnect_the_peer():
    network = FakeNetwork()
    gossip, _ = gossip_on(network)
    assert gossip.on_message(PEER_A, announce(*([b"\x03" * 32] * (MAX_HASHES_PER_MESSAGE + 1))))
    assert gossip.on_message(PEER_B, p2p_pb2.Envelope(tx_request=p2p_pb2.TxRequest(hashes=[b"short"])))
    assert gossip.on_message(PEER_C, p2p_pb2.Envelope(tx_batch=p2p_pb2.TxBatch(transactions=[b"x" * (MAX_BATCH_BYTES + 1)])))
    assert [peer for peer, _ in network.disconnected] == [PEER_A, PEER_B, PEER_C]
    assert "4097 hashes (limit 4096)" in network.disconnected[0][1]
    assert "5-byte hash" in network.disconnected[1][1]


def test_other_messages_are_left_to_the_caller():
    gossip, _ = gossip_on(FakeNetwork())
    assert not gossip.on_message(PEER_A, p2p_pb2.Envelope(status=p2p_pb2.Status(height=1)))


def test_a_transaction_the_pool_refuses_is_not_fetched_again():
    network = FakeNetwork()
    pool = Pool()

    def refuse(raw):
        raise ValueError("bad signature")

    gossip = TxGossip(network, has=pool.has, get_raw=pool.get_raw, submit=refuse)
    raw = b"invalid"
    gossip.on_message(PEER_A, announce(transaction_hash(raw)))
    gossip.on_message(PEER_A, p2p_pb2.Envelope(tx_batch=p2p_pb2.TxBatch(transactions=[raw])))
    network.take("tx_request")
    gossip.on_message(PEER_B, announce(transaction_hash(raw)))
    assert network.take("tx_request") == []


def test_one_peer_never_holds_more_than_its_share_of_outstanding_requests():
    network = FakeNetwork()
    gossip, _ = gossip_on(network, max_outstanding=100, max_outstanding_per_peer=25)
    gossip.on_message(PEER_A, announce(*[bytes([1]) + n.to_bytes(31, "big") for n in range(60)]))
    (_, request), = network.take("tx_request")
    assert len(request.tx_request.hashes) == 25
    honest = [bytes([2]) + n.to_bytes(31, "big") for n in range(10)]
    gossip.on_message(PEER_B, announce(*honest))
    (peer, request), = network.take("tx_request")
    assert peer == PEER_B and list(request.tx_request.hashes) == honest


def test_honest_gossip_flows_while_a_peer_floods_announcements(make_network, raw_peers):
    import os

    from chain.crypto import Keypair
    from chain.p2p.wire import encode_envelope
    from tests.p2p.conftest import peer_ids
    from tests.p2p.test_network import handshake

    sender, sender_pool = gossiping_node(make_network)
    receiver, receiver_pool = gossiping_node(make_network, [addr(sender)])
    wait_until(lambda: peer_ids(receiver) == {sender.node_id}, what="the honest pair")
    flooder = raw_peers(addr(receiver))
    flooder_key = Keypair.generate()
    handshake(flooder, flooder_key)
    wait_until(lambda: flooder_key.public_key in peer_ids(receiver), what="the flooder to connect")
    stop = threading.Event()

    def flood() -> None:  # as fast as it can, hashes it will never deliver
        while not stop.is_set():
            hashes = [os.urandom(32) for _ in range(4096)]
            flooder.send(encode_envelope(p2p_pb2.Envelope(tx_announce=p2p_pb2.TxAnnounce(hashes=hashes))))

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    try:
        wait_until(lambda: receiver_pool.gossip.hashes_requested > 0, what="the flood to be taken")
        transactions = [b"honest transaction %d" % n for n in range(40)]
        for raw in transactions:
            sender_pool.submit(raw)
        hashes = {transaction_hash(raw) for raw in transactions}
        wait_until(lambda: hashes <= set(receiver_pool.transactions), timeout=10.0, what="every honest transaction")
        wait_until(lambda: flooder_key.public_key not in peer_ids(receiver), what="the flooder to be banned")
        assert receiver.scores.banned_id(flooder_key.public_key) is not None
        assert peer_ids(receiver) == {sender.node_id}
    finally:
        stop.set()
        thread.join(timeout=5.0)
