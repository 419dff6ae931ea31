"""Signing consensus messages through the sign state: the only place a validator's key signs a vote or proposal.

Every signature passes `SignState.authorize` first and is recorded durably before it is returned
(chain/consensus/signstate.py): whatever the machine asks after a restart, a resync from an empty
database or a replay that judged a block differently, the key never signs two different messages
for one height, round and step. A refusal is logged in one line and nothing is sent.
"""

from __future__ import annotations

import logging

from chain.consensus.commit import sign_proposal, sign_vote
from chain.consensus.signstate import SignRefused, SignState
from chain.crypto import Keypair
from proto import types_pb2

log = logging.getLogger("inferchain.consensus")

_STEPS = {types_pb2.VOTE_TYPE_PREVOTE: "prevote", types_pb2.VOTE_TYPE_PRECOMMIT: "precommit"}


class Signer:
    """A validator key behind its sign state."""

    def __init__(self, key: Keypair, chain_id: str, state: SignState):
        self.key = key
        self.chain_id = chain_id
        self.state = state
        self.refused = 0  # signatures refused by the sign state (each logged)

    @property
    def public_key(self) -> bytes:
        return self.key.public_key

    def vote(self, vote_type: int, height: int, round_number: int, block_hash: bytes,
             time_ms: int = 0) -> types_pb2.Vote | None:
        """The signed vote, or None when the sign state refuses it; SignStateError when it cannot be recorded."""
        step = _STEPS[vote_type]
        earlier = self._authorize(height, round_number, step, block_hash)
        if earlier is not None:
            return types_pb2.Vote.FromString(earlier) if earlier else None
        vote = sign_vote(self.key, self.chain_id, vote_type, height, round_number, block_hash, time_ms)
        self.state.record(height, round_number, step, block_hash, vote.SerializeToString())
        return vote

    def proposal(self, height: int, round_number: int, valid_round: int, block_hash: bytes,
                 part_hashes: list[bytes]) -> types_pb2.SignedProposal | None:
        """The signed proposal, or None when the sign state refuses it; SignStateError when it cannot be recorded."""
        earlier = self._authorize(height, round_number, "propose", block_hash)
        if earlier is not None:
            return types_pb2.SignedProposal.FromString(earlier) if earlier else None
        proposal = sign_proposal(self.key, self.chain_id, height, round_number, valid_round, block_hash, part_hashes)
        self.state.record(height, round_number, "propose", block_hash, proposal.SerializeToString())
        return proposal

    def _authorize(self, height: int, round_number: int, step: str, block_hash: bytes) -> bytes | None:
        """None: sign anew. b"": refused (logged). Otherwise the bytes signed before for the same message."""
        try:
            return self.state.authorize(height, round_number, step, block_hash)
        except SignRefused as refusal:
            self.refused += 1
            log.error("%s", refusal)
            return b""
