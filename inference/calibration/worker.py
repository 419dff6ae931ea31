"""The second process: generate jobs in a fresh Python process, an honest variation of the reference.

The parent runs `python -m inference.calibration.worker MODEL MODEL_ID JOBS RESULTS THREADS CONTEXT
BATCH`; the child writes one JSON line (result and seconds) per job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from inference.calibration.plan import _timed
from inference.engine import Engine, EngineConfig
from inference.result import InferenceJob, InferenceResult


def generate_in_process(model_path: Path, model_id: str, config: EngineConfig,
                        jobs: Sequence[InferenceJob]) -> list[tuple[InferenceResult, float]]:
    """Generate jobs in a fresh Python process (an honest variation: another process, same config)."""
    with tempfile.TemporaryDirectory(prefix="inferchain-worker-") as scratch:
        jobs_file = Path(scratch) / "jobs.json"
        results_file = Path(scratch) / "results.jsonl"
        jobs_file.write_text(json.dumps([job.to_json() for job in jobs]))
        command = [
            sys.executable, "-m", "inference.calibration.worker", os.fspath(model_path), model_id,
            os.fspath(jobs_file), os.fspath(results_file),
            str(config.threads), str(config.context), str(config.batch),
        ]
        subprocess.run(command, check=True, env=_child_environment())
        return [_read_worker_line(line) for line in results_file.read_text().splitlines()]


def _child_environment() -> dict:
    # The child must import this very package, installed or not.
    root = os.fspath(Path(__file__).resolve().parents[2])
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, (root, environment.get("PYTHONPATH"))))
    return environment


def _read_worker_line(line: str) -> tuple[InferenceResult, float]:
    document = json.loads(line)
    return InferenceResult.from_json(document["result"]), float(document["seconds"])


def _worker_main(arguments: Sequence[str]) -> int:
    model_path, model_id, jobs_file, results_file, threads, context, batch = arguments
    config = EngineConfig(threads=int(threads), context=int(context), batch=int(batch), gpu_layers=0,
                          reuse_prefix=False)
    engine = Engine(model_path, model_id, config)
    jobs = [InferenceJob.from_json(document) for document in json.loads(Path(jobs_file).read_text())]
    with open(results_file, "w") as output:
        for job in jobs:
            result, seconds = _timed(engine.generate, job)
            output.write(json.dumps({"result": result.to_json(), "seconds": seconds}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
