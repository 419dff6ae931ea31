"""The handshake's messages (docs/network.md, "Handshake"): this node's Hello and HelloAck, and the checks of the peer's.

Both sides use one Handshaker: the listener answers a dialer's Hello with its own signed Hello and
checks the dialer's HelloAck; the dialer checks the listener's Hello and signs its HelloAck. A node
that runs a validator proves its validator key the same way, with a second signature under its own
context (the listener in its Hello, the dialer in its HelloAck). Each check raises HandshakeRefused
with the status code and the reason; nothing here touches the peer table or the stream.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

import grpc

from chain.crypto import Keypair
from chain.p2p.wire import (
    DIALER_ROLE, HANDSHAKE_CONTEXT, LISTENER_ROLE, VALIDATOR_CONTEXT, ChainIdentity, HandshakeRefused, ProtocolViolation,
    check_clock, check_handshake_signature, check_hello, encode_envelope, handshake_transcript,
    parse_envelope, parse_hello_ack,
)
from proto import p2p_pb2

log = logging.getLogger("inferchain.p2p")


@dataclass(frozen=True)
class ClockPolicy:
    """How far a peer's wall clock may be from ours: refused beyond max_offset_s, a warning beyond warn_offset_s."""

    max_offset_s: float = 30.0
    warn_offset_s: float = 5.0


class Handshaker:
    """This node's side of handshakes: its identity, node key, optional validator key and what its Hello says."""

    def __init__(self, identity: ChainIdentity, node_key: Keypair, height: Callable[[], int],
                 public_addr: Callable[[], str], *, validator_key: Keypair | None = None,
                 wall_clock: Callable[[], float] = time.time, clock_policy: ClockPolicy = ClockPolicy()):
        self.identity = identity
        self.node_key = node_key
        self.node_id = node_key.public_key
        self.height = height
        self.public_addr = public_addr
        self.validator_key = validator_key
        self.wall_clock = wall_clock
        self.clock_policy = clock_policy

    def hello(self, nonce: bytes, signature: bytes = b"", validator_signature: bytes = b"") -> p2p_pb2.Envelope:
        """This node's Hello with `nonce` (and, as the listener, its signatures)."""
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
                validator_key=self.validator_key.public_key if self.validator_key is not None else b"",
                validator_signature=validator_signature,
                time_ms=max(0, int(self.wall_clock() * 1000)),
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

    def check_clock(self, hello: p2p_pb2.Hello, peer: str, whose: str) -> None:
        """Refuse a peer whose clock is too far from ours (FAILED_PRECONDITION); warn in one line when it is off."""
        offset = check_clock(hello.time_ms, self.wall_clock(), self.clock_policy.max_offset_s, whose)
        if abs(offset) > self.clock_policy.warn_offset_s:
            log.warning("p2p: the clock of the peer at %s is %.0f s %s this node's: check NTP on both", peer,
                        abs(offset), "behind" if offset < 0 else "ahead of")

    def _sign(self, key: Keypair, role: bytes, context: bytes, dialer: bytes, listener: bytes,
              dialer_nonce: bytes, listener_nonce: bytes) -> bytes:
        return key.sign(handshake_transcript(role, self.identity, dialer, listener, dialer_nonce, listener_nonce, context))

    # --- the listener's side ---

    def check_dialer_hello(self, hello: p2p_pb2.Hello, peer: str) -> None:
        """Refuse a dialer's Hello that does not fit this node (HandshakeRefused)."""
        check_hello(self.identity, self.node_id, hello)
        self.check_clock(hello, peer, "your")

    def listener_hello(self, dialer: p2p_pb2.Hello, nonce: bytes) -> bytes:
        """The listener's answer to a dialer's Hello: its Hello signed over both nonces (and its validator proof)."""
        ids = (dialer.node_id, self.node_id, dialer.nonce, nonce)
        signature = self._sign(self.node_key, LISTENER_ROLE, HANDSHAKE_CONTEXT, *ids)
        validator_signature = b""
        if self.validator_key is not None:
            validator_signature = self._sign(self.validator_key, LISTENER_ROLE, VALIDATOR_CONTEXT, *ids)
        return encode_envelope(self.hello(nonce, signature, validator_signature))

    def check_hello_ack(self, dialer: p2p_pb2.Hello, nonce: bytes, raw_ack: bytes) -> bytes | None:
        """The validator key the dialer proved (None: it claimed none); HandshakeRefused(UNAUTHENTICATED) on a bad proof."""
        ack = parse_hello_ack(raw_ack)
        ids = (dialer.node_id, self.node_id, dialer.nonce, nonce)
        check_handshake_signature(DIALER_ROLE, dialer.node_id, ack.signature,
                                  handshake_transcript(DIALER_ROLE, self.identity, *ids))
        if not dialer.validator_key:
            if ack.validator_signature:
                raise HandshakeRefused(grpc.StatusCode.UNAUTHENTICATED,
                                       "a HelloAck with a validator_signature for no claimed validator_key")
            return None
        check_handshake_signature(DIALER_ROLE, dialer.validator_key, ack.validator_signature,
                                  handshake_transcript(DIALER_ROLE, self.identity, *ids, VALIDATOR_CONTEXT),
                                  what="validator key")
        return dialer.validator_key

    # --- the dialer's side ---

    def check_listener_hello(self, listener: p2p_pb2.Hello, nonce: bytes, peer: str) -> tuple[bytes, bytes | None]:
        """Check the listener's Hello and its signatures over both nonces: (our HelloAck, its proven validator key)."""
        check_hello(self.identity, self.node_id, listener, from_listener=True)
        self.check_clock(listener, peer, "its")
        ids = (self.node_id, listener.node_id, nonce, listener.nonce)
        check_handshake_signature(LISTENER_ROLE, listener.node_id, listener.signature,
                                  handshake_transcript(LISTENER_ROLE, self.identity, *ids))
        proven = None
        if listener.validator_key:
            check_handshake_signature(LISTENER_ROLE, listener.validator_key, listener.validator_signature,
                                      handshake_transcript(LISTENER_ROLE, self.identity, *ids, VALIDATOR_CONTEXT),
                                      what="validator key")
            proven = listener.validator_key
        ack = p2p_pb2.HelloAck(signature=self._sign(self.node_key, DIALER_ROLE, HANDSHAKE_CONTEXT, *ids))
        if self.validator_key is not None:
            ack.validator_signature = self._sign(self.validator_key, DIALER_ROLE, VALIDATOR_CONTEXT, *ids)
        return encode_envelope(p2p_pb2.Envelope(hello_ack=ack)), proven

