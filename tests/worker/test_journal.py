"""The worker's journal: a salt and result survive a restart, and a damaged file is ignored, not fatal."""

from __future__ import annotations

import hashlib

from chain.worker.journal import Journal, JournalEntry
from inference.result import InferenceJob, InferenceResult

JOB_ID = hashlib.blake2b(b"journal job", digest_size=32).digest()


def entry(assigned_height: int = 4) -> JournalEntry:
    job = InferenceJob("ab" * 32, JOB_ID, "Hello", 3)
    result = InferenceResult(job, 7, (1, 2, 3), "x\u00e9y", (-5, -6, -7), "length")
    return JournalEntry(JOB_ID, assigned_height, b"\x42" * 32, result)


def test_an_entry_reads_back_exactly(tmp_path):
    journal = Journal(tmp_path / "journal")
    journal.write(entry())
    assert journal.read(JOB_ID) == entry()
    assert journal.job_ids() == [JOB_ID]
    assert not list((tmp_path / "journal").glob(".job-*")), "no staging file is left behind"


def test_a_second_write_replaces_the_first(tmp_path):
    journal = Journal(tmp_path)
    journal.write(entry(4))
    journal.write(entry(9))
    assert journal.read(JOB_ID).assigned_height == 9


def test_removal_and_absence(tmp_path):
    journal = Journal(tmp_path / "never-created")
    assert journal.read(JOB_ID) is None and journal.job_ids() == []
    journal.write(entry())
    journal.remove(JOB_ID)
    journal.remove(JOB_ID)
    assert journal.read(JOB_ID) is None


def test_a_damaged_file_is_ignored(tmp_path, caplog):
    journal = Journal(tmp_path)
    journal.write(entry())
    (tmp_path / f"{JOB_ID.hex()}.json").write_text("{not json")
    assert journal.read(JOB_ID) is None
    assert "unreadable" in caplog.text
