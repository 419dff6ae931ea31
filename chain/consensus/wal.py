"""The consensus write-ahead log: the inputs of the height being decided, in order, on disk.

Entries are keyed by height and sequence number in a LevelDB of their own beside the chain's
database. Inputs are appended without waiting for the disk; `sync()` (called before this validator
sends anything it signed) makes them and everything before them durable, so what was sent can
always be rebuilt by replaying the log. Heights below the next one to decide are deleted once
their block is committed.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterator

import plyvel

from proto import consensus_pb2

_KEY = struct.Struct(">QQ")
_SYNC_KEY = b"\xff/sync"


# Safe to follow as written: every signature passes the sign state, which is not in the log.
_DAMAGE_ADVICE = (
    "stop the node, move that directory away and start again: the sign state keeps the validator from "
    "signing twice (docs/operator.md, 'Recovering a validator')"
)


def _first_line(error: Exception) -> str:
    """plyvel's message (it passes LevelDB's status as bytes), first line, at most 200 characters."""
    detail = error.args[0] if error.args else ""
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    detail = str(detail).strip()
    return detail.splitlines()[0][:200] if detail else type(error).__name__


class WalError(Exception):
    """The log cannot be opened or written; the message names the directory."""


class Wal:
    def __init__(self, path: Path):
        path.mkdir(parents=True, exist_ok=True)
        try:
            # Paranoid checks: a damaged log is refused at open, never replayed in part without a word.
            self._db = plyvel.DB(str(path), create_if_missing=True, paranoid_checks=True)
        except plyvel.CorruptionError as error:
            raise WalError(f"the consensus log at {path} is damaged ({_first_line(error)}); {_DAMAGE_ADVICE}") from None
        except plyvel.Error as error:
            raise WalError(f"cannot open the consensus log at {path}: {_first_line(error)}") from None
        self.path = path
        self._next = self._last_sequence() + 1

    def _last_sequence(self) -> int:
        with self._db.iterator(reverse=True, include_value=False, stop=_SYNC_KEY) as keys:
            for key in keys:
                if len(key) == _KEY.size:
                    return _KEY.unpack(key)[1]
        return 0

    def append(self, height: int, entry: consensus_pb2.WalEntry) -> None:
        try:
            self._db.put(_KEY.pack(height, self._next), entry.SerializeToString())
        except plyvel.Error as error:
            raise WalError(f"writing the consensus log at {self.path} failed: {_first_line(error)}") from None
        self._next += 1

    def sync(self) -> None:
        """Make every appended entry durable (one synchronous write flushes the log before it)."""
        try:
            self._db.put(_SYNC_KEY, b"", sync=True)
        except plyvel.Error as error:
            raise WalError(f"writing the consensus log at {self.path} failed: {_first_line(error)}") from None

    def entries(self, height: int) -> Iterator[consensus_pb2.WalEntry]:
        """The entries of `height`, in the order they were appended; WalError when the log is damaged."""
        start, stop = _KEY.pack(height, 0), _KEY.pack(height + 1, 0)
        try:
            for key, value in self._db.iterator(start=start, stop=stop):
                entry = consensus_pb2.WalEntry()
                try:
                    entry.ParseFromString(value)
                except Exception:
                    raise WalError(f"the consensus log at {self.path} holds an unreadable entry for #{height} "
                                   f"(sequence {_KEY.unpack(key)[1]}); {_DAMAGE_ADVICE}") from None
                yield entry
        except plyvel.CorruptionError as error:
            raise WalError(f"the consensus log at {self.path} is damaged ({_first_line(error)}); {_DAMAGE_ADVICE}") from None

    def forget_below(self, height: int) -> None:
        """Delete the entries of every height below `height`."""
        try:
            with self._db.write_batch() as batch:
                for key in self._db.iterator(stop=_KEY.pack(height, 0), include_value=False):
                    batch.delete(key)
        except plyvel.Error as error:
            raise WalError(f"writing the consensus log at {self.path} failed: {_first_line(error)}") from None

    def close(self) -> None:
        self._db.close()
