"""What this validator signed at the height being decided before a restart, read back from its consensus log.

After a restart the machine may want to sign again at a round and step it signed before: the same
value is sent again exactly as it was signed (a precommit's time included); another value is refused
with one log line, whatever the sign state says (chain/consensus/signer.py holds the second guard).
"""

from __future__ import annotations

import logging

from chain.consensus.machine import PRECOMMIT, PREVOTE, PROPOSE
from proto import p2p_pb2, types_pb2
from runtime.votes import VoteError, check_proposal, decode_vote

log = logging.getLogger("inferchain.consensus")

VOTE_STEPS = {types_pb2.VOTE_TYPE_PREVOTE: PREVOTE, types_pb2.VOTE_TYPE_PRECOMMIT: PRECOMMIT}

# What again() answers for a round and step at which another value was signed: nothing may be sent.
REFUSED = p2p_pb2.Envelope()


class SignedBefore:
    """Own proposals and votes of one height from the log, by (round, step); owned by the consensus loop."""

    def __init__(self, chain_id: str, me: bytes, signer):
        self.chain_id = chain_id
        self.me = me
        self.signer = signer
        self._signed: dict[tuple[int, str], tuple[bytes, p2p_pb2.Envelope]] = {}

    def reset(self) -> None:
        self._signed = {}

    def is_own(self, vote: types_pb2.Vote) -> bool:
        try:
            return decode_vote(vote, self.chain_id).body.validator == self.me
        except VoteError:
            return False

    def remember_vote(self, vote: types_pb2.Vote, height: int) -> None:
        try:
            body = decode_vote(vote, self.chain_id).body
        except VoteError:
            return
        if body.validator == self.me and body.height == height:
            self._signed[(body.round, VOTE_STEPS[body.type])] = (body.block_hash, p2p_pb2.Envelope(vote=vote))

    def remember_proposal(self, proposal: types_pb2.SignedProposal, height: int) -> None:
        try:
            body = check_proposal(proposal, self.chain_id)
        except VoteError:
            return
        if body.proposer == self.me and body.height == height:
            self._signed[(body.round, PROPOSE)] = (body.block_hash, p2p_pb2.Envelope(proposal=proposal))

    def again(self, height: int, round_number: int, step: str, value: bytes) -> p2p_pb2.Envelope | None:
        """None when nothing was signed at this round and step; REFUSED (counted, one line) when another value
        was; else the envelope as it was signed."""
        before = self._signed.get((round_number, step))
        if before is None:
            return None
        signed_value, envelope = before
        if signed_value != value:
            log.error("not signing a %s for %s at #%d round %d: before the restart this validator signed one for %s",
                      step, value.hex()[:16] or "nil", height, round_number, signed_value.hex()[:16] or "nil")
            self.signer.refused += 1
            return REFUSED
        return envelope
