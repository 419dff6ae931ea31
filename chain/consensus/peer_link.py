"""The consensus loop's side of the network: send, broadcast, first-seen checks, penalties, and the peers
disconnected for misbehaving (what they sent before that is not read).

Owned by the consensus loop's thread; the network it wraps is thread-safe on its own.
"""

from __future__ import annotations

import logging
from typing import Callable

from proto import p2p_pb2

log = logging.getLogger("inferchain.consensus")

# Messages already queued from a peer disconnected for misbehaving are dropped for this long.
IGNORE_MISBEHAVING_S = 60.0


class Misbehaviour(Exception):
    """A peer sent what no honest peer sends; the message says what. The loop disconnects and bans it."""


class PeerLink:
    """The network as consensus uses it; every call is a no-op without a network (a lone `--dev` node)."""

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self.network = None
        self._ignored: dict[bytes, float] = {}  # peers disconnected for misbehaving, until when

    def attach(self, network) -> None:
        self.network = network

    def broadcast(self, envelope: p2p_pb2.Envelope, exclude: bytes | None = None) -> None:
        if self.network is not None:
            self.network.broadcast(envelope, exclude=exclude)

    def send(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> None:
        if self.network is not None:
            self.network.send(peer_id, envelope)

    def first_seen(self, envelope: p2p_pb2.Envelope) -> bool:
        return self.network is None or self.network.first_seen(envelope)

    def count(self) -> int:
        """Connected peers."""
        return self.network.peer_count() if self.network is not None else 0

    def penalize(self, peer_id: bytes | None, what: str, points: int) -> None:
        """Score a peer for something an honest peer rarely sends; the network bans it past a threshold."""
        if peer_id is not None and self.network is not None:
            self.network.penalize(peer_id, what, points)

    def ignores(self, peer_id: bytes) -> bool:
        """Whether `peer_id` was disconnected for misbehaving a short while ago."""
        return self._ignored.get(peer_id, 0.0) > self.clock()

    def misbehaved(self, peer_id: bytes | None, what: str) -> None:
        """Disconnect and ban a peer that sent `what`, once; what it queued before is ignored for a while."""
        if peer_id is None or self.ignores(peer_id):
            return
        now = self.clock()
        self._ignored = {peer: until for peer, until in self._ignored.items() if until > now}
        self._ignored[peer_id] = now + IGNORE_MISBEHAVING_S
        log.warning("peer %s sent %s; disconnecting", peer_id.hex()[:16], what)
        if self.network is not None:
            self.network.disconnect(peer_id, what)
