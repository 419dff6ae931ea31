"""The runtime's only I/O: a key-value state, layered so that a failed call writes nothing.

`StateReader` is what the chain provides (the committed state at a block). An
`Overlay` records writes and events on top of a reader; `child()` opens a nested
layer for one transaction or call, which is either merged with `commit()` or
dropped with `discard()`. So a call handler may check, write and fail at any point
and still leave no partial writes behind.
"""

from __future__ import annotations

from typing import Iterator, Mapping, Protocol

from proto import types_pb2

_DELETED = None


class StateReader(Protocol):
    """Read access to committed state."""

    def get(self, key: bytes) -> bytes | None: ...


class IterableState(StateReader, Protocol):
    """Committed state that can also be walked by key prefix (genesis export, diagnostics)."""

    def iter_prefix(self, prefix: bytes = b"", after: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Stored (key, value) pairs under a prefix, sorted by key; with `after`, only keys above it.

        `after` continues a walk from the last key seen (a page token): the walk starts there instead of
        reading and skipping every key before it.
        """
        ...


class MemoryState:
    """A plain dict as committed state: genesis building, tests and simulation."""

    def __init__(self, items: Mapping[bytes, bytes] | None = None):
        self.items: dict[bytes, bytes] = dict(items or {})

    def get(self, key: bytes) -> bytes | None:
        return self.items.get(key)

    def iter_prefix(self, prefix: bytes = b"", after: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(key for key in self.items if key.startswith(prefix) and (after is None or key > after)):
            yield key, self.items[key]

    def apply(self, changes: Mapping[bytes, bytes | None]) -> None:
        """Write a change set (None deletes)."""
        for key, value in changes.items():
            if value is None:
                self.items.pop(key, None)
            else:
                self.items[key] = value


class Overlay:
    """Pending writes and events over a reader; nested layers commit into their parent."""

    __slots__ = ("_base", "_parent", "writes", "events")

    def __init__(self, base: StateReader, parent: "Overlay | None" = None):
        self._base = base
        self._parent = parent
        self.writes: dict[bytes, bytes | None] = {}
        self.events: list[types_pb2.Event] = []

    def get(self, key: bytes) -> bytes | None:
        layer: Overlay | None = self
        while layer is not None:
            writes = layer.writes
            if key in writes:
                return writes[key]
            layer = layer._parent
        return self._base.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self.writes[key] = value

    def delete(self, key: bytes) -> None:
        self.writes[key] = _DELETED

    def deposit_event(self, event: types_pb2.Event) -> None:
        """Record an event; it is kept only if this layer is committed."""
        self.events.append(event)

    def child(self) -> "Overlay":
        """A nested layer for one transaction or call."""
        return Overlay(self._base, self)

    def commit(self) -> None:
        """Merge this layer's writes and events into its parent."""
        parent = self._parent
        if parent is None:
            raise ValueError("the root overlay has no parent to commit into")
        parent.writes.update(self.writes)
        parent.events.extend(self.events)
        self.discard()

    def discard(self) -> None:
        """Drop this layer's writes and events."""
        self.writes = {}
        self.events = []

    def take_events(self) -> list[types_pb2.Event]:
        """Return and clear the events recorded in this layer."""
        events, self.events = self.events, []
        return events

    def changes(self) -> dict[bytes, bytes | None]:
        """The writes of this layer, for the chain to commit (None means deleted)."""
        return dict(self.writes)

    def iter_written(self, prefix: bytes) -> Iterator[tuple[bytes, bytes | None]]:
        """Writes of this layer under a key prefix, sorted by key."""
        for key in sorted(k for k in self.writes if k.startswith(prefix)):
            yield key, self.writes[key]
