"""The output digest (what commitments hash and agreement compares) and the log-probabilities digest.

Hand-written (the only module in proto/ that is not generated), because every layer
needs the same bytes: the runtime checks reveals with it, the inference package and the
worker compute it, the client checks results with it. It imports nothing but hashlib and
struct, so any layer may import it (DESIGN.md section 2). docs/verification.md, "The
output digest", and docs/protocol.md give the same recipes in words, with vectors.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Sequence

OUTPUT_DIGEST_DOMAIN = b"inferchain.output.v1"
LOGPROBS_DIGEST_DOMAIN = b"inferchain.logprobs.v1"
I64_MIN, I64_MAX = -(2**63), 2**63 - 1


def text_field(text: str) -> bytes:
    """u64le(length of the UTF-8 bytes) || the UTF-8 bytes; UnicodeEncodeError for a lone surrogate."""
    encoded = text.encode("utf-8")
    return struct.pack("<Q", len(encoded)) + encoded


def output_digest_message(
    *,
    job_id: bytes,
    model: bytes,
    prompt_format: str,
    prompt: str,
    max_tokens: int,
    temperature_milli: int,
    top_k: int,
    top_p_ppm: int,
    seed: int,
    prompt_tokens: int,
    tokens: Sequence[int],
    text: str,
    stop_reason: str,
) -> bytes:
    """The job and its output (no log-probabilities: their last micro-nat depends on summation order)."""
    return b"".join(
        [
            OUTPUT_DIGEST_DOMAIN,
            job_id,
            model,
            text_field(prompt_format),
            text_field(prompt),
            struct.pack("<6Q", max_tokens, temperature_milli, top_k, top_p_ppm, seed, prompt_tokens),
            struct.pack(f"<Q{len(tokens)}Q", len(tokens), *tokens),
            text_field(text),
            text_field(stop_reason),
        ]
    )


def output_digest(**fields) -> bytes:
    """blake2b-256 of output_digest_message(**fields)."""
    return hashlib.blake2b(output_digest_message(**fields), digest_size=32).digest()


def logprobs_digest_message(logprobs_micronats: Sequence[int]) -> bytes:
    """Domain || u64le(count) || each value as i64le: the revealed log-probabilities, exactly as revealed.

    ValueError for a value outside the signed 64-bit range (a RevealResult's sint64 never is).
    """
    values = list(logprobs_micronats)
    if any(not I64_MIN <= value <= I64_MAX for value in values):
        raise ValueError("a log-probability in micro-nats is a signed 64-bit integer")
    return LOGPROBS_DIGEST_DOMAIN + struct.pack(f"<Q{len(values)}q", len(values), *values)


def logprobs_digest(logprobs_micronats: Sequence[int]) -> bytes:
    """blake2b-256 of logprobs_digest_message: what a commitment binds beside the output digest.

    Outside the output digest on purpose: honest executors agree on the output exactly, but may
    differ in a log-probability's last micro-nat; each commits to its own values, so none can
    change them after seeing another's reveal.
    """
    return hashlib.blake2b(logprobs_digest_message(logprobs_micronats), digest_size=32).digest()
