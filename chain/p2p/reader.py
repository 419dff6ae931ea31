"""Reading a connection: every message a peer sends after the handshake, checked (limits, rates) and handed on.

Each connection is read on its own thread (a gRPC worker for inbound streams, a thread of the
network's for outbound ones). Nothing here may block for long: the node's handler only queues what
it is given (consensus events, block requests for the block server, transaction gossip), so one
slow consumer never stops a peer's other messages from being read.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Iterator

import grpc

from chain.p2p.peer_table import Connection
from chain.p2p.scoring import PENALTY_RATE
from chain.p2p.transport import describe
from chain.p2p.wire import ProtocolViolation, check_message_limits, parse_envelope, short_id
from proto import p2p_pb2

if TYPE_CHECKING:
    from chain.p2p.network import Network

log = logging.getLogger("inferchain.p2p")


class Reader:
    """Reads and dispatches what peers send; one instance per network, called on each connection's thread."""

    def __init__(self, network: "Network"):
        self.network = network

    def read(self, connection: Connection, stream: Iterator[bytes]) -> None:
        """Dispatch what a peer sends until the stream ends or it breaks the protocol."""
        network = self.network
        name = f"{short_id(connection.node_id)} ({connection.addr})"
        try:
            for raw in stream:
                self._dispatch(connection, parse_envelope(raw))
        except ProtocolViolation as violation:
            network.ban_connection(connection.node_id, connection, str(violation), grpc.StatusCode.INVALID_ARGUMENT)
        except grpc.RpcError as error:
            if connection.closed_reason is None and not network.stopping:
                log.info("p2p: connection with peer %s ended: %s", name, describe(error))
        finally:
            connection.queue.close(connection.queue.close_status)
            network.peer_table.remove(connection)
            network.peer_table.drain_events()
        if connection.closed_reason is None and not network.stopping:
            log.info("p2p: peer %s disconnected", name)

    def _dispatch(self, connection: Connection, envelope: p2p_pb2.Envelope) -> None:
        network = self.network
        kind = envelope.WhichOneof("message")
        if kind == "hello":
            raise ProtocolViolation("a second Hello")
        if kind == "hello_ack":
            raise ProtocolViolation("a HelloAck after the handshake")
        check_message_limits(envelope)
        over = connection.rates.over(envelope, network.clock()) if connection.rates is not None else None
        if over is not None:  # dropped: an honest node never gets here
            network.penalize(connection.node_id, over, PENALTY_RATE)
            return
        if kind == "peers_request":
            network.peer_exchange.answer(connection)
            return
        if kind == "peers":
            network.peer_exchange.learn(connection, envelope.peers)
            return
        if kind == "status":
            connection.height = envelope.status.height
        try:
            network.handler.on_message(connection.node_id, envelope)
        except Exception:
            log.exception("p2p: the handler failed on a %s from %s", kind, short_id(connection.node_id))
