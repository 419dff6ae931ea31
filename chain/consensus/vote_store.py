"""Votes as they were signed, by height: what commits and evidence carry.

The machine (chain/consensus/machine.py) reasons about votes as plain values; a commit needs each
precommit exactly as its validator signed it, and evidence both halves of a double-sign. Only votes
of validators are offered here (the driver checks membership first), and a validator's votes at
one height are capped: once full, new ones are refused, never old ones evicted, so the precommits
that decide a height are always here when the decision reads them.
"""

from __future__ import annotations

from chain.consensus.machine import Vote
from runtime.votes import SignedVote

# An honest validator signs one prevote and one precommit per round; two values per step prove a
# double-sign and more add nothing. This many votes of one validator at one height cover 64 rounds
# at 2 values per step; a validator that signs more is refused, not stored.
MAX_VOTES_PER_VALIDATOR_HEIGHT = 256


class SignedVotes:
    """Signed votes by height and validator, bounded per validator and height."""

    def __init__(self, per_validator: int = MAX_VOTES_PER_VALIDATOR_HEIGHT):
        self.per_validator = per_validator
        self._by_height: dict[int, dict[Vote, SignedVote]] = {}
        self._counts: dict[tuple[int, bytes], int] = {}

    def add(self, message: Vote, signed: SignedVote) -> bool:
        """Keep `signed` as the vote `message` stands for; False when already kept or over the validator's cap."""
        votes = self._by_height.setdefault(message.height, {})
        if message in votes:
            return False
        slot = (message.height, message.sender)
        if self._counts.get(slot, 0) >= self.per_validator:
            return False
        self._counts[slot] = self._counts.get(slot, 0) + 1
        votes[message] = signed
        return True

    def get(self, message: Vote) -> SignedVote | None:
        return self._by_height.get(message.height, {}).get(message)

    def __contains__(self, message: Vote) -> bool:
        return message in self._by_height.get(message.height, {})

    def forget_below(self, height: int) -> None:
        """Drop every height below `height`."""
        for old in [h for h in self._by_height if h < height]:
            del self._by_height[old]
        self._counts = {slot: count for slot, count in self._counts.items() if slot[0] >= height}

    def voters(self) -> set[bytes]:
        """Every validator with a vote kept here."""
        return {vote.sender for votes in self._by_height.values() for vote in votes}

    def __len__(self) -> int:
        return sum(len(votes) for votes in self._by_height.values())
