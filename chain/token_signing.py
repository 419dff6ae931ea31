"""The messages signed to publish and to read a token stream (docs/protocol.md, "Token streams").

Both are plain concatenations of fixed-length fields after a domain tag, so no two (genesis, job,
executor) triples give the same bytes and a signature for one chain or one purpose is worthless on
another:

    publish_message = b"inferchain/publish-tokens/v1" || genesis hash (32) || job id (32) || executor (32)
    stream_message  = b"inferchain/stream-tokens/v1"  || genesis hash (32) || job id (32)

A leaf module: the worker, the gateway, the client and the node all build these, so it imports
nothing of theirs.
"""

from __future__ import annotations

PUBLISH_DOMAIN = b"inferchain/publish-tokens/v1"
STREAM_DOMAIN = b"inferchain/stream-tokens/v1"

GENESIS_HASH_BYTES = 32
JOB_ID_BYTES = 32
ACCOUNT_BYTES = 32


def publish_message(genesis_hash: bytes, job_id: bytes, executor: bytes) -> bytes:
    """What an executor signs to publish its tokens of `job_id`: DOMAIN || genesis || job || executor."""
    _check_length("genesis hash", genesis_hash, GENESIS_HASH_BYTES)
    _check_length("job id", job_id, JOB_ID_BYTES)
    _check_length("executor", executor, ACCOUNT_BYTES)
    return PUBLISH_DOMAIN + bytes(genesis_hash) + bytes(job_id) + bytes(executor)


def stream_message(genesis_hash: bytes, job_id: bytes) -> bytes:
    """What a job's poster signs to read its token streams: DOMAIN || genesis || job."""
    _check_length("genesis hash", genesis_hash, GENESIS_HASH_BYTES)
    _check_length("job id", job_id, JOB_ID_BYTES)
    return STREAM_DOMAIN + bytes(genesis_hash) + bytes(job_id)


def _check_length(name: str, value: bytes, length: int) -> None:
    if not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"the {name} is bytes, got {type(value).__name__}")
    if len(value) != length:
        raise ValueError(f"a {name} is {length} bytes, got {len(value)}")
