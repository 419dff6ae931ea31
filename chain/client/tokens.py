"""Token streams in the client: an executor publishes its output as it is generated, the poster reads it.

    # the executor's worker, while the job runs (pieces may come from a blocking generator)
    kept = client.publish_tokens(executor_keypair, job_id, pieces)

    # the job's poster
    stream = client.stream_tokens(poster_keypair, job_id, executor)   # NOT_FOUND: nothing published yet
    for piece in stream:
        print(piece.text, end="")
    stream.close()                                                    # from any thread

Both calls sign for the node's chain (docs/protocol.md, "Token streams"; chain/token_signing.py): the
executor over publish_message(genesis, job, executor), the poster over stream_message(genesis, job).
The genesis hash comes from the node's GetChainInfo, asked for once per Client. What is streamed is
not consensus: the settled result (InferenceResult.text) is what counts.
"""

from __future__ import annotations

import threading
from typing import Iterable, Iterator

import grpc

from chain.client.calls import AccountLike, account_public_key
from chain.client.errors import ClientError, translate_rpc_error
from chain.crypto import Keypair
from chain.token_signing import publish_message, stream_message
from proto import node_pb2

ID_BYTES = 32


class TokenStream:
    """One executor's pieces of a job as the node sends them; iterate, and close() to stop (any thread).

    Iteration ends after the last piece (the one with a stop_reason) or after close(); a refusal or a
    broken stream raises ClientError with its gRPC status code name (`.code`): ABORTED when the node
    dropped the stream (its publisher went silent), DEADLINE_EXCEEDED at the node's stream lifetime (open
    it again with from_token = the next token index).
    """

    def __init__(self, call, target: str):
        self._call = call
        self._target = target
        self._closed = threading.Event()

    def __iter__(self) -> "TokenStream":
        return self

    def __next__(self) -> node_pb2.TokenPiece:
        if self._closed.is_set():
            raise StopIteration
        try:
            return next(self._call)
        except StopIteration:
            raise
        except grpc.RpcError as error:
            if self._closed.is_set() and error.code() == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise translate_rpc_error(error, self._target, None) from None

    def close(self) -> None:
        """Cancel the call; a reader blocked in next() returns (StopIteration). Closing twice is harmless."""
        self._closed.set()
        self._call.cancel()

    def __enter__(self) -> "TokenStream":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class TokenCalls:
    """PublishTokens and StreamTokens; mixed into Client, which provides the connection and signing."""

    target: str
    timeout: float
    _stub: object

    def publish_tokens(
        self, keypair: Keypair, job_id: bytes, pieces: Iterable[node_pb2.TokenPiece], *, timeout: float | None = None
    ) -> int:
        """Publish `keypair`'s output of `job_id`, each piece sent as the iterable gives it; the pieces the node kept.

        One client-streaming call: the first message carries the job, the executor (the keypair's account)
        and its signature; the call ends when the iterable does (or after `timeout` s; None: no limit).
        ClientError on refusal (PERMISSION_DENIED, INVALID_ARGUMENT, RESOURCE_EXHAUSTED, ABORTED when a newer
        publisher took the stream over, ...). gRPC reads the iterable in a thread of its own: after a refusal
        that thread may still be waiting in it, and stops at the next item (end a blocking iterable then).
        """
        job_id = _checked_id(job_id)
        executor = keypair.public_key
        genesis_hash = self._signing_context()[1]
        signature = keypair.sign(publish_message(genesis_hash, job_id, executor))
        first = node_pb2.PublishTokensRequest(job_id=job_id, executor=executor, signature=signature)
        requests = _publish_requests(first, pieces)
        try:
            reply = self._stub.PublishTokens(requests, timeout=timeout)
        except grpc.RpcError as error:
            raise translate_rpc_error(error, self.target, timeout) from None
        return reply.pieces

    def stream_tokens(
        self, keypair: Keypair, job_id: bytes, executor: AccountLike, from_token: int = 0
    ) -> TokenStream:
        """`executor`'s pieces of `job_id` from token `from_token` on, to the job's poster (`keypair`).

        Returns once the node has accepted the stream. ClientError NOT_FOUND while the node has nothing
        published for that job and executor (the executor may not have started: retry), PERMISSION_DENIED
        unless `keypair` is the job's poster, DEADLINE_EXCEEDED when the node neither accepts nor refuses
        within the client's timeout.
        """
        job_id = _checked_id(job_id)
        executor = account_public_key(executor)
        if not isinstance(from_token, int) or isinstance(from_token, bool) or not 0 <= from_token < 2**32:
            raise ClientError("INVALID_ARGUMENT", f"from_token is a token index, 0 to 2^32 - 1, got {from_token!r}")
        genesis_hash = self._signing_context()[1]
        request = node_pb2.StreamTokensRequest(
            job_id=job_id,
            executor=executor,
            signature=keypair.sign(stream_message(genesis_hash, job_id)),
            from_token=from_token,
        )
        call = self._stub.StreamTokens(request)
        _await_acceptance(call, self.target, self.timeout)
        return TokenStream(call, self.target)


def _publish_requests(
    first: node_pb2.PublishTokensRequest, pieces: Iterable[node_pb2.TokenPiece]
) -> Iterator[node_pb2.PublishTokensRequest]:
    """The header first (so a refusal comes before the first token), then one message per piece."""
    yield first
    for piece in pieces:
        if not isinstance(piece, node_pb2.TokenPiece):
            raise TypeError(f"publish_tokens sends node_pb2.TokenPiece messages, got {type(piece).__name__}")
        yield node_pb2.PublishTokensRequest(piece=piece)


def _await_acceptance(call, target: str, timeout: float) -> None:
    """Wait until the node accepts the stream (its initial metadata) or refuses it; ClientError when it refuses
    or does neither within `timeout` s (the call is cancelled then)."""
    timer = threading.Timer(timeout, call.cancel)
    timer.daemon = True
    timer.start()
    try:
        call.initial_metadata()  # the node sends it once its checks pass, or ends the call with a status
    finally:
        timer.cancel()
    if not call.done():
        return
    if call.code() == grpc.StatusCode.CANCELLED:
        raise ClientError("DEADLINE_EXCEEDED",
                          f"the node at {target} did not accept the token stream within {timeout:g} s")
    if call.code() != grpc.StatusCode.OK:
        raise translate_rpc_error(call, target, None)


def _checked_id(job_id: bytes) -> bytes:
    if not isinstance(job_id, bytes) or len(job_id) != ID_BYTES:
        raise ClientError("INVALID_ARGUMENT", f"a job id is {ID_BYTES} bytes (64 hex digits)")
    return job_id
