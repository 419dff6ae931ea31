"""This node's peer-to-peer network (proto/p2p.proto, docs/network.md): the facade the node uses.

One `P2P.Connect` bidirectional stream per connection and one connection per pair of node ids.
The parts, one file each:

- chain/p2p/limits.py: the sizes and timings (NetworkLimits);
- chain/p2p/wire.py: addresses, Envelopes, Hello checks and the signed handshake transcript;
- chain/p2p/handshake.py: this node's Hello and HelloAck, and the checks of a peer's;
- chain/p2p/listener.py: inbound streams, from their opening to an admitted connection;
- chain/p2p/dialer.py: outbound streams, from the dial to an admitted connection;
- chain/p2p/reader.py: reading an admitted connection and handing its messages on;
- chain/p2p/peer_table.py: the connections by node id, who may join (inbound, outbound and
  reserved slots), connect/disconnect events;
- chain/p2p/peer_exchange.py: addresses asked for, given and learned;
- chain/p2p/address_book.py: the addresses to dial and their back-off;
- chain/p2p/scoring.py: peer scores and bans;
- chain/p2p/rates.py: per-peer message rates;
- chain/p2p/queues.py: the bounded outbound queue and the seen-gossip cache;
- chain/p2p/maintenance.py: the thread that runs deadlines, periodic callbacks and the ticks below;
- chain/p2p/transport.py: gRPC options and handlers.

This file keeps what ties them together: the life cycle, the API the node calls (broadcast, send,
first_seen, penalize, disconnect, peers, call_every), putting messages in peers' queues,
admitting and closing connections, and the maintenance ticks (dialing, stalled peers).

Every outbound queue is bounded in messages and bytes: a full queue drops the message (counted,
logged at most once per interval per peer) and the caller never waits.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent import futures
from typing import Callable, Iterator, Sequence

import grpc

from chain.crypto import Keypair
from chain.p2p.address_book import AddressBook
from chain.p2p.dialer import Dialer
from chain.p2p.handshake import ClockPolicy, Handshaker
from chain.p2p.limits import NetworkLimits
from chain.p2p.listener import Listener
from chain.p2p.maintenance import Maintenance
from chain.p2p.peer_exchange import PeerExchange
from chain.p2p.peer_table import REPLACED_GRACE_S, Connection, PeerHandler, PeerInfo, PeerTable
from chain.p2p.queues import SeenCache
from chain.p2p.rates import PeerRates
from chain.p2p.reader import Reader
from chain.p2p.scoring import PENALTY_INVALID, BanPolicy, PeerScores
from chain.p2p.transport import connect_handler, server_options
from chain.p2p.wire import MAX_MESSAGE_BYTES, ChainIdentity, encode_envelope, parse_addr, parse_dial_addr, short_id
from proto import p2p_pb2
from runtime.hashing import blake2b_256

log = logging.getLogger("inferchain.p2p")

# Gossip that first_seen and broadcast deduplicate: the same bytes reach a node from every peer.
GOSSIP_KINDS = frozenset({"proposal", "block_part", "vote", "evidence"})

__all__ = ["GOSSIP_KINDS", "Network", "NetworkLimits", "PeerHandler", "PeerInfo"]


class Network:
    """This node's peer-to-peer connections: listening, dialing, handshakes, queues and gossip dedupe."""

    def __init__(
        self,
        *,
        chain_id: str,
        genesis_hash: bytes,
        node_key: Keypair,
        listen_addr: str,
        public_addr: str | None,
        bootnodes: Sequence[str],
        handler: PeerHandler,
        height: Callable[[], int],
        limits: NetworkLimits = NetworkLimits(),
        clock: Callable[[], float] = time.monotonic,
        validator_key: Keypair | None = None,
        is_validator: Callable[[bytes], bool] = lambda key: False,
        wall_clock: Callable[[], float] = time.time,
    ):
        self.identity = ChainIdentity(chain_id=chain_id, genesis_hash=genesis_hash)
        self.node_key = node_key
        self.node_id = node_key.public_key
        self.listen_host, self._listen_port = parse_addr(listen_addr)
        if public_addr:
            parse_dial_addr(public_addr)
        self._public_addr = public_addr or ""
        self.handler = handler
        self.height = height
        self.limits = limits
        self.clock = clock
        self.port = 0
        self.dropped_messages = 0  # outbound messages dropped for full queues, all peers
        # Handshakes refused because a peer did not prove the node id it claimed (either side).
        # Counted, not banned by id: the id is exactly what such a peer could not prove.
        self.failed_authentications = 0
        # One lock for the peer table, the address book and the deadlines: the dialer reads them together.
        self.lock = threading.RLock()
        self.scores = PeerScores(
            BanPolicy(decay_per_s=limits.score_decay_per_s, first_ban_s=limits.ban_s, max_ban_s=limits.max_ban_s), clock)
        self.address_book = AddressBook(self.lock, limits, bootnodes, clock)
        self.peer_table = PeerTable(self.lock, handler, limits, clock, self.scores, is_validator,
                                    self.address_book.is_bootnode)
        self.handshaker = Handshaker(
            self.identity, node_key, height, lambda: self._public_addr, validator_key=validator_key,
            wall_clock=wall_clock,
            clock_policy=ClockPolicy(max_offset_s=limits.max_clock_offset_s, warn_offset_s=limits.warn_clock_offset_s))
        self.listener = Listener(self)
        self.dialer = Dialer(self)
        self.reader = Reader(self)
        self.peer_exchange = PeerExchange(self)
        self.maintenance = Maintenance(self.lock, clock, limits.maintenance_interval_s, ticks=[
            self._disconnect_stalled, self.dialer.dial_due, self.peer_exchange.tick,
        ])
        self._seen = SeenCache(limits.seen_cache_size)
        self._threads: set[threading.Thread] = set()
        self._stopping = threading.Event()
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self._maintenance: threading.Thread | None = None

    # --- life cycle ---

    def start(self) -> None:
        """Listen, then start dialing the boot nodes."""
        # Every open inbound stream holds a gRPC worker: room for every slot and every handshake in
        # progress, so that gRPC itself never refuses a stream the listener would take.
        limits = self.limits
        workers = limits.max_inbound + limits.max_reserved + limits.max_pending_handshakes + 8
        self._executor = futures.ThreadPoolExecutor(max_workers=workers + 2, thread_name_prefix="p2p-grpc")
        self._server = grpc.server(
            self._executor,
            handlers=[connect_handler(self.listener.serve_connect)],
            options=server_options(),
            maximum_concurrent_rpcs=workers,
        )
        address = f"{self.listen_host}:{self._listen_port}"
        try:
            self.port = self._server.add_insecure_port(address)
        except RuntimeError:  # grpcio reports a failed bind this way
            self.port = 0
        if self.port == 0:
            raise OSError(f"p2p: cannot listen on {address} (in use, or not an address of this machine)")
        self._server.start()
        if not self._public_addr and self.listen_host not in ("0.0.0.0", "[::]"):
            self._public_addr = f"{self.listen_host}:{self.port}"
        self.address_book.set_own_addrs({f"{self.listen_host}:{self.port}", self._public_addr} - {""})
        self._maintenance = self.spawn(lambda: self.maintenance.run(self._stopping), "p2p-maintain")
        log.info("p2p: node %s listening on %s:%d", short_id(self.node_id), self.listen_host, self.port)

    def stop(self) -> None:
        """Close every connection and stop listening; returns within a few seconds, leaving no threads."""
        self._stopping.set()
        if self._maintenance is not None:  # first, so that it starts no dial meanwhile
            self._maintenance.join(timeout=2.0)
        connections = self.peer_table.all()
        pending = self.maintenance.pending_actions()
        for connection in connections:
            connection.queue.close()
            connection.cancel()
        for close in pending:
            close()
        if self._server is not None:
            self._server.stop(grace=0.5).wait(timeout=3.0)
            self._executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + 3.0
        for thread in list(self._threads):
            if thread is not threading.current_thread():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self.peer_table.drain_events()

    @property
    def public_addr(self) -> str:
        """The address this node announces in its Hello ("" when none)."""
        return self._public_addr

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def handshakes_in_progress(self) -> int:
        """Inbound streams that have not finished their handshake."""
        with self.lock:
            return len(self.listener.pending)

    # --- the API the node uses ---

    def broadcast(self, envelope: p2p_pb2.Envelope, exclude: bytes | None = None) -> None:
        """Queue `envelope` to every peer but `exclude`; never waits. Gossip is marked seen."""
        raw = encode_envelope(envelope)
        if envelope.WhichOneof("message") in GOSSIP_KINDS:
            self._seen.add(blake2b_256(raw))
        connections = [c for c in self.peer_table.all() if c.node_id != exclude]
        for connection in connections:
            self.send_raw(connection, raw)

    def send(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> bool:
        """Queue `envelope` to one peer; False when there is no such peer or its queue is full."""
        connection = self.peer_table.get(peer_id)
        if connection is None:
            return False
        return self.send_raw(connection, encode_envelope(envelope))

    def first_seen(self, envelope: p2p_pb2.Envelope) -> bool:
        """True the first time this exact gossip message is seen (always True for other kinds)."""
        if envelope.WhichOneof("message") not in GOSSIP_KINDS:
            return True
        return self._seen.add(blake2b_256(encode_envelope(envelope)))

    def peers(self) -> list[PeerInfo]:
        """The connected peers, by node id."""
        connections = sorted(self.peer_table.all(), key=lambda c: c.node_id)
        return [PeerInfo(c.node_id, c.addr, c.height, c.inbound) for c in connections]

    def peer_count(self) -> int:
        """How many peers are connected."""
        return len(self.peer_table.all())

    def penalize(self, peer_id: bytes, reason: str, points: int) -> None:
        """Add `points` to a peer's score for `reason`; at the threshold it is disconnected and banned.

        The weights are chain/p2p/scoring.py's PENALTY_INVALID (at once), PENALTY_RATE and
        PENALTY_USELESS. `peer_id` is one this network handed the node, so it was proven.
        """
        if self.scores.penalize(peer_id, points):
            self._ban(peer_id, reason, grpc.StatusCode.PERMISSION_DENIED)
        else:
            log.debug("p2p: peer %s: %s (+%d points)", short_id(peer_id), reason, points)

    def disconnect(self, peer_id: bytes, reason: str) -> None:
        """Close the connection with a peer that sent something invalid and ban it (penalize with PENALTY_INVALID)."""
        self.penalize(peer_id, reason, PENALTY_INVALID)

    def _ban(self, peer_id: bytes, reason: str, code: grpc.StatusCode) -> None:
        self.ban_connection(peer_id, self.peer_table.get(peer_id), reason, code)

    def ban_connection(self, peer_id: bytes, connection: Connection | None, reason: str,
                        code: grpc.StatusCode) -> None:
        """Ban a proven node id (and an inbound peer's source address) and end its connection with `code`."""
        host = connection.host if connection is not None and connection.inbound else None
        seconds = self.scores.ban(peer_id, host, reason)
        where = f" ({connection.addr})" if connection is not None else ""
        log.warning("p2p: dropped peer %s%s and banned it for %.0f s: %s", short_id(peer_id), where, seconds, reason)
        if connection is not None:
            self.close(connection, code, f"banned for {seconds:.0f} s: {reason}")

    def call_every(self, interval_s: float, callback: Callable[[], None]) -> None:
        """Run `callback` on the maintenance thread every `interval_s` (transaction gossip's flush)."""
        self.maintenance.call_every(interval_s, callback)

    def at(self, deadline: float, action: Callable[[], None]) -> object:
        """Run `action` on the maintenance thread at `deadline` unless cancel_at(the returned key) comes first."""
        return self.maintenance.at(deadline, action)

    def cancel_at(self, key: object) -> None:
        self.maintenance.cancel_at(key)

    def queue_size(self, peer_id: bytes) -> tuple[int, int]:
        """(messages, bytes) waiting in a peer's outbound queue; (0, 0) when not connected."""
        connection = self.peer_table.get(peer_id)
        return connection.queue.size if connection is not None else (0, 0)

    # --- queues ---

    def send_raw(self, connection: Connection, raw: bytes) -> bool:
        """Queue an encoded envelope to one connection; False when too large, closed or full (counted)."""
        if len(raw) > MAX_MESSAGE_BYTES:
            log.warning("p2p: not sending a %d-byte message (limit %d)", len(raw), MAX_MESSAGE_BYTES)
            return False
        if connection.queue.put(raw):
            return True
        if connection.queue.closed:
            return False
        self._count_drop(connection)
        return False

    def _count_drop(self, connection: Connection) -> None:
        now = self.clock()
        with self.lock:
            self.dropped_messages += 1
            connection.dropped_since_log += 1
            if now - connection.last_drop_log < self.limits.drop_log_interval_s:
                return
            count, connection.dropped_since_log, connection.last_drop_log = connection.dropped_since_log, 0, now
        messages, size = connection.queue.size
        log.warning(
            "p2p: outbound queue to peer %s is full (%d messages, %d bytes): dropped %d message(s) since the last report",
            short_id(connection.node_id), messages, size, count,
        )

    # --- connections: what the listener and the dialer call ---

    def count_failed_authentication(self) -> None:
        with self.lock:
            self.failed_authentications += 1

    def register(self, new: Connection) -> None:
        """Add an authenticated connection, keeping one per peer: HandshakeRefused(ALREADY_EXISTS) when `new` loses."""
        new.rates = PeerRates(self.limits.rates, self.clock())
        with self.lock:
            # First, so that a boot node's id is known when the table gives it a reserved slot.
            self.address_book.learn_node_addr(new.node_id, new.public_addr, None if new.inbound else new.addr)
            old = self.peer_table.add(new, self.stopping)
        if old is not None:
            # The survivor takes what waited for the loser (but its handshake), so a replacement loses
            # no queued message.
            for raw in old.queue.take_all():
                if raw is not old.handshake_raw:
                    new.queue.put(raw)
            # The loser ends a moment later, not now: the peer may not have registered the survivor
            # yet (a listener registers before it answers), and would see its peer vanish and return.
            old.closed_reason = "replaced"
            self.at(self.clock() + REPLACED_GRACE_S, lambda: self.close(
                old, grpc.StatusCode.ALREADY_EXISTS, "replaced by another connection between the same two nodes"))
        else:
            log.info("p2p: connected to peer %s at %s (%s%s)", short_id(new.node_id), new.addr,
                     "inbound" if new.inbound else "outbound", ", reserved" if new.reserved else "")
        self.peer_table.drain_events()
        self.send_raw(new, encode_envelope(p2p_pb2.Envelope(peers_request=p2p_pb2.PeersRequest())))

    def close(self, connection: Connection, code: grpc.StatusCode | None, detail: str) -> None:
        """End a connection from this side; a listener's stream ends with `code` and `detail`."""
        connection.closed_reason = detail
        connection.queue.close((code, detail) if code is not None else None)
        connection.cancel()

    def read(self, connection: Connection, stream: Iterator[bytes]) -> None:
        """Dispatch what a peer sends until the stream ends (chain/p2p/reader.py); on the connection's thread."""
        self.reader.read(connection, stream)

    # --- maintenance ticks ---

    def _disconnect_stalled(self, now: float) -> None:
        stalled = [
            c for c in self.peer_table.all()
            if c.closed_reason is None and c.queue.head_waiting_since is not None
            and now - c.queue.head_waiting_since > self.limits.stall_s
        ]
        for connection in stalled:
            log.warning("p2p: disconnecting peer %s (%s): it took no message for %.0f s (it stopped reading)",
                        short_id(connection.node_id), connection.addr, self.limits.stall_s)
            self.close(connection, grpc.StatusCode.RESOURCE_EXHAUSTED, "stopped reading")

    def spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        """Run `target` on a thread of this network's, joined by stop()."""
        def run() -> None:
            try:
                target()
            finally:
                with self.lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self.lock:
            self._threads.add(thread)
        thread.start()
        return thread
