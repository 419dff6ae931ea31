"""The network's maintenance thread: deadlines (handshake timeouts, a replaced connection's end), periodic
callbacks (transaction gossip's flush) and the network's own ticks (dialing, stalled peers, peer exchange).

One thread runs everything here, every `interval_s`; nothing it runs may block for long.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger("inferchain.p2p")


@dataclass
class _Periodic:
    interval_s: float
    callback: Callable[[], None]
    next_run: float = 0.0


class Maintenance:
    """Deadlines and periodic callbacks, run on one thread with the network's ticks."""

    def __init__(self, lock: threading.RLock, clock: Callable[[], float], interval_s: float,
                 ticks: list[Callable[[float], None]]):
        self.lock = lock
        self.clock = clock
        self.interval_s = interval_s
        self._ticks = ticks
        self._deadlines: dict[object, tuple[float, Callable[[], None]]] = {}
        self._periodic: list[_Periodic] = []

    def at(self, deadline: float, action: Callable[[], None]) -> object:
        """Run `action` at `deadline` unless cancel_at(the returned key) comes first."""
        key = object()
        with self.lock:
            self._deadlines[key] = (deadline, action)
        return key

    def cancel_at(self, key: object) -> None:
        with self.lock:
            self._deadlines.pop(key, None)

    def pending_actions(self) -> list[Callable[[], None]]:
        """Every action still waiting for its deadline (run at once by the network's stop)."""
        with self.lock:
            return [action for _, action in self._deadlines.values()]

    def call_every(self, interval_s: float, callback: Callable[[], None]) -> None:
        with self.lock:
            self._periodic.append(_Periodic(interval_s, callback))

    def run(self, stopping: threading.Event) -> None:
        """The thread's body: every interval, due deadlines, the ticks and the periodic callbacks, until `stopping`."""
        while not stopping.wait(self.interval_s):
            try:
                now = self.clock()
                self._expire_deadlines(now)
                for tick in self._ticks:
                    tick(now)
                self._run_periodic(now)
            except Exception:
                log.exception("p2p: maintenance")

    def _expire_deadlines(self, now: float) -> None:
        with self.lock:
            late = [(key, action) for key, (deadline, action) in self._deadlines.items() if deadline <= now]
            for key, _ in late:
                del self._deadlines[key]
        for _, action in late:
            action()

    def _run_periodic(self, now: float) -> None:
        with self.lock:
            due = [p for p in self._periodic if p.next_run <= now]
            for periodic in due:
                periodic.next_run = now + periodic.interval_s
        for periodic in due:
            try:
                periodic.callback()
            except Exception:
                log.exception("p2p: periodic task %s", getattr(periodic.callback, "__qualname__", periodic.callback))
