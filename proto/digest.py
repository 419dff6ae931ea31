"""The output digest: the one recipe that commitments hash and agreement compares.

Hand-written (the only module in proto/ that is not generated), because every layer
needs the same bytes: the runtime checks reveals with it, the inference package and the
worker compute it, the client checks results with it. It imports nothing but hashlib and
struct, so any layer may import it (DESIGN.md section 2). docs/verification.md, "The
output digest", and docs/protocol.md give the same recipe in words, with vectors.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Sequence

OUTPUT_DIGEST_DOMAIN = b"inferchain.output.v1"


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
