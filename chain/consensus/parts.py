"""Proposed blocks in parts: split for sending, checked part by part and reassembled on arrival.

A proposal lists the blake2b-256 of each part, so every part is checked the moment it arrives and
a peer cannot poison an assembly with a wrong one. Parts that arrive before their proposal wait in
a bounded buffer.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from proto import types_pb2
from runtime.hashing import blake2b_256

PART_BYTES = 256 * 1024
# Parts held without their proposal: enough for two 4 MiB blocks.
MAX_ORPHAN_PARTS = 64


def split(block: types_pb2.Block) -> list[bytes]:
    data = block.SerializeToString()
    return [data[start:start + PART_BYTES] for start in range(0, max(len(data), 1), PART_BYTES)]


def part_hashes(parts: list[bytes]) -> list[bytes]:
    return [blake2b_256(part) for part in parts]


def max_parts(max_block_bytes: int) -> int:
    """The most parts a valid block can have (its header, commit and evidence ride beyond the limit)."""
    return (max_block_bytes + 2 * 1024 * 1024) // PART_BYTES + 1


@dataclass
class Assembly:
    """The parts of one proposed block received so far."""

    proposal: types_pb2.SignedProposal
    body: types_pb2.ProposalBody
    parts: list[bytes | None] = field(default_factory=list)

    def __post_init__(self):
        if not self.parts:
            self.parts = [None] * len(self.body.part_hashes)

    def add(self, index: int, data: bytes) -> bool:
        """Store a part if it is the one the proposal names; True when it was new and correct."""
        if not 0 <= index < len(self.parts) or self.parts[index] is not None:
            return False
        if blake2b_256(data) != self.body.part_hashes[index]:
            return False
        self.parts[index] = data
        return True

    @property
    def complete(self) -> bool:
        return all(part is not None for part in self.parts)

    def data(self) -> bytes:
        return b"".join(self.parts)


class OrphanParts:
    """Parts whose proposal has not arrived, oldest dropped first beyond MAX_ORPHAN_PARTS."""

    def __init__(self, limit: int = MAX_ORPHAN_PARTS):
        self.limit = limit
        self._parts: OrderedDict[tuple[int, int, bytes, int], bytes] = OrderedDict()

    def add(self, part) -> None:
        key = (part.height, part.round, part.block_hash, part.index)
        self._parts[key] = part.data
        while len(self._parts) > self.limit:
            self._parts.popitem(last=False)

    def take(self, height: int, round_number: int, block_hash: bytes) -> list[tuple[int, bytes]]:
        keys = [key for key in self._parts if key[:3] == (height, round_number, block_hash)]
        return [(key[3], self._parts.pop(key)) for key in keys]

    def forget_below(self, height: int) -> None:
        for key in [key for key in self._parts if key[0] < height]:
            del self._parts[key]
