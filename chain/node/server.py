"""The gRPC server of a node: the client API, health checking and server reflection.

Message sizes are bounded by what the chain can ever accept (RequestLimits, from the genesis):
gRPC refuses a larger request from its 5-byte length prefix, before reading it (measured with
grpcio 1.85: a stream that sent only the prefix of a 30 MiB message is answered RESOURCE_EXHAUSTED
at once). At a 32 MiB limit, 200 requests of 30 MiB were each read whole and left a node holding
2.67 GB (issue 28).

Three guards sit in front of every service (an interceptor, so that health and reflection get
them too):
- a request larger than its method can validly be is refused with RESOURCE_EXHAUSTED before it is
  decoded (gRPC's limit is one for all methods, the largest: a SubmitTransactions batch);
- a request whose bytes do not decode is refused with INVALID_ARGUMENT naming the message type
  (grpcio's own answer is INTERNAL "Exception deserializing request!", with a logged traceback);
- a stream that holds a worker thread (block subscriptions, reflection, a token publisher's
  client stream) passes a StreamGate, so streams never take the workers that unary calls and
  health checks need; each message of a client stream gets the first two guards as it is read.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
from concurrent import futures
from dataclasses import dataclass
from typing import Callable

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from chain.node.api import MAX_BATCH, NodeApi
from chain.node.queries import QueryApi
from chain.node.streams import StreamGate, StreamLimits, StreamRefused
from chain.node.token_streams import MAX_TEXT_BYTES
from chain.storage import StoreError
from proto import node_pb2, node_pb2_grpc, query_pb2, query_pb2_grpc

log = logging.getLogger(__name__)

# The largest answer sent: a block of max_block_bytes (4 MiB in the dev genesis) with its receipts
# and proofs, or a page of jobs, with room to spare. Not a memory risk: the node builds its answers.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
# What SubmitTransactionRequest and SimulateTransactionRequest add around their one transaction:
# a tag and a length (6 bytes at most), with room for a transaction a little over the limit to
# reach the runtime's check, which names the limit ("transaction is N bytes, the limit is M").
TRANSACTION_FRAMING_BYTES = 1024
# What SubmitTransactionsRequest adds per transaction: a one-byte tag and a length of at most 5 bytes.
BATCH_FRAMING_BYTES_PER_TRANSACTION = 6
# A request at least this large leaves buffers that glibc keeps for reuse once freed: 200 batches of
# 4 MiB (32 at a time) left a node 180-310 MB larger; trimming a second after them, 35-170 MB.
TRIM_AFTER_REQUEST_BYTES = 1024 * 1024
# How long after such a request the trim runs (the request is answered by then), and so how often at most.
TRIM_DELAY_S = 1.0
# Growth of the node's resident memory since the last trim that makes the trimmer trim anyway, checked every
# TRIM_DELAY_S: requests larger than any valid one are refused by gRPC before the node reads them, so they are never
# noted, yet glibc keeps what their buffers took (40 of 30 MiB, 8 at a time, left a node 71 MB larger on a busy
# machine and once 385 MB in CI; 1-2 MB with a trim a second later).
TRIM_ON_GROWTH_BYTES = 32 * 1024 * 1024
# Workers left for unary calls and health checks when every admitted stream holds one.
UNARY_WORKERS = 16
# HTTP/2 streams one connection may have open at once (the HTTP/2 default is unlimited).
MAX_STREAMS_PER_CONNECTION = 100


# What a PublishTokensRequest adds around its piece's text: the first one's id, account and signature
# (128 bytes and tags), the piece's numbers and stop reason; a piece a little over the text bound still
# reaches the store's check, which names the bound.
TOKEN_PIECE_FRAMING_BYTES = 1024


NODE_SERVICE = node_pb2.DESCRIPTOR.services_by_name["Node"].full_name
TRANSACTION_METHODS = frozenset(f"/{NODE_SERVICE}/{name}" for name in ("SubmitTransaction", "SimulateTransaction"))
PUBLISH_TOKENS_METHOD = f"/{NODE_SERVICE}/PublishTokens"


@dataclass(frozen=True)
class RequestLimits:
    """The largest request each method can validly carry, in serialized bytes."""

    transaction: int  # SubmitTransaction, SimulateTransaction
    batch: int  # SubmitTransactions, and the bound for every method

    @classmethod
    def of_chain(cls, max_transaction_bytes: int, max_block_bytes: int) -> "RequestLimits":
        """The limits for a chain whose genesis sets these transaction and block sizes."""
        # A batch never needs to carry more than one block can include (the rest would wait in the
        # pool; send it in the next call), nor more than MAX_BATCH transactions: 4 MiB and 60 KB of
        # framing in the dev genesis, where 30 MiB of requests once got in whole.
        batch_payload = max(max_block_bytes, max_transaction_bytes)
        return cls(
            transaction=max_transaction_bytes + TRANSACTION_FRAMING_BYTES,
            batch=batch_payload + MAX_BATCH * BATCH_FRAMING_BYTES_PER_TRANSACTION,
        )

    @property
    def largest(self) -> int:
        """gRPC's own receive limit: it applies to every method alike."""
        return max(self.transaction, self.batch)

    def of_method(self, method: str) -> int:
        """The limit for a full method name ("/inferchain.node.Node/SubmitTransaction").

        Queries get the largest: their fields are checked, with a message naming the field and its
        limit, before anything in them is decoded (an address of 320 KB: "at most 48 characters").
        """
        if method in TRANSACTION_METHODS:
            return self.transaction
        if method == PUBLISH_TOKENS_METHOD:
            return MAX_TEXT_BYTES + TOKEN_PIECE_FRAMING_BYTES
        return self.largest


def server_options(limits: StreamLimits, requests: RequestLimits) -> list[tuple[str, int]]:
    """Channel arguments: message sizes, keep-alive, idle connections and ping abuse."""
    return [
        ("grpc.max_receive_message_length", requests.largest),
        ("grpc.max_send_message_length", MAX_RESPONSE_BYTES),
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
        core = api.core
        self.requests = RequestLimits.of_chain(
            core.rules.params.max_transaction_bytes, core.genesis.consensus.max_block_bytes
        )
        # Streams are capped at limits.per_node workers, so UNARY_WORKERS always remain for the rest.
        workers = limits.per_node + UNARY_WORKERS
        self.trimmer = MemoryTrimmer()
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
            interceptors=[EdgeGuard(self.streams, self.requests, self.trimmer.note)],
            options=server_options(limits, self.requests),
        )
        node_pb2_grpc.add_NodeServicer_to_server(api, self.server)
        query_pb2_grpc.add_QueryServicer_to_server(QueryApi(core), self.server)  # the modules' queries
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        service_names = (
            node_pb2.DESCRIPTOR.services_by_name["Node"].full_name,
            query_pb2.DESCRIPTOR.services_by_name["Query"].full_name,
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
        self.trimmer.start()

    def mark_serving(self) -> None:
        self._set_status(health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float = 2.0) -> None:
        self.health.enter_graceful_shutdown()
        self.streams.stop()
        self.server.stop(grace).wait()
        self.trimmer.stop()


class MemoryTrimmer:
    """Hands the heap memory freed after large requests back to the system (glibc's malloc_trim), at most once per
    TRIM_DELAY_S: a second after a large request was read, or when resident memory grew by TRIM_ON_GROWTH_BYTES since
    the last trim (what gRPC read of requests it refused)."""

    def __init__(self, delay_s: float = TRIM_DELAY_S, trim: Callable[[int], int] | None = None,
                 resident: Callable[[], int | None] | None = None):
        self.delay_s = delay_s
        self._trim = trim or _malloc_trim()
        self._resident = resident or _resident_bytes
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def note(self, request_bytes: int) -> None:
        """A request of this many bytes was read."""
        if request_bytes >= TRIM_AFTER_REQUEST_BYTES:
            self._wanted.set()

    def start(self) -> None:
        if self._trim is not None:
            self._thread = threading.Thread(target=self._run, name="memory-trim", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        trimmed_at = self._resident()
        while not self._stop.is_set():
            if self._wanted.wait(self.delay_s):
                self._wanted.clear()  # a request read while waiting asks for the next trim
                if self._stop.wait(self.delay_s):
                    return
            else:
                resident = self._resident()
                if resident is None or trimmed_at is None or resident < trimmed_at + TRIM_ON_GROWTH_BYTES:
                    continue
            self._trim(0)
            trimmed_at = self._resident()


def _resident_bytes() -> int | None:
    """This process's resident memory (Linux /proc/self/statm), or None where there is none."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


# --- the edge guard -------------------------------------------------------------


@dataclass(frozen=True)
class Undecodable:
    """What a request deserializer hands on instead of raising: the bytes did not decode."""

    message_type: str
    size: int


@dataclass(frozen=True)
class Oversized:
    """What a request deserializer hands on instead of decoding: the bytes are more than the method can carry."""

    message_type: str
    size: int
    limit: int


def tolerant(
    deserializer: Callable[[bytes], object], limit: int, read: Callable[[int], None] = lambda size: None
) -> Callable[[bytes], object]:
    """The deserializer, returning Oversized past `limit` bytes (undecoded) and Undecodable where it would raise DecodeError.

    `read` is told the size of every request.
    """
    message_type = _message_type(deserializer)

    def deserialize(raw: bytes):
        read(len(raw))
        if len(raw) > limit:
            return Oversized(message_type, len(raw), limit)
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
    if isinstance(request, Oversized):
        context.abort(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"the request is {request.size} bytes, more than any valid {request.message_type} "
            f"on this chain ({request.limit} bytes at most)",
        )
    if isinstance(request, Undecodable):
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the request does not decode as {request.message_type} ({request.size} bytes)",
        )


class EdgeGuard(grpc.ServerInterceptor):
    """Refuses oversized and undecodable unary requests and passes thread-holding streams through a StreamGate."""

    def __init__(self, streams: StreamGate, requests: RequestLimits, read: Callable[[int], None] = lambda size: None):
        self.streams = streams
        self.requests = requests
        self.read = read  # told the size of every unary request
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
        if handler.request_streaming and not handler.response_streaming:  # a client stream (PublishTokens)
            deserializer = handler.request_deserializer
            if deserializer is not None:
                deserializer = tolerant(deserializer, self.requests.of_method(method), self.read)
            return grpc.stream_unary_rpc_method_handler(
                self._gated_client_stream(method, handler.stream_unary), deserializer, handler.response_serializer
            )
        if handler.request_streaming:  # stream-stream (reflection): each message is decoded later
            return grpc.stream_stream_rpc_method_handler(
                self._gated(method, handler.stream_stream), handler.request_deserializer, handler.response_serializer
            )
        deserializer = handler.request_deserializer
        if deserializer is not None:
            deserializer = tolerant(deserializer, self.requests.of_method(method), self.read)
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

    def _gated_client_stream(self, method: str, behavior):
        """A client-streaming behavior that holds a StreamGate place while it runs and sees only decoded messages."""

        def gated(request_iterator, context):
            try:
                stream = self.streams.admit(method, context)
            except StreamRefused as refusal:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(refusal))
            try:
                return behavior(_decoded(request_iterator, context), context)
            except StoreError as error:
                log.error("answering %s: %s", method, error)
                context.abort(grpc.StatusCode.DATA_LOSS, f"the node cannot read its database: {error}")
            finally:
                self.streams.release(stream)

        return gated


def _decoded(requests, context: grpc.ServicerContext):
    """A client stream's messages, refusing the call at the first one that is oversized or does not decode."""
    for request in requests:
        _refuse_undecodable(request, context)
        yield request


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
