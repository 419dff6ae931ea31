"""Double-sign evidence waiting for a block: seen by this node (or gossiped), bounded, pruned once useless."""

from __future__ import annotations

import logging

from proto import types_pb2
from runtime import slashing

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

    def pending(self) -> list[types_pb2.DuplicateVoteEvidence]:
        return list(self._pieces.values())

    def prune(self, state, next_height: int) -> None:
        """Drop what the runtime would no longer take at `next_height` (punished already, too old, unknown)."""
        for offence, evidence in list(self._pieces.items()):
            if slashing.check_evidence(state, evidence, next_height) is not None:
                del self._pieces[offence]

    def __len__(self) -> int:
        return len(self._pieces)
