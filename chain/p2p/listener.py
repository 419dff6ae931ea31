"""The listener's side: a peer opened P2P.Connect; check its Hello, answer with ours, check its HelloAck, admit it.

Threads: grpc's server pool runs serve_connect, which writes the peer's outbound queue; a reader
thread of ours handshakes and then reads the stream until it ends.

Before anything is parsed, a stream is counted against its source address (`max_per_address`
connections and handshakes in progress) and among the handshakes in progress
(`max_pending_handshakes`): when those are all taken, the one that has waited longest among the
least promising (no Hello yet, then no claim to a reserved slot) is ended to make room, so
half-open streams cannot keep a validator or a boot node from starting its handshake.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc

from chain.p2p.peer_table import REPLACED_GRACE_S, Connection
from chain.p2p.queues import OutboundQueue
from chain.p2p.transport import grpc_peer_addr, grpc_peer_host
from chain.p2p.wire import NONCE_BYTES, HandshakeRefused, short_id

if TYPE_CHECKING:
    from chain.p2p.network import Network

log = logging.getLogger("inferchain.p2p")

# How far a handshake in progress got: the least promising are ended first when room is needed.
_NO_HELLO, _HELLO, _CLAIMS_RESERVED = 0, 1, 2


@dataclass(eq=False)
class _Pending:
    """An inbound stream whose handshake is in progress."""

    host: str
    opened_at: float
    queue: OutboundQueue
    stage: int = _NO_HELLO


class Listener:
    """Inbound streams of one Network, from the stream's opening to an admitted connection."""

    def __init__(self, network: Network):
        self.network = network
        self.pending: set[_Pending] = set()  # under network.lock

    def from_host(self, host: str) -> int:
        """Connections and handshakes in progress from one source address that count against its limit."""
        with self.network.lock:
            return (sum(1 for p in self.pending if p.host == host)
                    + self.network.peer_table.count(inbound=True, reserved=False, host=host))

    def _admit_stream(self, host: str, queue: OutboundQueue) -> _Pending:
        """Count a new stream, making room among the handshakes in progress; HandshakeRefused when its address is full."""
        limits = self.network.limits
        with self.network.lock:
            if self.from_host(host) >= limits.max_per_address:
                raise HandshakeRefused(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                       f"too many connections from {host} (at most {limits.max_per_address})")
            evicted = None
            if len(self.pending) >= limits.max_pending_handshakes:
                evicted = min(self.pending, key=lambda p: (p.stage, p.opened_at))
                self.pending.discard(evicted)
            pending = _Pending(host=host, opened_at=self.network.clock(), queue=queue)
            self.pending.add(pending)
        if evicted is not None:
            log.debug("p2p: ended a handshake in progress from %s to make room", evicted.host)
            evicted.queue.close((grpc.StatusCode.RESOURCE_EXHAUSTED,
                                 "too many handshakes in progress: this one waited longest"))
        return pending

    def serve_connect(self, request_iterator, context: grpc.ServicerContext):
        """P2P.Connect: a peer dialed us. This thread writes; a reader thread handshakes and reads."""
        network = self.network
        remote = grpc_peer_addr(context.peer())
        if network.stopping:
            context.abort(grpc.StatusCode.UNAVAILABLE, "the node is stopping")
        queue = OutboundQueue(network.limits.max_queue_messages, network.limits.max_queue_bytes, network.clock)
        try:  # before anything is read or parsed
            pending = self._admit_stream(grpc_peer_host(context.peer()), queue)
        except HandshakeRefused as refusal:
            log.debug("p2p: refused a stream from %s: %s", remote, refusal.detail)
            context.abort(refusal.code, refusal.detail)

        def cancel() -> None:
            # Ending the handler sends the close status; a writer stuck on a peer that stopped
            # reading never gets there, so the stream is cancelled outright a second later.
            queue.close(queue.close_status)
            network.at(network.clock() + 1.0, context.cancel)

        awaiting = ["Hello"]  # what the handshake waits for, for the timeout's message
        key = network.at(network.clock() + network.limits.handshake_timeout_s,
                         lambda: self._refuse_late(queue, remote, awaiting[0]))
        network.spawn(lambda: self._read_inbound(request_iterator, remote, pending, cancel, key, awaiting),
                      f"p2p-in-{remote}")
        for raw in queue.drain():
            yield raw
        if queue.close_status is not None:
            context.abort(*queue.close_status)

    def _refuse_late(self, queue: OutboundQueue, remote: str, awaited: str) -> None:
        timeout = self.network.limits.handshake_timeout_s
        if not self.network.stopping:
            log.warning("p2p: refused peer at %s: no %s within %.0f s", remote, awaited, timeout)
        queue.close((grpc.StatusCode.DEADLINE_EXCEEDED, f"no {awaited} within {timeout:.0f} s"))

    def _read_inbound(self, request_iterator, remote: str, pending: _Pending, cancel, key: object,
                      awaiting: list[str]) -> None:
        try:
            connection = self._accept(request_iterator, remote, pending, cancel, awaiting)
        except (grpc.RpcError, StopIteration):
            # The dialer went away (or the handshake timed out) before its Hello.
            pending.queue.close((grpc.StatusCode.INVALID_ARGUMENT, "the stream ended before a Hello"))
            connection = None
        finally:
            self.network.cancel_at(key)
            with self.network.lock:
                self.pending.discard(pending)
        if connection is not None:
            self.network.read(connection, request_iterator)

    def _accept(self, request_iterator, remote: str, pending: _Pending, cancel,
                awaiting: list[str]) -> Connection | None:
        """Check the dialer's Hello, answer with ours, check its HelloAck, then register the connection."""
        network = self.network
        queue = pending.queue
        raw = next(request_iterator)
        try:
            hello = network.handshaker.parse_hello(raw)
            network.handshaker.check_dialer_hello(hello, remote)
            connection = Connection(
                node_id=hello.node_id, addr=hello.public_addr or remote, inbound=True, dialer_id=hello.node_id,
                queue=queue, height=hello.height, public_addr=hello.public_addr, cancel=cancel,
                connected_at=network.clock(), host=pending.host, validator_key=hello.validator_key or None,
            )
            # Only a refusal, on a claimed id and key: nothing changes until the dialer proved them (below).
            with network.lock:
                connection.reserved = network.peer_table.deserves_reserved(hello.node_id, connection.validator_key)
                pending.stage = _CLAIMS_RESERVED if connection.reserved else _HELLO
                network.peer_table.check_admission(connection, network.stopping)
            awaiting[0] = "HelloAck"
            self._answer_and_authenticate(request_iterator, hello, connection)
            if queue.closed:  # timed out, or ended to make room, meanwhile
                return None
            if not self._register(connection):
                return connection  # a losing duplicate, read until its grace period ends
        except HandshakeRefused as refusal:
            if refusal.code == grpc.StatusCode.UNAUTHENTICATED:
                network.count_failed_authentication()
            if not queue.closed:  # else the handshake timed out, and that was logged
                _log_refusal(remote, refusal)
            queue.close((refusal.code, refusal.detail))
            return None
        return connection

    def _register(self, connection: Connection) -> bool:
        """Register an authenticated connection; False when it lost to another with the same peer.

        The dialer took the stream when it sent its HelloAck, and may not have seen the survivor
        yet: a loser is read for the grace period and only then ended, as the dialer ends one.
        """
        network = self.network
        try:
            network.register(connection)
            return True
        except HandshakeRefused as refusal:
            if refusal.code != grpc.StatusCode.ALREADY_EXISTS:
                raise
            detail = refusal.detail
        log.debug("p2p: %s; ending the duplicate in %.0f s", detail, REPLACED_GRACE_S)
        connection.closed_reason = "duplicate"
        network.at(network.clock() + REPLACED_GRACE_S,
                   lambda: network.close(connection, grpc.StatusCode.ALREADY_EXISTS, detail))
        return False

    def _answer_and_authenticate(self, request_iterator, hello, connection: Connection) -> None:
        """Queue our signed Hello and check the dialer's HelloAck: HandshakeRefused(UNAUTHENTICATED) unless it holds its key."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        our_hello = self.network.handshaker.listener_hello(hello, nonce)
        connection.handshake_raw = our_hello
        connection.queue.put(our_hello)
        try:
            raw_ack = next(request_iterator)
        except (grpc.RpcError, StopIteration):
            raise HandshakeRefused(
                grpc.StatusCode.UNAUTHENTICATED,
                f"the stream from {short_id(hello.node_id)} ended before its HelloAck (it did not accept this node's Hello)",
            ) from None
        connection.validator_key = self.network.handshaker.check_hello_ack(hello, nonce, raw_ack)


def _log_refusal(remote: str, refusal: HandshakeRefused) -> None:
    if refusal.code in (grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.UNAVAILABLE):  # self or duplicate: expected, quiet
        log.debug("p2p: closed the connection from %s: %s", remote, refusal.detail)
    else:
        log.warning("p2p: refused peer at %s: %s", remote, refusal.detail)
