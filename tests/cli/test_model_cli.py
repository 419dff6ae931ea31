"""`inferchain model add|list|info|remove|calibrate` through the real console entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chain.cli.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_USAGE
from chain.cli.model import CALIBRATION_ROWS
from inference.calibration import ROW_KEYS
from tests.commands import ROOT, one_line_error
from tests.inference.conftest import tiny_gguf


def model_command(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `inferchain model ARGS` with INFERCHAIN_HOME set to a temporary directory."""
    return subprocess.run(
        [sys.executable, "-m", "chain.cli", "model", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT), "INFERCHAIN_HOME": str(home)},
    )


def test_list_shows_the_embedded_model_even_in_an_empty_home(tmp_path):
    listed = model_command(tmp_path, "list", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    [embedded] = json.loads(listed.stdout)
    assert embedded["embedded"] and embedded["quantisation"] == "Q4_1" and len(embedded["id"]) == 64
    table = model_command(tmp_path, "list")
    assert "SmolLM2-135M-Instruct-Q4_1" in table.stdout and "embedded" in table.stdout


def test_list_says_which_models_have_verification_thresholds(tmp_path):
    source = tiny_gguf(tmp_path / "tiny.gguf")
    assert model_command(tmp_path / "home", "add", str(source), "--name", "tiny").returncode == 0
    listed = {model["name"]: model for model in json.loads(model_command(tmp_path / "home", "list", "--output", "json").stdout)}
    assert listed["tiny"]["thresholds"] == "none"
    assert listed["SmolLM2-135M-Instruct-Q4_1"]["thresholds"] == "shipped"
    table = model_command(tmp_path / "home", "list").stdout.splitlines()
    assert "THRESHOLDS" in table[0]
    assert any("tiny" in row and "none (run model calibrate)" in row for row in table)
    assert any("SmolLM2" in row and row.rstrip().endswith("shipped") for row in table)
    # A file calibrated here wins over the shipped one.
    model_id = listed["tiny"]["id"]
    shipped = json.loads((ROOT / "inference" / "data" / "thresholds.json").read_text())
    document = {**next(iter(shipped.values())), "model": model_id}
    (tmp_path / "home" / "models" / f"{model_id}.thresholds.json").write_text(json.dumps(document))
    listed = {model["name"]: model for model in json.loads(model_command(tmp_path / "home", "list", "--output", "json").stdout)}
    assert listed["tiny"]["thresholds"] == "local"


def test_calibrate_help_describes_every_row_the_calibration_runs():
    assert tuple(CALIBRATION_ROWS) == ROW_KEYS


def test_info_describes_the_default_model(tmp_path):
    info = model_command(tmp_path, "info", "--output", "json")
    assert info.returncode == 0, info.stderr
    document = json.loads(info.stdout)
    assert document["architecture"] == "llama" and document["vocabulary_size"] == 49152
    # 64-bit quantities (parameters, bytes) are strings; 32-bit ones numbers (docs/cli.md).
    assert document["context_length"] == 8192 and document["parameters"] == "134515008"
    assert document["size_bytes"].isdigit() and document["thresholds"] == "shipped"


def test_add_info_and_remove_an_imported_model(tmp_path):
    source = tiny_gguf(tmp_path / "tiny.gguf")
    added = model_command(tmp_path / "home", "add", str(source), "--name", "tiny", "--output", "json")
    assert added.returncode == 0, added.stderr
    model_id = json.loads(added.stdout)["id"]
    assert (tmp_path / "home" / "models" / f"{model_id}.gguf").is_file()
    info = model_command(tmp_path / "home", "info", "tiny", "--output", "json")
    assert json.loads(info.stdout)["id"] == model_id
    removed = model_command(tmp_path / "home", "remove", model_id[:8])
    assert removed.returncode == 0 and "removed tiny" in removed.stdout
    assert not (tmp_path / "home" / "models" / f"{model_id}.gguf").exists()


@pytest.mark.parametrize(
    "content, message",
    [(None, "no such file"), (b"", "too short"), (b"hello, I am not a model" * 3, "not a GGUF file")],
)
def test_adding_a_bad_file_is_one_line_error(tmp_path, content, message):
    path = tmp_path / "bad.gguf"
    if content is not None:
        path.write_bytes(content)
    result = model_command(tmp_path / "home", "add", str(path))
    assert result.returncode == EXIT_BAD_INPUT and message in one_line_error(result)


def test_adding_a_truncated_model_is_one_line_error(tmp_path):
    source = tiny_gguf(tmp_path / "tiny.gguf")
    source.write_bytes(source.read_bytes()[:500])
    result = model_command(tmp_path / "home", "add", str(source))
    assert result.returncode == EXIT_BAD_INPUT and "truncated" in one_line_error(result)


def test_unknown_models_and_removing_the_embedded_one_are_one_line_errors(tmp_path):
    unknown = model_command(tmp_path, "info", "nonexistent")
    assert unknown.returncode == EXIT_BAD_INPUT and "no model 'nonexistent'" in one_line_error(unknown)
    embedded = model_command(tmp_path, "remove", "embedded")
    assert embedded.returncode == EXIT_FAILURE and "cannot be removed" in one_line_error(embedded)


def test_a_tampered_model_file_is_refused_when_used(tmp_path):
    source = tiny_gguf(tmp_path / "tiny.gguf")
    model_id = json.loads(model_command(tmp_path / "home", "add", str(source), "--output", "json").stdout)["id"]
    stored = tmp_path / "home" / "models" / f"{model_id}.gguf"
    stored.write_bytes(stored.read_bytes()[:-4] + b"\x01\x02\x03\x04")
    result = model_command(tmp_path / "home", "calibrate", model_id, "--prompts", "1")
    assert result.returncode == EXIT_BAD_INPUT and "does not match model id" in one_line_error(result)


def small_calibration(tmp_path, rows: str, *options: str) -> tuple[dict, str]:
    """A 1-prompt, 4-token calibration through the console entry: its JSON report and its stderr."""
    result = model_command(
        tmp_path / "home", "calibrate", "--prompts", "1", "--jobs", "2", "--max-tokens", "4",
        "--rows", rows, "--work-dir", str(tmp_path / "work"), "--output", "json", *options,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_calibrate_a_small_run_writes_thresholds_and_the_docs_table(tmp_path):
    docs = tmp_path / "verification.md"
    report, stderr = small_calibration(tmp_path, "threads_1,replaced_1", "--docs", str(docs))
    assert [row["key"] for row in report["rows"]] == ["reference", "threads_1", "replaced_1"]
    assert "calibration done" in stderr  # progress goes to stderr
    written = tmp_path / "home" / "models" / f"{report['model']}.thresholds.json"
    assert json.loads(written.read_text())["worst_margin_micro"] == report["thresholds"]["worst_margin_micro"]
    assert "| 1 token replaced |" in docs.read_text()


def test_calibrate_refuses_unknown_rows(tmp_path):
    result = model_command(tmp_path, "calibrate", "--rows", "reference,bogus")
    assert result.returncode == EXIT_USAGE and "unknown calibration rows: bogus" in one_line_error(result)


def test_calibrate_can_judge_its_rows_by_given_thresholds_and_writes_none(tmp_path):
    shipped = ROOT / "inference" / "data" / "thresholds.json"
    report, stderr = small_calibration(tmp_path, "replaced_1", "--judge-with", str(shipped))
    assert report["judged_by"] == json.loads(shipped.read_text())[report["model"]]
    assert report["thresholds"] != report["judged_by"]  # one prompt fits other thresholds than the shipped ones
    assert not (tmp_path / "home" / "models" / f"{report['model']}.thresholds.json").exists()
    assert "no thresholds written" in stderr


@pytest.mark.parametrize("content, message", [
    ("not json", "cannot use it as thresholds"),
    ('{"model": "x"}', "thresholds lack"),
    (json.dumps({**json.loads((ROOT / "inference" / "data" / "thresholds.json").read_text()).popitem()[1],
                 "model": "ab" * 32}), "thresholds for model abababababab..."),
])
def test_calibrate_refuses_thresholds_it_cannot_judge_with(tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = model_command(tmp_path / "home", "calibrate", "--judge-with", str(bad))
    assert result.returncode == EXIT_BAD_INPUT and message in one_line_error(result)
