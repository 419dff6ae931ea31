"""The p2p network between real gRPC servers on loopback addresses: handshakes, the peer table, gossip, queues, faults."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from concurrent import futures

import grpc
import pytest

from chain.crypto import Keypair, verify
from chain.p2p.network import NetworkLimits
from chain.p2p.wire import (
    CONNECT_METHOD, DIALER_ROLE, LISTENER_ROLE, MAX_MESSAGE_BYTES, ChainIdentity, PROTOCOL_VERSION, encode_envelope,
    handshake_transcript,
)
from proto import p2p_pb2, types_pb2
from tests.p2p.conftest import CHAIN_ID, FAST, GENESIS_HASH, addr, next_host, peer_ids, wait_until


OURS = ChainIdentity(chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH)


def hello(node_id: bytes | None = None, **fields) -> bytes:
    values = dict(protocol_version=PROTOCOL_VERSION, chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH,
                  node_id=node_id or Keypair.generate().public_key, height=1, nonce=os.urandom(32),
                  time_ms=int(time.time() * 1000))
    values.update(fields)
    return encode_envelope(p2p_pb2.Envelope(hello=p2p_pb2.Hello(**values)))


def hello_ack(signature: bytes) -> bytes:
    return encode_envelope(p2p_pb2.Envelope(hello_ack=p2p_pb2.HelloAck(signature=signature)))


def dialer_signature(key: Keypair, listener: p2p_pb2.Hello, dialer_nonce: bytes) -> bytes:
    return key.sign(handshake_transcript(DIALER_ROLE, OURS, key.public_key, listener.node_id, dialer_nonce, listener.nonce))


def handshake(peer: "RawPeer", key: Keypair | None = None) -> p2p_pb2.Hello:
    """Dial as `key`'s node the way a node does: Hello with a nonce, the listener's Hello, a signed HelloAck."""
    key = key or Keypair.generate()
    nonce = os.urandom(32)
    peer.send(hello(node_id=key.public_key, nonce=nonce))
    listener = p2p_pb2.Envelope.FromString(peer.receive()).hello
    peer.send(hello_ack(dialer_signature(key, listener, nonce)))
    return listener


def vote(n: int) -> p2p_pb2.Envelope:
    return p2p_pb2.Envelope(vote=types_pb2.Vote(body=n.to_bytes(4, "big"), signature=b"s" * 64))


class RawPeer:
    """A hand-driven P2P.Connect stream: raw bytes out (identity serializer), raw bytes in."""

    def __init__(self, address: str):
        self.channel = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1),
                                                                ("grpc.max_send_message_length", 64 << 20)])
        self.outbox: list[bytes | None] = []
        self.ready = threading.Condition()
        self.call = self.channel.stream_stream(CONNECT_METHOD)(self._requests())

    def _requests(self):
        while True:
            with self.ready:
                while not self.outbox:
                    self.ready.wait()
                raw = self.outbox.pop(0)
            if raw is None:
                return
            yield raw

    def send(self, raw: bytes | None) -> None:
        with self.ready:
            self.outbox.append(raw)
            self.ready.notify()

    def receive(self) -> bytes:
        return next(self.call)

    def final_status(self, timeout: float = 5.0) -> tuple[grpc.StatusCode, str]:
        """Read until the stream ends: its status code and details."""
        deadline = time.monotonic() + timeout
        try:
            for _ in self.call:
                if time.monotonic() > deadline:
                    break
        except grpc.RpcError:
            pass
        return self.call.code(), self.call.details() or ""

    def close(self) -> None:
        self.send(None)
        self.call.cancel()
        self.channel.close()


@pytest.fixture
def raw_peers():
    opened: list[RawPeer] = []

    def open_peer(address: str) -> RawPeer:
        peer = RawPeer(address)
        opened.append(peer)
        return peer

    yield open_peer
    for peer in opened:
        peer.close()


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# --- handshake ---


def test_a_handshake_connects_both_sides_once(make_network):
    a, handler_a = make_network()
    b, handler_b = make_network([addr(a)])
    wait_until(lambda: peer_ids(a) == {b.node_id} and peer_ids(b) == {a.node_id}, what="the connection")
    (peer_of_a,), (peer_of_b,) = a.peers(), b.peers()
    assert peer_of_a.inbound and not peer_of_b.inbound
    assert peer_of_b.addr == addr(a) and peer_of_a.addr == b.public_addr
    assert peer_of_a.height == 7
    assert handler_a.connected == [b.node_id] and handler_b.connected == [a.node_id]
    assert a.peer_count() == b.peer_count() == 1


def test_the_listener_answers_a_raw_hello_with_its_own(make_network, raw_peers):
    a, _ = make_network()
    peer = raw_peers(addr(a))
    key, nonce = Keypair.generate(), os.urandom(32)
    peer.send(hello(node_id=key.public_key, nonce=nonce))
    answer = p2p_pb2.Envelope.FromString(peer.receive())
    assert answer.hello.node_id == a.node_id and answer.hello.chain_id == CHAIN_ID
    assert answer.hello.public_addr == addr(a)
    assert len(answer.hello.nonce) == 32 and answer.hello.nonce != nonce
    signed = handshake_transcript(LISTENER_ROLE, OURS, key.public_key, a.node_id, nonce, answer.hello.nonce)
    assert verify(a.node_id, answer.hello.signature, signed)
    assert not a.peers()  # not before the HelloAck
    peer.send(hello_ack(dialer_signature(key, answer.hello, nonce)))
    wait_until(lambda: peer_ids(a) == {key.public_key}, what="the authenticated peer")


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"genesis_hash": b"\xee" * 32}, "genesis mismatch: this node runs chain 'inferchain-p2p-test' genesis 000102"),
        ({"chain_id": "other-chain"}, "chain id mismatch: this node runs chain 'inferchain-p2p-test', the peer offered 'other-chain'"),
        ({"protocol_version": 99}, f"protocol version mismatch: this node speaks version {PROTOCOL_VERSION}, the peer offered 99"),
        ({"protocol_version": 1}, f"protocol version mismatch: this node speaks version {PROTOCOL_VERSION}, the peer offered 1"),
        ({"node_id": b"short"}, "node_id is 32 bytes, got 5"),
        ({"nonce": b""}, "nonce is 32 bytes, got 0"),
        ({"nonce": b"n" * 33}, "nonce is 32 bytes, got 33"),
        ({"signature": b"s" * 64}, "a dialer's Hello has no signature"),
        ({"public_addr": "not an address"}, "public_addr:"),
    ],
)
def test_an_incompatible_hello_is_refused_with_a_readable_status(make_network, raw_peers, caplog, fields, message):
    caplog.set_level(logging.INFO, "inferchain.p2p")
    a, _ = make_network()
    peer = raw_peers(addr(a))
    peer.send(hello(**fields))
    code, details = peer.final_status()
    expected = grpc.StatusCode.FAILED_PRECONDITION if "mismatch" in message else grpc.StatusCode.INVALID_ARGUMENT
    assert code == expected and message in details
    assert not a.peers()
    wait_until(lambda: any(message in r.message for r in caplog.records if r.levelno == logging.WARNING))


@pytest.mark.parametrize("other", [{"genesis_hash": b"\xee" * 32}, {"chain_id": "other-chain"}])
def test_a_wrong_chain_is_refused_on_both_sides_with_one_line_each_and_no_reconnect_storm(make_network, caplog, other):
    caplog.set_level(logging.INFO, "inferchain.p2p")
    slow_retry = NetworkLimits(backoff_initial_s=0.1, backoff_max_s=30.0, handshake_timeout_s=2.0)
    a, _ = make_network(limits=slow_retry)
    b, _ = make_network([addr(a)], limits=slow_retry, **other)
    wait_until(lambda: len([r for r in caplog.records if "refused" in r.message]) >= 2, what="both refusals")
    time.sleep(1.5)  # a spinning dialer would have retried many times by now
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.message]
    assert len(refusals) == 2, refusals
    listener_line = next(line for line in refusals if "refused peer at" in line)
    dialer_line = next(line for line in refusals if f"{addr(a)} refused the handshake" in line)
    assert "mismatch" in listener_line and "mismatch" in dialer_line and "retrying in 30.0 s" in dialer_line
    assert not a.peers() and not b.peers()


def test_a_connection_to_the_nodes_own_id_is_dropped_quietly_and_not_redialed(make_network, caplog):
    caplog.set_level(logging.DEBUG, "inferchain.p2p")
    key = Keypair.generate()
    a, _ = make_network(key=key)
    twin, _ = make_network([addr(a)], key=key)
    wait_until(lambda: any("self-connection" in r.message for r in caplog.records if r.levelno == logging.DEBUG))
    time.sleep(0.5)
    assert not a.peers() and not twin.peers()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([r for r in caplog.records if "closed the connection from" in r.message]) == 1


def test_the_nodes_own_address_among_the_bootnodes_is_not_dialed(make_network, caplog):
    caplog.set_level(logging.DEBUG, "inferchain.p2p")
    host, port = next_host(), None
    port = free_port(host)
    a, _ = make_network([f"{host}:{port}"], host=host, port=port)
    time.sleep(0.3)
    assert not a.peers() and not [r for r in caplog.records if "closed the connection" in r.message]


def test_when_two_nodes_dial_each_other_at_once_they_agree_on_one_connection_without_flapping(make_network):
    pairs = []
    for _ in range(4):
        hosts = [next_host(), next_host()]
        ports = [free_port(h) for h in hosts]
        addrs = [f"{h}:{p}" for h, p in zip(hosts, ports)]
        first = make_network([addrs[1]], host=hosts[0], port=ports[0], start=False)
        second = make_network([addrs[0]], host=hosts[1], port=ports[1], start=False)
        first[0].start(), second[0].start()
        pairs.append((first, second))
    for (a, handler_a), (b, handler_b) in pairs:
        wait_until(lambda: peer_ids(a) == {b.node_id} and peer_ids(b) == {a.node_id}, what="one connection")
    time.sleep(1.0)  # long enough for a losing duplicate to be closed and any flapping to show
    for (a, handler_a), (b, handler_b) in pairs:
        (peer_of_a,), (peer_of_b,) = a.peers(), b.peers()
        assert peer_of_a.inbound != peer_of_b.inbound
        assert handler_a.connected == [b.node_id] and handler_b.connected == [a.node_id]
        assert handler_a.disconnected == [] and handler_b.disconnected == []


@pytest.mark.parametrize("dialer_is_lower", [True, False])
def test_a_second_connection_with_a_peer_keeps_the_one_dialed_by_the_lower_node_id(make_network, raw_peers, dialer_is_lower):
    low, high = sorted((Keypair.generate() for _ in range(2)), key=lambda k: k.public_key)
    a_key, b_key = (low, high) if dialer_is_lower else (high, low)
    b, _ = make_network(key=b_key)
    a, handler_a = make_network([addr(b)], key=a_key)
    wait_until(lambda: peer_ids(a) == {b.node_id})
    # Now b's node id dials a as well (a raw stream claiming it): a keeps the connection its lower dialer made.
    second = raw_peers(addr(a))
    if dialer_is_lower:
        second.send(hello(node_id=b.node_id))
        code, details = second.final_status()
        assert code == grpc.StatusCode.ALREADY_EXISTS and "dialed by the lower node id" in details
        assert [p.inbound for p in a.peers()] == [False]
    else:
        assert handshake(second, b_key).node_id == a.node_id
        wait_until(lambda: [p.inbound for p in a.peers()] == [True], what="the inbound connection to win")
    assert handler_a.connected == [b.node_id] and handler_a.disconnected == []


def test_a_peer_that_dials_again_replaces_its_stale_connection(make_network, raw_peers):
    a, handler = make_network()
    key = Keypair.generate()
    peer_id = key.public_key
    first = raw_peers(addr(a))
    handshake(first, key)
    wait_until(lambda: peer_ids(a) == {peer_id})
    second = raw_peers(addr(a))
    handshake(second, key)
    code, _ = first.final_status()  # closed after the replacement's grace period
    assert code == grpc.StatusCode.ALREADY_EXISTS
    a.send(peer_id, vote(1))
    assert p2p_pb2.Envelope.FromString(second.receive()).WhichOneof("message") in ("peers_request", "vote")
    assert handler.connected == [peer_id] and handler.disconnected == []


# --- gossip ---


def test_a_broadcast_reaches_every_node_of_a_four_node_mesh_once(make_network):
    first, _ = make_network()
    nodes = [(first, _)]
    for _ in range(3):
        nodes.append(make_network([addr(n) for n, _ in nodes]))
    wait_until(lambda: all(len(n.peers()) == 3 for n, _ in nodes), what="a full mesh")
    for index, (network, _) in enumerate(nodes):
        network.broadcast(vote(index))
    for index, (network, handler) in enumerate(nodes):
        wait_until(lambda: len(handler.kinds("vote")) == 3, what="three votes")
        assert sorted(int.from_bytes(v.vote.body, "big") for v in handler.kinds("vote")) == [i for i in range(4) if i != index]


def line_limits(max_inbound: int) -> NetworkLimits:
    return dataclasses.replace(FAST, max_inbound=max_inbound, max_outbound=0)


def test_a_broadcast_crosses_a_line_of_nodes_by_relay_and_each_node_takes_it_once(make_network):
    # Each node takes one inbound peer (d none) and dials only its boot node, so discovery adds no shortcut.
    a, handler_a = make_network(limits=line_limits(1))
    b, handler_b = make_network([addr(a)], limits=line_limits(1))
    c, handler_c = make_network([addr(b)], limits=line_limits(1))
    d, handler_d = make_network([addr(c)], limits=line_limits(0))
    line = [(a, handler_a), (b, handler_b), (c, handler_c), (d, handler_d)]
    wait_until(lambda: [len(n.peers()) for n, _ in line] == [1, 2, 2, 1], what="the line")
    for _, handler in line:
        handler.relay = True
    a.broadcast(vote(42))
    wait_until(lambda: handler_d.kinds("vote"), what="the vote at the far end")
    time.sleep(0.3)
    assert peer_ids(a) == {b.node_id} and peer_ids(d) == {c.node_id}
    for _, handler in line[1:]:
        assert len(handler.kinds("vote")) == 1
    assert handler_a.kinds("vote") == []  # relayed back to a but already seen there


def test_first_seen_is_true_once_per_gossip_message_and_always_for_other_kinds(make_network):
    a, _ = make_network(start=False, limits=NetworkLimits(seen_cache_size=3))
    assert a.first_seen(vote(1)) and not a.first_seen(vote(1))
    a.broadcast(vote(2))
    assert not a.first_seen(vote(2))
    status = p2p_pb2.Envelope(status=p2p_pb2.Status(height=3))
    assert a.first_seen(status) and a.first_seen(status)
    for n in range(3, 6):  # pushes vote(1) out of a 3-entry cache
        a.first_seen(vote(n))
    assert a.first_seen(vote(1))


def test_send_reaches_one_peer_and_is_false_for_an_unknown_one(make_network):
    a, _ = make_network()
    b, handler_b = make_network([addr(a)])
    wait_until(lambda: peer_ids(a) == {b.node_id})
    assert a.send(b.node_id, vote(5))
    assert not a.send(b"\x01" * 32, vote(5))
    wait_until(lambda: handler_b.kinds("vote"))


# --- bounded queues ---


def test_a_peer_that_never_reads_fills_a_bounded_queue_and_broadcast_never_waits(make_network, raw_peers, caplog):
    caplog.set_level(logging.INFO, "inferchain.p2p")
    limits = NetworkLimits(max_queue_messages=200, max_queue_bytes=4 * 1024 * 1024, handshake_timeout_s=2.0)
    a, _ = make_network(limits=limits)
    sleeper = Keypair.generate()
    sleeper_id = sleeper.public_key
    peer = raw_peers(addr(a))
    handshake(peer, sleeper)  # a's Hello read, then this peer reads nothing more
    wait_until(lambda: peer_ids(a) == {sleeper_id})
    big = p2p_pb2.Envelope(block_part=p2p_pb2.BlockPart(height=1, data=b"x" * 100_000))
    started = time.monotonic()
    for _ in range(2000):  # 200 MB offered
        a.broadcast(big)
    assert time.monotonic() - started < 2.0
    messages, size = a.queue_size(sleeper_id)
    assert messages <= 200 and size <= 4 * 1024 * 1024
    assert a.dropped_messages > 1500
    full = [r for r in caplog.records if "is full" in r.message]
    assert len(full) == 1 and short_in(sleeper_id, full[0].getMessage())


def test_a_peer_that_stopped_reading_is_disconnected_after_the_stall_limit(make_network, raw_peers, caplog):
    caplog.set_level(logging.INFO, "inferchain.p2p")
    a, handler = make_network(limits=NetworkLimits(stall_s=1.0, handshake_timeout_s=2.0))
    sleeper = Keypair.generate()
    sleeper_id = sleeper.public_key
    peer = raw_peers(addr(a))
    handshake(peer, sleeper)
    wait_until(lambda: peer_ids(a) == {sleeper_id})
    big = p2p_pb2.Envelope(block_part=p2p_pb2.BlockPart(height=1, data=b"x" * 100_000))
    for _ in range(200):
        a.broadcast(big)
    wait_until(lambda: handler.disconnected == [sleeper_id], timeout=5, what="the stalled peer to go")
    assert len([r for r in caplog.records if "stopped reading" in r.getMessage()]) == 1


def short_in(node_id: bytes, text: str) -> bool:
    return node_id.hex()[:12] in text


# --- garbage ---


@pytest.mark.parametrize(
    "first, reason",
    [
        (b"\xff\xff\xff\xff", "malformed"),
        (b"", "no message set"),
        (b"\x1a\x00", "no message set"),  # an unknown field 3 inside... a tx_announce? no: an empty TxAnnounce is set
        (encode_envelope(p2p_pb2.Envelope(status=p2p_pb2.Status(height=1))), "the first message must be a Hello"),
        (b"\xf8\x07\x01", "unknown field"),
    ],
)
def test_garbage_as_the_first_message_is_refused_and_the_node_serves_others(make_network, raw_peers, caplog, first, reason):
    caplog.set_level(logging.INFO, "inferchain.p2p")
    a, _ = make_network()
    peer = raw_peers(addr(a))
    peer.send(first)
    code, details = peer.final_status()
    if first == b"\x1a\x00":  # an empty TxAnnounce is a message, just not a Hello
        reason = "the first message must be a Hello"
    assert code == grpc.StatusCode.INVALID_ARGUMENT and reason in details
    assert [r for r in caplog.records if "refused peer at 127.0.0.1" in r.getMessage() and reason in r.getMessage()]
    b, _ = make_network([addr(a)])
    wait_until(lambda: peer_ids(a) == {b.node_id})


def test_garbage_after_the_handshake_closes_that_connection_with_one_line(make_network, raw_peers, caplog):
    caplog.set_level(logging.INFO, "inferchain.p2p")
    a, handler = make_network()
    b, _ = make_network([addr(a)])
    wait_until(lambda: peer_ids(a) == {b.node_id})
    rogue = Keypair.generate()
    rogue_id = rogue.public_key
    peer = raw_peers(addr(a))
    handshake(peer, rogue)
    wait_until(lambda: rogue_id in peer_ids(a))
    peer.send(b"\x0a\x05junk!")
    code, details = peer.final_status()
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    wait_until(lambda: rogue_id not in peer_ids(a))
    lines = [r.getMessage() for r in caplog.records if "dropped peer" in r.getMessage()]
    assert len(lines) == 1 and short_in(rogue_id, lines[0])
    assert handler.disconnected == [rogue_id]
    b.broadcast(vote(9))
    wait_until(lambda: handler.kinds("vote"))
    assert peer_ids(a) == {b.node_id}


def test_an_oversized_message_ends_that_stream_and_the_node_serves_others(make_network, raw_peers):
    a, _ = make_network()
    peer = raw_peers(addr(a))
    handshake(peer)
    peer.send(b"\x0a" + b"x" * (MAX_MESSAGE_BYTES + 10))
    code, _ = peer.final_status()
    assert code in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED, grpc.StatusCode.INVALID_ARGUMENT)
    b, _ = make_network([addr(a)])
    wait_until(lambda: b.node_id in peer_ids(a))


def test_junk_tcp_to_the_port_leaves_the_node_serving(make_network):
    a, _ = make_network()
    for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", bytes(range(256)) * 8, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 64):
        with socket.create_connection((a.listen_host, a.port), timeout=2) as sock:
            sock.sendall(junk)
            try:
                sock.recv(1024)
            except OSError:
                pass
    b, _ = make_network([addr(a)])
    wait_until(lambda: peer_ids(a) == {b.node_id})


def test_a_dialer_that_sends_no_hello_is_cut_off_after_the_handshake_timeout(make_network, raw_peers):
    a, _ = make_network(limits=NetworkLimits(handshake_timeout_s=0.5))
    peer = raw_peers(addr(a))
    started = time.monotonic()
    code, details = peer.final_status()
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED and "no Hello" in details
    assert time.monotonic() - started < 3.0


# --- reconnecting and discovery ---


def test_a_node_reconnects_after_its_peer_restarts_on_the_same_port(make_network):
    key = Keypair.generate()
    a, _ = make_network(key=key)
    b, handler_b = make_network([addr(a)])
    wait_until(lambda: peer_ids(b) == {a.node_id})
    host, port = a.listen_host, a.port
    a.stop()
    wait_until(lambda: not b.peers(), what="b to notice")
    time.sleep(0.5)  # b keeps dialing, backing off
    a2, _ = make_network(key=key, host=host, port=port)
    wait_until(lambda: peer_ids(b) == {a2.node_id} and peer_ids(a2) == {b.node_id}, what="the reconnection")
    assert handler_b.connected == [key.public_key, key.public_key] and handler_b.disconnected == [key.public_key]


def test_a_new_node_that_knows_one_peer_discovers_and_connects_to_all(make_network):
    first, _ = make_network()
    others = [make_network([addr(first)]) for _ in range(3)]
    wait_until(lambda: len(first.peers()) == 3)
    newcomer, _ = make_network([addr(first)])
    expected = {first.node_id} | {n.node_id for n, _ in others}
    wait_until(lambda: peer_ids(newcomer) == expected, timeout=15, what="the newcomer to connect to all")


def test_a_peers_message_with_too_many_addresses_disconnects_and_bad_addresses_are_skipped(make_network, raw_peers):
    a, _ = make_network()
    rogue = Keypair.generate()
    rogue_id = rogue.public_key
    peer = raw_peers(addr(a))
    handshake(peer, rogue)
    wait_until(lambda: rogue_id in peer_ids(a))
    good = f"{next_host()}:{free_port('127.0.0.1')}"
    peer.send(encode_envelope(p2p_pb2.Envelope(peers=p2p_pb2.Peers(addrs=["nonsense", "1.2.3.4:0", good, "x" * 300]))))
    wait_until(lambda: good in a.address_book.targets)
    assert "nonsense" not in a.address_book.targets and "1.2.3.4:0" not in a.address_book.targets
    peer.send(encode_envelope(p2p_pb2.Envelope(peers=p2p_pb2.Peers(addrs=[f"10.0.0.1:{n}" for n in range(1, 66)]))))
    code, details = peer.final_status()
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "65 addresses" in details


def test_stop_returns_quickly_and_leaves_no_threads(make_network):
    before = {t for t in threading.enumerate()}
    a, _ = make_network()
    b, _ = make_network([addr(a)])
    c, _ = make_network([addr(a), addr(b)])
    wait_until(lambda: len(a.peers()) == 2 and len(c.peers()) == 2)
    started = time.monotonic()
    for network in (a, b, c):
        network.stop()
    assert time.monotonic() - started < 5.0
    left = lambda: [t.name for t in threading.enumerate() if t not in before and t.name.startswith("p2p")]  # noqa: E731
    wait_until(lambda: not left(), timeout=3.0, what=f"the p2p threads to end ({left()})")


# --- authenticating node ids ---


def test_a_peer_claiming_another_nodes_id_without_its_key_is_refused_and_the_real_connection_stays(make_network, raw_peers, caplog):
    caplog.set_level(logging.INFO, "inferchain.p2p")
    a, handler_a = make_network()
    b, handler_b = make_network([addr(a)])
    wait_until(lambda: peer_ids(a) == {b.node_id} and peer_ids(b) == {a.node_id})
    before = a.peers()
    impostor, nonce = Keypair.generate(), os.urandom(32)
    peer = raw_peers(addr(a))
    peer.send(hello(node_id=b.node_id, nonce=nonce))  # as b redialing: it would replace b's connection
    listener = p2p_pb2.Envelope.FromString(peer.receive()).hello
    forged = impostor.sign(handshake_transcript(DIALER_ROLE, OURS, b.node_id, a.node_id, nonce, listener.nonce))
    peer.send(hello_ack(forged))
    code, details = peer.final_status()
    assert code == grpc.StatusCode.UNAUTHENTICATED and "does not prove node id" in details
    time.sleep(0.3)
    assert a.peers() == before and handler_a.disconnected == [] and handler_b.disconnected == []
    assert a.failed_authentications == 1 and a.scores.banned_id(b.node_id) is None
    lines = [r.getMessage() for r in caplog.records if "refused peer at" in r.getMessage()]
    assert len(lines) == 1 and "does not prove node id" in lines[0]
    b.broadcast(vote(3))
    wait_until(lambda: handler_a.kinds("vote"), what="b's vote over its untouched connection")


def test_a_recorded_hello_ack_replayed_on_a_new_connection_is_refused(make_network, raw_peers):
    a, _ = make_network()
    key, nonce = Keypair.generate(), os.urandom(32)
    first = raw_peers(addr(a))
    first.send(hello(node_id=key.public_key, nonce=nonce))
    recorded_ack = hello_ack(dialer_signature(key, p2p_pb2.Envelope.FromString(first.receive()).hello, nonce))
    first.send(recorded_ack)
    wait_until(lambda: peer_ids(a) == {key.public_key})
    first.close()
    wait_until(lambda: not a.peers(), what="the first connection to end")
    replay = raw_peers(addr(a))
    replay.send(hello(node_id=key.public_key, nonce=nonce))  # the recorded Hello too
    replay.receive()
    replay.send(recorded_ack)
    code, details = replay.final_status()
    assert code == grpc.StatusCode.UNAUTHENTICATED and "does not prove node id" in details
    assert not a.peers()


def test_a_recorded_listener_hello_replayed_to_a_dialer_is_refused(make_network, raw_peers, caplog):
    caplog.set_level(logging.INFO, "inferchain.p2p")
    a, _ = make_network()
    recorder = raw_peers(addr(a))
    recorder.send(hello())
    recorded = recorder.receive()  # a's Hello, signed for the recorder's nonce
    host = next_host()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))

    def replay_a(requests, context):
        next(requests)
        yield recorded
        for _ in requests:
            pass

    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "inferchain.p2p.P2P", {"Connect": grpc.stream_stream_rpc_method_handler(replay_a)})])
    port = server.add_insecure_port(f"{host}:0")
    server.start()
    try:
        c, handler_c = make_network([f"{host}:{port}"])
        wait_until(lambda: c.failed_authentications >= 1, what="the dialer to refuse the replayed Hello")
        assert not c.peers() and handler_c.connected == []
        lines = [r.getMessage() for r in caplog.records if f"refused the peer at {host}:{port}" in r.getMessage()]
        assert len(lines) == 1 and "listener's signature does not prove node id" in lines[0]
    finally:
        server.stop(0)


@pytest.mark.parametrize(
    "second, reason",
    [
        (b"\xff\xff\xff", "no valid HelloAck"),
        (encode_envelope(p2p_pb2.Envelope(status=p2p_pb2.Status(height=1))), "the second message must be a HelloAck, got status"),
        (hello_ack(b""), "signature is 64 bytes, got 0"),
        (hello_ack(os.urandom(64)), "does not prove node id"),
        (None, "ended before its HelloAck"),
    ],
)
def test_a_missing_or_garbage_hello_ack_is_refused(make_network, raw_peers, caplog, second, reason):
    caplog.set_level(logging.INFO, "inferchain.p2p")
    a, _ = make_network()
    peer = raw_peers(addr(a))
    peer.send(hello())
    peer.receive()
    peer.send(second)
    code, details = peer.final_status()
    if second is not None:  # a half-closed stream is told no more
        assert code == grpc.StatusCode.UNAUTHENTICATED and reason in details
    wait_until(lambda: any(reason in r.getMessage() for r in caplog.records if "refused peer at" in r.getMessage()))
    assert not a.peers() and a.failed_authentications == 1


def test_a_dialer_that_never_sends_its_hello_ack_is_cut_off_after_the_handshake_timeout(make_network, raw_peers):
    a, _ = make_network(limits=NetworkLimits(handshake_timeout_s=0.5))
    peer = raw_peers(addr(a))
    peer.send(hello())
    peer.receive()
    code, details = peer.final_status()
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED and "no HelloAck" in details
    assert not a.peers()


def test_the_listeners_signature_reflected_as_the_hello_ack_is_refused(make_network, raw_peers):
    a, _ = make_network()
    peer = raw_peers(addr(a))
    key = Keypair.generate()
    peer.send(hello(node_id=key.public_key))
    listener = p2p_pb2.Envelope.FromString(peer.receive()).hello
    peer.send(hello_ack(listener.signature))
    code, details = peer.final_status()
    assert code == grpc.StatusCode.UNAUTHENTICATED and "does not prove node id" in details
    assert not a.peers()


def test_a_hello_ack_after_the_handshake_is_a_protocol_violation(make_network, raw_peers):
    a, _ = make_network()
    key = Keypair.generate()
    peer = raw_peers(addr(a))
    handshake(peer, key)
    wait_until(lambda: peer_ids(a) == {key.public_key})
    peer.send(hello_ack(b"s" * 64))
    code, details = peer.final_status()
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "a HelloAck after the handshake" in details
