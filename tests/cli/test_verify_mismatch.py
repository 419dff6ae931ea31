"""`inferchain verify` of a job's document whose result is not the one the chain settled (issue 29, item 4).

A job's JSON (`job status ID --output json`) carries the job's `output_digest` and the revealed result.
A result that does not hash to that digest is not the chain's, however well formed and whatever its
verdict would be: verify says so and exits with its own code (9, "not settled"), not the code of an
unusable file (6). Real console entry, real embedded model (SmolLM2), as tests/cli/test_infer_cli.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chain.cli.errors import EXIT_BAD_INPUT, EXIT_CODES, EXIT_NOT_SETTLED, EXIT_OK
from inference.result import InferenceResult
from tests.commands import ROOT, one_line_error

PROMPT = "Name three colours of the rainbow."
SHIPPED = ("--thresholds", str(ROOT / "inference" / "data" / "thresholds.json"))


def run(home: Path, *args: str) -> subprocess.CompletedProcess:
    """Run `inferchain ARGS` with a temporary INFERCHAIN_HOME."""
    return subprocess.run(
        [sys.executable, "-m", "chain.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT), "INFERCHAIN_HOME": str(home)},
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home")


def _sampled(home: Path, seed: int) -> dict:
    result = run(home, "infer", PROMPT, "--max-tokens", "12", "--temperature", "0.8", "--seed", str(seed),
                 "--threads", "2", "--output", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def settled(home) -> dict:
    """An honest result, as the chain would have settled it."""
    return _sampled(home, 7)


@pytest.fixture(scope="module")
def other(home) -> dict:
    """Another honest result of the same job (another seed): valid, but not the settled one."""
    return _sampled(home, 8)


def _job_document(settled: dict, result: dict, **changes) -> dict:
    """`job status ID --output json` of a job settled with `settled`, carrying `result` (chain/cli/job.py)."""
    digest = InferenceResult.from_json(settled).output_digest().hex()
    document = {"job_id": settled["job_id"], "status": "settled", "model": settled["model"], "output_digest": digest,
                "text": result["text"], "result": result}
    document.update(changes)
    return document


def _verify(home: Path, tmp_path: Path, document: dict, *extra: str) -> subprocess.CompletedProcess:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(document))
    return run(home, "verify", str(path), *SHIPPED, *extra)


def test_the_settled_result_is_judged_as_before(home, settled, tmp_path):
    verdict = _verify(home, tmp_path, _job_document(settled, settled))
    assert verdict.returncode == EXIT_OK, verdict.stdout + verdict.stderr


@pytest.mark.parametrize("output", ["text", "json"])
def test_another_honest_result_is_not_the_settled_one_and_exits_9(home, settled, other, tmp_path, output):
    assert other["tokens"] != settled["tokens"]
    refused = _verify(home, tmp_path, _job_document(settled, {**other, "job_id": settled["job_id"]}), "--output", output)
    assert refused.returncode == EXIT_NOT_SETTLED == 9, refused.stdout + refused.stderr
    line = one_line_error(refused)
    assert "this is not the result the chain settled" in line
    assert InferenceResult.from_json(settled).output_digest().hex() in line  # the job's digest, whole
    assert refused.stdout == ""  # no verdict is printed for a result that is not the chain's


def test_an_edited_text_is_not_the_settled_result(home, settled, tmp_path):
    edited = {**settled, "text": settled["text"] + " (edited)"}
    refused = _verify(home, tmp_path, _job_document(settled, edited))
    assert refused.returncode == EXIT_NOT_SETTLED
    assert "this is not the result the chain settled" in one_line_error(refused)


def test_a_result_of_another_job_is_not_the_settled_result(home, settled, tmp_path):
    refused = _verify(home, tmp_path, _job_document(settled, settled, job_id="ab" * 32))
    assert refused.returncode == EXIT_NOT_SETTLED
    line = one_line_error(refused)
    assert "this is not the result the chain settled: the result is for job" in line and "ab" * 32 in line


def test_a_malformed_output_digest_is_bad_input_not_a_mismatch(home, settled, tmp_path):
    refused = _verify(home, tmp_path, _job_document(settled, settled, output_digest="zz" * 40))
    assert refused.returncode == EXIT_BAD_INPUT
    line = one_line_error(refused)
    assert "output_digest must be 64 lowercase hex digits" in line and len(line) < 300


def test_the_not_settled_code_is_its_own_and_documented():
    names = {code: name for code, name, _ in EXIT_CODES}
    assert names[EXIT_NOT_SETTLED] == "not settled"
    assert list(names).count(EXIT_NOT_SETTLED) == 1 and EXIT_NOT_SETTLED != EXIT_BAD_INPUT
    assert f"| {EXIT_NOT_SETTLED} | not settled |" in (ROOT / "docs" / "cli.md").read_text()
