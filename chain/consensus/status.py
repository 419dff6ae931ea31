"""What the node's API and metrics read of consensus: an immutable snapshot the consensus loop publishes.

The loop owns every piece of consensus state; after each step it builds a new ConsensusStatus and
replaces its reference to the last one (one assignment). Readers on other threads (ChainInfo, the
Prometheus scrape, the network's validator check) only ever read a whole snapshot, never a live field.
"""

from __future__ import annotations

from dataclasses import dataclass

# `step` beyond the machine's own (propose, prevote, precommit):
STEP_SYNCING = "syncing"  # following the chain by block sync, not voting
STEP_NEW_HEIGHT = "new height"  # decided; the next height starts when transactions wait or on the block-time tick
STEP_HALTED = "halted"  # a write failed: nothing more is signed until a restart


@dataclass(frozen=True)
class ConsensusStatus:
    height: int  # the height being decided
    round: int
    step: str
    syncing: bool
    is_validator: bool
    validators: int
    total_power: int
    peers: int
    signatures_refused: int = 0
    halted: bool = False
    # Block sync requests of peers refused because the block server's queue was full.
    block_requests_refused: int = 0
    # Peer messages dropped because the consensus inbox was full.
    events_dropped: int = 0
    validator_keys: frozenset[bytes] = frozenset()
