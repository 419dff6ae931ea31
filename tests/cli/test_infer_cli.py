"""`inferchain infer` and `inferchain verify` through the real console entry, with the embedded model."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chain.cli import main
from chain.cli.errors import EXIT_BAD_INPUT, EXIT_USAGE
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
    assert result.stderr == ""  # JSON mode: one document on stdout and nothing else
    path = home / "result.json"
    path.write_text(result.stdout)
    return path


def test_infer_prints_the_result_as_json(sampled_result_file):
    document = json.loads(sampled_result_file.read_text())
    assert len(document["model"]) == 64 and document["sampling"]["temperature_milli"] == 800
    assert 0 < len(document["tokens"]) <= 16 and all(isinstance(token, int) for token in document["tokens"])
    assert isinstance(document["text"], str) and document["stop_reason"] in ("eos", "length")
    assert len(document["logprobs_micronats"]) == len(document["tokens"])


def test_infer_is_reproducible(home, sampled_result_file):
    again = run(home, "infer", PROMPT, "--max-tokens", "16", "--temperature", "0.8", "--seed", "7", "--output", "json")
    assert json.loads(again.stdout)["tokens"] == json.loads(sampled_result_file.read_text())["tokens"]


def test_infer_for_people_prints_the_text_then_a_usage_line(home, sampled_result_file):
    text = run(home, "infer", PROMPT, "--max-tokens", "16", "--temperature", "0.8", "--seed", "7")
    assert text.returncode == 0, text.stderr
    # stdout is exactly the generated text (as streamed), so it can be piped.
    assert text.stdout == json.loads(sampled_result_file.read_text())["text"] + "\n"
    usage = text.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"prompt \d+ tokens, output \d+ tokens \(stop: (eos|length)\), [0-9.]+ tokens/s, "
                        r"first token after [0-9.]+ s, on .+", usage), usage


class FlushRecorder(io.StringIO):
    """Standard output that remembers what had been written at each flush."""

    def __init__(self):
        super().__init__()
        self.flushed: list[str] = []

    def flush(self):
        self.flushed.append(self.getvalue())


def test_infer_streams_the_text_as_it_is_generated(home, monkeypatch, capsys):
    recorder = FlushRecorder()
    monkeypatch.setattr(sys, "stdout", recorder)
    code = main(["infer", "Count from one to twenty in words.", "--raw", "--max-tokens", "24", "--threads", "2",
                 "--base-path", str(home)])
    assert code == 0
    final = recorder.getvalue()
    # Before streaming, the whole text was printed once at the end: one write, no flush between tokens.
    snapshots = [snapshot for snapshot in dict.fromkeys(recorder.flushed) if snapshot]
    assert len(snapshots) >= 8, snapshots
    assert all(final.startswith(snapshot) for snapshot in snapshots)
    assert "tokens/s" in capsys.readouterr().err


def test_verify_accepts_an_honest_result(home, sampled_result_file):
    verdict = run(home, "verify", str(sampled_result_file), "--output", "json")
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    document = json.loads(verdict.stdout)
    assert document["valid"] and document["positions"] == len(json.loads(sampled_result_file.read_text())["tokens"])
    assert "worst_margin_micro" in document and document["reasons"] == []
    assert document["honest_chance_log10"] >= document["honest_chance_budget_log10"] == -6.0
    from_stdin = run(home, "verify", "-", stdin=sampled_result_file.read_text())
    assert from_stdin.returncode == 0 and "valid" in from_stdin.stdout
    assert "honest chance" in from_stdin.stdout and "misses" in from_stdin.stdout


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
def test_verify_of_unreadable_input_exits_6_not_the_usage_code(home, tmp_path, content, message):
    path = tmp_path / "result.json"
    if content is not None:
        path.write_text(content)
    result = run(home, "verify", str(path))
    assert result.returncode == EXIT_BAD_INPUT and message in one_line_error(result)


def test_verify_of_a_result_for_an_unknown_model_exits_6(home, sampled_result_file, tmp_path):
    document = json.loads(sampled_result_file.read_text())
    document["model"] = "ab" * 32
    path = tmp_path / "other-model.json"
    path.write_text(json.dumps(document))
    result = run(home, "verify", str(path))
    assert result.returncode == EXIT_BAD_INPUT and "no model" in one_line_error(result)


def test_verify_usage_errors_still_exit_2(home):
    result = run(home, "verify")
    assert result.returncode == EXIT_USAGE and "usage:" in result.stderr


@pytest.mark.parametrize(
    "args, message, code",
    [(("--max-tokens", "100000"), "exceeds the 4096-token context", EXIT_USAGE),
     (("--temperature", "warm"), "not a number", EXIT_USAGE),
     (("--top-p", "1.5"), "top-p must be", EXIT_USAGE),
     (("--model", "nonexistent"), "no model", EXIT_BAD_INPUT)],
)
def test_bad_infer_arguments_are_one_line_errors(home, args, message, code):
    result = run(home, "infer", PROMPT, *args)
    assert result.returncode == code and message in one_line_error(result)


def test_a_prompt_longer_than_the_context_is_one_line_error(home):
    result = run(home, "infer", "word " * 300, "--context", "256")
    assert result.returncode == EXIT_USAGE and "longer than the 256-token context" in one_line_error(result)


@pytest.mark.parametrize("max_tokens", [10**18, 8192])
def test_verify_judges_a_max_tokens_beyond_the_models_context_invalid(home, sampled_result_file, tmp_path, max_tokens):
    # A claimed 10^18 once sized the verifier's context to 8,192 and the result was judged valid.
    document = json.loads(sampled_result_file.read_text())
    document["max_tokens"] = max_tokens
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(document))
    verdict = run(home, "verify", str(path))
    assert verdict.returncode == 1, verdict.stdout + verdict.stderr
    assert "does not fit the model's context of 8192 tokens" in verdict.stdout


@pytest.mark.parametrize(
    "change, message",
    [({"seed": "²"}, "ASCII digits"), ({"prompt": "\ud800"}, "not valid Unicode"), ({"surprise": 1}, "unknown field")],
)
def test_verify_of_a_malformed_result_is_one_line_not_a_traceback(home, sampled_result_file, tmp_path, change, message):
    document = json.loads(sampled_result_file.read_text())
    if "seed" in change:
        document["sampling"]["seed"] = change["seed"]
    else:
        document.update(change)
    path = tmp_path / "malformed.json"
    path.write_text(json.dumps(document))
    result = run(home, "verify", str(path))
    assert result.returncode == EXIT_BAD_INPUT and message in one_line_error(result)
    assert "Traceback" not in result.stderr


def _job_document(result: dict, **changes) -> dict:
    """The shape of `inferchain job status ID --output json` around a result (chain/cli/job.py job_document)."""
    from inference.result import InferenceResult

    digest = InferenceResult.from_json(result).output_digest().hex()
    document = {"job_id": result["job_id"], "status": "settled", "model": result["model"], "output_digest": digest,
                "text": result["text"], "result": result}
    document.update(changes)
    return document


def test_verify_accepts_a_settled_jobs_json_and_checks_its_output_digest(home, sampled_result_file, tmp_path):
    result = json.loads(sampled_result_file.read_text())
    path = tmp_path / "job.json"
    path.write_text(json.dumps(_job_document(result)))
    verdict = run(home, "verify", str(path))
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    path.write_text(json.dumps(_job_document(result, output_digest="00" * 32)))
    mismatch = run(home, "verify", str(path))
    assert mismatch.returncode == EXIT_BAD_INPUT and "does not hash to the job's output digest" in one_line_error(mismatch)
    document = _job_document(result, status="assigned")
    del document["result"]
    path.write_text(json.dumps(document))
    pending = run(home, "verify", str(path))
    assert pending.returncode == EXIT_BAD_INPUT and "no revealed result (status assigned)" in one_line_error(pending)
