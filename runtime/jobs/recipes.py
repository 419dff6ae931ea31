"""The hashes of the market (docs/protocol.md, "Jobs"): job id, commitment, output digest, assignment seed, and
the probe fund's account and each probe's draw (docs/protocol.md, "Probes").

Each is a function of chain data only, so every node computes the same bytes. The output digest's
recipe is proto/digest.py, shared with the worker, the client and the inference package.
"""

from __future__ import annotations

import struct
from hashlib import blake2b

from proto import digest, state_pb2

JOB_DOMAIN = b"inferchain/job/v1"
# v2 (issue 24): the commitment also binds the revealed log-probabilities (proto/digest.py).
COMMIT_DOMAIN = b"inferchain/commit/v2"
ASSIGN_DOMAIN = b"inferchain/assign/v2"
PROBE_FUND_DOMAIN = b"inferchain/probe-fund/v1"
PROBE_DOMAIN = b"inferchain/probe/v1"


def hash_parts(*parts: bytes) -> bytes:
    """blake2b-256 of the parts concatenated."""
    return blake2b(b"".join(parts), digest_size=32).digest()


def job_id(genesis_hash: bytes, poster: bytes, nonce: int) -> bytes:
    """A job's id, known to its poster before submission: hash of the chain, poster and PostJob's nonce."""
    return hash_parts(JOB_DOMAIN, genesis_hash, poster, struct.pack("<Q", nonce))


def commitment(job: bytes, executor: bytes, salt: bytes, output_digest: bytes, logprobs_digest: bytes) -> bytes:
    """What CommitResult carries: it binds the executor to its output and its log-probabilities without showing them."""
    return hash_parts(COMMIT_DOMAIN, job, executor, salt, output_digest, logprobs_digest)


def output_digest(job: state_pb2.Job, prompt_tokens: int, tokens, text: str, stop_reason: str) -> bytes:
    """The output digest of docs/verification.md for a stored job and a revealed result."""
    request, sampling = job.request, job.request.sampling
    return digest.output_digest(
        job_id=job.id,
        model=request.model,
        prompt_format=request.prompt_format,
        prompt=request.prompt,
        max_tokens=request.max_tokens,
        temperature_milli=sampling.temperature_milli,
        top_k=sampling.top_k,
        top_p_ppm=sampling.top_p_ppm,
        seed=sampling.seed,
        prompt_tokens=prompt_tokens,
        tokens=tokens,
        text=text,
        stop_reason=stop_reason,
    )


def assignment_seed(job: bytes, mix: bytes, height: int, round_index: int) -> bytes:
    """The seed of one assignment round: the job id, the RANDAO mix after this block's reveal, the height, and
    how many slots came before (docs/protocol.md, "Assignment"). The mix is fixed only after the job is
    included, so neither the poster nor an executor can know the seed while it can still act on it."""
    return hash_parts(ASSIGN_DOMAIN, job, mix, struct.pack("<QQ", height, round_index))


def draw_point(seed: bytes, index: int, total: int) -> int:
    """The `index`-th draw of a round: a point in [0, total) from the round's 512-bit hash (bias below 2^-270)."""
    return int.from_bytes(blake2b(seed + struct.pack("<Q", index), digest_size=64).digest(), "big") % total


def class_point(seed: bytes, index: int, total: int) -> int:
    """The `index`-th pick of an engine class for a job accepting several: a point in [0, total), the classes'
    summed weight within the job's price (docs/protocol.md, "Assignment", Which class)."""
    return int.from_bytes(blake2b(seed + b"class" + struct.pack("<Q", index), digest_size=64).digest(), "big") % total


def accept_point(seed: bytes, index: int, weight: int) -> int:
    """The acceptance draw of the `index`-th pick: a point in [0, weight); the pick stands when it is below the
    executor's weight now (its stake or reputation fell since the table was built)."""
    return int.from_bytes(blake2b(seed + struct.pack("<Q", index) + b"accept", digest_size=64).digest(), "big") % weight


# The probe fund: a hash, not an Ed25519 public key anyone derived from a secret, so nobody can sign for it
# (no transaction can spend from it; only the jobs module moves its balance).
PROBE_FUND = hash_parts(PROBE_FUND_DOMAIN)


def probe_hash(mix: bytes, index: int) -> bytes:
    """The `index`-th probe's draw at an epoch's first block: blake2b-256(PROBE_DOMAIN || mix || u32be(index)).

    Bytes 0..15 draw the executor (by stake), 16..23 its model, 24..31 the probe's sampling seed."""
    return hash_parts(PROBE_DOMAIN, mix, struct.pack(">I", index))


def probe_nonce(height: int, index: int) -> int:
    """The nonce in a probe's job id, job_id(genesis_hash, PROBE_FUND, height x 256 + index): no PostJob is signed
    by the fund, so these ids cannot collide with a posted job's."""
    return height * 256 + index
