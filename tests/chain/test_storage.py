"""The LevelDB store: genesis, atomic block commits, reopening, and refusing foreign, broken or damaged data."""

from __future__ import annotations

import struct
from pathlib import Path

import plyvel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.genesis import dev_genesis_document, parse_genesis
from chain.storage import BlockWrite, ChainStore, ReportedHead, StoreError, StoreWriteError
from chain.state.proof import verify_proof
from proto import state_pb2, types_pb2
from runtime import models, system
from runtime.hashing import blake2b_256
from tests.nodes import fill_filesystem

GENESIS = parse_genesis(dev_genesis_document())
RECOVERY = "restore it from a backup or resync"


def initialized(path: Path) -> ChainStore:
    store = ChainStore(path)
    store.initialize(GENESIS.chain_id, GENESIS.hash, GENESIS.initial_height, GENESIS.state())
    return store


def commit_block(store: ChainStore, changes: dict[bytes, bytes | None] | None = None, tx_hashes=()) -> bytes:
    """Commit a block that agrees with itself (header hash, height, commit, state root); its hash."""
    height = store.head.height + 1
    changes = changes if changes is not None else {b"test/height": height.to_bytes(8, "big")}
    batch = store.new_batch()
    root = store.compute_state_root(changes, batch)
    header = types_pb2.Header(chain_id=GENESIS.chain_id, height=height, parent_hash=store.head.hash, state_root=root)
    header_bytes = header.SerializeToString()
    block_hash = blake2b_256(header_bytes)
    finalized = types_pb2.FinalizedBlock(
        block=types_pb2.Block(header=header_bytes), commit=types_pb2.Commit(height=height, block_hash=block_hash)
    )
    write = BlockWrite(height, block_hash, finalized, types_pb2.BlockReceipts(), list(tx_hashes), changes)
    store.commit_block(write, root, batch)
    return block_hash


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
    block_hash = commit_block(
        store, {b"test/key": b"value", system.CHAIN_KEY: store.state.get(system.CHAIN_KEY)}, [b"\x05" * 32]
    )
    root = store.head.state_root
    store.close()
    reopened = ChainStore(tmp_path / "db")
    assert reopened.head.height == 1 and reopened.head.state_root == root
    assert reopened.state.get(b"test/key") == b"value"
    assert reopened.transaction_location(b"\x05" * 32).height == 1
    assert reopened.block_hash_at(1) == block_hash
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
    with pytest.raises(StoreError, match="cannot be opened"):
        ChainStore(tmp_path / "db")


def test_second_opener_is_told_the_directory_is_in_use(tmp_path):
    store = initialized(tmp_path / "db")
    with pytest.raises(StoreError, match="in use"):
        ChainStore(tmp_path / "db")
    store.close()


# --- damage is refused at open, with what is broken and how to recover ---------------------------


def committed_store(path: Path, blocks: int) -> list[bytes]:
    """A closed store with `blocks` blocks; their hashes."""
    store = initialized(path)
    hashes = [commit_block(store) for _ in range(blocks)]
    store.close()
    return hashes


def raw_head(db) -> tuple[int, bytes, bytes]:
    return struct.unpack(">Q32s32s", db.get(b"meta/head"))


def break_state_root(db) -> None:
    height, block_hash, _ = raw_head(db)
    db.put(b"meta/head", struct.pack(">Q32s32s", height, block_hash, b"\x07" * 32))


def delete_head_block(db) -> None:
    db.delete(b"block/" + raw_head(db)[1])


def repoint_height_index(db) -> None:
    height = raw_head(db)[0]
    db.put(b"height/" + height.to_bytes(8, "big"), b"\x07" * 32)


def commit_for_another_block(db) -> None:
    key = b"block/" + raw_head(db)[1]
    finalized = types_pb2.FinalizedBlock.FromString(db.get(key))
    finalized.commit.block_hash = b"\x07" * 32
    db.put(key, finalized.SerializeToString())


def rewrite_header(db) -> None:
    key = b"block/" + raw_head(db)[1]
    finalized = types_pb2.FinalizedBlock.FromString(db.get(key))
    header = types_pb2.Header.FromString(finalized.block.header)
    header.time_ms += 1
    finalized.block.header = header.SerializeToString()
    db.put(key, finalized.SerializeToString())


def delete_state_root_node(db) -> None:
    db.delete(b"node/" + raw_head(db)[2])


@pytest.mark.parametrize(
    "damage, words",
    [
        (break_state_root, "its state root is not the head's state root"),
        (delete_head_block, "is missing"),
        (repoint_height_index, "the height index names another block"),
        (commit_for_another_block, "its commit is for another block"),
        (rewrite_header, "its header does not hash to the head's hash"),
        (delete_state_root_node, "the state tree of the head #3 is incomplete"),
    ],
)
def test_a_head_that_disagrees_with_its_block_or_state_is_refused(tmp_path, damage, words):
    committed_store(tmp_path / "db", 3)
    db = plyvel.DB(str(tmp_path / "db"))
    damage(db)
    db.close()
    with pytest.raises(StoreError) as refusal:
        ChainStore(tmp_path / "db")
    message = str(refusal.value)
    assert "is damaged" in message and words in message and RECOVERY in message, message


def log_file(db_path: Path) -> Path:
    (found,) = db_path.glob("*.log")
    return found


def last_log_record(log: bytes) -> int:
    """Offset of the last physical record in a LevelDB log (32 KiB blocks; header: crc32c, length LE16, type)."""
    offset, last = 0, None
    while offset + 7 <= len(log):
        room = 32768 - offset % 32768
        if room < 7:  # a block's tail too short for a header is padding
            offset += room
            continue
        last = offset
        offset += 7 + int.from_bytes(log[offset + 4:offset + 6], "little")
    return last


def test_a_block_leveldb_drops_from_the_end_of_its_log_is_refused(tmp_path):
    db_path = tmp_path / "db"
    committed_store(db_path, 5)  # closing keeps the log: LevelDB replays it at the next open
    log = bytearray(log_file(db_path).read_bytes())
    struct.pack_into("<H", log, last_log_record(log) + 4, 0xFFFF)  # block #5's record now seems cut off
    log_file(db_path).write_bytes(bytes(log))
    # LevelDB, paranoid checks and all, takes this for a write cut off by a crash and opens at #4:
    raw = plyvel.DB(str(db_path), paranoid_checks=True)
    assert raw_head(raw)[0] == 4
    raw.close()
    with pytest.raises(StoreError, match=r"is damaged: it ends at #4 but this node reported #5 .*" + RECOVERY):
        ChainStore(db_path)


def test_bytes_flipped_in_the_middle_of_the_log_are_refused(tmp_path):
    db_path = tmp_path / "db"
    committed_store(db_path, 6)
    log = bytearray(log_file(db_path).read_bytes())
    middle = len(log) // 2
    log[middle:middle + 4] = bytes(byte ^ 0xFF for byte in log[middle:middle + 4])
    log_file(db_path).write_bytes(bytes(log))
    with pytest.raises(StoreError, match="is damaged: .*" + RECOVERY):
        ChainStore(db_path)


def test_a_damaged_table_block_is_refused_when_read(tmp_path):
    db_path = tmp_path / "db"
    committed_store(db_path, 3)
    raw = plyvel.DB(str(db_path))
    raw.compact_range()  # everything into table files, whose blocks carry checksums
    raw.close()
    table = max(db_path.glob("*.ldb"), key=lambda path: path.stat().st_size)
    content = bytearray(table.read_bytes())
    third = len(content) // 3
    content[third:2 * third] = bytes(byte ^ 0x55 for byte in content[third:2 * third])
    table.write_bytes(bytes(content))
    with pytest.raises(StoreError, match="is damaged: .*" + RECOVERY):
        store = ChainStore(db_path)  # refused here when the head's records sit in the damaged blocks,
        for key in GENESIS.state():
            store.state.get(key)  # else here, never a wrong value
        store.close()


def test_a_missing_current_file_is_reported_as_damage(tmp_path):
    committed_store(tmp_path / "db", 2)
    (tmp_path / "db" / "CURRENT").unlink()
    with pytest.raises(StoreError, match="is damaged: LevelDB's CURRENT file is missing; " + RECOVERY):
        ChainStore(tmp_path / "db")


def test_a_data_directory_below_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreError, match="cannot use .* as the data directory"):
        ChainStore(tmp_path / "file" / "db")


def test_the_reported_head_survives_a_torn_slot(tmp_path):
    record = ReportedHead(tmp_path)
    record.record(1, b"\x01" * 32)
    record.record(2, b"\x02" * 32)
    record.close()
    content = bytearray(record.path.read_bytes())
    content[5] ^= 0xFF  # height 2 lives in slot 0
    record.path.write_bytes(bytes(content))
    assert ReportedHead(tmp_path).read() == (1, b"\x01" * 32)
    content[60] ^= 0xFF
    record.path.write_bytes(bytes(content))
    with pytest.raises(StoreError, match="is damaged: INFERCHAIN-HEAD, the record of the last reported block, is unreadable"):
        ReportedHead(tmp_path).read()


def test_an_older_directory_without_the_reported_head_gets_one(tmp_path):
    hashes = committed_store(tmp_path / "db", 2)
    (tmp_path / "db" / ReportedHead.FILE_NAME).unlink()
    ChainStore(tmp_path / "db").close()
    assert ReportedHead(tmp_path / "db").read() == (2, hashes[-1])


# --- a failed write (a full disk) ----------------------------------------------------------------



def test_a_failed_write_keeps_the_head_and_refuses_every_later_write(small_disk):
    store = initialized(small_disk / "db")
    commit_block(store)
    filler = fill_filesystem(small_disk / "filler")
    with pytest.raises(StoreWriteError) as failure:
        for _ in range(1000):  # the log's last page may still take a block or two
            commit_block(store)
    assert "No space left on device" in str(failure.value)
    head = store.head
    flat_value = store.state.get(b"test/height")
    assert flat_value == head.height.to_bytes(8, "big")  # the failed block's writes are nowhere
    filler.unlink()
    with pytest.raises(StoreWriteError, match="an earlier write failed"):
        commit_block(store)  # space is back, but the log may end in a torn record: never append after it
    assert store.head == head
    store.close()
    reopened = ChainStore(small_disk / "db")
    assert reopened.head == head and reopened.state.get(b"test/height") == flat_value
    reopened.close()


def test_a_directory_written_by_an_older_store_format_is_refused_with_what_to_do(tmp_path):
    initialized(tmp_path / "db").close()
    db = plyvel.DB(str(tmp_path / "db"))
    db.put(b"meta/format", b"inferchain-store/1")
    db.close()
    with pytest.raises(StoreError, match="another version of inferchain .*store format inferchain-store/1.*remove the directory"):
        ChainStore(tmp_path / "db")


# --- walks that start after a key (a page token) ---------------------------------------------------

_KEYS = st.binary(min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(keys=st.sets(_KEYS, max_size=30), prefix=st.binary(max_size=3), after=st.none() | st.binary(max_size=6))
def test_a_walk_after_a_key_matches_a_sorted_dict(tmp_path_factory, keys, prefix, after):
    store = ChainStore(tmp_path_factory.mktemp("after") / "db")
    try:
        state = {key: key[::-1] for key in keys}
        store.initialize("walk", bytes(32), 1, state)
        expected = [(key, state[key]) for key in sorted(keys)
                    if key.startswith(prefix) and (after is None or key > after)]
        assert list(store.state.iter_prefix(prefix, after)) == expected
    finally:
        store.close()


class _CountingView:
    """The store's state view, counting the records its prefix walks read from LevelDB."""

    def __init__(self, view):
        self.view, self.read = view, 0

    def get(self, key):
        return self.view.get(key)

    def iter_prefix(self, prefix=b"", after=None):
        for item in self.view.iter_prefix(prefix, after):
            self.read += 1
            yield item


def test_a_page_of_models_from_leveldb_reads_only_the_page(tmp_path):
    genesis = parse_genesis(dev_genesis_document())
    state = genesis.state()
    [template] = [types_pb2.ModelInfo.FromString(value) for key, value in state.items()
                  if key.startswith(models.MODEL_PREFIX)]
    ids = sorted([template.id, *(bytes([index]) * 32 for index in range(1, 31))])
    for model_id in ids:
        template.id = model_id
        state[models.MODEL_PREFIX + model_id] = template.SerializeToString(deterministic=True)
    store = ChainStore(tmp_path / "db")
    store.initialize(genesis.chain_id, genesis.hash, genesis.initial_height, state)
    try:
        view = _CountingView(store.state)
        page = models.query_models(view, state_pb2.ModelListQuery(after=ids[19], limit=4))
        assert [model.id for model in page.models] == ids[20:24] and page.more and view.read == 5
    finally:
        store.close()
