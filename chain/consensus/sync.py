"""Block sync's bookkeeping: which heights peers claim, which ranges are asked of whom, and who lied.

A node behind its peers asks for finalized blocks by range (p2p BlocksRequest). A peer's claim (its
Status height) is a promise, not a fact: ranges are spread over several peers at once, each range
has a deadline, and a peer that claims a height and then answers nothing for it, or answers what
was not asked, is distrusted for a while (its claims ignored, nothing asked of it) and reported to
the caller to be penalized; one that answers too late is only passed over for a few seconds. A lagging node so catches up at the speed of its honest
peers whatever one liar says. Blocks arrive out of order and wait here until the ones before them
are committed; chain/consensus/catch_up.py verifies and commits them in height order.
Nothing here does I/O or reads a clock but the one passed in.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

from proto import p2p_pb2, types_pb2

# Blocks per request, and ranges asked at once (of distinct peers): at most this many blocks wait here.
SYNC_BATCH = 64
MAX_PARALLEL_RANGES = 4
# A range not answered within this many seconds is asked of another peer.
RANGE_TIMEOUT_S = 4.0
# A peer that lied is not asked, and its claims are ignored, for this long; one that was only slow, for
# SLOW_PEER_S.
DISTRUST_S = 60.0
SLOW_PEER_S = 10.0
# One peer is asked at most this often (peers drop block requests beyond 20 a second: chain/p2p/rates.py).
MIN_REQUEST_INTERVAL_S = 0.1
# A peer that lets this many ranges in a row time out is treated as a liar (it keeps claiming, never serves).
MAX_SLOW_ANSWERS = 3


@dataclass
class _Range:
    peer: bytes
    start: int
    count: int
    sent_at: float


@dataclass(frozen=True)
class Fault:
    """A peer that did not keep its promise, and what it did."""

    peer: bytes
    reason: str
    severe: bool  # a lie or an invalid block; else it was only too slow


class BlockSync:
    """Claims, outstanding ranges and received blocks of one node's block sync (one thread uses it)."""

    def __init__(self, clock: Callable[[], float], batch: int = SYNC_BATCH, parallel: int = MAX_PARALLEL_RANGES,
                 timeout_s: float = RANGE_TIMEOUT_S, distrust_s: float = DISTRUST_S):
        self.clock = clock
        self.batch = batch
        self.parallel = parallel
        self.timeout_s = timeout_s
        self.distrust_s = distrust_s
        self.claims: dict[bytes, int] = {}
        self._ranges: dict[int, _Range] = {}  # by first height
        self._blocks: dict[int, tuple[bytes, types_pb2.FinalizedBlock]] = {}
        self._distrusted: dict[bytes, float] = {}
        self._faults: list[Fault] = []
        self._asked_at: dict[bytes, float] = {}
        self._slow: dict[bytes, int] = {}  # ranges in a row a peer let time out
        self._turn = itertools.count()

    # --- what peers say ---

    def on_status(self, peer: bytes, height: int) -> None:
        if not self._is_distrusted(peer):
            self.claims[peer] = height

    def forget(self, peer: bytes) -> None:
        """A peer went away: its claim and what was asked of it go too (asked of others next time)."""
        self.claims.pop(peer, None)
        self._asked_at.pop(peer, None)
        self._slow.pop(peer, None)
        for start in [start for start, asked in self._ranges.items() if asked.peer == peer]:
            del self._ranges[start]

    def best(self) -> int:
        """The highest height a trusted peer claims (0 with none)."""
        return max((height for peer, height in self.claims.items() if not self._is_distrusted(peer)), default=0)

    def behind(self, head: int) -> bool:
        """Whether a trusted peer claims more than the next height: this node is behind, not just deciding."""
        return self.best() > head + 1

    # --- asking ---

    def due(self, head: int, stalled: bool) -> list[tuple[bytes, p2p_pb2.BlocksRequest]]:
        """Requests to send now. Heights up to the best claim are fetched when this node is behind, or when it
        made no progress for a while (`stalled`) and a peer is one ahead."""
        now = self.clock()
        self._expire(now)
        self._drop_below(head + 1)
        target = self.best()
        if not (target > head + 1 or (stalled and target == head + 1)):
            return []
        requests = []
        busy = {asked.peer for asked in self._ranges.values()}
        busy |= {peer for peer, at in self._asked_at.items() if now - at < MIN_REQUEST_INTERVAL_S}
        start = head + 1
        window_end = head + self.parallel * self.batch
        while len(self._ranges) < self.parallel and start <= min(target, window_end):
            start = self._next_missing(start)
            if start > min(target, window_end):
                break
            peer = self._pick(start, busy)
            if peer is None:
                break
            count = min(self.batch, self.claims[peer] - start + 1)
            count = self._until_known(start, count)
            self._ranges[start] = _Range(peer, start, count, now)
            self._asked_at[peer] = now
            busy.add(peer)
            requests.append((peer, p2p_pb2.BlocksRequest(from_height=start, count=count)))
            start += count
        return requests

    def _next_missing(self, start: int) -> int:
        """The first height from `start` neither received nor asked for."""
        while True:
            if start in self._blocks:
                start += 1
                continue
            asked = next((r for r in self._ranges.values() if r.start <= start < r.start + r.count), None)
            if asked is None:
                return start
            start = asked.start + asked.count

    def _until_known(self, start: int, count: int) -> int:
        """`count` shortened so the range ends before the next height already received or asked for."""
        for height in range(start, start + count):
            if height in self._blocks or any(r.start == height for r in self._ranges.values()):
                return max(1, height - start)
        return count

    def _pick(self, start: int, busy: set[bytes]) -> bytes | None:
        """A trusted, idle peer that claims `start`, taking turns among them."""
        eligible = sorted(peer for peer, height in self.claims.items()
                          if height >= start and peer not in busy and not self._is_distrusted(peer))
        if not eligible:
            return None
        return eligible[next(self._turn) % len(eligible)]

    # --- answers ---

    def on_response(self, peer: bytes, response: p2p_pb2.BlocksResponse) -> None:
        """Take the blocks a peer sent for the range asked of it; an answer nobody asked for, or an empty one for a
        height the peer claimed, is a fault."""
        blocks = list(response.blocks)
        asked = next((r for r in self._ranges.values() if r.peer == peer), None)
        if asked is None:
            if blocks:
                self._fault(peer, "blocks that were not asked for")
            return
        del self._ranges[asked.start]
        self._slow.pop(peer, None)
        if not blocks:
            self._fault(peer, f"no blocks from #{asked.start} though it claimed #{self.claims.get(peer, 0)}")
            return
        if len(blocks) > asked.count:
            self._fault(peer, f"{len(blocks)} blocks where {asked.count} were asked for")
            return
        for offset, finalized in enumerate(blocks):
            self._blocks.setdefault(asked.start + offset, (peer, finalized))

    def take(self, height: int) -> tuple[bytes, types_pb2.FinalizedBlock] | None:
        """The received block for `height` and the peer that sent it, removed from the buffer; None if not here."""
        return self._blocks.pop(height, None)

    def reject(self, peer: bytes, reason: str) -> None:
        """A block from `peer` did not verify: distrust it and drop everything else it sent."""
        self._blocks = {height: item for height, item in self._blocks.items() if item[0] != peer}
        self._fault(peer, reason)

    def faults(self) -> list[Fault]:
        """Faults since the last call (for the caller to penalize the peers)."""
        faults, self._faults = self._faults, []
        return faults

    # --- internals ---

    def _expire(self, now: float) -> None:
        for start, asked in list(self._ranges.items()):
            if now - asked.sent_at > self.timeout_s:
                del self._ranges[start]
                slow = self._slow.get(asked.peer, 0) + 1
                self._slow[asked.peer] = slow
                self._fault(asked.peer, f"no answer within {self.timeout_s:.0f} s for blocks from #{start}"
                            + (f" ({slow} times in a row)" if slow > 1 else ""), severe=slow >= MAX_SLOW_ANSWERS)
        self._distrusted = {peer: until for peer, until in self._distrusted.items() if until > now}

    def _drop_below(self, height: int) -> None:
        for old in [h for h in self._blocks if h < height]:
            del self._blocks[old]

    def _fault(self, peer: bytes, reason: str, severe: bool = True) -> None:
        self._distrusted[peer] = self.clock() + (self.distrust_s if severe else SLOW_PEER_S)
        self.claims.pop(peer, None)
        for start in [start for start, asked in self._ranges.items() if asked.peer == peer]:
            del self._ranges[start]
        self._faults.append(Fault(peer, reason, severe))

    def _is_distrusted(self, peer: bytes) -> bool:
        return self._distrusted.get(peer, 0.0) > self.clock()
