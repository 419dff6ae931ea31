"""The gRPC server of a node: the client API, health checking and server reflection.

Two guards sit in front of every service (an interceptor, so that health and reflection get
them too):
- a request whose bytes do not decode is refused with INVALID_ARGUMENT naming the message type
  (grpcio's own answer is INTERNAL "Exception deserializing request!", with a logged traceback);
- a stream that holds a worker thread (block subscriptions, reflection) passes a StreamGate, so
  streams never take the workers that unary calls and health checks need.
"""

from __future__ import annotations

import logging
from concurrent import futures
from dataclasses import dataclass
from typing import Callable

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from chain.node.api import NodeApi
from chain.node.streams import StreamGate, StreamLimits
from chain.storage import StoreError
from proto import node_pb2, node_pb2_grpc

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 32 * 1024 * 1024
# Workers left for unary calls and health checks when every admitted stream holds one.
UNARY_WORKERS = 16
# HTTP/2 streams one connection may have open at once (the HTTP/2 default is unlimited).
MAX_STREAMS_PER_CONNECTION = 100


def server_options(limits: StreamLimits) -> list[tuple[str, int]]:
    """Channel arguments: message sizes, keep-alive, idle connections and ping abuse."""
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 0),
        ("grpc.max_concurrent_streams", MAX_STREAMS_PER_CONNECTION),
        # Ping each client every 30 s and drop the connection (cancelling its streams, which frees
        # their workers) when no answer comes within 10 s: finds peers that vanished without a FIN.
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # A subscription to a quiet chain sends no data for a while; keep pinging it regardless.
        ("grpc.http2.max_pings_without_data", 0),
        # Clients may ping at most every 10 s; two pings faster than that and the connection is closed.
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 2),
        # A connection with no call for 5 minutes is closed (the client reconnects when it needs to).
        ("grpc.max_connection_idle_ms", 300_000),
    ]


class ApiServer:
    """Serves NodeApi on host:port; `health` is NOT_SERVING until `mark_serving`."""

    def __init__(self, api: NodeApi, host: str, port: int, limits: StreamLimits = StreamLimits()):
        self.streams = StreamGate(limits)
        # Streams are capped at limits.per_node workers, so UNARY_WORKERS always remain for the rest.
        workers = limits.per_node + UNARY_WORKERS
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
            interceptors=[EdgeGuard(self.streams)],
            options=server_options(limits),
        )
        node_pb2_grpc.add_NodeServicer_to_server(api, self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        service_names = (
            node_pb2.DESCRIPTOR.services_by_name["Node"].full_name,
            health.SERVICE_NAME,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(service_names, self.server)
        self.address = f"{host}:{port}"
        try:
            self.port = self.server.add_insecure_port(self.address)
        except RuntimeError:  # grpcio reports a failed bind this way
            self.port = 0
        if self.port == 0:
            raise OSError(f"cannot listen on {self.address} (in use, or not an address of this machine)")
        self._set_status(health_pb2.HealthCheckResponse.NOT_SERVING)

    def _set_status(self, status) -> None:
        self.health.set("", status)
        self.health.set(node_pb2.DESCRIPTOR.services_by_name["Node"].full_name, status)

    def start(self) -> None:
        self.server.start()
        self.streams.start()

    def mark_serving(self) -> None:
        self._set_status(health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float = 2.0) -> None:
        self.health.enter_graceful_shutdown()
        self.streams.stop()
        self.server.stop(grace).wait()


# --- the edge guard -------------------------------------------------------------


@dataclass(frozen=True)
class Undecodable:
    """What a request deserializer hands on instead of raising: the bytes did not decode."""

    message_type: str
    size: int


def tolerant(deserializer: Callable[[bytes], object]) -> Callable[[bytes], object]:
    """The deserializer, returning Undecodable where it would raise DecodeError."""
    message_type = _message_type(deserializer)

    def deserialize(raw: bytes):
        try:
            return deserializer(raw)
        except DecodeError:
            return Undecodable(message_type, len(raw))

    return deserialize


def _message_type(deserializer: Callable[[bytes], object]) -> str:
    # Generated code passes `SomeRequest.FromString`, bound to the message class.
    descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    return descriptor.full_name if descriptor is not None else "the request message"


def _refuse_undecodable(request, context: grpc.ServicerContext) -> None:
    if isinstance(request, Undecodable):
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the request does not decode as {request.message_type} ({request.size} bytes)",
        )


class EdgeGuard(grpc.ServerInterceptor):
    """Refuses undecodable unary requests with INVALID_ARGUMENT and passes thread-holding streams through a StreamGate."""

    def __init__(self, streams: StreamGate):
        self.streams = streams
        self._guarded: dict[str, grpc.RpcMethodHandler] = {}  # by method: handlers are built once

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if method not in self._guarded:
            handler = continuation(handler_call_details)
            if handler is None:
                return None
            self._guarded[method] = self._guard(method, handler)
        return self._guarded[method]

    def _guard(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if handler.request_streaming and not handler.response_streaming:
            return handler
        if handler.request_streaming:  # stream-stream (reflection): each message is decoded later
            return grpc.stream_stream_rpc_method_handler(
                self._gated(method, handler.stream_stream), handler.request_deserializer, handler.response_serializer
            )
        deserializer = tolerant(handler.request_deserializer) if handler.request_deserializer else None
        if not handler.response_streaming:
            return grpc.unary_unary_rpc_method_handler(_checked(handler.unary_unary), deserializer, handler.response_serializer)
        behavior = handler.unary_stream
        # A non-blocking stream (health Watch) holds no worker between messages: it is not gated.
        if not getattr(behavior, "experimental_non_blocking", False):
            behavior = self._gated(method, behavior)
        return grpc.unary_stream_rpc_method_handler(_checked(behavior), deserializer, handler.response_serializer)

    def _gated(self, method: str, behavior):
        def gated(request, context):
            return self.streams.serve(method, lambda: behavior(request, context), context)

        return gated


def _checked(behavior):
    """The behavior, refusing an Undecodable request first; keeps non-blocking streaming behaviors so."""
    if getattr(behavior, "experimental_non_blocking", False):

        def checked_non_blocking(request, context, send_response_callback=None):
            _refuse_undecodable(request, context)
            return behavior(request, context, send_response_callback)

        checked_non_blocking.experimental_non_blocking = True
        checked_non_blocking.experimental_thread_pool = getattr(behavior, "experimental_thread_pool", None)
        return checked_non_blocking

    def checked(request, context):
        _refuse_undecodable(request, context)
        try:
            return behavior(request, context)
        except StoreError as error:  # a checksum that failed on read: say so, not "Exception calling application"
            log.error("answering %s: %s", type(request).__name__, error)
            context.abort(grpc.StatusCode.DATA_LOSS, f"the node cannot read its database: {error}")

    return checked
