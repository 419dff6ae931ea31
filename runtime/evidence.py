"""Double-sign evidence: what it is and its one accepted form, checked without state.

Two votes signed by one validator for the same height, round and type but different block hashes
(one may be nil) prove that it broke the protocol: an honest validator signs one vote per
(height, round, type). Any node that sees both may put them in a block as a
`types.DuplicateVoteEvidence`; the runtime checks it against state and punishes the validator
(runtime/slashing/). A double-sign has exactly one accepted form: both
votes canonical, `first` the vote whose block hash sorts lower, the message itself canonical, so the
same offence cannot be included twice under two encodings.
"""

from __future__ import annotations

from dataclasses import dataclass

from proto import types_pb2
from runtime.encoding import EncodingError, decode_canonical
from runtime.votes import SignedVote, VoteError, check_vote, conflicting

# A DuplicateVoteEvidence holds two votes of ~430 bytes at most (a 64-character chain id, a
# 32-byte hash and key, a 64-byte signature); anything much larger is refused before decoding.
MAX_EVIDENCE_BYTES = 2_048


class EvidenceError(ValueError):
    """Evidence that is malformed, unsigned, for another chain, or proves no double-sign."""


@dataclass(frozen=True)
class DoubleSign:
    """A checked double-sign: who, at which height, and the two votes in canonical order."""

    validator: bytes
    height: int
    first: SignedVote
    second: SignedVote


def check_evidence_format(evidence: types_pb2.DuplicateVoteEvidence, chain_id: str) -> tuple[SignedVote, SignedVote]:
    """The two checked votes if `evidence` is a canonical, signed double-sign on `chain_id`; EvidenceError otherwise."""
    size = evidence.ByteSize()
    if size > MAX_EVIDENCE_BYTES:
        raise EvidenceError(f"evidence is {size} bytes, the limit is {MAX_EVIDENCE_BYTES}")
    if not evidence.HasField("first") or not evidence.HasField("second"):
        raise EvidenceError("evidence must hold two votes, first and second")
    try:
        decode_canonical(types_pb2.DuplicateVoteEvidence, evidence.SerializeToString(deterministic=True), "evidence")
    except EncodingError as error:
        raise EvidenceError(str(error)) from None
    first = _checked_vote(evidence.first, chain_id, "first")
    second = _checked_vote(evidence.second, chain_id, "second")
    _check_conflict(first, second)
    return first, second


def _checked_vote(vote: types_pb2.Vote, chain_id: str, which: str) -> SignedVote:
    try:
        return check_vote(vote, chain_id)
    except VoteError as error:
        raise EvidenceError(f"{which} vote: {error}") from None


def _check_conflict(first: SignedVote, second: SignedVote) -> None:
    if first.body.validator != second.body.validator:
        raise EvidenceError("the two votes are signed by different validators")
    if first.key != second.key:
        raise EvidenceError(
            "the two votes are for different (height, round, type): "
            f"{first.key[1:]} and {second.key[1:]}"
        )
    if not conflicting(first, second):
        raise EvidenceError("the two votes are for the same block hash: that is no double-sign")
    if first.body.block_hash > second.body.block_hash:
        raise EvidenceError("first must be the vote whose block hash sorts lower (one form per double-sign)")


def double_sign(evidence: types_pb2.DuplicateVoteEvidence, chain_id: str) -> DoubleSign:
    """The double-sign `evidence` proves; EvidenceError as check_evidence_format."""
    first, second = check_evidence_format(evidence, chain_id)
    return DoubleSign(first.body.validator, first.body.height, first, second)


def make_evidence(a: SignedVote, b: SignedVote) -> types_pb2.DuplicateVoteEvidence:
    """The canonical evidence of two conflicting checked votes, in either order; EvidenceError if they do not conflict."""
    first, second = sorted((a, b), key=lambda vote: vote.body.block_hash)
    _check_conflict(first, second)
    evidence = types_pb2.DuplicateVoteEvidence()
    evidence.first.CopyFrom(first.vote)
    evidence.second.CopyFrom(second.vote)
    return evidence
