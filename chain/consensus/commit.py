"""Commits: the precommits that finalize a block, checked against the validator set that signs it.

Used by block sync (each block from a peer), by the node when it stores a decision, and by the
light client (chain/client/light.py) before it trusts a block's state root.
"""

from __future__ import annotations

from dataclasses import dataclass

from proto import types_pb2
from runtime.hashing import blake2b_256
from runtime.votes import PROPOSAL_SIGNING_CONTEXT, VOTE_SIGNING_CONTEXT, VoteError, check_vote


class CommitError(ValueError):
    """A commit that does not prove its block final; the message says why."""


@dataclass(frozen=True)
class VotingPower:
    """A validator set as consensus reads it: power by public key, and the total."""

    powers: dict[bytes, int]
    total: int
    hash: bytes

    @classmethod
    def of(cls, validator_set: types_pb2.ValidatorSet) -> "VotingPower":
        powers = {validator.public_key: validator.voting_power for validator in validator_set.validators}
        return cls(powers, sum(powers.values()), validator_set_hash(validator_set))

    def quorum(self, power: int) -> bool:
        """More than 2/3 of the total power."""
        return 3 * power > 2 * self.total


def validator_set_hash(validator_set: types_pb2.ValidatorSet) -> bytes:
    """What Header.validators_hash holds: blake2b-256 of the set's deterministic serialisation."""
    return blake2b_256(validator_set.SerializeToString(deterministic=True))


def verify_commit(
    commit: types_pb2.Commit, validators: VotingPower, chain_id: str, height: int, block_hash: bytes
) -> int:
    """The voting power that signed `commit`; CommitError unless it holds precommits for `block_hash` at `height`,
    each signed by a distinct member of `validators`, together more than 2/3 of its power."""
    if commit.height != height or commit.block_hash != block_hash:
        raise CommitError(
            f"commit is for #{commit.height} {commit.block_hash.hex()[:16]}, not #{height} {block_hash.hex()[:16]}"
        )
    if len(commit.precommits) > len(validators.powers):
        raise CommitError(f"commit holds {len(commit.precommits)} precommits for {len(validators.powers)} validators")
    signed: set[bytes] = set()
    power = 0
    for index, vote in enumerate(commit.precommits):
        try:
            body = check_vote(vote, chain_id).body
        except VoteError as error:
            raise CommitError(f"precommit {index}: {error}") from None
        if (body.type, body.height, body.round, body.block_hash) != (
            types_pb2.VOTE_TYPE_PRECOMMIT, height, commit.round, block_hash
        ):
            raise CommitError(f"precommit {index} is not a precommit for this block at round {commit.round}")
        if body.validator not in validators.powers:
            raise CommitError(f"precommit {index} is signed by {body.validator.hex()[:16]}, not a validator")
        if body.validator in signed:
            raise CommitError(f"precommit {index} repeats validator {body.validator.hex()[:16]}")
        signed.add(body.validator)
        power += validators.powers[body.validator]
    if not validators.quorum(power):
        raise CommitError(f"commit holds {power} of {validators.total} voting power, not more than 2/3")
    return power


def commit_time_ms(commit: types_pb2.Commit, powers: dict[bytes, int]) -> int:
    """BFT time: the stake-weighted median of the commit's precommit times (docs/protocol.md, "Block time").

    Precommits sorted by time (then validator); the time of the first at which the power summed so far
    is more than half the power of all the commit's precommits. Faulty validators hold less than half
    of any commit's power (less than 1/3 of all, in more than 2/3), so the median lies between two honest
    validators' clocks: no fast or slow minority moves chain time. Votes must already be checked."""
    bodies = sorted(
        (types_pb2.VoteBody.FromString(vote.body) for vote in commit.precommits),
        key=lambda body: (body.time_ms, body.validator),
    )
    total = sum(powers.get(body.validator, 0) for body in bodies)
    summed = 0
    for body in bodies:
        summed += powers.get(body.validator, 0)
        if 2 * summed > total:
            return body.time_ms
    raise CommitError("a commit without voting power has no time")


def precommit_time_ms(now_ms: int, block_time_ms: int) -> int:
    """The time a validator puts in its precommit for a block: its clock, but always after the block's own time,
    so the next block's time (the commit's median) is after its parent's whatever the clocks say."""
    return max(now_ms, block_time_ms + 1)


def sign_vote(key, chain_id: str, vote_type: int, height: int, round_number: int, block_hash: bytes,
              time_ms: int = 0) -> types_pb2.Vote:
    """A vote signed by `key` (chain.crypto.Keypair). Prevotes and nil precommits carry no time, so signing
    one again gives the same bytes (Ed25519 is deterministic); a precommit for a block carries the signer's
    clock (BFT time), and the sign state (chain/consensus/signstate.py) sends the first signature again."""
    body = types_pb2.VoteBody(
        chain_id=chain_id, type=vote_type, height=height, round=round_number, block_hash=block_hash, time_ms=time_ms,
        validator=key.public_key,
    ).SerializeToString(deterministic=True)
    return types_pb2.Vote(body=body, signature=key.sign(VOTE_SIGNING_CONTEXT + body))


def sign_proposal(key, chain_id: str, height: int, round_number: int, valid_round: int, block_hash: bytes,
                  part_hashes: list[bytes]) -> types_pb2.SignedProposal:
    body = types_pb2.ProposalBody(
        chain_id=chain_id, height=height, round=round_number, valid_round=valid_round, block_hash=block_hash,
        part_hashes=part_hashes, proposer=key.public_key,
    ).SerializeToString(deterministic=True)
    return types_pb2.SignedProposal(body=body, signature=key.sign(PROPOSAL_SIGNING_CONTEXT + body))
