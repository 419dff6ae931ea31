"""Peer exchange: answering a peer's PeersRequest with the addresses of our other peers, learning the
addresses peers send, and asking for more while outbound slots are free."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chain.p2p.peer_table import Connection
from chain.p2p.wire import MAX_PEERS_PER_MESSAGE, encode_envelope, short_id
from proto import p2p_pb2

if TYPE_CHECKING:
    from chain.p2p.network import Network


class PeerExchange:
    """Addresses in and out; one instance per network."""

    def __init__(self, network: "Network"):
        self.network = network
        self._next_request = 0.0

    def answer(self, connection: Connection) -> None:
        """Send the addresses of our other peers, at most once per `peers_answer_interval_s` per peer."""
        now = self.network.clock()
        if now - connection.last_peers_answer < self.network.limits.peers_answer_interval_s:
            return
        connection.last_peers_answer = now
        addrs = sorted(
            {c.public_addr or (c.addr if not c.inbound else "") for c in self.network.peer_table.all()
             if c.node_id != connection.node_id} - {""}
        )[:MAX_PEERS_PER_MESSAGE]
        self.network.send_raw(connection, encode_envelope(p2p_pb2.Envelope(peers=p2p_pb2.Peers(addrs=addrs))))

    def learn(self, connection: Connection, peers: p2p_pb2.Peers) -> None:
        self.network.address_book.learn(peers.addrs, short_id(connection.node_id))

    def tick(self, now: float) -> None:
        """Ask every peer for addresses every `peer_exchange_interval_s` while outbound slots are free."""
        if now < self._next_request:
            return
        self._next_request = now + self.network.limits.peer_exchange_interval_s
        if self.network.peer_table.outbound_room(0):
            self.network.broadcast(p2p_pb2.Envelope(peers_request=p2p_pb2.PeersRequest()))
