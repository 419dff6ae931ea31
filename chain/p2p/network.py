"""Connections between nodes over gRPC (proto/p2p.proto, docs/network.md).

One `P2P.Connect` bidirectional stream per connection and one connection per pair of node ids.
The dialer sends Hello with a fresh nonce; the listener checks it and answers with its own Hello
(its nonce and its node-key signature binding both) or ends the stream with a status and a
readable reason; the dialer checks that signature and answers with a HelloAck (its own signature);
the listener checks it and only then takes the peer. After that both sides send Envelopes freely.

Threads: grpc's server pool runs each inbound stream's writer (the handler drains the peer's
outbound queue); grpc's client runs each outbound stream's writer (it drains our request
iterator); one reader thread per connection of ours parses and dispatches what arrives (for an
outbound connection it is the thread that dialed); one maintenance thread dials, expires
handshakes, asks for peers and runs periodic callbacks (transaction gossip's flush).

Every outbound queue is bounded in messages and bytes: a full queue drops the message (counted,
logged at most once per interval per peer) and the caller never waits.

The messages' parsing, encoding and handshake checks are in chain/p2p/wire.py; the outbound queue
and the seen-gossip cache in chain/p2p/queues.py.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import urllib.parse
from collections import deque
from concurrent import futures
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol, Sequence

import grpc

from chain.crypto import Keypair
from chain.p2p.queues import OutboundQueue, SeenCache
from chain.p2p.wire import (
    CONNECT_METHOD, DIALER_ROLE, LISTENER_ROLE, MAX_MESSAGE_BYTES, MAX_PEERS_PER_MESSAGE, NONCE_BYTES, SERVICE_NAME,
    ChainIdentity, HandshakeRefused, ProtocolViolation, check_handshake_signature, check_hello, encode_envelope,
    handshake_transcript, parse_addr, parse_dial_addr, parse_envelope, parse_hello_ack, short_id,
)
from proto import p2p_pb2
from runtime.hashing import blake2b_256

log = logging.getLogger("inferchain.p2p")

# How long a connection replaced by another with the same peer stays open (see _register).
REPLACED_GRACE_S = 2.0
# Gossip that first_seen and broadcast deduplicate: the same bytes reach a node from every peer.
GOSSIP_KINDS = frozenset({"proposal", "block_part", "vote", "evidence"})


@dataclass(frozen=True)
class NetworkLimits:
    """Sizes and timings of the network; the defaults are for production, tests shorten the timings."""

    # A peer's outbound queue: what waits for its writer. 4,096 votes or parts, and at most two
    # largest messages' worth of bytes.
    max_queue_messages: int = 4096
    max_queue_bytes: int = 32 * 1024 * 1024
    # Hashes of gossip already seen (about 100 bytes each in memory).
    seen_cache_size: int = 100_000
    handshake_timeout_s: float = 5.0
    # Re-dialing: the wait starts at backoff_initial_s and doubles to backoff_max_s; it starts
    # over once a connection lasted stable_after_s. A peer that refused us as incompatible
    # (another chain, genesis or protocol version) is retried only every backoff_max_s.
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    stable_after_s: float = 10.0
    # A learned (not boot) address is forgotten after this many failed dials in a row.
    max_dial_failures: int = 8
    max_known_addrs: int = 1024
    max_concurrent_dials: int = 8
    # Peers are asked for addresses on connect and then this often while below max_peers.
    peer_exchange_interval_s: float = 30.0
    # A PeersRequest is answered at most this often per peer; more are ignored.
    peers_answer_interval_s: float = 1.0
    # A peer disconnected for an invalid message is refused and not dialed for this long.
    ban_s: float = 10.0
    # A peer whose writer took nothing from its queue for this long stopped reading: it is disconnected.
    stall_s: float = 30.0
    # A full queue is logged at most once per this interval per peer.
    drop_log_interval_s: float = 10.0
    maintenance_interval_s: float = 0.05


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


# --- connections ------------------------------------------------------------------


def _grpc_peer_addr(peer: str) -> str:
    """HOST:PORT of a gRPC peer string ("ipv4:127.0.0.2:5000", "ipv6:%5B::1%5D:5000")."""
    kind, _, address = urllib.parse.unquote(peer).partition(":")
    return address if kind in ("ipv4", "ipv6") else peer


@dataclass(eq=False)
class _Connection:
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


@dataclass
class _DialTarget:
    """An address this node dials when it is not connected to the node behind it."""

    addr: str
    bootnode: bool
    backoff_s: float
    next_attempt: float = 0.0
    failures: int = 0
    node_id: bytes | None = None
    dialing: bool = False
    is_self: bool = False


@dataclass
class _Periodic:
    interval_s: float
    callback: Callable[[], None]
    next_run: float = 0.0


@dataclass
class _DialOutcome:
    connected_for: float | None = None  # seconds the connection lasted, None when none was made
    refusal: grpc.StatusCode | None = None
    detail: str = ""
    node_id: bytes | None = None
    refused_here: bool = False  # this node refused the listener's Hello (else the listener refused ours)


# --- the network --------------------------------------------------------------------


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
        max_peers: int = 50,
        limits: NetworkLimits = NetworkLimits(),
        clock: Callable[[], float] = time.monotonic,
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
        self.max_peers = max_peers
        self.limits = limits
        self.clock = clock
        self.port = 0
        self.dropped_messages = 0  # outbound messages dropped for full queues, all peers
        # Handshakes refused because a peer did not prove the node id it claimed (either side).
        # Counted, not banned by id: the id is exactly what such a peer could not prove.
        self.failed_authentications = 0
        self._lock = threading.RLock()
        self._connections: dict[bytes, _Connection] = {}
        self._targets: dict[str, _DialTarget] = {}
        self._own_addrs: set[str] = set()
        self._banned: dict[bytes, float] = {}
        self._deadlines: dict[object, tuple[float, Callable[[], None]]] = {}
        self._periodic: list[_Periodic] = []
        self._events: deque[tuple[str, bytes]] = deque()
        self._event_lock = threading.Lock()
        self._seen = SeenCache(limits.seen_cache_size)
        self._threads: set[threading.Thread] = set()
        self._stopping = threading.Event()
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self._maintenance: threading.Thread | None = None
        self._next_peer_exchange = 0.0
        for addr in bootnodes:
            parse_dial_addr(addr)
            self._targets[addr] = _DialTarget(addr=addr, bootnode=True, backoff_s=limits.backoff_initial_s)

    # --- life cycle ---

    def start(self) -> None:
        """Listen, then start dialing the boot nodes."""
        workers = self.max_peers + 16  # every open inbound stream holds one; the rest are handshakes
        self._executor = futures.ThreadPoolExecutor(max_workers=workers + 2, thread_name_prefix="p2p-grpc")
        self._server = grpc.server(
            self._executor,
            handlers=[_connect_handler(self._serve_connect)],
            options=_server_options(),
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
        self._own_addrs = {f"{self.listen_host}:{self.port}", self._public_addr} - {""}
        with self._lock:
            for addr in self._own_addrs:
                self._targets.pop(addr, None)
        self._maintenance = self._spawn(self._maintain, "p2p-maintain")
        log.info("p2p: node %s listening on %s:%d", short_id(self.node_id), self.listen_host, self.port)

    def stop(self) -> None:
        """Close every connection and stop listening; returns within a few seconds, leaving no threads."""
        self._stopping.set()
        if self._maintenance is not None:  # first, so that it starts no dial meanwhile
            self._maintenance.join(timeout=2.0)
        with self._lock:
            connections = list(self._connections.values())
            pending = [close for _, close in self._deadlines.values()]
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
        self._drain_events()

    @property
    def public_addr(self) -> str:
        """The address this node announces in its Hello ("" when none)."""
        return self._public_addr

    # --- the API the node uses ---

    def broadcast(self, envelope: p2p_pb2.Envelope, exclude: bytes | None = None) -> None:
        """Queue `envelope` to every peer but `exclude`; never waits. Gossip is marked seen."""
        raw = encode_envelope(envelope)
        if envelope.WhichOneof("message") in GOSSIP_KINDS:
            self._seen.add(blake2b_256(raw))
        with self._lock:
            connections = [c for peer, c in self._connections.items() if peer != exclude]
        for connection in connections:
            self._put(connection, raw)

    def send(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> bool:
        """Queue `envelope` to one peer; False when there is no such peer or its queue is full."""
        with self._lock:
            connection = self._connections.get(peer_id)
        if connection is None:
            return False
        return self._put(connection, encode_envelope(envelope))

    def first_seen(self, envelope: p2p_pb2.Envelope) -> bool:
        """True the first time this exact gossip message is seen (always True for other kinds)."""
        if envelope.WhichOneof("message") not in GOSSIP_KINDS:
            return True
        return self._seen.add(blake2b_256(encode_envelope(envelope)))

    def peers(self) -> list[PeerInfo]:
        """The connected peers, by node id."""
        with self._lock:
            connections = sorted(self._connections.values(), key=lambda c: c.node_id)
        return [PeerInfo(c.node_id, c.addr, c.height, c.inbound) for c in connections]

    def disconnect(self, peer_id: bytes, reason: str) -> None:
        """Close the connection with a peer that sent something invalid; it is refused for a while."""
        with self._lock:
            connection = self._connections.get(peer_id)
            self._banned[peer_id] = self.clock() + self.limits.ban_s
        if connection is not None:
            log.warning("p2p: disconnecting peer %s (%s): %s", short_id(peer_id), connection.addr, reason)
            self._close(connection, grpc.StatusCode.PERMISSION_DENIED, f"disconnected: {reason}")

    def call_every(self, interval_s: float, callback: Callable[[], None]) -> None:
        """Run `callback` on the maintenance thread every `interval_s` (transaction gossip's flush)."""
        with self._lock:
            self._periodic.append(_Periodic(interval_s, callback))

    def queue_size(self, peer_id: bytes) -> tuple[int, int]:
        """(messages, bytes) waiting in a peer's outbound queue; (0, 0) when not connected."""
        with self._lock:
            connection = self._connections.get(peer_id)
        return connection.queue.size if connection is not None else (0, 0)

    # --- queues ---

    def _put(self, connection: _Connection, raw: bytes) -> bool:
        if len(raw) > MAX_MESSAGE_BYTES:
            log.warning("p2p: not sending a %d-byte message (limit %d)", len(raw), MAX_MESSAGE_BYTES)
            return False
        if connection.queue.put(raw):
            return True
        if connection.queue.closed:
            return False
        self._count_drop(connection)
        return False

    def _count_drop(self, connection: _Connection) -> None:
        now = self.clock()
        with self._lock:
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

    # --- the listener's side ---

    def _serve_connect(self, request_iterator, context: grpc.ServicerContext):
        """P2P.Connect: a peer dialed us. This thread writes; a reader thread handshakes and reads."""
        remote = _grpc_peer_addr(context.peer())
        if self._stopping.is_set():
            context.abort(grpc.StatusCode.UNAVAILABLE, "the node is stopping")
        queue = OutboundQueue(self.limits.max_queue_messages, self.limits.max_queue_bytes, self.clock)

        def cancel() -> None:
            # Ending the handler sends the close status; a writer stuck on a peer that stopped
            # reading never gets there, so the stream is cancelled outright a second later.
            queue.close(queue.close_status)
            self._at(self.clock() + 1.0, context.cancel)

        awaiting = ["Hello"]  # what the handshake waits for, for the timeout's message
        key = self._at(self.clock() + self.limits.handshake_timeout_s, lambda: self._refuse_late(queue, remote, awaiting[0]))
        self._spawn(lambda: self._read_inbound(request_iterator, remote, queue, cancel, key, awaiting), f"p2p-in-{remote}")
        for raw in queue.drain():
            yield raw
        if queue.close_status is not None:
            context.abort(*queue.close_status)

    def _refuse_late(self, queue: OutboundQueue, remote: str, awaited: str) -> None:
        if not self._stopping.is_set():
            log.warning("p2p: refused peer at %s: no %s within %.0f s", remote, awaited, self.limits.handshake_timeout_s)
        queue.close((grpc.StatusCode.DEADLINE_EXCEEDED, f"no {awaited} within {self.limits.handshake_timeout_s:.0f} s"))

    def _read_inbound(self, request_iterator, remote: str, queue: OutboundQueue, cancel, key: object,
                      awaiting: list[str]) -> None:
        try:
            connection = self._accept(request_iterator, remote, queue, cancel, awaiting)
        except (grpc.RpcError, StopIteration):
            # The dialer went away (or the handshake timed out) before its Hello.
            queue.close((grpc.StatusCode.INVALID_ARGUMENT, "the stream ended before a Hello"))
            connection = None
        finally:
            with self._lock:
                self._deadlines.pop(key, None)
        if connection is not None:
            self._read(connection, request_iterator)

    def _accept(self, request_iterator, remote: str, queue: OutboundQueue, cancel,
                awaiting: list[str]) -> _Connection | None:
        """Check the dialer's Hello, answer with ours, check its HelloAck, then register the connection."""
        raw = next(request_iterator)
        try:
            hello = self._parse_hello(raw)
            check_hello(self.identity, self.node_id, hello)
            connection = _Connection(
                node_id=hello.node_id, addr=hello.public_addr or remote, inbound=True, dialer_id=hello.node_id,
                queue=queue, height=hello.height, public_addr=hello.public_addr, cancel=cancel,
                connected_at=self.clock(),
            )
            # Only a refusal, on a claimed id: nothing changes until the dialer proved it (below).
            with self._lock:
                self._check_admission(connection)
            awaiting[0] = "HelloAck"
            self._answer_and_authenticate(request_iterator, hello, connection)
            self._register(connection)
        except HandshakeRefused as refusal:
            if refusal.code == grpc.StatusCode.UNAUTHENTICATED:
                with self._lock:
                    self.failed_authentications += 1
            if not queue.closed:  # else the handshake timed out, and that was logged
                self._log_refusal(remote, refusal)
            queue.close((refusal.code, refusal.detail))
            return None
        return connection

    def _answer_and_authenticate(self, request_iterator, hello: p2p_pb2.Hello, connection: _Connection) -> None:
        """Queue our signed Hello and check the dialer's HelloAck: HandshakeRefused(UNAUTHENTICATED) unless it holds its key."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        listener_transcript = handshake_transcript(
            LISTENER_ROLE, self.identity, hello.node_id, self.node_id, hello.nonce, nonce)
        our_hello = encode_envelope(self._hello(nonce, self.node_key.sign(listener_transcript)))
        connection.handshake_raw = our_hello
        connection.queue.put(our_hello)
        try:
            raw_ack = next(request_iterator)
        except (grpc.RpcError, StopIteration):
            raise HandshakeRefused(
                grpc.StatusCode.UNAUTHENTICATED,
                f"the stream from {short_id(hello.node_id)} ended before its HelloAck (it did not accept this node's Hello)",
            ) from None
        transcript = handshake_transcript(DIALER_ROLE, self.identity, hello.node_id, self.node_id, hello.nonce, nonce)
        check_handshake_signature(DIALER_ROLE, hello.node_id, parse_hello_ack(raw_ack), transcript)

    def _parse_hello(self, raw: bytes) -> p2p_pb2.Hello:
        try:
            envelope = parse_envelope(raw)
        except ProtocolViolation as violation:
            raise HandshakeRefused(grpc.StatusCode.INVALID_ARGUMENT, str(violation)) from None
        if envelope.WhichOneof("message") != "hello":
            raise HandshakeRefused(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the first message must be a Hello, got {envelope.WhichOneof('message')}",
            )
        return envelope.hello

    def _log_refusal(self, remote: str, refusal: HandshakeRefused) -> None:
        if refusal.code in (grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.UNAVAILABLE):  # self or duplicate: expected, quiet
            log.debug("p2p: closed the connection from %s: %s", remote, refusal.detail)
        else:
            log.warning("p2p: refused peer at %s: %s", remote, refusal.detail)

    def _hello(self, nonce: bytes, signature: bytes = b"") -> p2p_pb2.Envelope:
        try:
            height = max(0, int(self.height()))
        except Exception:  # the node's height reader must not break handshakes
            log.exception("p2p: reading the height for Hello")
            height = 0
        return p2p_pb2.Envelope(
            hello=p2p_pb2.Hello(
                protocol_version=self.identity.protocol_version,
                chain_id=self.identity.chain_id,
                genesis_hash=self.identity.genesis_hash,
                node_id=self.node_id,
                public_addr=self._public_addr,
                height=height,
                nonce=nonce,
                signature=signature,
            )
        )

    # --- the peer table ---

    def _check_admission(self, new: _Connection) -> _Connection | None:
        """The connection `new` replaces (None: a new peer), or HandshakeRefused; called holding the lock."""
        if self._stopping.is_set():
            raise HandshakeRefused(grpc.StatusCode.UNAVAILABLE, "the node is stopping")
        banned_until = self._banned.get(new.node_id, 0.0)
        if banned_until > self.clock():
            raise HandshakeRefused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"this node disconnected the peer for an invalid message; retry in {banned_until - self.clock():.0f} s",
            )
        old = self._connections.get(new.node_id)
        if old is not None and not _keeps_new(old, new):
            raise HandshakeRefused(
                grpc.StatusCode.ALREADY_EXISTS,
                f"already connected to {short_id(new.node_id)} (the connection dialed by the lower node id stays)",
            )
        if old is None and new.inbound and len(self._connections) >= self.max_peers:
            raise HandshakeRefused(
                grpc.StatusCode.RESOURCE_EXHAUSTED, f"this node has its maximum of {self.max_peers} peers"
            )
        return old

    def _register(self, new: _Connection) -> None:
        """Add an authenticated connection, keeping one per peer: HandshakeRefused(ALREADY_EXISTS) when `new` loses."""
        with self._lock:
            old = self._check_admission(new)
            self._connections[new.node_id] = new
            self._learn_node_addr(new)
            if old is None:
                self._events.append(("connected", new.node_id))
        if old is not None:
            # The survivor takes what waited for the loser (but its handshake), so a replacement loses
            # no queued message.
            for raw in old.queue.take_all():
                if raw is not old.handshake_raw:
                    new.queue.put(raw)
            # The loser ends a moment later, not now: the peer may not have registered the survivor
            # yet (a listener registers before it answers), and would see its peer vanish and return.
            old.closed_reason = "replaced"
            self._at(self.clock() + REPLACED_GRACE_S, lambda: self._close(
                old, grpc.StatusCode.ALREADY_EXISTS, "replaced by another connection between the same two nodes"))
        else:
            log.info("p2p: connected to peer %s at %s (%s)", short_id(new.node_id), new.addr,
                     "inbound" if new.inbound else "outbound")
        self._drain_events()
        self._put(new, encode_envelope(p2p_pb2.Envelope(peers_request=p2p_pb2.PeersRequest())))

    def _learn_node_addr(self, connection: _Connection) -> None:
        """Remember which node a dialable address leads to, so that it is not dialed while connected."""
        addrs = {connection.public_addr} | ({connection.addr} if not connection.inbound else set())
        for addr in addrs - {""}:
            target = self._targets.get(addr)
            if target is None and len(self._targets) < self.limits.max_known_addrs and addr not in self._own_addrs:
                target = self._targets[addr] = _DialTarget(addr=addr, bootnode=False, backoff_s=self.limits.backoff_initial_s)
            if target is not None:
                target.node_id = connection.node_id

    def _unregister(self, connection: _Connection) -> None:
        with self._lock:
            if self._connections.get(connection.node_id) is not connection:
                return  # replaced by another connection to the same peer, which stays
            del self._connections[connection.node_id]
            self._events.append(("disconnected", connection.node_id))
        self._drain_events()

    def _drain_events(self) -> None:
        """Tell the handler of connects and disconnects, in the order they happened, one at a time."""
        with self._event_lock:
            while True:
                with self._lock:
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

    def _close(self, connection: _Connection, code: grpc.StatusCode | None, detail: str) -> None:
        connection.closed_reason = detail
        connection.queue.close((code, detail) if code is not None else None)
        connection.cancel()

    # --- reading ---

    def _read(self, connection: _Connection, stream: Iterator[bytes]) -> None:
        """Dispatch what a peer sends until the stream ends or it breaks the protocol."""
        name = f"{short_id(connection.node_id)} ({connection.addr})"
        try:
            for raw in stream:
                self._dispatch(connection, parse_envelope(raw))
        except ProtocolViolation as violation:
            log.warning("p2p: dropped peer %s: %s", name, violation)
            with self._lock:
                self._banned[connection.node_id] = self.clock() + self.limits.ban_s
            self._close(connection, grpc.StatusCode.INVALID_ARGUMENT, str(violation))
        except grpc.RpcError as error:
            if connection.closed_reason is None and not self._stopping.is_set():
                log.info("p2p: connection with peer %s ended: %s", name, _describe(error))
        finally:
            connection.queue.close(connection.queue.close_status)
            self._unregister(connection)
        if connection.closed_reason is None and not self._stopping.is_set():
            log.info("p2p: peer %s disconnected", name)

    def _dispatch(self, connection: _Connection, envelope: p2p_pb2.Envelope) -> None:
        kind = envelope.WhichOneof("message")
        if kind == "hello":
            raise ProtocolViolation("a second Hello")
        if kind == "hello_ack":
            raise ProtocolViolation("a HelloAck after the handshake")
        if kind == "peers_request":
            self._answer_peers_request(connection)
            return
        if kind == "peers":
            self._learn_addrs(connection, envelope.peers)
            return
        if kind == "status":
            connection.height = envelope.status.height
        try:
            self.handler.on_message(connection.node_id, envelope)
        except Exception:
            log.exception("p2p: the handler failed on a %s from %s", kind, short_id(connection.node_id))

    # --- peer exchange ---

    def _answer_peers_request(self, connection: _Connection) -> None:
        now = self.clock()
        if now - connection.last_peers_answer < self.limits.peers_answer_interval_s:
            return
        connection.last_peers_answer = now
        with self._lock:
            addrs = sorted(
                {c.public_addr or (c.addr if not c.inbound else "") for c in self._connections.values()
                 if c.node_id != connection.node_id} - {""}
            )[:MAX_PEERS_PER_MESSAGE]
        self._put(connection, encode_envelope(p2p_pb2.Envelope(peers=p2p_pb2.Peers(addrs=addrs))))

    def _learn_addrs(self, connection: _Connection, peers: p2p_pb2.Peers) -> None:
        if len(peers.addrs) > MAX_PEERS_PER_MESSAGE:
            raise ProtocolViolation(f"a Peers message with {len(peers.addrs)} addresses (limit {MAX_PEERS_PER_MESSAGE})")
        with self._lock:
            for addr in peers.addrs:
                try:
                    parse_dial_addr(addr)
                except ValueError as error:
                    log.debug("p2p: ignoring an address from %s: %s", short_id(connection.node_id), error)
                    continue
                if addr in self._targets or addr in self._own_addrs or len(self._targets) >= self.limits.max_known_addrs:
                    continue
                self._targets[addr] = _DialTarget(addr=addr, bootnode=False, backoff_s=self.limits.backoff_initial_s)

    # --- the dialer's side ---

    def _dial(self, target: _DialTarget) -> None:
        """Dial one address and, when the handshake succeeds, read from it until the connection ends."""
        outcome = _DialOutcome()
        try:
            outcome = self._connect(target.addr)
        except Exception:
            log.exception("p2p: dialing %s", target.addr)
        finally:
            self._after_dial(target, outcome)

    def _connect(self, addr: str) -> _DialOutcome:
        queue = OutboundQueue(self.limits.max_queue_messages, self.limits.max_queue_bytes, self.clock)
        nonce = secrets.token_bytes(NONCE_BYTES)
        queue.put(encode_envelope(self._hello(nonce)))
        channel = grpc.insecure_channel(addr, options=_channel_options())
        try:
            call = channel.stream_stream(CONNECT_METHOD)(queue.drain())

            def cancel() -> None:
                queue.close()
                call.cancel()

            return self._handshake_and_read(addr, call, queue, cancel, nonce)
        finally:
            queue.close()
            channel.close()

    def _handshake_and_read(self, addr: str, call, queue: OutboundQueue, cancel, nonce: bytes) -> _DialOutcome:
        key = self._at(self.clock() + self.limits.handshake_timeout_s, cancel)
        try:
            raw = next(call)
        except grpc.RpcError as error:
            return _DialOutcome(refusal=error.code(), detail=error.details() or "")
        except StopIteration:
            return _DialOutcome(refusal=grpc.StatusCode.UNAVAILABLE, detail="the stream ended before the peer's Hello")
        finally:
            with self._lock:
                self._deadlines.pop(key, None)
        try:
            hello = self._parse_hello(raw)
            check_hello(self.identity, self.node_id, hello, from_listener=True)
            ack = self._authenticate_listener(hello, nonce)
        except HandshakeRefused as refusal:
            cancel()
            if refusal.code == grpc.StatusCode.UNAUTHENTICATED:
                with self._lock:
                    self.failed_authentications += 1
            return _DialOutcome(refusal=refusal.code, detail=f"its Hello does not fit this node: {refusal.detail}",
                                refused_here=True)
        queue.put(ack)
        connection = _Connection(
            node_id=hello.node_id, addr=addr, inbound=False, dialer_id=self.node_id, queue=queue, height=hello.height,
            public_addr=hello.public_addr, cancel=cancel, connected_at=self.clock(), handshake_raw=ack,
        )
        try:
            self._register(connection)
        except HandshakeRefused as refusal:
            if refusal.code != grpc.StatusCode.ALREADY_EXISTS:
                cancel()
                return _DialOutcome(refusal=refusal.code, detail=refusal.detail, node_id=hello.node_id)
            # The listener registered this connection before answering and may still send on it until
            # it registers the survivor: read it for the grace period, then end it (see _register).
            connection.closed_reason = "duplicate"
            self._at(self.clock() + REPLACED_GRACE_S, lambda: self._close(connection, None, "duplicate"))
            self._read(connection, call)
            return _DialOutcome(refusal=refusal.code, detail=refusal.detail, node_id=hello.node_id)
        self._read(connection, call)
        return _DialOutcome(connected_for=self.clock() - connection.connected_at, node_id=hello.node_id)

    def _authenticate_listener(self, hello: p2p_pb2.Hello, nonce: bytes) -> bytes:
        """Check the listener's signature over both nonces; our HelloAck, or HandshakeRefused(UNAUTHENTICATED)."""
        listener_transcript = handshake_transcript(
            LISTENER_ROLE, self.identity, self.node_id, hello.node_id, nonce, hello.nonce)
        check_handshake_signature(LISTENER_ROLE, hello.node_id, hello.signature, listener_transcript)
        transcript = handshake_transcript(DIALER_ROLE, self.identity, self.node_id, hello.node_id, nonce, hello.nonce)
        return encode_envelope(p2p_pb2.Envelope(hello_ack=p2p_pb2.HelloAck(signature=self.node_key.sign(transcript))))

    def _after_dial(self, target: _DialTarget, outcome: _DialOutcome) -> None:
        """Schedule the next dial of `target` from how this one went."""
        limits = self.limits
        now = self.clock()
        with self._lock:
            target.dialing = False
            if outcome.node_id is not None:
                target.node_id = outcome.node_id
            if self._stopping.is_set():
                return
            if outcome.connected_for is not None:
                if outcome.connected_for >= limits.stable_after_s:
                    target.backoff_s = limits.backoff_initial_s
                target.failures = 0
                target.next_attempt = now + target.backoff_s
                target.backoff_s = min(target.backoff_s * 2, limits.backoff_max_s)
                return
            code = outcome.refusal
            if code == grpc.StatusCode.ALREADY_EXISTS and outcome.detail.startswith("self-connection"):
                target.is_self = True
                log.debug("p2p: %s is this node itself; not dialing it again", target.addr)
                return
            if code == grpc.StatusCode.ALREADY_EXISTS:
                target.next_attempt = now + target.backoff_s  # connected the other way round: fine
                return
            target.failures += 1
            if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNAUTHENTICATED):
                target.backoff_s = limits.backoff_max_s
            wait = target.backoff_s
            target.next_attempt = now + wait
            target.backoff_s = min(target.backoff_s * 2, limits.backoff_max_s)
            forget = not target.bootnode and target.failures >= limits.max_dial_failures
            if forget:
                self._targets.pop(target.addr, None)
        detail = f"{getattr(code, 'name', code)}: {outcome.detail}"
        if outcome.refused_here and code != grpc.StatusCode.ALREADY_EXISTS:
            log.warning("p2p: refused the peer at %s: %s; retrying in %.1f s", target.addr, outcome.detail, wait)
        elif code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT,
                      grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.RESOURCE_EXHAUSTED,
                      grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAUTHENTICATED):
            log.warning("p2p: %s refused the handshake: %s; retrying in %.1f s", target.addr, outcome.detail, wait)
        elif forget:
            log.info("p2p: forgetting %s after %d failed dials (%s)", target.addr, target.failures, detail)
        elif target.failures == 1:
            log.info("p2p: cannot reach %s (%s); retrying with back-off from %.1f s", target.addr, detail, wait)
        else:
            log.debug("p2p: dialing %s failed (%s); retrying in %.1f s", target.addr, detail, wait)

    # --- maintenance ---

    def _maintain(self) -> None:
        while not self._stopping.wait(self.limits.maintenance_interval_s):
            try:
                now = self.clock()
                self._expire_deadlines(now)
                self._disconnect_stalled(now)
                self._dial_due(now)
                self._exchange_peers(now)
                self._run_periodic(now)
            except Exception:
                log.exception("p2p: maintenance")

    def _at(self, deadline: float, action: Callable[[], None]) -> object:
        """Run `action` on the maintenance thread at `deadline` unless the returned key is removed first."""
        key = object()
        with self._lock:
            self._deadlines[key] = (deadline, action)
        return key

    def _expire_deadlines(self, now: float) -> None:
        with self._lock:
            late = [(key, close) for key, (deadline, close) in self._deadlines.items() if deadline <= now]
            for key, _ in late:
                del self._deadlines[key]
        for _, close in late:
            close()

    def _disconnect_stalled(self, now: float) -> None:
        with self._lock:
            stalled = [
                c for c in self._connections.values()
                if c.closed_reason is None and c.queue.head_waiting_since is not None
                and now - c.queue.head_waiting_since > self.limits.stall_s
            ]
        for connection in stalled:
            log.warning("p2p: disconnecting peer %s (%s): it took no message for %.0f s (it stopped reading)",
                        short_id(connection.node_id), connection.addr, self.limits.stall_s)
            self._close(connection, grpc.StatusCode.RESOURCE_EXHAUSTED, "stopped reading")

    def _dial_due(self, now: float) -> None:
        with self._lock:
            dialing = sum(1 for t in self._targets.values() if t.dialing)
            due = []
            for target in sorted(self._targets.values(), key=lambda t: (not t.bootnode, t.next_attempt)):
                if target.dialing or target.is_self or target.next_attempt > now:
                    continue
                if target.node_id is not None and (target.node_id in self._connections or
                                                   self._banned.get(target.node_id, 0.0) > now):
                    continue
                if dialing >= self.limits.max_concurrent_dials:
                    break
                if not target.bootnode and len(self._connections) + dialing >= self.max_peers:
                    continue
                target.dialing = True
                dialing += 1
                due.append(target)
        for target in due:
            self._spawn(lambda t=target: self._dial(t), f"p2p-out-{target.addr}")

    def _exchange_peers(self, now: float) -> None:
        if now < self._next_peer_exchange:
            return
        self._next_peer_exchange = now + self.limits.peer_exchange_interval_s
        with self._lock:
            full = len(self._connections) >= self.max_peers
        if not full:
            self.broadcast(p2p_pb2.Envelope(peers_request=p2p_pb2.PeersRequest()))

    def _run_periodic(self, now: float) -> None:
        with self._lock:
            due = [p for p in self._periodic if p.next_run <= now]
            for periodic in due:
                periodic.next_run = now + periodic.interval_s
        for periodic in due:
            try:
                periodic.callback()
            except Exception:
                log.exception("p2p: periodic task %s", getattr(periodic.callback, "__qualname__", periodic.callback))

    def _spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        def run() -> None:
            try:
                target()
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return thread


def _keeps_new(old: _Connection, new: _Connection) -> bool:
    """Whether `new` replaces `old` (two connections with one peer): both ends decide alike.

    The connection dialed by the lower node id stays. When both were dialed by the same node, the
    peer redialed (an inbound one) and the old one is stale; two outbound ones reached one node by
    two addresses and the first stays.
    """
    if old.dialer_id != new.dialer_id:
        return new.dialer_id < old.dialer_id
    return new.inbound


def _describe(error: grpc.RpcError) -> str:
    """A stream's end in words: the status the peer sent, or that the stream broke (a listener is told no more)."""
    code = error.code() if hasattr(error, "code") else None
    if code is None:
        return "the peer closed the stream"
    return f"{code.name} {error.details() or ''}".strip()


def _connect_handler(behavior) -> grpc.GenericRpcHandler:
    """P2P.Connect with raw bytes both ways: the node parses each message itself, to name the peer and the fault."""
    return grpc.method_handlers_generic_handler(
        SERVICE_NAME, {"Connect": grpc.stream_stream_rpc_method_handler(behavior)}
    )


def _common_options() -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]


def _server_options() -> list[tuple[str, int]]:
    return _common_options() + [
        ("grpc.so_reuseport", 0),
        # Peers ping every 20 s (below); find peers that vanished without a FIN within ~30 s.
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.max_concurrent_streams", 4),  # a peer needs one stream per connection
    ]


def _channel_options() -> list[tuple[str, int]]:
    return _common_options() + [
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.enable_retries", 0),
        # Each dial gets its own TCP connection (grpc otherwise shares subchannels between channels).
        ("grpc.use_local_subchannel_pool", 1),
    ]
