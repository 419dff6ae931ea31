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
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import plyvel

from chain.state.tree import EMPTY_ROOT, StateTree
from proto import types_pb2

log = logging.getLogger(__name__)

FORMAT = b"inferchain-store/1"

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


class StoreError(Exception):
    """The data directory cannot be used: foreign, corrupted, or locked by another process."""


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


class StateView:
    """The latest committed state, as the runtime's StateReader."""

    __slots__ = ("_get",)

    def __init__(self, db):
        self._get = db.prefixed_db(_STATE).get

    def get(self, key: bytes) -> bytes | None:
        return self._get(key)


class ChainStore:
    """One node's database."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._db = _open(self.path)
        # About 1.44 internal nodes per key are cached (~215 bytes each): 500k covers ~350k keys.
        self.tree = StateTree(self._db.prefixed_db(_NODE), cache_size=500_000)
        self.state = StateView(self._db)
        self._head: Head | None = None
        try:
            self._check_format()
            self._head = self._read_head()
        except StoreError:
            self._db.close()
            raise

    # --- identity ----------------------------------------------------------

    def _check_format(self) -> None:
        stored = self._db.get(_META_FORMAT)
        if stored is None:
            if next(self._db.iterator(include_value=False), None) is not None:
                raise StoreError(f"{self.path} holds a LevelDB database that is not an inferchain data directory")
            return
        if stored != FORMAT:
            raise StoreError(f"{self.path} uses store format {stored!r}; this node reads {FORMAT!r}")

    def is_initialized(self) -> bool:
        return self._db.get(_META_FORMAT) is not None

    def identity(self) -> tuple[str, bytes]:
        """The chain id and genesis hash this directory belongs to."""
        return self._db.get(_META_CHAIN_ID, b"").decode(), self._db.get(_META_GENESIS, b"")

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
        batch.write()
        self._head = head
        return head

    # --- head --------------------------------------------------------------

    @property
    def head(self) -> Head:
        if self._head is None:
            raise StoreError(f"{self.path} has no chain yet")
        return self._head

    def _read_head(self) -> Head | None:
        raw = self._db.get(_META_HEAD)
        if raw is None:
            if self._db.get(_META_FORMAT) is not None:
                raise StoreError(f"{self.path} is corrupted: it has no head record")
            return None
        if len(raw) != _HEAD.size:
            raise StoreError(f"{self.path} is corrupted: the head record has {len(raw)} bytes")
        head = Head(*_HEAD.unpack(raw))
        if head.height > 0 and self._db.get(_BLOCK + head.hash) is None and self._db.get(_HEIGHT + _u64(head.height)) is None:
            raise StoreError(f"{self.path} is corrupted: the head block {head.hash.hex()} is missing")
        return head

    # --- writing blocks ----------------------------------------------------

    def compute_state_root(self, changes: Mapping[bytes, bytes | None], batch) -> bytes:
        """The state root after `changes` on top of the head; the new tree nodes go into batch."""
        return self.tree.update(self.head.state_root, changes, _PrefixedBatch(batch, _NODE))

    def new_batch(self):
        """A write batch for one block (tree nodes first, then commit_block)."""
        return self._db.write_batch(transaction=True, sync=True)

    def commit_block(self, write: BlockWrite, state_root: bytes, batch) -> Head:
        """Write a block, its receipts, index entries and state changes, then the new head, atomically."""
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
        batch.write()
        self._head = head
        return head

    # --- reading -----------------------------------------------------------

    def block_hash_at(self, height: int) -> bytes | None:
        return self._db.get(_HEIGHT + _u64(height))

    def finalized_block(self, block_hash: bytes) -> types_pb2.FinalizedBlock | None:
        raw = self._db.get(_BLOCK + block_hash)
        return None if raw is None else types_pb2.FinalizedBlock.FromString(raw)

    def receipts(self, block_hash: bytes) -> types_pb2.BlockReceipts | None:
        raw = self._db.get(_RECEIPTS + block_hash)
        return None if raw is None else types_pb2.BlockReceipts.FromString(raw)

    def transaction_location(self, tx_hash: bytes) -> TransactionLocation | None:
        raw = self._db.get(_TX + tx_hash)
        return None if raw is None else TransactionLocation(*_TX_LOCATION.unpack(raw))

    def contains_transactions(self, tx_hashes: Iterable[bytes]) -> set[bytes]:
        """Which of these transactions are already included."""
        get = self._db.get
        return {tx_hash for tx_hash in tx_hashes if get(_TX + tx_hash) is not None}

    def close(self) -> None:
        self._db.close()


class _PrefixedBatch:
    """Puts into a shared write batch under a key prefix (the tree writes nodes beside the block)."""

    __slots__ = ("_put", "_prefix")

    def __init__(self, batch, prefix: bytes):
        self._put = batch.put
        self._prefix = prefix

    def put(self, key: bytes, value: bytes) -> None:
        self._put(self._prefix + key, value)


def _u64(number: int) -> bytes:
    return number.to_bytes(8, "big")


def _open(path: Path):
    path.mkdir(parents=True, exist_ok=True)
    try:
        return plyvel.DB(
            str(path),
            create_if_missing=True,
            write_buffer_size=32 * 1024 * 1024,
            lru_cache_size=64 * 1024 * 1024,
            bloom_filter_bits=10,
        )
    except plyvel.CorruptionError as error:
        raise StoreError(f"{path} is corrupted and cannot be opened: {error}") from None
    except plyvel.IOError as error:
        message = str(error)
        if "lock" in message.lower():
            raise StoreError(f"{path} is in use by another running node") from None
        raise StoreError(f"{path} cannot be opened as a database: {message}") from None
    except plyvel.Error as error:
        raise StoreError(f"{path} cannot be opened as a database: {error}") from None
