"""Signed consensus messages (votes and proposals): decoding, signature checks, signing contexts.

Votes are read by the node (consensus, block sync), by the light client (commits) and by the
runtime itself (double-sign evidence), so they are checked in one place, here, below all of them.
A vote is accepted only in its canonical encoding and with a valid Ed25519 signature by
`VoteBody.validator` over VOTE_SIGNING_CONTEXT || body.
"""

from __future__ import annotations

from dataclasses import dataclass

from proto import types_pb2
from runtime.encoding import EncodingError, decode_canonical
from runtime.signatures import KEY_BYTES, verify_signature

VOTE_SIGNING_CONTEXT = b"inferchain/vote/v1"
PROPOSAL_SIGNING_CONTEXT = b"inferchain/proposal/v1"
HASH_BYTES = 32
VOTE_TYPES = (types_pb2.VOTE_TYPE_PREVOTE, types_pb2.VOTE_TYPE_PRECOMMIT)
# Size bounds checked before anything is decoded: an honest vote is about 220 bytes, a proposal of a
# 4 MiB block (25 parts) about 1 KiB.
MAX_VOTE_BYTES = 1024
MAX_PROPOSAL_BYTES = 8 * 1024


class VoteError(ValueError):
    """A vote or proposal that is malformed, for another chain, or not signed by its validator."""


@dataclass(frozen=True)
class SignedVote:
    """A checked vote: its body's fields, and the vote exactly as signed."""

    body: types_pb2.VoteBody
    vote: types_pb2.Vote

    @property
    def key(self) -> tuple[bytes, int, int, int]:
        """(validator, height, round, type): one honest vote per key."""
        return (self.body.validator, self.body.height, self.body.round, self.body.type)


def check_vote(vote: types_pb2.Vote, chain_id: str) -> SignedVote:
    """The vote's body if it is canonical, for `chain_id`, well formed and signed; VoteError otherwise."""
    return verify_vote(decode_vote(vote, chain_id))


def decode_vote(vote: types_pb2.Vote, chain_id: str) -> SignedVote:
    """The vote if it is canonical, for `chain_id` and well formed, its signature NOT yet checked (verify_vote):
    a node first reads who signed it and for which height, and checks a signature only for a vote it would keep."""
    if vote.ByteSize() > MAX_VOTE_BYTES:
        raise VoteError(f"vote is {vote.ByteSize()} bytes, more than {MAX_VOTE_BYTES}")
    try:
        body = decode_canonical(types_pb2.VoteBody, vote.body, "vote body")
    except EncodingError as error:
        raise VoteError(str(error)) from None
    if body.chain_id != chain_id:
        raise VoteError(f"vote is for chain {body.chain_id[:64]!r}, not {chain_id!r}")
    if body.type not in VOTE_TYPES:
        raise VoteError(f"vote type {body.type} is neither prevote nor precommit")
    if len(body.validator) != KEY_BYTES:
        raise VoteError(f"vote validator must be {KEY_BYTES} bytes, got {len(body.validator)}")
    if body.block_hash and len(body.block_hash) != HASH_BYTES:
        raise VoteError(f"vote block hash must be empty (nil) or {HASH_BYTES} bytes, got {len(body.block_hash)}")
    return SignedVote(body, vote)


def verify_vote(decoded: SignedVote) -> SignedVote:
    """`decoded` (from decode_vote) if its signature verifies for its validator; VoteError otherwise."""
    if not verify_signature(decoded.body.validator, decoded.vote.signature, VOTE_SIGNING_CONTEXT + decoded.vote.body):
        raise VoteError("vote signature does not verify for its validator")
    return decoded


def check_proposal(proposal: types_pb2.SignedProposal, chain_id: str) -> types_pb2.ProposalBody:
    """The proposal's body if it is canonical, for `chain_id`, well formed and signed; VoteError otherwise."""
    return verify_proposal(proposal, decode_proposal(proposal, chain_id))


def decode_proposal(proposal: types_pb2.SignedProposal, chain_id: str) -> types_pb2.ProposalBody:
    """The proposal's body if it is canonical, for `chain_id` and well formed, its signature NOT yet checked
    (verify_proposal): a node first reads the height and round, and checks a signature only for one it would take."""
    if proposal.ByteSize() > MAX_PROPOSAL_BYTES:
        raise VoteError(f"proposal is {proposal.ByteSize()} bytes, more than {MAX_PROPOSAL_BYTES}")
    try:
        body = decode_canonical(types_pb2.ProposalBody, proposal.body, "proposal body")
    except EncodingError as error:
        raise VoteError(str(error)) from None
    if body.chain_id != chain_id:
        raise VoteError(f"proposal is for chain {body.chain_id[:64]!r}, not {chain_id!r}")
    if len(body.proposer) != KEY_BYTES or len(body.block_hash) != HASH_BYTES:
        raise VoteError("proposal proposer and block hash must be 32 bytes each")
    if body.valid_round < -1 or body.valid_round >= body.round and body.valid_round != -1:
        raise VoteError(f"proposal valid_round {body.valid_round} must be -1 or below its round {body.round}")
    if not body.part_hashes or any(len(part) != HASH_BYTES for part in body.part_hashes):
        raise VoteError("proposal part hashes must be one or more 32-byte hashes")
    return body


def verify_proposal(proposal: types_pb2.SignedProposal, body: types_pb2.ProposalBody) -> types_pb2.ProposalBody:
    """`body` (from decode_proposal) if the proposal's signature verifies for its proposer; VoteError otherwise."""
    if not verify_signature(body.proposer, proposal.signature, PROPOSAL_SIGNING_CONTEXT + proposal.body):
        raise VoteError("proposal signature does not verify for its proposer")
    return body


def conflicting(first: SignedVote, second: SignedVote) -> bool:
    """Whether two checked votes prove a double-sign: one validator, height, round and type, two values."""
    return first.key == second.key and first.body.block_hash != second.body.block_hash
