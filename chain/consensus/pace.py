"""When this node starts its next height: the block-time tick, or sooner when there is work (node policy, not a
validity rule).

An idle chain keeps its tick: a height starts one block time after the last one started. When there is work
(transactions in the pool, a posted job waiting for the heights that draw its executors, a peer's proposal for
the next height) a height may start after the *minimum interval*, half a block time, and sooner still while
the node holds *credit*: the time by which earlier heights started later than the minimum interval, at most
one and a half block times (the *burst*). An idle height adds half a block time, so three idle heights fill it.

Why the credit: a job is drawn two heights after its inclusion, from randomness revealed in those heights
(docs/economics.md, "Assignment randomness"). With a fixed half-block floor those two heights alone made every
job wait a whole block time before an executor could start, although they carry nothing but a reveal. With
the credit, a job posted on a chain that was idle is included and drawn as soon as those three heights can be
decided, wherever in the idle tick it arrives (with one block time of credit, a job arriving less than half a
block time after an idle height began spent part of it on its inclusion, and its second draw height waited
for the floor: half a block time more, in about half the cases), and a chain that stays busy runs at the
floor as before.

Gathering: when a height's only work is transactions that came to an empty pool after the last height was
decided, the node waits a short while from the moment it first saw them (`gather_s`, a twentieth of the block
time) so that transactions sent together land in one block: a gateway's sixteen concurrent requests, submitted
one after another over some 80 ms, were split over three heights, and the jobs in the later two were drawn only
when the credit was spent, half a block time later. Transactions that waited while a height was being decided
were gathered by then and start the next height at once; pending draws and a peer's proposal never wait.

What it keeps (`PaceRule.shortest`, tested with hypothesis): any `n` consecutive heights this node starts
span at least `n × minimum interval − burst` of its clock. Windows counted in blocks (`commit_blocks`,
`reveal_blocks`, a dispute's vote windows, all written against the genesis block time) therefore last at
least half their nominal length less one block time, however the chain is used. Each validator keeps its own
pace, and a height needs two thirds of the power: a byzantine proposer cannot run the chain faster than its
honest validators let themselves start heights.
"""

from __future__ import annotations

from dataclasses import dataclass

# A height with work waiting starts this share of the block time after the last one started, less the credit.
MIN_INTERVAL_SHARE_OF_BLOCK_TIME = 0.5
# The most credit a node holds, as a share of the block time: enough to start a job's inclusion and its two draw
# heights at once on a chain that was idle (three heights at the floor's half block time each).
BURST_SHARE_OF_BLOCK_TIME = 1.5
# How long transactions that came to an idle node are gathered before a height includes them, as a share of the
# block time (50 ms of genesis.json's 1 s).
GATHER_SHARE_OF_BLOCK_TIME = 0.05


@dataclass(frozen=True)
class PaceRule:
    block_time_s: float

    @property
    def min_interval_s(self) -> float:
        return MIN_INTERVAL_SHARE_OF_BLOCK_TIME * self.block_time_s

    @property
    def burst_s(self) -> float:
        return BURST_SHARE_OF_BLOCK_TIME * self.block_time_s

    @property
    def gather_s(self) -> float:
        return GATHER_SHARE_OF_BLOCK_TIME * self.block_time_s

    def shortest(self, heights: int) -> float:
        """The least time `heights` consecutive heights can span under this rule (never below zero)."""
        return max(0.0, heights * self.min_interval_s - self.burst_s)


class Pace:
    """The start of this node's last height and its credit; the driver asks when the next may start."""

    def __init__(self, block_time_s: float):
        self.rule = PaceRule(block_time_s)
        self.started_at: float | None = None
        self.credit_s = 0.0
        # When the node first saw the transactions now waiting (-inf: they waited through a height's decision).
        self._transactions_seen_at: float | None = None

    def began(self, now: float) -> None:
        """A height started at `now`: what the gap since the last start spared (or took) counts to the credit."""
        if self.started_at is not None:
            gap = now - self.started_at
            self.credit_s = min(self.rule.burst_s, max(0.0, self.credit_s + gap - self.rule.min_interval_s))
        self.started_at = now
        self._transactions_seen_at = None

    def decided(self, transactions_waiting: bool) -> None:
        """The height was decided; transactions already waiting then need no gathering."""
        self._transactions_seen_at = float("-inf") if transactions_waiting else None

    def gathered(self, now: float) -> bool:
        """Whether the transactions waiting now (the first call after they came notes when) were gathered long
        enough to start a height for them."""
        if self._transactions_seen_at is None:
            self._transactions_seen_at = now
        return now >= self._transactions_seen_at + self.rule.gather_s

    def earliest_with_work(self) -> float:
        """The soonest the next height may start when there is work (the last start, if none yet)."""
        if self.started_at is None:
            return 0.0
        return self.started_at + max(0.0, self.rule.min_interval_s - self.credit_s)
