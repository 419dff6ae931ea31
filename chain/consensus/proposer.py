"""Weighted round-robin proposer choice (CometBFT's proposer priority, spec/consensus/proposer-selection).

Each validator has a priority. One step adds every validator's voting power to its priority,
picks the highest (ties: the lower public key), and takes the total power from the chosen one's
priority. Over many steps each validator proposes in proportion to its power, and no two steps
in a row favour one validator more than its power allows. A height's round r uses the priorities
after r steps from the height's starting priorities; the next height starts from the priorities
after its first round's step, so proposers rotate from height to height.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class Priorities:
    """Proposer priorities by validator, and the voting powers they move by."""

    powers: tuple[tuple[bytes, int], ...]
    values: tuple[int, ...]

    @classmethod
    def start(cls, powers: Mapping[bytes, int]) -> "Priorities":
        ordered = tuple(sorted((key, power) for key, power in powers.items() if power > 0))
        if not ordered:
            raise ValueError("a validator set needs at least one validator with voting power")
        return cls(ordered, tuple(0 for _ in ordered))

    @property
    def total(self) -> int:
        return sum(power for _, power in self.powers)

    def step(self) -> tuple[bytes, "Priorities"]:
        """The proposer of this step, and the priorities after it."""
        raised = [value + power for value, (_, power) in zip(self.values, self.powers)]
        # Highest priority; on a tie the lower key (the powers are sorted by key).
        chosen = max(range(len(raised)), key=lambda index: (raised[index], -index))
        raised[chosen] -= self.total
        return self.powers[chosen][0], Priorities(self.powers, tuple(raised))

    def proposer(self, round_number: int) -> bytes:
        """The proposer of round `round_number` of the height that starts from these priorities."""
        priorities = self
        for _ in range(round_number):
            _, priorities = priorities.step()
        return priorities.step()[0]

    def next_height(self) -> "Priorities":
        """The priorities the next height starts from."""
        return self.step()[1]
