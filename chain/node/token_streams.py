"""Token streams kept in memory: what executors' workers publish, for their jobs' posters to read live.

Not consensus (docs/protocol.md, "Token streams"): a node keeps, for a short while, the pieces of
output the worker of an executor assigned to a job publishes to it, and hands them to that job's
poster as they come. The settled result is what counts; a stream only shows it early.

One stream per (job, executor). Its pieces are contiguous: the first starts at token 0, each next
one at the previous first_token + tokens; every piece carries at least one token except the last,
which carries a stop_reason ("eos" or "length") and may carry only the remaining text.

Bounds, so that no publisher or reader can make the node hold more than a known amount:
- at most MAX_STREAMS streams; a new one evicts the finished stream that finished first, and is
  refused (RESOURCE_EXHAUSTED) when every stream is unfinished;
- at most the job's max_tokens tokens and MAX_TEXT_BYTES bytes of text per stream, so at most
  max_tokens + 1 pieces;
- a finished stream is kept FINISHED_KEEP_S, an unfinished one with no piece for IDLE_DROP_S is
  dropped (its readers end with ABORTED). Both are checked by the calls themselves, at most every
  EXPIRY_CHECK_S, so no thread is needed.

One publisher at a time per stream: a new publisher takes the stream over and the old one's next
piece is refused (ABORTED). The new one either goes on from the stream's next token (a publisher
that reconnected) or starts again from token 0 (a worker that restarted): then the stream starts
afresh and its readers end with ABORTED, to open it again.

Thread-safe: one lock for the store, a condition per stream that its readers wait on.
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import grpc

from proto import node_pb2
from proto.job_form import STOP_REASONS

# 256 streams x 256 KiB of text: at most 64 MiB of text held (plus the pieces' own small overhead).
MAX_STREAMS = 256
MAX_TEXT_BYTES = 256 * 1024
# A reader that came late (or reconnected) still finds a finished stream this long.
FINISHED_KEEP_S = 120.0
# A worker emits a piece at least every 100 ms while tokens come; a minute without one means it is gone.
IDLE_DROP_S = 60.0
# Expiry looks at every stream, so it runs at most this often rather than at every piece.
EXPIRY_CHECK_S = 1.0

StreamKey = tuple[bytes, bytes]  # (job id, executor)


class TokenStreamError(Exception):
    """A publish or read the store refuses: `status` is the gRPC status code, the message says why."""

    def __init__(self, status: grpc.StatusCode, message: str):
        super().__init__(message)
        self.status = status


def _invalid(message: str) -> TokenStreamError:
    return TokenStreamError(grpc.StatusCode.INVALID_ARGUMENT, message)


# --- the rule for one piece ---------------------------------------------------------


def check_piece(piece: node_pb2.TokenPiece, next_token: int, text_bytes: int, finished: bool, max_tokens: int) -> int:
    """The piece's text size in UTF-8 bytes once it may follow a stream at `next_token` holding `text_bytes`
    bytes of text; TokenStreamError naming the first rule it breaks."""
    if finished:
        raise _invalid("the stream is finished: nothing comes after the piece with a stop_reason")
    if piece.first_token != next_token:
        raise _invalid(
            f"pieces are contiguous: the next one starts at token {next_token}, got first_token {piece.first_token}"
        )
    if piece.stop_reason and piece.stop_reason not in STOP_REASONS:
        raise _invalid(f"stop_reason is one of {', '.join(STOP_REASONS)} (or empty), got {piece.stop_reason[:16]!r}")
    if piece.tokens == 0 and not piece.stop_reason:
        raise _invalid("a piece carries at least one token; only the last one (with a stop_reason) may carry none")
    if next_token + piece.tokens > max_tokens:
        raise _invalid(f"the job allows at most {max_tokens} tokens; this piece would bring the stream to "
                       f"{next_token + piece.tokens}")
    try:
        size = len(piece.text.encode("utf-8"))
    except UnicodeEncodeError:
        raise _invalid("text is UTF-8 text; it holds a lone surrogate") from None
    if text_bytes + size > MAX_TEXT_BYTES:
        raise TokenStreamError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"a stream holds at most {MAX_TEXT_BYTES} bytes of text; this piece of {size} bytes would bring it to "
            f"{text_bytes + size}",
        )
    return size


# --- the store ----------------------------------------------------------------------


@dataclass(eq=False)
class _Stream:
    """One (job, executor) stream; `ended` is set when it was dropped or started again (its readers end)."""

    key: StreamKey
    max_tokens: int
    changed: threading.Condition
    last_piece_at: float
    publisher: int
    pieces: list[node_pb2.TokenPiece] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)  # first_token of each piece, for from_token
    next_token: int = 0
    text_bytes: int = 0
    finished_at: float | None = None
    ended: str | None = None
    publisher_pieces: int = 0  # pieces the current publisher has sent

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


@dataclass(frozen=True)
class Publisher:
    """A publisher's claim on one stream, from TokenStreams.open_publisher."""

    key: StreamKey
    id: int


@dataclass(eq=False)
class Reader:
    """A reader's place in one stream, from TokenStreams.subscribe."""

    stream: _Stream
    index: int


class TokenStreams:
    """The node's token streams, bounded as the module says; every method is safe from any thread."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        max_streams: int = MAX_STREAMS,
        finished_keep_s: float = FINISHED_KEEP_S,
        idle_drop_s: float = IDLE_DROP_S,
    ):
        self.clock = clock
        self.max_streams = max_streams
        self.finished_keep_s = finished_keep_s
        self.idle_drop_s = idle_drop_s
        self._lock = threading.Lock()
        self._streams: dict[StreamKey, _Stream] = {}
        self._publishers = 0
        self._expired_at: float | None = None

    def __len__(self) -> int:
        with self._lock:
            self._expire(self.clock())
            return len(self._streams)

    # --- publishing ------------------------------------------------------------------

    def open_publisher(self, job_id: bytes, executor: bytes, max_tokens: int) -> Publisher:
        """Take (job, executor)'s stream for a new publisher, making it when there is none; RESOURCE_EXHAUSTED
        when the node holds MAX_STREAMS unfinished streams."""
        key = (job_id, executor)
        with self._lock:
            now = self.clock()
            self._expire(now)
            self._publishers += 1
            publisher = Publisher(key, self._publishers)
            stream = self._streams.get(key)
            if stream is None:
                self._make_room()
                self._streams[key] = self._new_stream(key, max_tokens, publisher.id, now)
            else:
                stream.publisher, stream.publisher_pieces = publisher.id, 0
                stream.last_piece_at = now
            return publisher

    def publish(self, publisher: Publisher, piece: node_pb2.TokenPiece) -> None:
        """Append the publisher's next piece and wake the stream's readers; TokenStreamError when refused
        (nothing is kept then)."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            stream = self._streams.get(publisher.key)
            if stream is None or stream.publisher != publisher.id:
                raise TokenStreamError(
                    grpc.StatusCode.ABORTED,
                    "this publisher no longer holds the stream: another publisher took it over, or it was "
                    f"dropped after {self.idle_drop_s:g} s without a piece",
                )
            if piece.first_token == 0 and stream.publisher_pieces == 0 and (stream.pieces or stream.finished):
                stream = self._restart(stream, now)
            size = check_piece(piece, stream.next_token, stream.text_bytes, stream.finished, stream.max_tokens)
            kept = node_pb2.TokenPiece()
            kept.CopyFrom(piece)
            stream.pieces.append(kept)
            stream.starts.append(kept.first_token)
            stream.next_token += kept.tokens
            stream.text_bytes += size
            stream.last_piece_at = now
            stream.publisher_pieces += 1
            if kept.stop_reason:
                stream.finished_at = now
            stream.changed.notify_all()

    def _restart(self, stream: _Stream, now: float) -> _Stream:
        """A publisher that starts again from token 0: a fresh stream in the old one's place; its readers end."""
        self._end(stream, "the executor's worker started this stream again from token 0; open it again")
        fresh = self._new_stream(stream.key, stream.max_tokens, stream.publisher, now)
        self._streams[stream.key] = fresh
        return fresh

    def _new_stream(self, key: StreamKey, max_tokens: int, publisher: int, now: float) -> _Stream:
        return _Stream(key, max_tokens, threading.Condition(self._lock), now, publisher)

    def _make_room(self) -> None:
        if len(self._streams) < self.max_streams:
            return
        finished = [stream for stream in self._streams.values() if stream.finished]
        if not finished:
            raise TokenStreamError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this node keeps at most {self.max_streams} token streams and none of them is finished; "
                "try again later",
            )
        oldest = min(finished, key=lambda stream: stream.finished_at)
        self._end(oldest, None)

    # --- reading ---------------------------------------------------------------------

    def subscribe(self, job_id: bytes, executor: bytes, from_token: int = 0) -> Reader:
        """A reader of (job, executor)'s stream from the first piece that starts at or after `from_token`;
        NOT_FOUND when the node has no such stream."""
        with self._lock:
            self._expire(self.clock())
            stream = self._streams.get((job_id, executor))
            if stream is None:
                raise TokenStreamError(
                    grpc.StatusCode.NOT_FOUND,
                    f"this node has no token stream of executor {executor.hex()} for job {job_id.hex()} "
                    "(nothing published yet, or no longer kept): retry shortly",
                )
            return Reader(stream, bisect.bisect_left(stream.starts, from_token))

    def next_pieces(self, reader: Reader, wait_s: float) -> list[node_pb2.TokenPiece] | None:
        """The pieces the reader has not had yet, waiting up to `wait_s` for one ([] when none came); None once
        the stream is finished and every piece was had; ABORTED when the stream was dropped or started again."""
        with self._lock:
            pieces = self._unread(reader)
            if pieces is None or pieces:
                return pieces
            reader.stream.changed.wait(wait_s)
            return self._unread(reader)

    def _unread(self, reader: Reader) -> list[node_pb2.TokenPiece] | None:
        self._expire(self.clock())
        stream = reader.stream
        if stream.ended is not None:
            raise TokenStreamError(grpc.StatusCode.ABORTED, stream.ended)
        if reader.index < len(stream.pieces):
            pieces = stream.pieces[reader.index:]
            reader.index = len(stream.pieces)
            return pieces
        return None if stream.finished else []

    # --- expiry ----------------------------------------------------------------------

    def _expire(self, now: float) -> None:
        """Forget finished streams past FINISHED_KEEP_S and drop unfinished ones idle past IDLE_DROP_S."""
        if self._expired_at is not None and 0 <= now - self._expired_at < EXPIRY_CHECK_S:
            return
        self._expired_at = now
        for stream in list(self._streams.values()):
            if stream.finished and now - stream.finished_at >= self.finished_keep_s:
                self._end(stream, None)
            elif not stream.finished and now - stream.last_piece_at >= self.idle_drop_s:
                self._end(stream, f"the stream was dropped: no piece came for {self.idle_drop_s:g} s")

    def _end(self, stream: _Stream, reason: str | None) -> None:
        """Forget a stream; readers that have not had every piece end with `reason` (None: a finished stream,
        whose readers may still take what it holds)."""
        if self._streams.get(stream.key) is stream:
            del self._streams[stream.key]
        if reason is not None:
            stream.ended = reason
            stream.changed.notify_all()
