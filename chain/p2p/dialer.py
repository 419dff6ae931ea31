"""The dialer's side: open P2P.Connect to an address, send Hello, check the listener's, answer with HelloAck.

The thread that dials a connection goes on to read it until it ends; then the address book
schedules the next dial of that address.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

import grpc

from chain.p2p.address_book import DialOutcome, DialTarget
from chain.p2p.peer_table import REPLACED_GRACE_S, Connection
from chain.p2p.queues import OutboundQueue
from chain.p2p.transport import channel_options
from chain.p2p.wire import CONNECT_METHOD, NONCE_BYTES, HandshakeRefused, encode_envelope

if TYPE_CHECKING:
    from chain.p2p.network import Network

log = logging.getLogger("inferchain.p2p")

class Dialer:
    """Outbound connections of one Network."""

    def __init__(self, network: Network):
        self.network = network

    def dial_due(self, now: float) -> None:
        """Start the dials that are due, each on its own thread."""
        network = self.network
        due = network.address_book.due(
            now,
            skip=lambda node_id: node_id in network.peer_table.connections or network.scores.banned_id(node_id) is not None,
            room=network.peer_table.outbound_room,
        )
        for target in due:
            network.spawn(lambda t=target: self.dial(t), f"p2p-out-{target.addr}")

    def dial(self, target: DialTarget) -> None:
        """Dial one address and, when the handshake succeeds, read from it until the connection ends."""
        outcome = DialOutcome()
        try:
            outcome = self._connect(target.addr)
        except Exception:
            log.exception("p2p: dialing %s", target.addr)
        finally:
            self.network.address_book.after_dial(target, outcome, self.network.stopping)

    def _connect(self, addr: str) -> DialOutcome:
        limits = self.network.limits
        queue = OutboundQueue(limits.max_queue_messages, limits.max_queue_bytes, self.network.clock)
        nonce = secrets.token_bytes(NONCE_BYTES)
        queue.put(encode_envelope(self.network.handshaker.hello(nonce)))
        channel = grpc.insecure_channel(addr, options=channel_options())
        try:
            call = channel.stream_stream(CONNECT_METHOD)(queue.drain())

            def cancel() -> None:
                queue.close()
                call.cancel()

            return self._handshake_and_read(addr, call, queue, cancel, nonce)
        finally:
            queue.close()
            channel.close()

    def _handshake_and_read(self, addr: str, call, queue: OutboundQueue, cancel, nonce: bytes) -> DialOutcome:
        network = self.network
        key = network.at(network.clock() + network.limits.handshake_timeout_s, cancel)
        try:
            raw = next(call)
        except grpc.RpcError as error:
            return DialOutcome(refusal=error.code(), detail=error.details() or "")
        except StopIteration:
            return DialOutcome(refusal=grpc.StatusCode.UNAVAILABLE, detail="the stream ended before the peer's Hello")
        finally:
            network.cancel_at(key)
        try:
            hello = network.handshaker.parse_hello(raw)
            ack, validator_key = network.handshaker.check_listener_hello(hello, nonce, addr)
        except HandshakeRefused as refusal:
            cancel()
            if refusal.code == grpc.StatusCode.UNAUTHENTICATED:
                network.count_failed_authentication()
            return DialOutcome(refusal=refusal.code, detail=f"its Hello does not fit this node: {refusal.detail}",
                               refused_here=True)
        queue.put(ack)
        connection = Connection(
            node_id=hello.node_id, addr=addr, inbound=False, dialer_id=network.node_id, queue=queue, height=hello.height,
            public_addr=hello.public_addr, cancel=cancel, connected_at=network.clock(), handshake_raw=ack,
            validator_key=validator_key,
        )
        try:
            network.register(connection)
        except HandshakeRefused as refusal:
            if refusal.code != grpc.StatusCode.ALREADY_EXISTS:
                cancel()
                return DialOutcome(refusal=refusal.code, detail=refusal.detail, node_id=hello.node_id)
            # The listener registered this connection before answering and may still send on it until
            # it registers the survivor: read it for the grace period, then end it (see Network.register).
            connection.closed_reason = "duplicate"
            network.at(network.clock() + REPLACED_GRACE_S, lambda: network.close(connection, None, "duplicate"))
            network.read(connection, call)
            return DialOutcome(refusal=refusal.code, detail=refusal.detail, node_id=hello.node_id)
        network.read(connection, call)
        return DialOutcome(connected_for=network.clock() - connection.connected_at, node_id=hello.node_id)
