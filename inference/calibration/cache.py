"""The generation cache: each row's generations saved on disk, so a re-run can re-verify without
regenerating."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import NamedTuple

from inference.result import InferenceJob, InferenceResult


class Generation(NamedTuple):
    """One generated result, how long it took, and how many positions a steering executor changed."""

    result: InferenceResult
    seconds: float
    altered: int | None = None


class GenerationCache:
    """Generations (result and seconds) saved per row, so a re-run can re-verify without regenerating."""

    def __init__(self, directory: Path, scope: str, reuse: bool):
        self.directory = directory
        self.scope = scope
        self.reuse = reuse
        self._loaded: dict[str, dict[str, Generation]] = {}
        directory.mkdir(parents=True, exist_ok=True)
        if not reuse:
            for path in directory.glob(f"*-{scope}.jsonl"):
                path.unlink()

    def get(self, row_key: str, job: InferenceJob) -> Generation | None:
        """A saved generation of this job in this row, when reuse is on."""
        if not self.reuse:
            return None
        return self._entries(row_key).get(_job_key(job))

    def put(self, row_key: str, job: InferenceJob, generation: Generation) -> None:
        """Save a generation."""
        document = {"job": _job_key(job), "result": generation.result.to_json(), "seconds": generation.seconds,
                    "altered": generation.altered}
        with open(self._path(row_key), "a") as output:
            output.write(json.dumps(document) + "\n")

    def _entries(self, row_key: str) -> dict[str, Generation]:
        if row_key not in self._loaded:
            entries = {}
            path = self._path(row_key)
            for line in path.read_text().splitlines() if path.is_file() else ():
                document = json.loads(line)
                entries[document["job"]] = Generation(InferenceResult.from_json(document["result"]),
                                                      document["seconds"], document.get("altered"))
            self._loaded[row_key] = entries
        return self._loaded[row_key]

    def _path(self, row_key: str) -> Path:
        return self.directory / f"{row_key}-{self.scope}.jsonl"


def _job_key(job: InferenceJob) -> str:
    return hashlib.blake2b(json.dumps(job.to_json(), sort_keys=True).encode(), digest_size=16).hexdigest()
