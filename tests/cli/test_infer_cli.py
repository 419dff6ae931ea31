"""`inferchain infer` and `inferchain verify` through the real console entry, with the embedded model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.commands import ROOT, one_line_error

PROMPT = "Name three colours of the rainbow."


def run(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run `inferchain ARGS` with a temporary INFERCHAIN_HOME."""
    return subprocess.run(
        [sys.executable, "-m", "chain.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
        input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT), "INFERCHAIN_HOME": str(home)},
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def sampled_result_file(home) -> Path:
    result = run(home, "infer", PROMPT, "--max-tokens", "16", "--temperature", "0.8", "--top-k", "40",
                 "--top-p", "0.95", "--seed", "7", "--threads", "2", "--output", "json")
    assert result.returncode == 0, result.stderr
    path = home / "result.json"
    path.write_text(result.stdout)
    return path


def test_infer_prints_the_result_as_json(sampled_result_file):
    document = json.loads(sampled_result_file.read_text())
    assert len(document["model"]) == 64 and document["sampling"]["temperature_milli"] == 800
    assert 0 < len(document["tokens"]) <= 16 and all(isinstance(token, int) for token in document["tokens"])
    assert isinstance(document["text"], str) and document["stop_reason"] in ("eos", "length")
    assert len(document["logprobs_micronats"]) == len(document["tokens"])


def test_infer_is_reproducible_and_prints_text_for_people(home, sampled_result_file):
    again = run(home, "infer", PROMPT, "--max-tokens", "16", "--temperature", "0.8", "--seed", "7", "--output", "json")
    assert json.loads(again.stdout)["tokens"] == json.loads(sampled_result_file.read_text())["tokens"]
    greedy = run(home, "infer", PROMPT, "--max-tokens", "8")
    assert greedy.returncode == 0 and "stop reason" in greedy.stdout and "tokens/s" in greedy.stderr


def test_verify_accepts_an_honest_result(home, sampled_result_file):
    verdict = run(home, "verify", str(sampled_result_file), "--output", "json")
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    document = json.loads(verdict.stdout)
    assert document["valid"] and document["positions"] == len(json.loads(sampled_result_file.read_text())["tokens"])
    assert "worst_margin_micro" in document and document["reasons"] == []
    from_stdin = run(home, "verify", "-", stdin=sampled_result_file.read_text())
    assert from_stdin.returncode == 0 and "valid" in from_stdin.stdout


def test_verify_rejects_a_forged_result_with_exit_1(home, sampled_result_file, tmp_path):
    document = json.loads(sampled_result_file.read_text())
    document["tokens"][0] = (document["tokens"][0] + 1000) % 49152
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    verdict = run(home, "verify", str(forged))
    assert verdict.returncode == 1
    assert "INVALID" in verdict.stdout and "text is not the detokenised tokens" in verdict.stdout


@pytest.mark.parametrize(
    "content, message",
    [(None, "cannot read"), ("{not json", "not JSON"), ('{"model": 5}', "not an inference result"),
     ("[]", "must be a JSON object")],
)
def test_verify_of_unreadable_input_exits_2_with_one_line(home, tmp_path, content, message):
    path = tmp_path / "result.json"
    if content is not None:
        path.write_text(content)
    result = run(home, "verify", str(path))
    assert result.returncode == 2 and message in one_line_error(result)


def test_verify_of_a_result_for_an_unknown_model_exits_2(home, sampled_result_file, tmp_path):
    document = json.loads(sampled_result_file.read_text())
    document["model"] = "ab" * 32
    path = tmp_path / "other-model.json"
    path.write_text(json.dumps(document))
    result = run(home, "verify", str(path))
    assert result.returncode == 2 and "no model" in one_line_error(result)


@pytest.mark.parametrize(
    "args, message",
    [(("--max-tokens", "100000"), "exceeds the 4096-token context"),
     (("--temperature", "warm"), "not a number"),
     (("--top-p", "1.5"), "top-p must be"),
     (("--model", "nonexistent"), "no model")],
)
def test_bad_infer_arguments_are_one_line_errors(home, args, message):
    result = run(home, "infer", PROMPT, *args)
    assert result.returncode == 1 and message in one_line_error(result)


def test_a_prompt_longer_than_the_context_is_one_line_error(home):
    result = run(home, "infer", "word " * 300, "--context", "256")
    assert result.returncode == 1 and "longer than the 256-token context" in one_line_error(result)
