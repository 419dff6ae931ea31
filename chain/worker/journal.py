"""What the worker must remember across a restart: each job's salt and result, one small file per job.

A commitment hides the result behind a salt; without the salt the result can never be revealed
and the assignment is missed. So the salt and the result are written (atomically) before the
commitment leaves the worker, and removed once the job needs nothing more from this executor.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from chain.durable import write_durably

from inference.errors import InvalidResult
from inference.result import InferenceResult
from runtime.jobs.params import SALT_BYTES

log = logging.getLogger("inferchain.worker")

JOURNAL_VERSION = 1


@dataclass(frozen=True)
class JournalEntry:
    """One assignment's salt and result: enough to commit and reveal again after a restart."""

    job_id: bytes
    # The assignment it belongs to (an executor may be assigned the same job again after a miss).
    assigned_height: int
    salt: bytes
    result: InferenceResult


class Journal:
    """One JSON file per job under `directory` (created on first write)."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def write(self, entry: JournalEntry) -> None:
        """Store an entry durably (chain/durable.py): the old file or the new one survives a crash, never a torn one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        document = {
            "version": JOURNAL_VERSION,
            "job_id": entry.job_id.hex(),
            "assigned_height": entry.assigned_height,
            "salt": entry.salt.hex(),
            "result": entry.result.to_json(),
        }
        write_durably(self._path(entry.job_id), json.dumps(document, ensure_ascii=False).encode())

    def read(self, job_id: bytes) -> JournalEntry | None:
        """The job's entry, or None when there is none or it cannot be read (said in the log)."""
        path = self._path(job_id)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            entry = JournalEntry(
                job_id=bytes.fromhex(document["job_id"]),
                assigned_height=int(document["assigned_height"]),
                salt=bytes.fromhex(document["salt"]),
                result=InferenceResult.from_json(document["result"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, InvalidResult) as error:
            log.warning("journal file %s is unreadable (%s); ignoring it", path, error)
            return None
        if entry.job_id != job_id or len(entry.salt) != SALT_BYTES:
            log.warning("journal file %s does not belong to job %s; ignoring it", path, job_id.hex())
            return None
        return entry

    def remove(self, job_id: bytes) -> None:
        self._path(job_id).unlink(missing_ok=True)

    def job_ids(self) -> list[bytes]:
        """Every job with a file, in name order."""
        if not self.directory.is_dir():
            return []
        ids = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                job_id = bytes.fromhex(path.stem)
            except ValueError:
                continue
            if len(job_id) == 32:
                ids.append(job_id)
        return ids

    def _path(self, job_id: bytes) -> Path:
        return self.directory / f"{job_id.hex()}.json"
