"""Proposals and their block parts as they arrive from peers: checked, relayed, assembled, and handed to the
consensus loop once a block is complete.

A proposal is taken only from the proposer of its round, for this height or the next, at most
ROUNDS_AHEAD rounds ahead, and at most MAX_ASSEMBLIES blocks are assembled at once: a validator
signing proposals for every round cannot fill memory. A block completed for the next height waits
here until the node reaches that height (its arrival is also the sign that the next height has begun).
"""

from __future__ import annotations

from typing import Callable

from chain.consensus import parts as block_parts
from chain.consensus.machine import FUTURE_HEIGHTS
from chain.consensus.peer_link import Misbehaviour, PeerLink
from chain.p2p.scoring import PENALTY_USELESS
from proto import p2p_pb2
from runtime.votes import VoteError, decode_proposal, verify_proposal

ROUNDS_AHEAD = 8
MAX_ASSEMBLIES = 32

BlockKey = tuple[int, int, bytes]  # height, round, block hash


class Proposals:
    """Block assemblies by (height, round, block hash); owned by the consensus loop's thread."""

    def __init__(self, chain_id: str, max_parts: int, peers: PeerLink):
        self.chain_id = chain_id
        self.max_parts = max_parts
        self.peers = peers
        self.assemblies: dict[BlockKey, block_parts.Assembly] = {}
        self.waiting: dict[BlockKey, block_parts.Assembly] = {}  # complete, for a later height
        self._orphans = block_parts.OrphanParts()

    def on_proposal(self, peer_id: bytes, envelope: p2p_pb2.Envelope, height: int, round_number: int,
                    powers, proposer_of: Callable[[int], bytes]) -> block_parts.Assembly | None:
        """Take a peer's proposal; the assembly when that completes a block of `height`. Misbehaviour when no
        honest peer sends it."""
        try:
            body = decode_proposal(envelope.proposal, self.chain_id)
        except VoteError as error:
            raise Misbehaviour(f"an invalid proposal: {error}") from None
        # What is dropped here is not marked seen: its proposer sends the same bytes again while the height
        # makes no progress, and this node takes them once it got there (a restarted or lagging node).
        if not height <= body.height <= height + 1 or body.round > round_number + ROUNDS_AHEAD:
            return None
        if body.proposer not in powers or (body.height == height and body.proposer != proposer_of(body.round)):
            return None  # not this round's proposer: the machine would ignore it
        if len(self.assemblies) + len(self.waiting) >= MAX_ASSEMBLIES:
            return None
        if len(body.part_hashes) > self.max_parts:
            raise Misbehaviour(f"a proposal of {len(body.part_hashes)} parts")
        if not self.peers.first_seen(envelope):
            return None
        try:
            verify_proposal(envelope.proposal, body)
        except VoteError as error:
            raise Misbehaviour(f"an invalid proposal: {error}") from None
        self.peers.broadcast(envelope, exclude=peer_id)
        key = (body.height, body.round, body.block_hash)
        if key in self.assemblies:
            return None
        assembly = block_parts.Assembly(envelope.proposal, body)
        self.assemblies[key] = assembly
        for index, data in self._orphans.take(*key):
            if assembly.add(index, data):
                self.peers.broadcast(p2p_pb2.Envelope(block_part=p2p_pb2.BlockPart(
                    height=body.height, round=body.round, block_hash=body.block_hash, index=index, data=data,
                )), exclude=peer_id)
        return self._completed(key, height)

    def on_block_part(self, peer_id: bytes, envelope: p2p_pb2.Envelope, height: int) -> block_parts.Assembly | None:
        """Take a peer's block part; the assembly when that completes a block of `height`."""
        part = envelope.block_part
        if len(part.data) > block_parts.PART_BYTES:
            raise Misbehaviour(f"a block part of {len(part.data)} bytes (at most {block_parts.PART_BYTES})")
        if not height <= part.height <= height + 1:
            if not height - 1 <= part.height <= height + FUTURE_HEIGHTS:  # no honest peer is that far off
                self.peers.penalize(peer_id, f"a block part for #{part.height} at #{height}", PENALTY_USELESS)
            return None
        key = (part.height, part.round, part.block_hash)
        assembly = self.assemblies.get(key)
        if assembly is None:  # kept by its key, so copies add nothing; not marked seen, as it may be evicted
            self._orphans.add(part)
            return None
        if not assembly.add(part.index, part.data):  # a part the assembly has: copies stop here
            return None
        self.peers.broadcast(envelope, exclude=peer_id)
        return self._completed(key, height)

    def _completed(self, key: BlockKey, height: int) -> block_parts.Assembly | None:
        assembly = self.assemblies.get(key)
        if assembly is None or not assembly.complete:
            return None
        del self.assemblies[key]
        if key[0] > height:
            self.waiting[key] = assembly  # judged once this node reaches that height
            return None
        return assembly

    def next_height_proposed(self, height: int) -> bool:
        """Whether a complete block for a height after `height` waits here (a peer has moved on)."""
        return any(key[0] > height for key in self.waiting)

    def take_waiting(self, height: int) -> list[block_parts.Assembly]:
        """The complete blocks of `height` that waited for it, removed."""
        taken = [assembly for key, assembly in self.waiting.items() if key[0] == height]
        self.waiting = {key: assembly for key, assembly in self.waiting.items() if key[0] != height}
        return taken

    def forget_below(self, height: int) -> None:
        """Drop what belongs to decided heights; keep parts and blocks already received for later ones."""
        self.assemblies = {key: value for key, value in self.assemblies.items() if key[0] >= height}
        self.waiting = {key: value for key, value in self.waiting.items() if key[0] >= height}
        self._orphans.forget_below(height)
