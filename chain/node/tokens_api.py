"""The token streams' API (proto/node.proto): PublishTokens and StreamTokens.

The edge checks what a request carries (ids and accounts 32 bytes, signatures 64), who signed it
(chain/token_signing.py) and whom the job names in the node's latest state, then hands the pieces to
the in-memory store (chain/node/token_streams.py), which holds every rule about them; a
TokenStreamError becomes its status code. Neither call logs key material or any job text.

Both calls hold a server thread while open, so both pass the node's StreamGate (chain/node/server.py):
a publisher for as long as its job runs, a reader until the last piece.
"""

from __future__ import annotations

from typing import Iterator

import grpc

from chain.crypto import verify
from chain.node.core import NodeCore
from chain.node.token_streams import TokenStreamError, TokenStreams
from chain.token_signing import publish_message, stream_message
from proto import node_pb2, state_pb2
from runtime import jobs

ID_BYTES = 32
ACCOUNT_BYTES = 32
SIGNATURE_BYTES = 64
# How long a reader waits for the next piece before checking that its client is still there.
READ_POLL_SECONDS = 1.0
# Assignments whose executor may publish: an executor that missed its deadline produces nothing that counts.
_PUBLISHING = frozenset({
    state_pb2.ASSIGNMENT_STATUS_ASSIGNED, state_pb2.ASSIGNMENT_STATUS_COMMITTED, state_pb2.ASSIGNMENT_STATUS_REVEALED,
})


def _check_length(value: bytes, name: str, length: int, what: str) -> None:
    if len(value) != length:
        raise TokenStreamError(
            grpc.StatusCode.INVALID_ARGUMENT, f"{name} is {what} of {length} bytes, got {len(value)}"
        )


def _denied(message: str) -> TokenStreamError:
    return TokenStreamError(grpc.StatusCode.PERMISSION_DENIED, message)


def checked_header(request: node_pb2.PublishTokensRequest) -> None:
    """The first PublishTokens message's job, executor and signature are well-formed; INVALID_ARGUMENT otherwise."""
    _check_length(request.job_id, "job_id", ID_BYTES, "a job id")
    _check_length(request.executor, "executor", ACCOUNT_BYTES, "an account id")
    _check_length(request.signature, "signature", SIGNATURE_BYTES, "an Ed25519 signature")


def checked_follower(request: node_pb2.PublishTokensRequest) -> node_pb2.TokenPiece:
    """A PublishTokens message after the first: a piece and nothing else; INVALID_ARGUMENT otherwise."""
    if request.job_id or request.executor or request.signature:
        raise TokenStreamError(grpc.StatusCode.INVALID_ARGUMENT,
                               "only the first message carries job_id, executor and signature")
    if not request.HasField("piece"):
        raise TokenStreamError(grpc.StatusCode.INVALID_ARGUMENT, "every message after the first carries a piece")
    return request.piece


def publishing_job(state, genesis_hash: bytes, request: node_pb2.PublishTokensRequest) -> state_pb2.Job:
    """The job the executor may publish for: its signature verifies and it holds one of the job's live
    assignments in `state`; PERMISSION_DENIED otherwise."""
    job_id, executor = request.job_id, request.executor
    if not verify(executor, request.signature, publish_message(genesis_hash, job_id, executor)):
        raise _denied("the signature is not the executor's over "
                      "b\"inferchain/publish-tokens/v1\" || genesis hash || job id || executor")
    job = jobs.read_job(state, job_id)
    if job is None:
        raise _denied(f"there is no job {job_id.hex()} in this node's latest state")
    if not any(slot.executor == executor and slot.status in _PUBLISHING for slot in job.assignments):
        raise _denied(f"account {executor.hex()} is not assigned to job {job_id.hex()} (or missed its deadline)")
    return job


def checked_reader(state, genesis_hash: bytes, request: node_pb2.StreamTokensRequest) -> None:
    """The StreamTokens request is well-formed and signed by the job's poster; INVALID_ARGUMENT, NOT_FOUND or
    PERMISSION_DENIED otherwise."""
    _check_length(request.job_id, "job_id", ID_BYTES, "a job id")
    _check_length(request.executor, "executor", ACCOUNT_BYTES, "an account id")
    _check_length(request.signature, "signature", SIGNATURE_BYTES, "an Ed25519 signature")
    job = jobs.read_job(state, request.job_id)
    if job is None:
        raise TokenStreamError(grpc.StatusCode.NOT_FOUND,
                               f"there is no job {request.job_id.hex()} in this node's latest state")
    if not verify(job.poster, request.signature, stream_message(genesis_hash, request.job_id)):
        raise _denied("only the job's poster reads its token streams: the signature is not the poster's over "
                      "b\"inferchain/stream-tokens/v1\" || genesis hash || job id")


class TokensApi:
    """The token streams' calls of the Node service; mixed into NodeApi, which holds `core` and `token_streams`."""

    core: NodeCore
    token_streams: TokenStreams

    def PublishTokens(self, request_iterator, context):
        first = next(request_iterator, None)
        if first is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "the first message carries job_id, executor and signature; none came")
        try:
            return node_pb2.PublishTokensResponse(pieces=self._publish(first, request_iterator))
        except TokenStreamError as refusal:
            context.abort(refusal.status, str(refusal))

    def _publish(self, first: node_pb2.PublishTokensRequest, rest: Iterator[node_pb2.PublishTokensRequest]) -> int:
        checked_header(first)
        job = publishing_job(self.core.store.state, self.core.genesis.hash, first)
        publisher = self.token_streams.open_publisher(job.id, first.executor, job.request.max_tokens)
        kept = 0
        if first.HasField("piece"):
            self.token_streams.publish(publisher, first.piece)
            kept += 1
        for request in rest:
            self.token_streams.publish(publisher, checked_follower(request))
            kept += 1
        return kept

    def StreamTokens(self, request, context):
        try:
            checked_reader(self.core.store.state, self.core.genesis.hash, request)
            reader = self.token_streams.subscribe(request.job_id, request.executor, request.from_token)
        except TokenStreamError as refusal:
            context.abort(refusal.status, str(refusal))
        context.send_initial_metadata(())  # accepted: the client's stream_tokens returns now
        try:
            while context.is_active():
                pieces = self.token_streams.next_pieces(reader, READ_POLL_SECONDS)
                if pieces is None:
                    return
                yield from pieces
        except TokenStreamError as refusal:
            context.abort(refusal.status, str(refusal))
