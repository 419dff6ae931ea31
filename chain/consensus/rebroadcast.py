"""This validator's signed messages of the height being decided, sent again while the height makes no progress
(a peer that connected late or lost a message gets them again; gossip dedupe drops the copies)."""

from __future__ import annotations

from typing import Callable

from proto import p2p_pb2

REBROADCAST_S = 2.0
# At most this many of the latest messages are sent again (a proposal's parts and a few rounds of votes).
MAX_REBROADCAST = 64


class Rebroadcast:
    """Own messages of the current height and when they were last sent again; owned by the consensus loop."""

    def __init__(self, clock: Callable[[], float], interval_s: float = REBROADCAST_S):
        self.clock = clock
        self.interval_s = interval_s
        self.messages: list[p2p_pb2.Envelope] = []
        self._last = 0.0

    def record(self, envelopes: list[p2p_pb2.Envelope]) -> None:
        self.messages.extend(envelopes)

    def reset(self) -> None:
        """A new height: what was signed for the last one is not sent again."""
        self.messages = []

    def due(self, last_progress: float) -> list[p2p_pb2.Envelope] | None:
        """The messages to send again now (None when not due): no progress and no rebroadcast for an interval."""
        now = self.clock()
        if now - last_progress < self.interval_s or now - self._last < self.interval_s:
            return None
        self._last = now
        return self.messages[-MAX_REBROADCAST:]
