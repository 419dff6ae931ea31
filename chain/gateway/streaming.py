"""Streamed completions: the executor's tokens relayed as they are generated, then checked against the chain.

With `stream: true` the gateway posts the job and follows it (app.py `_follow_until_final`). Once the chain
assigns an executor, the gateway reads that executor's offer endpoint (GetExecutors, cached for
ENDPOINT_TTL_S), opens the node API there (one Client per endpoint, reused) and asks it for the job's
tokens with the poster's signature (`Client.stream_tokens`, docs/protocol.md "Token streams"). NOT_FOUND
means the executor has not started publishing: asked again every NOT_FOUND_RETRY_S for at most
STREAM_WAIT_S. Each piece's text goes to the client as a chunk the moment it arrives, before any commit or
reveal.

The text a client is owed is the chain's, not the executor's: when the job is final, the settled answer
is compared with what was sent. Equal: the finish chunk as before. The sent text a prefix of the settled
one (the stream was cut short, or never opened): the rest of the settled text is sent in pieces. Anything
else (the executor streamed one text and revealed another, or another executor's answer settled): the
finish chunk says `"stream_matches_settled": false` and carries the settled text. docs/gateway.md,
"Streaming", is the contract for clients.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterator, Protocol

import anyio
import anyio.lowlevel
import anyio.to_thread
from starlette.responses import StreamingResponse
from starlette.types import Send

from chain.client import Client, ClientError, JobView
from chain.client.jobs import Executor
from chain.crypto import Keypair
from chain.gateway.jobs import Posted, ended_without_answer, extension
from chain.gateway.openai_shapes import (
    Envelope,
    RequestError,
    chunk_document,
    error_document,
    finish_reason,
    text_pieces,
    usage_chunk,
)
from proto import node_pb2, state_pb2

log = logging.getLogger(__name__)

# How long an executor's endpoint, read from its on-chain offer, is used before it is read again.
ENDPOINT_TTL_S = 10.0
# Models whose executors' endpoints are cached at once (the least recently read is forgotten first).
MAX_CACHED_MODELS = 64
# Node APIs the gateway holds a connection to at once; an idle one is closed to open another.
MAX_ENDPOINT_CLIENTS = 32
# Token streams read from one node API at once. A node serves one client address at most 16 streams
# (chain/node/streams.py StreamLimits.per_client); the gateway's block subscription and a worker on the same
# host need some of them. A streamed request beyond this gets the settled text instead (as with no endpoint).
MAX_STREAMS_PER_ENDPOINT = 8
# Offer endpoints are host:port, printable ASCII without spaces, at most this long (proto/state.proto Offer).
MAX_ENDPOINT_BYTES = 255
# NOT_FOUND: the executor has not begun publishing (still loading, or running an earlier job); ask again.
NOT_FOUND_RETRY_S = 0.1
STREAM_WAIT_S = 30.0
# A stream that breaks mid-way is opened again from the next token, at most this many times.
MAX_RECONNECTS = 2
# ABORTED: the node dropped the stream; DEADLINE_EXCEEDED: the node's stream lifetime; UNAVAILABLE: a blip.
RECONNECT_CODES = ("ABORTED", "DEADLINE_EXCEEDED", "UNAVAILABLE")
# Once the job is final, how long the relay may still finish sending what the executor streamed.
FINAL_GRACE_S = 1.0
# The node keeps at most 256 KiB of text per stream (chain/node/token_streams.py); more is not relayed.
MAX_STREAMED_BYTES = 256 * 1024
STOP_REASONS = ("eos", "length")
# A client that takes no frame for this long (its connection's buffers full) has its stream ended.
STALL_TIMEOUT_S = 30.0
STREAMING_SLOTS = (state_pb2.ASSIGNMENT_STATUS_ASSIGNED, state_pb2.ASSIGNMENT_STATUS_COMMITTED,
                   state_pb2.ASSIGNMENT_STATUS_REVEALED)
DONE = "data: [DONE]\n\n"


class TokenStream(Protocol):
    """What Client.stream_tokens returns: TokenPieces as the node sends them; close() from any thread."""

    def __iter__(self) -> Iterator[node_pb2.TokenPiece]: ...

    def __next__(self) -> node_pb2.TokenPiece: ...

    def close(self) -> None: ...


# (executor, from_token) -> the executor's token stream, or None when it has none to offer. Blocking.
OpenStream = Callable[[bytes, int], "TokenStream | None"]
# The follow of app.py: the final view, None when the client left; `on_view` sees every change first.
Follow = Callable[[Callable[[JobView], None]], Awaitable["JobView | None"]]
Write = Callable[[str], Awaitable[None]]


def valid_endpoint(endpoint: str) -> bool:
    """host:port in printable ASCII without spaces, at most MAX_ENDPOINT_BYTES, the port 1 to 65535."""
    if not 0 < len(endpoint) <= MAX_ENDPOINT_BYTES or not endpoint.isascii() or not endpoint.isprintable():
        return False
    host, _, port = endpoint.rpartition(":")
    return bool(host) and " " not in endpoint and port.isdigit() and 0 < int(port) <= 65535


# --- where an executor's tokens are served ---------------------------------------------------


class ExecutorEndpoints:
    """Executors' offer endpoints by model, read with GetExecutors and kept ENDPOINT_TTL_S."""

    def __init__(self, list_executors: Callable[[bytes], list[Executor]], *, ttl: float = ENDPOINT_TTL_S,
                 clock: Callable[[], float] = time.monotonic):
        self._list_executors = list_executors
        self._ttl = ttl
        self._clock = clock
        self._by_model: OrderedDict[bytes, tuple[float, dict[bytes, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def endpoint(self, model: bytes, executor: bytes) -> str | None:
        """The executor's endpoint for jobs of `model`; None when its offer names none (or a malformed one)."""
        now = self._clock()
        with self._lock:
            cached = self._by_model.get(model)
        if cached is None or now - cached[0] >= self._ttl:
            endpoints = {each.account: each.offer.endpoint for each in self._list_executors(model)
                         if valid_endpoint(each.offer.endpoint)}
            cached = (now, endpoints)
            with self._lock:
                self._by_model[model] = cached
                self._by_model.move_to_end(model)
                while len(self._by_model) > MAX_CACHED_MODELS:
                    self._by_model.popitem(last=False)
        return cached[1].get(executor)


class EndpointClients:
    """One Client per endpoint, shared by every stream read from it; at most `limit` open at once."""

    def __init__(self, limit: int = MAX_ENDPOINT_CLIENTS, connect: Callable[[str], Client] = Client,
                 per_endpoint: int = MAX_STREAMS_PER_ENDPOINT):
        self._limit = limit
        self._per_endpoint = per_endpoint
        self._last_full_log = float("-inf")
        self._connect = connect
        self._clients: OrderedDict[str, Client] = OrderedDict()
        self._users: dict[str, int] = {}
        self._lock = threading.Lock()
        self._closed = False

    def acquire(self, endpoint: str) -> Client | None:
        """The endpoint's Client (release it after); None when `limit` endpoints are all in use, or this one
        already serves `per_endpoint` streams."""
        with self._lock:
            if self._closed:
                return None
            if self._users.get(endpoint, 0) >= self._per_endpoint:
                if time.monotonic() - self._last_full_log > 10:
                    self._last_full_log = time.monotonic()
                    log.info("token streams: %d open from %s, the most per node API; more get the settled text",
                             self._per_endpoint, endpoint)
                return None
            client = self._clients.get(endpoint)
            if client is None:
                if len(self._clients) >= self._limit and not self._evict_idle():
                    log.warning("token streams: %d node APIs in use, none idle; %s not opened", self._limit, endpoint)
                    return None
                client = self._clients[endpoint] = self._connect(endpoint)
            self._clients.move_to_end(endpoint)
            self._users[endpoint] = self._users.get(endpoint, 0) + 1
            return client

    def release(self, endpoint: str) -> None:
        with self._lock:
            self._users[endpoint] = max(0, self._users.get(endpoint, 0) - 1)

    def close(self) -> None:
        """Close every Client (their streams end); nothing is opened after."""
        with self._lock:
            self._closed = True
            clients, self._clients = list(self._clients.values()), OrderedDict()
        for client in clients:
            client.close()

    def _evict_idle(self) -> bool:
        for endpoint in self._clients:  # least recently used first
            if not self._users.get(endpoint):
                self._clients.pop(endpoint).close()
                self._users.pop(endpoint, None)
                return True
        return False


class _HeldStream:
    """A token stream that gives its endpoint's Client back when closed (once, from any thread)."""

    def __init__(self, stream: TokenStream, release: Callable[[], None]):
        self._stream = stream
        self._release = release
        self._released = False
        self._lock = threading.Lock()

    def __iter__(self):
        return self

    def __next__(self) -> node_pb2.TokenPiece:
        return next(self._stream)

    def close(self) -> None:
        self._stream.close()
        with self._lock:
            released, self._released = self._released, True
        if not released:
            self._release()


class ExecutorStreams:
    """Opens an executor's token stream for a job's poster: endpoint from the offer, Client from the pool."""

    def __init__(self, list_executors: Callable[[bytes], list[Executor]], *,
                 connect: Callable[[str], Client] = Client, max_threads: int = 64):
        self.endpoints = ExecutorEndpoints(list_executors)
        self.clients = EndpointClients(connect=connect)
        # Threads that wait for the next piece; apart from the followers', so a stream never starves a follow.
        self.threads = anyio.CapacityLimiter(max_threads)

    def opener(self, poster: Keypair, posted: Posted) -> OpenStream:
        """The OpenStream of one job: its poster signs, its model's executors are asked."""
        return lambda executor, from_token: self.open(poster, posted, executor, from_token)

    def open(self, poster: Keypair, posted: Posted, executor: bytes, from_token: int = 0) -> TokenStream | None:
        """The executor's stream of the job's tokens; None when its offer names no endpoint. Blocks."""
        endpoint = self.endpoints.endpoint(posted.model.id, executor)
        if endpoint is None:
            return None
        client = self.clients.acquire(endpoint)
        if client is None:
            return None
        try:
            stream = client.stream_tokens(poster, posted.job_id, executor, from_token)
        except BaseException:
            self.clients.release(endpoint)
            raise
        return _HeldStream(stream, lambda: self.clients.release(endpoint))

    def close(self) -> None:
        self.clients.close()


# --- the relay -------------------------------------------------------------------------------


@dataclass
class Sent:
    """What the client has been sent of the answer: the texts of its chunks, and how many came from the
    executor's stream (tokens, and the executor)."""

    texts: list[str] = field(default_factory=list)
    streamed_tokens: int = 0
    streamed_bytes: int = 0
    executor: bytes | None = None

    @property
    def text(self) -> str:
        return "".join(self.texts)


class TokenRelay:
    """One streamed completion's relay: pieces of the executor's stream to chunks, while the job is followed."""

    def __init__(self, envelope: Envelope, write: Write, open_stream: OpenStream,
                 threads: anyio.CapacityLimiter | None = None, *, stream_wait: float = STREAM_WAIT_S,
                 not_found_retry: float = NOT_FOUND_RETRY_S, final_grace: float = FINAL_GRACE_S):
        self.envelope = envelope
        self.write = write
        self.open_stream = open_stream
        self.threads = threads
        self.stream_wait = stream_wait
        self.not_found_retry = not_found_retry
        self.final_grace = final_grace
        self.sent = Sent()
        self._executors: list[bytes] | None = None
        self._assigned = anyio.Event()
        self._finished = anyio.Event()
        # Streams opened in threads; an open that returns after the relay stopped closes its stream itself.
        self._open: set = set()
        self._open_lock = threading.Lock()
        self._stopped = False

    def on_view(self, view: JobView) -> None:
        """Each change of the job (on the event loop): the first with an executor assigned starts the relay."""
        if self._executors is not None:
            return
        executors = [slot.executor for slot in view.job.assignments if slot.status in STREAMING_SLOTS]
        if executors and not view.final:
            self._executors = executors
            self._assigned.set()
        elif view.final:  # final before any executor was seen: nothing to relay, no grace to wait
            self._finished.set()

    async def follow_and_relay(self, follow: Follow) -> JobView | None:
        """The final view (None when the client left), the executor's pieces sent meanwhile as they came."""
        outcome: dict = {}
        async with anyio.create_task_group() as group:
            group.start_soon(self._relay)
            try:
                outcome["view"] = await follow(self.on_view)
            except RequestError as error:
                outcome["error"] = error
            if outcome.get("view") is not None:
                with anyio.move_on_after(self.final_grace):  # the last pieces may still be on their way
                    await self._finished.wait()
            group.cancel_scope.cancel()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["view"]

    async def _relay(self) -> None:
        try:
            await self._assigned.wait()
            for executor in self._executors:
                if await self._relay_from(executor) or self.sent.executor is not None:
                    break
        except Exception as error:  # never fails the answer: the settled text follows anyway
            log.warning("job %s: token relay stopped: %s", self.envelope.job_id.hex(), error)
        finally:
            self._close_all()
            self._finished.set()

    def _open_tracked(self, executor: bytes, from_token: int) -> TokenStream | None:
        """open_stream, in a thread; the stream is closed with the relay even if the relay stopped meanwhile."""
        stream = self.open_stream(executor, from_token)
        if stream is None:
            return None
        with self._open_lock:
            stopped = self._stopped
            if not stopped:
                self._open.add(stream)
        if stopped:
            stream.close()
            return None
        return stream

    def _close(self, stream: TokenStream) -> None:
        with self._open_lock:
            self._open.discard(stream)
        stream.close()

    def _close_all(self) -> None:
        with self._open_lock:
            self._stopped = True
            streams, self._open = list(self._open), set()
        for stream in streams:
            stream.close()

    async def _relay_from(self, executor: bytes) -> bool:
        """Relay one executor's stream to its end; whether it ended with its last piece."""
        deadline = time.monotonic() + self.stream_wait
        reconnects = 0
        while True:
            stream = None
            try:
                stream = await self._in_thread(self._open_tracked, executor, self.sent.streamed_tokens)
                if stream is None:
                    return False
                return await self._relay_pieces(stream, executor)
            except ClientError as error:
                started = self.sent.executor is not None
                if error.code == "NOT_FOUND" and not started and time.monotonic() < deadline:
                    await anyio.sleep(self.not_found_retry)
                    continue
                if started and error.code in RECONNECT_CODES and reconnects < MAX_RECONNECTS:
                    reconnects += 1
                    continue
                log.info("job %s: no token stream from %s: %s %s", self.envelope.job_id.hex(), executor.hex()[:16],
                         error.code, error.message[:200])
                return False
            finally:
                if stream is not None:
                    self._close(stream)

    async def _relay_pieces(self, stream: TokenStream, executor: bytes) -> bool:
        job = self.envelope.job_id.hex()
        while True:
            piece = await self._in_thread(next, stream, None)
            if piece is None:
                return False
            problem = self._problem(piece)
            if problem:
                log.warning("job %s: executor %s's stream stopped relaying: %s", job, executor.hex()[:16], problem)
                return False
            if piece.text:
                await self.write(sse(chunk_document(self.envelope, text=piece.text)))
            self._record(piece, executor)
            if piece.stop_reason:
                return True

    def _problem(self, piece: node_pb2.TokenPiece) -> str | None:
        """What makes a piece unfit to relay (the node is not trusted to keep the stream's rules), or None."""
        sent = self.sent
        if piece.first_token != sent.streamed_tokens:
            return f"piece starts at token {piece.first_token}, expected {sent.streamed_tokens}"
        if piece.stop_reason and piece.stop_reason not in STOP_REASONS:
            return f"unknown stop reason {piece.stop_reason[:16]!r}"
        if piece.tokens == 0 and not piece.stop_reason:
            return "a piece of no tokens before the last"
        if sent.streamed_bytes + len(piece.text.encode("utf-8")) > MAX_STREAMED_BYTES:
            return f"more than {MAX_STREAMED_BYTES} bytes of text"
        return None

    def _record(self, piece: node_pb2.TokenPiece, executor: bytes) -> None:
        sent = self.sent
        sent.executor = executor
        if piece.text:
            sent.texts.append(piece.text)
        sent.streamed_tokens += piece.tokens
        sent.streamed_bytes += len(piece.text.encode("utf-8"))

    async def _in_thread(self, function, *args):
        return await anyio.to_thread.run_sync(lambda: function(*args), limiter=self.threads, abandon_on_cancel=True)


async def stream_completion(write: Write, envelope: Envelope, include_usage: bool, follow: Follow,
                            open_stream: OpenStream, threads: anyio.CapacityLimiter | None = None) -> None:
    """The SSE frames of a streamed completion: the role, the text as the executor generates it, what the
    settled answer adds or says about it, the finish reason, the usage if asked, [DONE]."""
    await write(sse(chunk_document(envelope, role=True)))
    relay = TokenRelay(envelope, write, open_stream, threads)
    try:
        view = await relay.follow_and_relay(follow)
    except RequestError as error:  # the status line is sent: the error goes in the stream
        await write(sse(error_document(error)))
        await write(DONE)
        return
    if view is None:  # the client went away; nobody reads more
        return
    for frame in final_frames(envelope, view, relay.sent, include_usage):
        await write(frame)


def final_frames(envelope: Envelope, view: JobView, sent: Sent, include_usage: bool) -> list[str]:
    """What follows the relayed text once the job is final: the settled remainder, the finish chunk (with
    stream_matches_settled), the usage chunk if asked, [DONE]; or the error of a job without an answer."""
    answer = view.result
    if answer is None:
        return [sse(error_document(ended_without_answer(view))), DONE]
    frames = []
    settled, streamed = answer.text, sent.text
    summary = {"stream_matches_settled": settled.startswith(streamed), "streamed_tokens": sent.streamed_tokens}
    if summary["stream_matches_settled"]:
        remaining_tokens = max(1, len(answer.tokens) - sent.streamed_tokens)
        frames += [sse(chunk_document(envelope, text=piece))
                   for piece in text_pieces(settled[len(streamed):], remaining_tokens)]
    else:
        summary["settled_text"] = settled
        log.warning("job %s: the streamed text differs from the settled answer", view.id.hex())
    frames.append(sse(chunk_document(envelope, reason=finish_reason(answer.stop_reason),
                                     extension={**extension(view), **summary})))
    if include_usage:
        frames.append(sse(usage_chunk(envelope, answer)))
    frames.append(DONE)
    return frames


# --- the response ----------------------------------------------------------------------------


class EventStream(StreamingResponse):
    """A text/event-stream response written by `produce(write)`: a coroutine, not an async generator, so
    that it may run tasks (a task group cannot stay open across an async generator's yields).

    A frame the client does not take within `stall_timeout` s (it reads nothing: the connection's buffers
    are full) ends the response, so a client that never reads holds no slot for ever; the job goes on."""

    def __init__(self, produce: Callable[[Write], Awaitable[None]], headers: dict[str, str], *,
                 stall_timeout: float = STALL_TIMEOUT_S):
        super().__init__((), media_type="text/event-stream", headers=headers)
        self.produce = produce
        self.stall_timeout = stall_timeout

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        with anyio.CancelScope() as response:

            async def write(frame: str) -> None:
                with anyio.move_on_after(self.stall_timeout) as waited:
                    await send({"type": "http.response.body", "body": frame.encode("utf-8"), "more_body": True})
                if waited.cancelled_caught:
                    log.info("a client read nothing for %g s: its stream is ended", self.stall_timeout)
                    response.cancel()
                    await anyio.lowlevel.checkpoint()

            await self.produce(write)
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def sse(document: dict) -> str:
    """One server-sent event: `data: JSON` and a blank line."""
    return f"data: {json.dumps(document, separators=(',', ':'))}\n\n"
