"""The consensus write-ahead log: damage is refused with one line, never replayed in part without a word."""

from __future__ import annotations

import plyvel
import pytest

from chain.consensus.wal import Wal, WalError
from proto import consensus_pb2


def timeout_entry(round_number: int) -> consensus_pb2.WalEntry:
    return consensus_pb2.WalEntry(timeout=consensus_pb2.WalTimeout(step="propose", height=5, round=round_number))


def written_log(path, count: int = 200) -> None:
    wal = Wal(path)
    for round_number in range(count):
        wal.append(5, timeout_entry(round_number))
    wal.sync()
    wal.close()


def test_entries_come_back_in_order_and_committed_heights_are_forgotten(tmp_path):
    written_log(tmp_path, 3)
    wal = Wal(tmp_path)
    assert [entry.timeout.round for entry in wal.entries(5)] == [0, 1, 2]
    wal.forget_below(6)
    assert list(wal.entries(5)) == []
    wal.close()


def test_a_damaged_log_is_refused_at_open_with_one_line_that_says_what_to_do(tmp_path):
    written_log(tmp_path)
    [log_file] = tmp_path.glob("*.log")
    data = bytearray(log_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    log_file.write_bytes(bytes(data))
    with pytest.raises(WalError) as raised:
        Wal(tmp_path)
    message = str(raised.value)
    assert "is damaged (Corruption: checksum mismatch)" in message and "move that directory away" in message
    assert "\n" not in message and "b'" not in message


def test_an_entry_that_does_not_parse_stops_the_replay_with_one_line(tmp_path):
    written_log(tmp_path, 2)
    db = plyvel.DB(str(tmp_path))
    key = next(key for key, _ in db.iterator() if len(key) == 16)
    db.put(key, b"\xff\xff\xff")  # no WalEntry
    db.close()
    wal = Wal(tmp_path)
    with pytest.raises(WalError, match="unreadable entry for #5"):
        list(wal.entries(5))
    wal.close()
