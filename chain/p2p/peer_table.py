"""The peer table: the authenticated connections, one per node id, and who may join it (docs/network.md).

Three kinds of slot: `max_inbound` for peers that dialed us, `max_outbound` for learned addresses
we dialed, and beyond both, `max_reserved` for persistent peers (the boot nodes, by the node ids
learned when dialing them) and validators (a validator key proven in the handshake that the
node's validator set holds). Strangers filling every inbound and outbound slot therefore never
keep a validator or a boot node out.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable, Protocol

import grpc

from chain.p2p.queues import OutboundQueue
from chain.p2p.rates import PeerRates
from chain.p2p.scoring import PeerScores
from chain.p2p.wire import HandshakeRefused, short_id
from proto import p2p_pb2

log = logging.getLogger("inferchain.p2p")

# How long a connection replaced by another with the same peer stays open (see Network.register).
REPLACED_GRACE_S = 2.0


@dataclass(frozen=True)
class PeerInfo:
    """A connected peer: its node id, the address it is known by, its last reported height, who dialed."""

    node_id: bytes
    addr: str
    height: int
    inbound: bool


class PeerHandler(Protocol):
    """What the node does with peers; called from reader threads, so each call returns quickly."""

    def on_message(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> None: ...

    def on_peer_connected(self, peer_id: bytes) -> None: ...

    def on_peer_disconnected(self, peer_id: bytes) -> None: ...


@dataclass(eq=False)
class Connection:
    """One handshaken stream with a peer."""

    node_id: bytes
    addr: str  # what the peer is known by: the address dialed, its public_addr, or where it came from
    inbound: bool
    dialer_id: bytes
    queue: OutboundQueue
    height: int
    public_addr: str
    cancel: Callable[[], None]  # ends the stream from our side
    connected_at: float
    dropped_since_log: int = 0
    last_drop_log: float = 0.0
    last_peers_answer: float = -1e9
    closed_reason: str | None = None
    # What this side queued for the handshake (the listener's Hello, the dialer's HelloAck): never
    # moved to a connection that replaces this one.
    handshake_raw: bytes | None = None
    # The source address of an inbound stream ("" for outbound): per-address limits and bans.
    host: str = ""
    # The validator key the peer proved (claimed, until the listener checked the HelloAck).
    validator_key: bytes | None = None
    # In a reserved slot (a boot node or a validator): beyond max_inbound and max_outbound.
    reserved: bool = False
    rates: PeerRates | None = None


def keeps_new(old: Connection, new: Connection) -> bool:
    """Whether `new` replaces `old` (two connections with one peer): both ends decide alike.

    The connection dialed by the lower node id stays. When both were dialed by the same node, the
    peer redialed (an inbound one) and the old one is stale; two outbound ones reached one node by
    two addresses and the first stays.
    """
    if old.dialer_id != new.dialer_id:
        return new.dialer_id < old.dialer_id
    return new.inbound


class PeerTable:
    """Connections by node id, who may join, and the connect/disconnect events for the node's handler.

    Shares the network's lock: the dialer reads the table and the address book together.
    """

    def __init__(self, lock: threading.RLock, handler: PeerHandler, limits, clock: Callable[[], float],
                 scores: PeerScores, is_validator: Callable[[bytes], bool], is_persistent: Callable[[bytes], bool]):
        self.lock = lock
        self.handler = handler
        self.limits = limits
        self.clock = clock
        self.scores = scores
        self.is_validator = is_validator
        self.is_persistent = is_persistent
        self.connections: dict[bytes, Connection] = {}
        self._events: deque[tuple[str, bytes]] = deque()
        self._event_lock = threading.Lock()

    def get(self, peer_id: bytes) -> Connection | None:
        with self.lock:
            return self.connections.get(peer_id)

    def all(self) -> list[Connection]:
        with self.lock:
            return list(self.connections.values())

    def deserves_reserved(self, node_id: bytes, validator_key: bytes | None) -> bool:
        """Whether a peer gets a reserved slot: a boot node, or a validator of the current set."""
        if self.is_persistent(node_id):
            return True
        if not validator_key:
            return False
        try:
            return bool(self.is_validator(validator_key))
        except Exception:  # the node's validator set must not break handshakes
            log.exception("p2p: is_validator failed")
            return False

    def count(self, *, inbound: bool | None = None, reserved: bool | None = None, host: str | None = None) -> int:
        """Connections of one kind; call holding the lock."""
        return sum(
            1 for c in self.connections.values()
            if (inbound is None or c.inbound == inbound) and (reserved is None or c.reserved == reserved)
            and (host is None or c.host == host)
        )

    def outbound_room(self, dialing: int) -> bool:
        """Whether a learned address may be dialed with `dialing` dials under way."""
        with self.lock:
            return self.count(inbound=False, reserved=False) + dialing < self.limits.max_outbound

    def check_admission(self, new: Connection, stopping: bool) -> Connection | None:
        """The connection `new` replaces (None: a new peer), or HandshakeRefused; called holding the lock."""
        if stopping:
            raise HandshakeRefused(grpc.StatusCode.UNAVAILABLE, "the node is stopping")
        self._check_bans(new)
        old = self.connections.get(new.node_id)
        if old is not None and not keeps_new(old, new):
            raise HandshakeRefused(
                grpc.StatusCode.ALREADY_EXISTS,
                f"already connected to {short_id(new.node_id)} (the connection dialed by the lower node id stays)",
            )
        if old is None:
            self._check_room(new)
        return old

    def _check_bans(self, new: Connection) -> None:
        banned = self.scores.banned_id(new.node_id)
        if banned is None and new.inbound and new.host and not new.reserved:
            banned = self.scores.banned_host(new.host)
        if banned is not None:
            left, reason = banned
            raise HandshakeRefused(
                grpc.StatusCode.PERMISSION_DENIED, f"this node banned the peer for {reason}; retry in {left:.0f} s")

    def _check_room(self, new: Connection) -> None:
        limits = self.limits
        if new.reserved:
            if self.count(reserved=True) >= limits.max_reserved:
                raise HandshakeRefused(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                       f"this node has its maximum of {limits.max_reserved} validator and boot node peers")
            return
        if new.inbound and self.count(inbound=True, reserved=False) >= limits.max_inbound:
            raise HandshakeRefused(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                   f"this node has its maximum of {limits.max_inbound} inbound peers")

    def add(self, new: Connection, stopping: bool) -> Connection | None:
        """Admit `new` (HandshakeRefused when it may not join); the connection it replaces, if any."""
        with self.lock:
            new.reserved = self.deserves_reserved(new.node_id, new.validator_key)
            old = self.check_admission(new, stopping)
            self.connections[new.node_id] = new
            if old is None:
                self._events.append(("connected", new.node_id))
            return old

    def remove(self, connection: Connection) -> bool:
        """Drop `connection` unless another with the same peer replaced it; True when it was the peer's."""
        with self.lock:
            if self.connections.get(connection.node_id) is not connection:
                return False
            del self.connections[connection.node_id]
            self._events.append(("disconnected", connection.node_id))
            return True

    def drain_events(self) -> None:
        """Tell the handler of connects and disconnects, in the order they happened, one at a time."""
        with self._event_lock:
            while True:
                with self.lock:
                    if not self._events:
                        return
                    kind, peer_id = self._events.popleft()
                try:
                    if kind == "connected":
                        self.handler.on_peer_connected(peer_id)
                    else:
                        self.handler.on_peer_disconnected(peer_id)
                except Exception:
                    log.exception("p2p: the handler failed on %s of %s", kind, short_id(peer_id))
