"""The LevelDB store: genesis, atomic block commits, reopening, and refusing foreign or broken data."""

from __future__ import annotations

from pathlib import Path

import plyvel
import pytest

from chain.genesis import dev_genesis_document, parse_genesis
from chain.storage import BlockWrite, ChainStore, StoreError
from chain.state.proof import verify_proof
from proto import types_pb2
from runtime import system

GENESIS = parse_genesis(dev_genesis_document())


def initialized(path: Path) -> ChainStore:
    store = ChainStore(path)
    store.initialize(GENESIS.chain_id, GENESIS.hash, GENESIS.initial_height, GENESIS.state())
    return store


def commit_empty_block(store: ChainStore, changes: dict[bytes, bytes | None]) -> bytes:
    height = store.head.height + 1
    block_hash = height.to_bytes(32, "big")
    batch = store.new_batch()
    root = store.compute_state_root(changes, batch)
    write = BlockWrite(height, block_hash, types_pb2.FinalizedBlock(), types_pb2.BlockReceipts(), [b"\x05" * 32], changes)
    store.commit_block(write, root, batch)
    return root


def test_genesis_state_is_readable_and_provable(tmp_path):
    store = initialized(tmp_path / "db")
    alice_key = system.account_key(GENESIS.validators[0].public_key)
    value = store.state.get(alice_key)
    assert value is not None
    got, proof = store.tree.get_with_proof(store.head.state_root, alice_key)
    assert got == value and verify_proof(store.head.state_root, alice_key, value, proof)
    store.close()


def test_commit_survives_reopening(tmp_path):
    store = initialized(tmp_path / "db")
    root = commit_empty_block(store, {b"test/key": b"value", system.CHAIN_KEY: store.state.get(system.CHAIN_KEY)})
    store.close()
    reopened = ChainStore(tmp_path / "db")
    assert reopened.head.height == 1 and reopened.head.state_root == root
    assert reopened.state.get(b"test/key") == b"value"
    assert reopened.transaction_location(b"\x05" * 32).height == 1
    assert reopened.block_hash_at(1) == (1).to_bytes(32, "big")
    reopened.check_identity(GENESIS.chain_id, GENESIS.hash)
    reopened.close()


def test_unwritten_batch_leaves_no_trace(tmp_path):
    store = initialized(tmp_path / "db")
    head = store.head
    batch = store.new_batch()
    store.compute_state_root({b"test/key": b"value"}, batch)
    store.close()  # the batch was never written: a crash before commit
    reopened = ChainStore(tmp_path / "db")
    assert reopened.head == head and reopened.state.get(b"test/key") is None
    reopened.close()


def test_other_chain_is_refused(tmp_path):
    initialized(tmp_path / "db").close()
    store = ChainStore(tmp_path / "db")
    with pytest.raises(StoreError, match="belongs to chain"):
        store.check_identity("another-chain", b"\x01" * 32)
    store.close()


def test_foreign_leveldb_is_refused(tmp_path):
    foreign = plyvel.DB(str(tmp_path / "db"), create_if_missing=True)
    foreign.put(b"somebody", b"else")
    foreign.close()
    with pytest.raises(StoreError, match="not an inferchain data directory"):
        ChainStore(tmp_path / "db")


def test_corrupted_directory_is_refused(tmp_path):
    initialized(tmp_path / "db").close()
    for path in (tmp_path / "db").iterdir():
        if path.name.startswith("MANIFEST") or path.name == "CURRENT":
            path.write_bytes(b"\x00garbage\xff" * 10)
    with pytest.raises(StoreError, match="cannot be opened|corrupted"):
        ChainStore(tmp_path / "db")


def test_second_opener_is_told_the_directory_is_in_use(tmp_path):
    store = initialized(tmp_path / "db")
    with pytest.raises(StoreError, match="in use"):
        ChainStore(tmp_path / "db")
    store.close()
