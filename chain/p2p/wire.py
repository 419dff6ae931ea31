"""The p2p wire format (proto/p2p.proto, docs/network.md): addresses, Envelopes, Hello and HelloAck.

What a node parses from peers is refused with one exception type (ProtocolViolation, or
HandshakeRefused during the handshake), never crashes; what it sends is encoded canonically. The
handshake transcript is the bytes each side's node key signs.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

import grpc

from chain.crypto import verify
from proto import p2p_pb2
from runtime.encoding import EncodingError, decode_canonical

# 2: Hello carries a nonce and the listener's signature, and the dialer answers with HelloAck.
PROTOCOL_VERSION = 2
CONNECT_METHOD = "/inferchain.p2p.P2P/Connect"
SERVICE_NAME = "inferchain.p2p.P2P"
# gRPC's message limit, both ways (the largest message the protocol allows is an 8 MiB
# BlocksResponse; headroom for a block part or a TxBatch of 4 MiB).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
NODE_ID_BYTES = 32
NONCE_BYTES = 32
SIGNATURE_BYTES = 64
# The first bytes of every signed handshake transcript: no other message a node key signs starts so.
HANDSHAKE_CONTEXT = b"inferchain/p2p-handshake/v1"
LISTENER_ROLE = b"listener"
DIALER_ROLE = b"dialer"
MAX_PEERS_PER_MESSAGE = 64
MAX_ADDR_CHARS = 261  # a 253-character host name, ':' and a 5-digit port, or a bracketed IPv6 address


class HandshakeRefused(Exception):
    """A Hello this node does not accept: the gRPC status code to end the stream with, and why."""

    def __init__(self, code: grpc.StatusCode, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


class ProtocolViolation(Exception):
    """A peer sent something the protocol does not allow; the connection is closed."""


# --- addresses -------------------------------------------------------------------

_HOST_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_IPV6 = re.compile(r"^[0-9A-Fa-f:.]{2,45}$")


def parse_addr(text: str) -> tuple[str, int]:
    """(host, port) of "HOST:PORT" (a host name, IPv4 address or [IPv6] address); ValueError otherwise."""
    if not isinstance(text, str) or not 0 < len(text) <= MAX_ADDR_CHARS or not text.isascii():
        raise ValueError(f"an address is HOST:PORT of at most {MAX_ADDR_CHARS} ASCII characters")
    host, colon, port_text = text.rpartition(":")
    if not colon or not host:
        raise ValueError(f"{text[:64]!r} is not HOST:PORT")
    leading_zero = len(port_text) > 1 and port_text[0] == "0"
    if not port_text.isdigit() or len(port_text) > 5 or leading_zero or int(port_text) > 65535:
        raise ValueError(f"{text[:64]!r}: the port must be a decimal number 0-65535")
    port = int(port_text)
    if host.startswith("["):
        if not host.endswith("]") or not _IPV6.match(host[1:-1]) or ":" not in host[1:-1]:
            raise ValueError(f"{text[:64]!r}: a bracketed host must be an IPv6 address")
        return host, port
    if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in host.split(".")):
        raise ValueError(f"{text[:64]!r}: the host must be a host name or an IPv4 address")
    return host, port


def parse_dial_addr(text: str) -> tuple[str, int]:
    """parse_addr, also refusing port 0 and wildcard hosts, which cannot be dialed."""
    host, port = parse_addr(text)
    if port == 0 or host in ("0.0.0.0", "[::]"):
        raise ValueError(f"{text[:64]!r} cannot be dialed (port 0 or a wildcard host)")
    return host, port


def short_id(node_id: bytes) -> str:
    """The first 12 hex digits of a node id, for logs."""
    return node_id.hex()[:12] + "…"


# --- the handshake ----------------------------------------------------------------


@dataclass(frozen=True)
class ChainIdentity:
    """What two nodes must share to talk: protocol version, chain id and genesis hash."""

    chain_id: str
    genesis_hash: bytes
    protocol_version: int = PROTOCOL_VERSION


def check_hello(ours: ChainIdentity, own_node_id: bytes, hello: p2p_pb2.Hello, *, from_listener: bool = False) -> None:
    """Refuse a peer's Hello that does not fit this node; HandshakeRefused names the first reason.

    The listener's signature is checked by check_handshake_signature, which needs this node's nonce.
    """
    if hello.protocol_version != ours.protocol_version:
        raise HandshakeRefused(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"protocol version mismatch: this node speaks version {ours.protocol_version}, "
            f"the peer offered {hello.protocol_version}",
        )
    if hello.chain_id != ours.chain_id:
        raise HandshakeRefused(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"chain id mismatch: this node runs chain {ours.chain_id!r}, the peer offered {hello.chain_id[:64]!r}",
        )
    if hello.genesis_hash != ours.genesis_hash:
        raise HandshakeRefused(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"genesis mismatch: this node runs chain {ours.chain_id!r} genesis {ours.genesis_hash.hex()[:16]}…, "
            f"the peer offered {hello.genesis_hash.hex()[:16]}…",
        )
    if len(hello.node_id) != NODE_ID_BYTES:
        raise HandshakeRefused(
            grpc.StatusCode.INVALID_ARGUMENT, f"node_id is {NODE_ID_BYTES} bytes, got {len(hello.node_id)}"
        )
    if hello.public_addr:
        try:
            parse_dial_addr(hello.public_addr)
        except ValueError as error:
            raise HandshakeRefused(grpc.StatusCode.INVALID_ARGUMENT, f"public_addr: {error}") from None
    if len(hello.nonce) != NONCE_BYTES:
        raise HandshakeRefused(
            grpc.StatusCode.INVALID_ARGUMENT, f"nonce is {NONCE_BYTES} bytes, got {len(hello.nonce)}"
        )
    if hello.signature and not from_listener:
        raise HandshakeRefused(
            grpc.StatusCode.INVALID_ARGUMENT, "a dialer's Hello has no signature (the dialer signs in its HelloAck)"
        )
    if hello.node_id == own_node_id:
        raise HandshakeRefused(grpc.StatusCode.ALREADY_EXISTS, "self-connection: the peer has this node's own node id")


def handshake_transcript(
    role: bytes, ours: ChainIdentity, dialer_id: bytes, listener_id: bytes, dialer_nonce: bytes, listener_nonce: bytes
) -> bytes:
    """The bytes one side's node key signs in the handshake (docs/network.md, "Handshake").

    The context keeps a node-key signature from meaning anything elsewhere; the role keeps the
    listener's signature from serving as the dialer's (reflection); both nonces make it good for
    this connection only (replay); both node ids and the chain name who talks to whom, where.
    """
    chain_id = ours.chain_id.encode("utf-8")
    return b"".join((
        HANDSHAKE_CONTEXT,
        struct.pack(">B", len(role)), role,
        struct.pack(">I", ours.protocol_version),
        struct.pack(">I", len(chain_id)), chain_id,
        struct.pack(">I", len(ours.genesis_hash)), ours.genesis_hash,
        dialer_id, listener_id, dialer_nonce, listener_nonce,
    ))


def check_handshake_signature(role: bytes, signer_id: bytes, signature: bytes, transcript: bytes) -> None:
    """Refuse a handshake signature that is not `signer_id`'s Ed25519 signature of `transcript` (UNAUTHENTICATED)."""
    if len(signature) != SIGNATURE_BYTES:
        raise HandshakeRefused(
            grpc.StatusCode.UNAUTHENTICATED,
            f"the {role.decode()}'s signature is {SIGNATURE_BYTES} bytes, got {len(signature)}",
        )
    if not verify(signer_id, signature, transcript):
        raise HandshakeRefused(
            grpc.StatusCode.UNAUTHENTICATED,
            f"the {role.decode()}'s signature does not prove node id {short_id(signer_id)} for this handshake",
        )


def parse_hello_ack(raw: bytes) -> bytes:
    """The signature in a dialer's HelloAck; HandshakeRefused (UNAUTHENTICATED) for anything else."""
    try:
        envelope = parse_envelope(raw)
    except ProtocolViolation as violation:
        raise HandshakeRefused(grpc.StatusCode.UNAUTHENTICATED, f"no valid HelloAck: {violation}") from None
    kind = envelope.WhichOneof("message")
    if kind != "hello_ack":
        raise HandshakeRefused(grpc.StatusCode.UNAUTHENTICATED, f"the second message must be a HelloAck, got {kind}")
    return envelope.hello_ack.signature


def parse_envelope(raw: bytes) -> p2p_pb2.Envelope:
    """An Envelope from its canonical bytes with one message set; ProtocolViolation otherwise."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolViolation(f"a message of {len(raw)} bytes (limit {MAX_MESSAGE_BYTES})")
    try:
        envelope = decode_canonical(p2p_pb2.Envelope, raw, "p2p Envelope")
    except EncodingError as error:
        raise ProtocolViolation(f"{error} ({len(raw)} bytes)") from None
    if envelope.WhichOneof("message") is None:
        raise ProtocolViolation(f"an Envelope with no message set ({len(raw)} bytes)")
    return envelope


def encode_envelope(envelope: p2p_pb2.Envelope) -> bytes:
    """The canonical bytes of an Envelope, as every receiver checks them."""
    return envelope.SerializeToString(deterministic=True)
