"""Real Network instances on loopback addresses 127.0.0.2, 127.0.0.3, ... with port 0, stopped after each test."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Callable

import pytest

from chain.crypto import Keypair
from chain.p2p.network import Network, NetworkLimits
from proto import p2p_pb2

CHAIN_ID = "inferchain-p2p-test"
GENESIS_HASH = bytes(range(32))
# Short timings so that back-off, handshakes and discovery fit the tests' seconds.
FAST = NetworkLimits(
    handshake_timeout_s=2.0,
    backoff_initial_s=0.1,
    backoff_max_s=1.0,
    stable_after_s=2.0,
    peer_exchange_interval_s=0.5,
    peers_answer_interval_s=0.1,
    ban_s=1.0,
    # Every test peer comes from 127.0.0.1.
    max_per_address=1000,
)
_hosts = itertools.cycle(f"127.0.0.{n}" for n in range(2, 250))


def next_host() -> str:
    """A loopback address other than 127.0.0.1, different from the last few handed out."""
    return next(_hosts)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class RecordingHandler:
    """Keeps what the network tells it; optionally relays gossip like the node will."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages: list[tuple[bytes, p2p_pb2.Envelope]] = []
        self.connected: list[bytes] = []
        self.disconnected: list[bytes] = []
        self.network: Network | None = None
        self.relay = False
        self.extra: Callable[[bytes, p2p_pb2.Envelope], bool] | None = None

    def on_message(self, peer_id, envelope):
        if self.extra is not None and self.extra(peer_id, envelope):
            return
        if self.relay and self.network is not None:
            if not self.network.first_seen(envelope):
                return
            self.network.broadcast(envelope, exclude=peer_id)
        with self.lock:
            self.messages.append((peer_id, envelope))

    def on_peer_connected(self, peer_id):
        with self.lock:
            self.connected.append(peer_id)

    def on_peer_disconnected(self, peer_id):
        with self.lock:
            self.disconnected.append(peer_id)

    def kinds(self, kind: str) -> list[p2p_pb2.Envelope]:
        with self.lock:
            return [e for _, e in self.messages if e.WhichOneof("message") == kind]


@pytest.fixture
def make_network():
    """make_network(bootnodes=[...], **overrides) -> (network, handler), started; all stopped at the end."""
    started: list[Network] = []

    def make(bootnodes=(), *, host: str | None = None, port: int = 0, key: Keypair | None = None,
             chain_id: str = CHAIN_ID, genesis_hash: bytes = GENESIS_HASH, limits: NetworkLimits = FAST,
             start: bool = True, **kwargs):
        handler = RecordingHandler()
        network = Network(
            chain_id=chain_id, genesis_hash=genesis_hash, node_key=key or Keypair.generate(),
            listen_addr=f"{host or next_host()}:{port}", public_addr=None, bootnodes=list(bootnodes),
            handler=handler, height=lambda: 7, limits=limits, **kwargs,
        )
        handler.network = network
        if start:
            network.start()
        started.append(network)
        return network, handler

    yield make
    for network in started:
        network.stop()


def addr(network: Network) -> str:
    return f"{network.listen_host}:{network.port}"


def peer_ids(network: Network) -> set[bytes]:
    return {peer.node_id for peer in network.peers()}
