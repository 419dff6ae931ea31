"""The machine's timeouts, armed by the consensus loop and fired by it when due (timeouts are inputs too)."""

from __future__ import annotations

import heapq
import itertools

from chain.consensus.machine import Timeout


class Timers:
    """Timeouts by due time; owned by the consensus loop's thread."""

    def __init__(self):
        self._heap: list[tuple[float, int, Timeout]] = []
        self._sequence = itertools.count()

    def arm(self, due: float, timeout: Timeout) -> None:
        heapq.heappush(self._heap, (due, next(self._sequence), timeout))

    def clear(self) -> None:
        self._heap = []

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[Timeout]:
        """Every timeout due at `now`, earliest first, removed."""
        due = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        return due
