"""What a connection holds between its reader and writer: the bounded outbound queue and the seen-gossip cache."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from typing import Callable, Iterator

import grpc


class OutboundQueue:
    """What waits for one connection's writer, bounded in messages and bytes; put never waits."""

    def __init__(self, max_messages: int, max_bytes: int, clock: Callable[[], float] = time.monotonic):
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.clock = clock
        # Since when the message at the head has waited (None when empty): a writer stuck on a
        # peer that stopped reading shows as a head that waits long.
        self.head_waiting_since: float | None = None
        self._items: deque[bytes] = deque()
        self._bytes = 0
        self._closed = False
        self._condition = threading.Condition()
        # (code, detail) the listener ends the stream with once the queue is closed; None: OK.
        self.close_status: tuple[grpc.StatusCode, str] | None = None

    def put(self, raw: bytes) -> bool:
        with self._condition:
            if self._closed or len(self._items) >= self.max_messages or self._bytes + len(raw) > self.max_bytes:
                return False
            if not self._items:
                self.head_waiting_since = self.clock()
            self._items.append(raw)
            self._bytes += len(raw)
            self._condition.notify()
            return True

    def get(self) -> bytes | None:
        """The next message, waiting for one; None once the queue is closed."""
        with self._condition:
            while not self._items and not self._closed:
                self._condition.wait()
            if self._closed:
                return None
            raw = self._items.popleft()
            self._bytes -= len(raw)
            self.head_waiting_since = self.clock() if self._items else None
            return raw

    def drain(self) -> Iterator[bytes]:
        while (raw := self.get()) is not None:
            yield raw

    def close(self, status: tuple[grpc.StatusCode, str] | None = None) -> None:
        with self._condition:
            if not self._closed:
                self._closed = True
                self.close_status = status
            self._condition.notify_all()

    def take_all(self) -> list[bytes]:
        with self._condition:
            items = list(self._items)
            self._items.clear()
            self._bytes = 0
            self.head_waiting_since = None
            return items

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def size(self) -> tuple[int, int]:
        with self._condition:
            return len(self._items), self._bytes


class SeenCache:
    """A bounded LRU set of message hashes."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._hashes: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, digest: bytes) -> bool:
        """True when `digest` was not in the set (it is now)."""
        with self._lock:
            if digest in self._hashes:
                self._hashes.move_to_end(digest)
                return False
            self._hashes[digest] = None
            if len(self._hashes) > self.capacity:
                self._hashes.popitem(last=False)
            return True
