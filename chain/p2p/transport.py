"""The gRPC plumbing under the p2p protocol: the raw-bytes Connect handler, channel and server options, peer strings."""

from __future__ import annotations

import urllib.parse

import grpc

from chain.p2p.wire import MAX_MESSAGE_BYTES, SERVICE_NAME


def grpc_peer_addr(peer: str) -> str:
    """HOST:PORT of a gRPC peer string ("ipv4:127.0.0.2:5000", "ipv6:%5B::1%5D:5000")."""
    kind, _, address = urllib.parse.unquote(peer).partition(":")
    return address if kind in ("ipv4", "ipv6") else peer


def grpc_peer_host(peer: str) -> str:
    """The host part of a gRPC peer string: the source address that per-address limits count."""
    address = grpc_peer_addr(peer)
    host, colon, _ = address.rpartition(":")
    return host if colon else address


def describe(error: grpc.RpcError) -> str:
    """A stream's end in words: the status the peer sent, or that the stream broke (a listener is told no more)."""
    code = error.code() if hasattr(error, "code") else None
    if code is None:
        return "the peer closed the stream"
    return f"{code.name} {error.details() or ''}".strip()


def connect_handler(behavior) -> grpc.GenericRpcHandler:
    """P2P.Connect with raw bytes both ways: the node parses each message itself, to name the peer and the fault."""
    return grpc.method_handlers_generic_handler(
        SERVICE_NAME, {"Connect": grpc.stream_stream_rpc_method_handler(behavior)}
    )


def _common_options() -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]


def server_options() -> list[tuple[str, int]]:
    return _common_options() + [
        ("grpc.so_reuseport", 0),
        # Peers ping every 20 s (below); find peers that vanished without a FIN within ~30 s.
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.max_concurrent_streams", 4),  # a peer needs one stream per connection
    ]


def channel_options() -> list[tuple[str, int]]:
    return _common_options() + [
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.enable_retries", 0),
        # Each dial gets its own TCP connection (grpc otherwise shares subchannels between channels).
        ("grpc.use_local_subchannel_pool", 1),
    ]
