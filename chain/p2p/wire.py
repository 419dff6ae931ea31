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
# 3: Hello carries the sender's wall clock and an optional validator key, proved by a second
#    signature (the listener's in its Hello, the dialer's in its HelloAck).
PROTOCOL_VERSION = 3
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
# The first bytes of a validator key's handshake signature: a validator key signs blocks and votes,
# whose bytes never start so, and a node-key transcript can never serve as a validator's.
VALIDATOR_CONTEXT = b"inferchain/p2p-validator/v1"
VALIDATOR_KEY_BYTES = 32
LISTENER_ROLE = b"listener"
DIALER_ROLE = b"dialer"
MAX_PEERS_PER_MESSAGE = 64
# Transaction gossip's limits (chain/p2p/txgossip.py uses them too).
MAX_HASHES_PER_MESSAGE = 4096
TX_HASH_BYTES = 32
MAX_TX_BATCH_BYTES = 4 * 1024 * 1024
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
    if hello.validator_key and len(hello.validator_key) != VALIDATOR_KEY_BYTES:
        raise HandshakeRefused(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"validator_key is empty or {VALIDATOR_KEY_BYTES} bytes, got {len(hello.validator_key)}",
        )
    if hello.validator_signature and not from_listener:
        raise HandshakeRefused(
            grpc.StatusCode.INVALID_ARGUMENT,
            "a dialer's Hello has no validator_signature (the dialer proves its validator key in its HelloAck)",
        )
    if from_listener and bool(hello.validator_key) != bool(hello.validator_signature):
        raise HandshakeRefused(
            grpc.StatusCode.INVALID_ARGUMENT, "a listener's validator_key and validator_signature come together"
        )
    if hello.node_id == own_node_id:
        raise HandshakeRefused(grpc.StatusCode.ALREADY_EXISTS, "self-connection: the peer has this node's own node id")


def handshake_transcript(
    role: bytes, ours: ChainIdentity, dialer_id: bytes, listener_id: bytes, dialer_nonce: bytes, listener_nonce: bytes,
    context: bytes = HANDSHAKE_CONTEXT,
) -> bytes:
    """The bytes one side's node key (or, with VALIDATOR_CONTEXT, its validator key) signs in the handshake.

    The context keeps a node-key signature from meaning anything elsewhere; the role keeps the
    listener's signature from serving as the dialer's (reflection); both nonces make it good for
    this connection only (replay); both node ids and the chain name who talks to whom, where.
    A validator key signs the same fields under VALIDATOR_CONTEXT: "the validator runs this node
    id, on this connection" (docs/network.md, "Handshake").
    """
    chain_id = ours.chain_id.encode("utf-8")
    return b"".join((
        context,
        struct.pack(">B", len(role)), role,
        struct.pack(">I", ours.protocol_version),
        struct.pack(">I", len(chain_id)), chain_id,
        struct.pack(">I", len(ours.genesis_hash)), ours.genesis_hash,
        dialer_id, listener_id, dialer_nonce, listener_nonce,
    ))


def check_handshake_signature(role: bytes, signer_id: bytes, signature: bytes, transcript: bytes,
                              what: str = "node id") -> None:
    """Refuse a handshake signature that is not `signer_id`'s Ed25519 signature of `transcript` (UNAUTHENTICATED)."""
    name = "signature" if what == "node id" else "validator_signature"
    if len(signature) != SIGNATURE_BYTES:
        raise HandshakeRefused(
            grpc.StatusCode.UNAUTHENTICATED,
            f"the {role.decode()}'s {name} is {SIGNATURE_BYTES} bytes, got {len(signature)}",
        )
    if not verify(signer_id, signature, transcript):
        raise HandshakeRefused(
            grpc.StatusCode.UNAUTHENTICATED,
            f"the {role.decode()}'s {name} does not prove {what} {short_id(signer_id)} for this handshake",
        )


def check_clock(peer_time_ms: int, own_time_s: float, max_offset_s: float, whose: str = "your") -> float:
    """The peer's clock minus ours in seconds; HandshakeRefused(FAILED_PRECONDITION) beyond `max_offset_s`.

    `whose` names the peer's clock in the detail: "your" when the peer is told it (the listener's
    refusal status), "its" in this node's own log line (the dialer's refusal).
    """
    offset = peer_time_ms / 1000.0 - own_time_s
    if abs(offset) <= max_offset_s:
        return offset
    raise HandshakeRefused(grpc.StatusCode.FAILED_PRECONDITION, describe_clock_offset(offset, whose) + (
        f" (at most {max_offset_s:.0f} s allowed): fix the system clock (NTP) of whichever node is wrong"))


def describe_clock_offset(offset_s: float, whose: str) -> str:
    """ "your clock is 41 s behind this node's", from the peer's clock minus ours."""
    direction = "behind" if offset_s < 0 else "ahead of"
    return f"{whose} clock is {abs(offset_s):.0f} s {direction} this node's"


def parse_hello_ack(raw: bytes) -> p2p_pb2.HelloAck:
    """A dialer's HelloAck; HandshakeRefused (UNAUTHENTICATED) for anything else."""
    try:
        envelope = parse_envelope(raw)
    except ProtocolViolation as violation:
        raise HandshakeRefused(grpc.StatusCode.UNAUTHENTICATED, f"no valid HelloAck: {violation}") from None
    kind = envelope.WhichOneof("message")
    if kind != "hello_ack":
        raise HandshakeRefused(grpc.StatusCode.UNAUTHENTICATED, f"the second message must be a HelloAck, got {kind}")
    return envelope.hello_ack


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


def check_message_limits(envelope: p2p_pb2.Envelope) -> None:
    """Refuse a message over a size limit of docs/network.md's table ("Messages"): ProtocolViolation."""
    kind = envelope.WhichOneof("message")
    if kind in ("tx_announce", "tx_request"):
        what = "TxAnnounce" if kind == "tx_announce" else "TxRequest"
        hashes = getattr(envelope, kind).hashes
        if len(hashes) > MAX_HASHES_PER_MESSAGE:
            raise ProtocolViolation(f"a {what} with {len(hashes)} hashes (limit {MAX_HASHES_PER_MESSAGE})")
        wrong = next((h for h in hashes if len(h) != TX_HASH_BYTES), None)
        if wrong is not None:
            raise ProtocolViolation(f"a {what} with a {len(wrong)}-byte hash (hashes are {TX_HASH_BYTES} bytes)")
    elif kind == "tx_batch":
        size = sum(len(raw) for raw in envelope.tx_batch.transactions)
        if size > MAX_TX_BATCH_BYTES:
            raise ProtocolViolation(f"a TxBatch of {size} bytes (limit {MAX_TX_BATCH_BYTES})")
    elif kind == "peers" and len(envelope.peers.addrs) > MAX_PEERS_PER_MESSAGE:
        raise ProtocolViolation(f"a Peers message with {len(envelope.peers.addrs)} addresses (limit {MAX_PEERS_PER_MESSAGE})")


def encode_envelope(envelope: p2p_pb2.Envelope) -> bytes:
    """The canonical bytes of an Envelope, as every receiver checks them."""
    return envelope.SerializeToString(deterministic=True)
