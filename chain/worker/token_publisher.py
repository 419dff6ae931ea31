"""Publishing a running job's tokens to the node, as they are generated (docs/protocol.md, "Token streams").

Each token is decoded in the generation thread, incrementally: the text of a short window of the
latest tokens is compared with the text of the same window without the new ones, and what was added
is published once it ends on a whole character. A token that stops inside a character (byte-level
BPE splits emoji and CJK characters across tokens; the decoder then ends in U+FFFD) is held back and
goes out with the token that completes it, so no piece splits a character. The window keeps the cost
per token constant (decoding the whole output at every token is quadratic), and starting it a token
before the new text keeps tokenizers that drop a leading space on the first token consistent (as
vLLM's detokenize_incrementally).

Pieces wait in a short queue for a thread of their own, which sends them on one PublishTokens call:
generation never waits for the network. The first piece goes at once; after it, the thread sends at most
one piece per PIECE_INTERVAL_S, the pieces queued meanwhile merged into one (they are contiguous), so a
stream costs the worker and the node a few messages a second instead of one per token, and a reader sees
text at most that much later. The merging also keeps the queue bounded when the thread falls behind;
nothing is dropped. The last piece goes at once and carries the stop reason and whatever text remains,
so that the pieces' texts join to the result's text exactly.
Streams are not consensus: any publishing failure is logged once for the job and the job goes on.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Callable, Iterator, Protocol, Sequence

from chain.client import ClientError
from chain.crypto import Keypair
from inference.result import InferenceResult
from proto import node_pb2

log = logging.getLogger("inferchain.worker")

REPLACEMENT = "\ufffd"
# Pieces queued for the sending thread; more are merged into the last one (contiguous, so nothing is lost).
MAX_QUEUED_PIECES = 64
# Tokens a decoding window may hold without releasing text; beyond it (a tokenizer whose text of a prefix
# is not a prefix of the text) the rest waits for the last piece, so the cost per token stays bounded.
MAX_WINDOW_TOKENS = 64
# How often a sending thread with nothing to send checks whether its publisher was closed.
IDLE_POLL_S = 0.5
# After the first piece, at most one piece per this many seconds (what came meanwhile is merged into it): at
# 80 tokens/s about 4 tokens a message instead of one, 20 messages a second per stream.
PIECE_INTERVAL_S = 0.05

Detokenize = Callable[[Sequence[int]], str]
# Makes a started TokenPublisher for a run: from the job id and its engine's detokenizer.
PublisherFactory = Callable[[bytes, Detokenize], "TokenPublisher"]


class TokenPublishing(Protocol):
    """What a publisher needs of chain/client: Client.publish_tokens."""

    def publish_tokens(self, keypair: Keypair, job_id: bytes, pieces: Iterator[node_pb2.TokenPiece]) -> int: ...


class IncrementalDecoder:
    """Text of a growing token list, released only in whole characters: add() returns the new stable text."""

    def __init__(self, detokenize: Detokenize):
        self._detokenize = detokenize
        self._tokens: list[int] = []
        # tokens[prefix:read] is text already released; it is decoded again as the new text's context.
        self._prefix = 0
        self._read = 0
        self._stuck = False

    def add(self, token: int) -> str:
        """Take the next token; the text it completes ("" while it ends inside a character or renders empty)."""
        self._tokens.append(token)
        if self._stuck:
            return ""
        if len(self._tokens) - self._prefix > MAX_WINDOW_TOKENS:
            self._stuck = True
            return ""
        before = self._detokenize(self._tokens[self._prefix:self._read])
        after = self._detokenize(self._tokens[self._prefix:])
        if after.endswith(REPLACEMENT) or not after.startswith(before):
            return ""
        self._prefix, self._read = self._read, len(self._tokens)
        return after[len(before):]


class TokenPublisher:
    """One run's tokens: add() each from the generation thread, then finish(result) or abandon().

    The sending thread starts at once, so the node knows of the stream while the prompt is read; the
    first failure (the node refuses, the connection breaks, a decoding surprise) is logged once and ends
    this run's publishing, never the run.
    """

    def __init__(self, client: TokenPublishing, keypair: Keypair, job_id: bytes, detokenize: Detokenize,
                 max_queued: int = MAX_QUEUED_PIECES, interval_s: float = PIECE_INTERVAL_S):
        self._client = client
        self._keypair = keypair
        self.job_id = job_id
        self._decoder = IncrementalDecoder(detokenize)
        self._max_queued = max_queued
        self._interval_s = interval_s
        self._text: list[str] = []  # the text published so far (queued or sent)
        self._next_token = 0  # the first token of the next piece
        self._held = 0  # tokens taken since the last piece (their text waits for a whole character)
        self._queue: collections.deque[node_pb2.TokenPiece] = collections.deque()
        self._changed = threading.Condition()
        self._closed = False  # no more pieces will be queued
        self._failed = False
        self.pieces_kept: int | None = None  # what the node said it kept, once the call ended
        self._thread = threading.Thread(target=self._send, name=f"tokens-{job_id.hex()[:8]}", daemon=True)
        self._thread.start()

    @property
    def failed(self) -> bool:
        return self._failed

    # -- the generation thread -----------------------------------------------------------------

    def add(self, token: int) -> None:
        """Decode one generated token and queue its text once whole; never raises, never blocks on the network."""
        if self._failed or self._closed:
            return
        try:
            text = self._decoder.add(token)
        except Exception as error:  # a decoding bug must not fail the job
            self._fail(f"cannot decode token {token}: {type(error).__name__}: {error}")
            return
        self._held += 1
        if text:
            self._queue_piece(node_pb2.TokenPiece(first_token=self._next_token, tokens=self._held, text=text))

    def finish(self, result: InferenceResult) -> None:
        """Queue the last piece: the tokens and text not yet published, and the stop reason."""
        if self._failed or self._closed:
            return
        published = "".join(self._text)
        if not result.text.startswith(published):
            # Not expected of llama.cpp's tokenizers; the poster's client compares with the settled text.
            log.warning("job %s: the published text is not a prefix of the result's; its token stream ends "
                        "without the rest", self.job_id.hex()[:16])
            rest = ""
        else:
            rest = result.text[len(published):]
        tokens = max(0, len(result.tokens) - self._next_token)
        self._queue_piece(node_pb2.TokenPiece(
            first_token=self._next_token, tokens=tokens, text=rest, stop_reason=result.stop_reason
        ))
        self._close()

    def abandon(self) -> None:
        """End the stream without a last piece (the run was cancelled or failed): what is queued is dropped."""
        with self._changed:
            self._queue.clear()
        self._close()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the sending thread to end; whether it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _queue_piece(self, piece: node_pb2.TokenPiece) -> None:
        with self._changed:
            # Only an empty queue's first piece wakes the sending thread: with pieces queued it is in a timed
            # wait for the next send already, and waking it at every token cost more context switches than
            # the generation's own (about five a token with two jobs at once).
            wake = not self._queue
            if len(self._queue) >= self._max_queued:
                _merge_into(self._queue[-1], piece)
            else:
                self._queue.append(piece)
            if wake:
                self._changed.notify_all()
        self._text.append(piece.text)
        self._next_token = piece.first_token + piece.tokens
        self._held = 0

    def _close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    # -- the sending thread --------------------------------------------------------------------

    def _send(self) -> None:
        try:
            self.pieces_kept = self._client.publish_tokens(self._keypair, self.job_id, self._pieces())
        except ClientError as error:
            self._fail(f"{error.message} ({error.code})")
        except Exception as error:  # streams are best effort: a bug here must not reach the job
            self._fail(f"{type(error).__name__}: {error}")

    def _pieces(self) -> Iterator[node_pb2.TokenPiece]:
        """Each queued piece (those queued together merged into one) until the last one, or until closed; after
        the first, one at most every interval_s unless the stream is closed (its last piece goes at once)."""
        next_send = 0.0
        while True:
            with self._changed:
                while not self._failed and not (self._closed and not self._queue):
                    wait = IDLE_POLL_S if not self._queue else next_send - time.monotonic()
                    if self._queue and (wait <= 0 or self._closed):
                        break
                    self._changed.wait(wait)
                if self._failed or not self._queue:
                    return
                next_send = time.monotonic() + self._interval_s
                piece = self._queue.popleft()
                while self._queue:
                    _merge_into(piece, self._queue.popleft())
            yield piece
            if piece.stop_reason:
                return

    def _fail(self, reason: str) -> None:
        with self._changed:
            already, self._failed = self._failed, True
            self._queue.clear()
            self._changed.notify_all()
        if not already:
            log.warning("job %s: stopped publishing its tokens (the job goes on): %s", self.job_id.hex()[:16], reason)


def _merge_into(piece: node_pb2.TokenPiece, after: node_pb2.TokenPiece) -> None:
    """Append the piece that follows `piece` to it (pieces are contiguous; the last one's stop reason stays)."""
    piece.tokens += after.tokens
    piece.text += after.text
    piece.stop_reason = after.stop_reason


def publisher_factory(client: TokenPublishing, keypair: Keypair) -> PublisherFactory:
    """What EnginePool.run takes as `publish`: a started TokenPublisher for a job id and its engine's detokenizer."""
    return lambda job_id, detokenize: TokenPublisher(client, keypair, job_id, detokenize)
