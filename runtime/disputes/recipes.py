"""The hashes of disputes (docs/protocol.md, "Disputes"): vote encoding and commitment, audit point, committee seed,
and a sealed probe's commitment.

Each is a function of chain data (and, for a vote, the member's salt) only, so every node and the
worker compute the same bytes.
"""

from __future__ import annotations

import struct
from hashlib import blake2b
from typing import Iterable

from proto import types_pb2

# Not "inferchain/vote/v1": that prefixes consensus votes' signatures (runtime/votes.py); each recipe has its own domain.
VOTE_DOMAIN = b"inferchain/dispute-vote/v1"
AUDIT_DOMAIN = b"inferchain/audit/v1"
COMMITTEE_DOMAIN = b"inferchain/committee/v1"
PROBE_SEAL_DOMAIN = b"inferchain/probe-seal/v1"
# u32be(candidate) || u8(valid) || u32be(positions) || u32be(misses) || i64be(worst_margin_micro)
_VOTE = struct.Struct(">IBIIq")
AUDIT_SCALE = 1_000_000


def _hash(*parts: bytes) -> bytes:
    return blake2b(b"".join(parts), digest_size=32).digest()


def vote_encoding(votes: Iterable[types_pb2.CandidateVote]) -> bytes:
    """The bytes a vote commitment binds: each vote in order, fixed width, big-endian."""
    return b"".join(
        _VOTE.pack(vote.candidate, 1 if vote.valid else 0, vote.positions, vote.misses, vote.worst_margin_micro)
        for vote in votes
    )


def vote_commitment(dispute_id: bytes, member: bytes, salt: bytes, votes: Iterable[types_pb2.CandidateVote]) -> bytes:
    """What CommitVote carries: blake2b-256(VOTE_DOMAIN || dispute id || member || salt || vote encoding)."""
    return _hash(VOTE_DOMAIN, dispute_id, member, salt, vote_encoding(votes))


def audit_point(mix: bytes, job_id: bytes) -> int:
    """A settled job's audit draw in [0, 10^6): audited when below the audit probability in parts per million."""
    return int.from_bytes(_hash(AUDIT_DOMAIN, mix, job_id)[:8], "big") % AUDIT_SCALE


def committee_seed(mix: bytes, dispute_id: bytes) -> bytes:
    """The seed of a dispute's committee draw, from the RANDAO mix of its draw block."""
    return _hash(COMMITTEE_DOMAIN, mix, dispute_id)


def committee_point(seed: bytes, index: int, total: int) -> int:
    """The `index`-th member's point in [0, total): blake2b-256(seed || u32be(index)) modulo the remaining weight."""
    return int.from_bytes(_hash(seed, struct.pack(">I", index)), "big") % total


def probe_seal(job_id: bytes, salt: bytes) -> bytes:
    """What SealProbe carries: blake2b-256(PROBE_SEAL_DOMAIN || job id || salt); OpenProbe names the job and salt."""
    return _hash(PROBE_SEAL_DOMAIN, job_id, salt)
