"""A thread of the worker that takes one step per finalized block, woken by the worker's loop (the juror's
and the prober's): the loop's `on_block` returns at once, and a slow step never delays a job's commit or
reveal. Blocks that arrive during a step are folded into the next one: it sees the newest height and
every receipt since the last step.
"""

from __future__ import annotations

import threading
from typing import Iterable

from chain.client.results import Receipt

# How often the thread wakes to notice a stop request when no block comes.
POLL_S = 0.5


class BlockThread:
    """Calls `take_step(height, receipts)` in a thread of its own after each `on_block`, until stopped; a
    `take_step` that returns False ends the thread."""

    name = "block-thread"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._latest = 0
        self._receipts: list[Receipt] = []
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop_thread(self, timeout: float) -> None:
        """Stop after the current step (waiting at most `timeout` seconds for it)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def on_block(self, height: int, receipts: Iterable[Receipt] = ()) -> None:
        """A block was finalized (called from the worker's loop: returns at once)."""
        with self._lock:
            self._latest = max(self._latest, height)
            self._receipts.extend(receipts)
        self._wake.set()

    def take_step(self, height: int, receipts: list[Receipt]) -> bool:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._wake.wait(POLL_S):
                continue
            self._wake.clear()
            with self._lock:
                height, receipts, self._receipts = self._latest, self._receipts, []
            if not self.take_step(height, receipts):
                return
