"""Double-sign evidence waiting for a block: seen by this node or gossiped, checked, bounded, pruned once useless."""

from __future__ import annotations

import logging
from typing import Callable, Container

from chain.consensus.machine import EVIDENCE_HEIGHTS
from chain.consensus.peer_link import Misbehaviour
from proto import types_pb2
from runtime import evidence as evidence_rules
from runtime import slashing
from runtime.votes import SignedVote, VoteError, decode_vote

log = logging.getLogger("inferchain.consensus")

MAX_EVIDENCE_POOL = 1_000


class EvidencePool:
    """Evidence by offence (validator, height, round, type): one piece per offence, at most MAX_EVIDENCE_POOL."""

    def __init__(self, limit: int = MAX_EVIDENCE_POOL):
        self.limit = limit
        self._pieces: dict[tuple, types_pb2.DuplicateVoteEvidence] = {}

    def add(self, evidence: types_pb2.DuplicateVoteEvidence, offence: tuple) -> bool:
        """Keep `evidence` for the next block we propose; False when this offence is known or the pool is full."""
        if offence in self._pieces or len(self._pieces) >= self.limit:
            return False
        self._pieces[offence] = evidence
        return True

    def add_double_sign(self, first: SignedVote, second: SignedVote) -> types_pb2.DuplicateVoteEvidence | None:
        """Evidence of a double-sign this node saw itself; the evidence when new (to be gossiped), else None."""
        evidence = evidence_rules.make_evidence(first, second)
        return evidence if self.add(evidence, first.key) else None

    def add_gossiped(self, evidence: types_pb2.DuplicateVoteEvidence, chain_id: str, height: int,
                     voters: Callable[[int], Container[bytes]], state, head_height: int) -> bool:
        """Keep a peer's evidence when the next block could carry it (the runtime's own rule): True when new, to be
        relayed. Misbehaviour for junk, judged by who and where before any signature is checked (a stranger's
        keys cost nothing to make): junk is neither stored nor passed on, however much of it there is."""
        try:
            accused = decode_vote(evidence.first, chain_id).body
        except VoteError as error:
            raise Misbehaviour(f"invalid evidence: {error}") from None
        if not height - EVIDENCE_HEIGHTS < accused.height <= height + 1:
            return False  # too old to check cheaply here, or further ahead than any honest peer
        if accused.validator not in voters(min(accused.height, height)):
            raise Misbehaviour(f"evidence against {accused.validator.hex()[:16]}, not a validator at #{accused.height}")
        try:
            first, _ = evidence_rules.check_evidence_format(evidence, chain_id)
        except ValueError as error:
            raise Misbehaviour(f"invalid evidence: {error}") from None
        # A double-sign at the height being decided goes into a later block: judged as that block would judge it.
        block_height = max(head_height + 1, first.body.height + 1)
        if slashing.check_evidence(state, evidence, block_height) is not None:
            return False  # punished already or too old: honest peers may still gossip these
        return self.add(evidence, first.key)

    def pending(self) -> list[types_pb2.DuplicateVoteEvidence]:
        return list(self._pieces.values())

    def prune(self, state, next_height: int) -> None:
        """Drop what the runtime would no longer take at `next_height` (punished already, too old, unknown)."""
        for offence, evidence in list(self._pieces.items()):
            if slashing.check_evidence(state, evidence, next_height) is not None:
                del self._pieces[offence]

    def __len__(self) -> int:
        return len(self._pieces)
