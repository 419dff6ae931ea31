"""The consensus loop's inbox: what peers send (and their connects and disconnects) waits here for the loop.

Network threads only put; the loop alone takes. Bounded in messages and in bytes (20,000 block
parts would be 5 GB): what does not fit is dropped, counted and logged, and the sender never waits.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass

from proto import p2p_pb2

log = logging.getLogger("inferchain.consensus")

EVENT_QUEUE = 20_000
EVENT_QUEUE_BYTES = 64 * 1024 * 1024

MESSAGE = "message"
CONNECTED = "connected"
DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class Event:
    kind: str  # MESSAGE, CONNECTED or DISCONNECTED
    peer_id: bytes
    envelope: p2p_pb2.Envelope | None = None
    size: int = 0


class Inbox:
    """A bounded queue of events, with the bytes of the messages waiting counted."""

    def __init__(self, max_events: int = EVENT_QUEUE, max_bytes: int = EVENT_QUEUE_BYTES):
        self.max_bytes = max_bytes
        self.events: queue.Queue[Event] = queue.Queue(maxsize=max_events)
        self.dropped = 0
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, kind: str, peer_id: bytes, envelope: p2p_pb2.Envelope | None = None) -> bool:
        """Queue an event; False (counted, logged every 1,000) when the inbox is full."""
        size = envelope.ByteSize() if envelope is not None else 0
        with self._lock:
            fits = self._bytes + size <= self.max_bytes
            if fits:
                self._bytes += size
        if fits:
            try:
                self.events.put_nowait(Event(kind, peer_id, envelope, size))
                return True
            except queue.Full:
                with self._lock:
                    self._bytes -= size
        with self._lock:
            self.dropped += 1
            dropped = self.dropped
        if dropped % 1000 == 1:
            log.warning("consensus queue full: %d peer messages dropped so far", dropped)
        return False

    def take(self, timeout: float) -> Event | None:
        """The next event, waiting at most `timeout` seconds; None when none came."""
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            return None
        with self._lock:
            self._bytes -= event.size
        return event

    def __len__(self) -> int:
        return self.events.qsize()
