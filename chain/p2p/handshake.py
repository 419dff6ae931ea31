"""The handshake's messages (docs/network.md, "Handshake"): this node's Hello and HelloAck, and the checks of the peer's.

Both sides use one Handshaker: the listener answers a dialer's Hello with its own signed Hello and
checks the dialer's HelloAck; the dialer checks the listener's Hello and signs its HelloAck. Each
check raises HandshakeRefused with the status code and the reason; nothing here touches the peer
table or the stream.
"""

from __future__ import annotations

import logging
from typing import Callable

import grpc

from chain.crypto import Keypair
from chain.p2p.wire import (
    DIALER_ROLE, LISTENER_ROLE, ChainIdentity, HandshakeRefused, ProtocolViolation, check_handshake_signature,
    check_hello, encode_envelope, handshake_transcript, parse_envelope, parse_hello_ack,
)
from proto import p2p_pb2

log = logging.getLogger("inferchain.p2p")


class Handshaker:
    """This node's side of handshakes: its identity, node key and what its Hello says."""

    def __init__(self, identity: ChainIdentity, node_key: Keypair, height: Callable[[], int],
                 public_addr: Callable[[], str]):
        self.identity = identity
        self.node_key = node_key
        self.node_id = node_key.public_key
        self.height = height
        self.public_addr = public_addr

    def hello(self, nonce: bytes, signature: bytes = b"") -> p2p_pb2.Envelope:
        """This node's Hello with `nonce` (and, as the listener, its signature)."""
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
                public_addr=self.public_addr(),
                height=height,
                nonce=nonce,
                signature=signature,
            )
        )

    def parse_hello(self, raw: bytes) -> p2p_pb2.Hello:
        """The Hello in a peer's first message; HandshakeRefused(INVALID_ARGUMENT) for anything else."""
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

    def check_dialer_hello(self, hello: p2p_pb2.Hello) -> None:
        """Refuse a dialer's Hello that does not fit this node (HandshakeRefused)."""
        check_hello(self.identity, self.node_id, hello)

    # --- the listener's side ---

    def listener_hello(self, dialer: p2p_pb2.Hello, nonce: bytes) -> bytes:
        """The listener's answer to a dialer's Hello: its Hello signed over both nonces."""
        transcript = handshake_transcript(LISTENER_ROLE, self.identity, dialer.node_id, self.node_id, dialer.nonce, nonce)
        return encode_envelope(self.hello(nonce, self.node_key.sign(transcript)))

    def check_hello_ack(self, dialer: p2p_pb2.Hello, nonce: bytes, raw_ack: bytes) -> None:
        """Refuse a HelloAck that does not prove the dialer's node id (HandshakeRefused(UNAUTHENTICATED))."""
        transcript = handshake_transcript(DIALER_ROLE, self.identity, dialer.node_id, self.node_id, dialer.nonce, nonce)
        check_handshake_signature(DIALER_ROLE, dialer.node_id, parse_hello_ack(raw_ack), transcript)

    # --- the dialer's side ---

    def check_listener_hello(self, listener: p2p_pb2.Hello, nonce: bytes) -> bytes:
        """Check the listener's Hello and its signature over both nonces; our HelloAck, or HandshakeRefused."""
        check_hello(self.identity, self.node_id, listener, from_listener=True)
        listener_transcript = handshake_transcript(
            LISTENER_ROLE, self.identity, self.node_id, listener.node_id, nonce, listener.nonce)
        check_handshake_signature(LISTENER_ROLE, listener.node_id, listener.signature, listener_transcript)
        transcript = handshake_transcript(DIALER_ROLE, self.identity, self.node_id, listener.node_id, nonce, listener.nonce)
        return encode_envelope(p2p_pb2.Envelope(hello_ack=p2p_pb2.HelloAck(signature=self.node_key.sign(transcript))))
