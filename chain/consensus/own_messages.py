"""This validator's own proposals and votes: allowed or refused, signed, logged, sent and kept for rebroadcast.

Before the machine counts one of its own messages, `may_sign` asks what this validator signed at
that round and step before a restart (signed_before.py), then the sign state (signstate.py); a
refusal is one log line and the machine neither sends nor counts the message. `send` then signs it
(or takes the bytes signed before), appends it to the write-ahead log, makes the log durable before
anything leaves, and broadcasts it with a proposal's block parts. Owned by the consensus loop.
"""

from __future__ import annotations

import logging
from typing import Callable

from chain.consensus import parts as block_parts
from chain.consensus.commit import precommit_time_ms
from chain.consensus.machine import PRECOMMIT, PREVOTE, PROPOSE, Proposal, Vote
from chain.consensus.peer_link import PeerLink
from chain.consensus.rebroadcast import Rebroadcast
from chain.consensus.signed_before import SignedBefore
from chain.consensus.signer import Signer
from chain.consensus.signstate import SignRefused
from chain.consensus.vote_store import SignedVotes
from chain.consensus.wal import Wal
from chain.node.blocks import Candidate
from proto import consensus_pb2, p2p_pb2, types_pb2
from runtime.votes import SignedVote

log = logging.getLogger("inferchain.consensus")

VOTE_TYPES = {PREVOTE: types_pb2.VOTE_TYPE_PREVOTE, PRECOMMIT: types_pb2.VOTE_TYPE_PRECOMMIT}


class OwnMessages:
    """Signing, logging and sending what the machine asks this validator to send."""

    def __init__(self, signer: Signer, wal: Wal, votes: SignedVotes, peers: PeerLink, rebroadcast: Rebroadcast,
                 signed_before: SignedBefore, wall_clock: Callable[[], float]):
        self.signer = signer
        self.wal = wal
        self.votes = votes
        self.peers = peers
        self.rebroadcast = rebroadcast
        self.signed_before = signed_before
        self.wall_clock = wall_clock  # only for the time in this validator's precommits (BFT time)

    def may_sign(self, message: Proposal | Vote, height: int) -> bool:
        """The machine's signing guard: what was signed at this round and step before a restart, else the sign
        state."""
        step = PROPOSE if isinstance(message, Proposal) else message.kind
        before = self.signed_before.again(height, message.round, step, message.value)
        if before is not None:
            return before.ByteSize() > 0  # the same message again; an empty envelope: another one (refused)
        try:
            self.signer.state.authorize(message.height, message.round, step, message.value)
        except SignRefused as refusal:
            self.signer.refused += 1
            log.error("%s", refusal)
            return False
        return True

    def send(self, message: Proposal | Vote, height: int, verdicts: dict[bytes, Candidate | None]) -> None:
        """Sign (or take what was signed before), log, and broadcast; kept for rebroadcast."""
        self.wal.sync()  # what made us sign is on disk before anything signed leaves
        if isinstance(message, Proposal):
            envelopes = self._sign_proposal(message, height, verdicts[message.value])
        else:
            envelopes = self._sign_vote(message, height, verdicts)
        self.rebroadcast.record(envelopes)
        for envelope in envelopes:
            self.peers.broadcast(envelope)

    def _sign_proposal(self, message: Proposal, height: int, candidate: Candidate) -> list[p2p_pb2.Envelope]:
        pieces = block_parts.split(candidate.block)
        before = self.signed_before.again(height, message.round, PROPOSE, message.value)
        if before is not None:
            if not before.HasField("proposal"):
                return []
            signed = before.proposal
        else:
            signed = self.signer.proposal(
                message.height, message.round, message.valid_round, message.value, block_parts.part_hashes(pieces)
            )
            if signed is None:
                return []
            self.wal.append(message.height, consensus_pb2.WalEntry(proposal=consensus_pb2.WalProposal(proposal=signed)))
        return [p2p_pb2.Envelope(proposal=signed)] + [
            p2p_pb2.Envelope(block_part=p2p_pb2.BlockPart(
                height=message.height, round=message.round, block_hash=message.value, index=index, data=data,
            ))
            for index, data in enumerate(pieces)
        ]

    def _sign_vote(self, message: Vote, height: int, verdicts: dict[bytes, Candidate | None]) -> list[p2p_pb2.Envelope]:
        before = self.signed_before.again(height, message.round, message.kind, message.value)
        if before is not None:
            if not before.HasField("vote"):
                return []
            vote = before.vote
        else:
            time_ms = 0
            if message.kind == PRECOMMIT and message.value:
                block_time_ms = verdicts[message.value].header.time_ms
                time_ms = precommit_time_ms(int(self.wall_clock() * 1000), block_time_ms)
            vote = self.signer.vote(VOTE_TYPES[message.kind], message.height, message.round, message.value, time_ms)
            if vote is None:
                return []
            self.wal.append(message.height, consensus_pb2.WalEntry(vote=vote))
        self.votes.add(message, SignedVote(types_pb2.VoteBody.FromString(vote.body), vote))
        return [p2p_pb2.Envelope(vote=vote)]
