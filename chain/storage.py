"""The node's database (LevelDB via plyvel): blocks, transaction index, state, chain metadata.

Key space, one prefix per kind of record:
    meta/...            format version, chain id, genesis hash, the head
    block/<hash>        a FinalizedBlock (block + its commit), as stored and served
    receipts/<hash>     BlockReceipts of the block
    height/<u64 BE>     block hash at a height
    tx/<hash>           where a transaction was included: height (u64 BE) + index (u32 BE)
    state/<key>         the latest value of every state key (fast reads for the runtime)
    node/<hash>         state tree nodes (chain/state/tree.py), for roots and proofs at any height

A block and everything it changes go into one write batch, written with sync: a
`kill -9` at any moment leaves either the whole block or none of it.

Damage is refused, never rolled back silently. The database is opened with LevelDB's paranoid
checks and every read verifies block checksums; at open, the head must agree with its block, its
commit, the height index and the state tree (`_verify_head`); and the last head this node reported
is kept in a second record outside LevelDB (`ReportedHead`), because LevelDB drops a damaged record
at the end of its write-ahead log without error even with paranoid checks. A failed write stops
all later writes until the store is opened again: the log may end in a torn record, and anything
appended after it would be lost at the next open.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from hashlib import blake2b
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import plyvel
from google.protobuf.message import DecodeError

from chain.state.tree import EMPTY_ROOT, CorruptNodeError, MissingNodeError, StateTree
from proto import types_pb2

log = logging.getLogger(__name__)

# 2: Merkle transactions/receipts roots in headers, module parameters as protobuf in state.
FORMAT = b"inferchain-store/2"

_META_FORMAT = b"meta/format"
_META_CHAIN_ID = b"meta/chain_id"
_META_GENESIS = b"meta/genesis_hash"
_META_HEAD = b"meta/head"
_BLOCK = b"block/"
_RECEIPTS = b"receipts/"
_HEIGHT = b"height/"
_TX = b"tx/"
_STATE = b"state/"
_NODE = b"node/"

_HEAD = struct.Struct(">Q32s32s")  # height, block hash, state root
_TX_LOCATION = struct.Struct(">QI")

# LevelDB's own files; a directory holding any of them without CURRENT is a damaged database.
_LEVELDB_SUFFIXES = (".log", ".ldb", ".sst")
# Safe for a validator as written: its sign state and consensus log lie outside this directory.
_RECOVERY = (
    "restore it from a backup or resync (remove this directory only and start the node again; the sign state "
    "beside it keeps a validator from signing twice)"
)


class StoreError(Exception):
    """The data directory cannot be used: foreign, corrupted, or locked by another process."""


class StoreWriteError(StoreError):
    """A block could not be written; the store takes no more writes until it is opened again."""


def _damaged(path: Path, what: str) -> StoreError:
    return StoreError(f"{path} is damaged: {what}; {_RECOVERY}")


@dataclass(frozen=True)
class Head:
    """The latest committed block: its height, hash, and the state root after it."""

    height: int
    hash: bytes
    state_root: bytes


@dataclass(frozen=True)
class TransactionLocation:
    height: int
    index: int


@dataclass(frozen=True)
class BlockWrite:
    """Everything one block adds to the store, committed atomically."""

    height: int
    block_hash: bytes
    finalized: types_pb2.FinalizedBlock
    receipts: types_pb2.BlockReceipts
    transaction_hashes: list[bytes]
    state_changes: Mapping[bytes, bytes | None]


class _ChecksummedReads:
    """A (prefixed) database whose `get` verifies LevelDB's block checksums; a mismatch is a StoreError."""

    __slots__ = ("_get", "_path")

    def __init__(self, db, path: Path):
        self._get = db.get
        self._path = path

    def get(self, key: bytes) -> bytes | None:
        try:
            return self._get(key, verify_checksums=True)
        except plyvel.Error as error:
            raise _damaged(self._path, f"reading it failed ({_first_line(error)})") from None


class StateView(_ChecksummedReads):
    """The latest committed state, as the runtime's StateReader and IterableState."""

    __slots__ = ("_db",)

    def __init__(self, db, path: Path):
        state = db.prefixed_db(_STATE)
        super().__init__(state, path)
        self._db = state

    def iter_prefix(self, prefix: bytes = b"", after: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Stored (key, value) pairs under a prefix, sorted by key, each block's checksum verified; with `after`,
        only keys above it, the walk starting there (a listing's page token)."""
        stop = _prefix_end(prefix)
        if after is None or after < prefix:
            return self._walk(self._db.iterator(start=prefix, stop=stop, verify_checksums=True))
        if stop is not None and after >= stop:
            return iter(())
        return self._walk(self._db.iterator(start=after, include_start=False, stop=stop, verify_checksums=True))

    def iter_prefix_reverse(self, prefix: bytes, before: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs under a prefix, largest key first; with `before`, only keys below it.

        `before` continues a walk from the last key seen (a listing's page token).
        """
        stop = _prefix_end(prefix)
        if before is not None:
            # A key at or below the prefix itself leaves an empty range (start == stop).
            stop = max(prefix, before if stop is None else min(before, stop))
        # No lower bound given to LevelDB: plyvel 1.5's reverse iterator with `start` skips a range
        # whose only key is `start` itself; the walk ends at the first key below the prefix instead.
        return self._walk(self._db.iterator(stop=stop, reverse=True, verify_checksums=True), above=prefix)

    def _walk(self, iterator, above: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        # The iterator reads from an implicit snapshot taken when it was made: blocks committed
        # meanwhile do not show, and none is half seen. A reverse walk ends at its first key below `above`.
        try:
            with iterator:
                for key, value in iterator:
                    if above is not None and key < above:
                        return
                    yield key, value
        except plyvel.Error as error:
            raise _damaged(self._path, f"reading it failed ({_first_line(error)})") from None


class ChainStore:
    """One node's database."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._db = _open(self.path)
        # About 1.44 internal nodes per key are cached (~215 bytes each): 500k covers ~350k keys.
        self.tree = StateTree(_ChecksummedReads(self._db.prefixed_db(_NODE), self.path), cache_size=500_000)
        self.state = StateView(self._db, self.path)
        self._get = _ChecksummedReads(self._db, self.path).get
        self.reported = ReportedHead(self.path)
        self._head: Head | None = None
        self._write_failure: str | None = None
        try:
            self._check_format()
            self._head = self._read_head()
            if self._head is not None:
                self._verify_head(self._head)
                self._check_reported(self._head)
        except StoreError:
            self.close()
            raise
        except plyvel.Error as error:  # a checksum that does not match, while iterating
            self.close()
            raise _damaged(self.path, f"reading it failed ({_first_line(error)})") from None

    # --- identity ----------------------------------------------------------

    def _check_format(self) -> None:
        stored = self._get(_META_FORMAT)
        if stored is None:
            if next(self._db.iterator(include_value=False, verify_checksums=True), None) is not None:
                raise StoreError(f"{self.path} holds a LevelDB database that is not an inferchain data directory")
            return
        if stored != FORMAT:
            raise StoreError(
                f"{self.path} was written by another version of inferchain (store format "
                f"{stored.decode(errors='replace')[:40]}; this node reads {FORMAT.decode()}); "
                "remove the directory to start the chain again, or run the version that wrote it"
            )

    def is_initialized(self) -> bool:
        return self._get(_META_FORMAT) is not None

    def identity(self) -> tuple[str, bytes]:
        """The chain id and genesis hash this directory belongs to."""
        return (self._get(_META_CHAIN_ID) or b"").decode(), self._get(_META_GENESIS) or b""

    def check_identity(self, chain_id: str, genesis_hash: bytes) -> None:
        """Refuse a data directory of another chain."""
        stored_chain, stored_genesis = self.identity()
        if (stored_chain, stored_genesis) != (chain_id, genesis_hash):
            raise StoreError(
                f"{self.path} belongs to chain {stored_chain!r} (genesis {stored_genesis.hex()[:16]}…), "
                f"not {chain_id!r} (genesis {genesis_hash.hex()[:16]}…); use another --base-path"
            )

    def initialize(self, chain_id: str, genesis_hash: bytes, initial_height: int, state: Mapping[bytes, bytes]) -> Head:
        """Write the genesis state and identity into an empty directory."""
        batch = self._db.write_batch(transaction=True, sync=True)
        tree_batch = _PrefixedBatch(batch, _NODE)
        root = self.tree.update(EMPTY_ROOT, dict(state), tree_batch)
        for key, value in state.items():
            batch.put(_STATE + key, value)
        head = Head(initial_height - 1, genesis_hash, root)
        batch.put(_META_CHAIN_ID, chain_id.encode())
        batch.put(_META_GENESIS, genesis_hash)
        batch.put(_META_HEAD, _HEAD.pack(head.height, head.hash, head.state_root))
        batch.put(_META_FORMAT, FORMAT)
        self._write(batch, "the genesis state")
        self._record_reported(head)
        self._head = head
        return head

    # --- head --------------------------------------------------------------

    @property
    def head(self) -> Head:
        if self._head is None:
            raise StoreError(f"{self.path} has no chain yet")
        return self._head

    def _read_head(self) -> Head | None:
        raw = self._get(_META_HEAD)
        if raw is None:
            if self._get(_META_FORMAT) is not None:
                raise _damaged(self.path, "it has no head record")
            return None
        if len(raw) != _HEAD.size:
            raise _damaged(self.path, f"the head record has {len(raw)} bytes, not {_HEAD.size}")
        return Head(*_HEAD.unpack(raw))

    def _verify_head(self, head: Head) -> None:
        """The head, its block, its commit, the height index and the state root must agree."""
        if head.hash != self._get(_META_GENESIS):
            self._verify_head_block(head)
        try:
            self.tree.get(head.state_root, b"")  # reads the root and one path, each node checked against its hash
        except (MissingNodeError, CorruptNodeError) as error:
            raise _damaged(self.path, f"the state tree of the head #{head.height} is incomplete ({error})") from None

    def _verify_head_block(self, head: Head) -> None:
        where = f"the head block #{head.height} ({head.hash.hex()[:16]}…)"
        raw = self._get(_BLOCK + head.hash)
        if raw is None:
            raise _damaged(self.path, f"{where} is missing")
        try:
            finalized = types_pb2.FinalizedBlock.FromString(raw)
            header = types_pb2.Header.FromString(finalized.block.header)
        except DecodeError:
            raise _damaged(self.path, f"{where} does not decode") from None
        commit = finalized.commit
        problems = (
            (_block_hash(finalized.block.header) != head.hash, "its header does not hash to the head's hash"),
            (header.height != head.height, f"its header says height {header.height}"),
            (commit.block_hash != head.hash or commit.height != head.height, "its commit is for another block"),
            (header.state_root != head.state_root, "its state root is not the head's state root"),
            (self._get(_HEIGHT + _u64(head.height)) != head.hash, "the height index names another block"),
        )
        for broken, what in problems:
            if broken:
                raise _damaged(self.path, f"{where} disagrees with the head record: {what}")

    def _check_reported(self, head: Head) -> None:
        """Refuse a database that holds less than, or other than, what this node reported."""
        reported = self.reported.read()
        if reported is None:
            self.reported.record(head.height, head.hash)  # a directory from before the record existed
            return
        height, reported_hash = reported
        if height > head.height:
            raise _damaged(
                self.path,
                f"it ends at #{head.height} but this node reported #{height} ({ReportedHead.FILE_NAME}); "
                f"LevelDB lost the blocks after #{head.height}",
            )
        stored_hash = self._get(_HEIGHT + _u64(height)) or self._get(_META_GENESIS)
        if stored_hash != reported_hash:
            raise _damaged(
                self.path,
                f"its block #{height} is {stored_hash.hex()[:16]}… but this node reported "
                f"{reported_hash.hex()[:16]}… ({ReportedHead.FILE_NAME})",
            )
        if height < head.height:
            self.reported.record(head.height, head.hash)  # the node stopped between the block and its record

    # --- writing blocks ----------------------------------------------------

    def compute_state_root(self, changes: Mapping[bytes, bytes | None], batch) -> bytes:
        """The state root after `changes` on top of the head; the new tree nodes go into batch."""
        return self.tree.update(self.head.state_root, changes, _PrefixedBatch(batch, _NODE))

    def new_batch(self):
        """A write batch for one block (tree nodes first, then commit_block)."""
        return self._db.write_batch(transaction=True, sync=True)

    def commit_block(self, write: BlockWrite, state_root: bytes, batch) -> Head:
        """Write a block, its receipts, index entries and state changes, then the new head, atomically.

        The head in memory moves only after the block is durably written and recorded as reported;
        a StoreWriteError leaves it where it was, and no later write is attempted.
        """
        put = batch.put
        put(_BLOCK + write.block_hash, write.finalized.SerializeToString())
        put(_RECEIPTS + write.block_hash, write.receipts.SerializeToString())
        put(_HEIGHT + _u64(write.height), write.block_hash)
        for index, tx_hash in enumerate(write.transaction_hashes):
            put(_TX + tx_hash, _TX_LOCATION.pack(write.height, index))
        for key, value in write.state_changes.items():
            if value is None:
                batch.delete(_STATE + key)
            else:
                put(_STATE + key, value)
        head = Head(write.height, write.block_hash, state_root)
        put(_META_HEAD, _HEAD.pack(head.height, head.hash, head.state_root))
        self._write(batch, f"block #{write.height}")
        self._record_reported(head)
        self._head = head
        return head

    def _write(self, batch, what: str) -> None:
        """Write a batch with sync; after one failure refuse every later write.

        LevelDB may have appended part of the failed record to its log. A later record appended
        after that torn one would be dropped, with everything after it, when the log is replayed at
        the next open: blocks reported now would vanish and be built again differently.
        """
        if self._write_failure is not None:
            raise StoreWriteError(f"not writing {what}: an earlier write failed ({self._write_failure}); restart the node")
        try:
            batch.write()
        except plyvel.Error as error:
            self._write_failure = _first_line(error)
            raise StoreWriteError(f"writing {what} to {self.path} failed: {self._write_failure}") from None

    def _record_reported(self, head: Head) -> None:
        try:
            self.reported.record(head.height, head.hash)
        except StoreWriteError as error:
            self._write_failure = str(error)
            raise

    # --- reading -----------------------------------------------------------

    def block_hash_at(self, height: int) -> bytes | None:
        return self._get(_HEIGHT + _u64(height))

    def finalized_block(self, block_hash: bytes) -> types_pb2.FinalizedBlock | None:
        raw = self._get(_BLOCK + block_hash)
        return None if raw is None else types_pb2.FinalizedBlock.FromString(raw)

    def receipts(self, block_hash: bytes) -> types_pb2.BlockReceipts | None:
        raw = self._get(_RECEIPTS + block_hash)
        return None if raw is None else types_pb2.BlockReceipts.FromString(raw)

    def transaction_location(self, tx_hash: bytes) -> TransactionLocation | None:
        raw = self._get(_TX + tx_hash)
        return None if raw is None else TransactionLocation(*_TX_LOCATION.unpack(raw))

    def contains_transactions(self, tx_hashes: Iterable[bytes]) -> set[bytes]:
        """Which of these transactions are already included."""
        get = self._get
        return {tx_hash for tx_hash in tx_hashes if get(_TX + tx_hash) is not None}

    def close(self) -> None:
        self.reported.close()
        self._db.close()


class ReportedHead:
    """The last head this store committed and reported, kept in a small file beside LevelDB's own.

    Why a second record: LevelDB replays its write-ahead log at open and, even with paranoid checks,
    takes a damaged record at the log's end for a write cut off by a crash and drops it without
    error (a flipped length field does this). The blocks in it, already reported to clients, would
    be gone and the next ones built differently. This record is written after each block's batch,
    so at open a database that ends below it, or differs at its height, is refused.

    The file holds two slots written in turn (height, hash, checksum), so a write torn by a crash
    leaves the other slot whole; it is created complete by a rename. LevelDB ignores files it did
    not name, so the record lives in the database directory and moves with its copies.
    """

    FILE_NAME = "INFERCHAIN-HEAD"
    _SLOT = struct.Struct(">Q32s16s")  # height, block hash, blake2b-128 of the first 40 bytes

    def __init__(self, directory: Path):
        self.path = Path(directory) / self.FILE_NAME
        self._fd: int | None = None

    def read(self) -> tuple[int, bytes] | None:
        """The highest intact (height, hash) recorded, or None when there is no record file."""
        try:
            content = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreError(f"cannot read {self.path}: {error.strerror}") from None
        slots = [self._parse(content[offset:offset + self._SLOT.size]) for offset in (0, self._SLOT.size)]
        intact = [slot for slot in slots if slot is not None]
        if not intact:
            raise _damaged(self.path.parent, f"{self.FILE_NAME}, the record of the last reported block, is unreadable")
        return max(intact)

    def record(self, height: int, block_hash: bytes) -> None:
        """Durably record a committed head; raises StoreWriteError when the disk refuses."""
        slot = self._pack(height, block_hash)
        try:
            if self._fd is None and not self.path.exists():
                self._create(slot)
                return
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR)
            os.pwrite(self._fd, slot, (height % 2) * self._SLOT.size)
            os.fdatasync(self._fd)
        except OSError as error:
            raise StoreWriteError(f"recording block #{height} in {self.path} failed: {error.strerror}") from None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _create(self, slot: bytes) -> None:
        temporary = self.path.with_name(self.FILE_NAME + ".new")
        with open(temporary, "wb") as file:
            file.write(slot + slot)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    @classmethod
    def _pack(cls, height: int, block_hash: bytes) -> bytes:
        body = struct.pack(">Q32s", height, block_hash)
        return body + blake2b(body, digest_size=16).digest()

    @classmethod
    def _parse(cls, slot: bytes) -> tuple[int, bytes] | None:
        if len(slot) != cls._SLOT.size:
            return None
        height, block_hash, checksum = cls._SLOT.unpack(slot)
        if blake2b(slot[:40], digest_size=16).digest() != checksum:
            return None
        return height, block_hash


class _PrefixedBatch:
    """Puts into a shared write batch under a key prefix (the tree writes nodes beside the block)."""

    __slots__ = ("_put", "_prefix")

    def __init__(self, batch, prefix: bytes):
        self._put = batch.put
        self._prefix = prefix

    def put(self, key: bytes, value: bytes) -> None:
        self._put(self._prefix + key, value)


def _prefix_end(prefix: bytes) -> bytes | None:
    """The least key above every key that starts with `prefix`; None when there is none."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def _u64(number: int) -> bytes:
    return number.to_bytes(8, "big")


def _block_hash(header: bytes) -> bytes:
    """A block's hash: blake2b-256 of its header bytes (docs/protocol.md)."""
    return blake2b(header, digest_size=32).digest()


def _first_line(error: Exception) -> str:
    """LevelDB's status text (plyvel passes it as bytes), its first line only."""
    detail = error.args[0] if error.args else ""
    if isinstance(detail, bytes):
        detail = detail.decode(errors="replace")
    lines = str(detail).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _open(path: Path):
    _prepare_directory(path)
    try:
        return plyvel.DB(
            str(path),
            create_if_missing=True,
            # Stop at the first sign of damage (a bad log record, a bad table block) instead of
            # skipping it: a skipped log record is a block silently rolled back.
            paranoid_checks=True,
            write_buffer_size=32 * 1024 * 1024,
            lru_cache_size=64 * 1024 * 1024,
            bloom_filter_bits=10,
        )
    except plyvel.CorruptionError as error:
        raise _damaged(path, f"it cannot be opened ({_first_line(error)})") from None
    except plyvel.IOError as error:
        message = _first_line(error)
        if "lock" in message.lower():
            raise StoreError(f"{path} is in use by another running node") from None
        raise StoreError(f"{path} cannot be opened as a database: {message}") from None
    except plyvel.Error as error:
        raise StoreError(f"{path} cannot be opened as a database: {_first_line(error)}") from None


def _prepare_directory(path: Path) -> None:
    """Create the directory if needed; refuse one whose LevelDB files lost their CURRENT file.

    Without CURRENT, LevelDB would create a new empty database beside the old files.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        names = [entry.name for entry in path.iterdir()]
    except OSError as error:
        raise StoreError(f"cannot use {path} as the data directory: {error.strerror}") from None
    if "CURRENT" in names:
        return
    if any(name.startswith("MANIFEST-") or name.endswith(_LEVELDB_SUFFIXES) for name in names):
        raise _damaged(path, "LevelDB's CURRENT file is missing")
