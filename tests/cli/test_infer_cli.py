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
from chain.cli.errors import EXIT_BAD_INPUT, EXIT_ENGINE, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE
from tests.commands import ROOT, one_line_error
from inference.model_store import EMBEDDED_NAME
from tests.nodes import NodeProcess, free_port

PROMPT = "Name three colours of the rainbow."
SHIPPED_FILE = ROOT / "inference" / "data" / "thresholds.json"
# A local thresholds file is used only when named: these tests judge by the shipped one.
SHIPPED = ("--thresholds", str(SHIPPED_FILE))


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
    verdict = run(home, "verify", str(sampled_result_file), *SHIPPED, "--output", "json")
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    document = json.loads(verdict.stdout)
    assert document["valid"] and document["positions"] == len(json.loads(sampled_result_file.read_text())["tokens"])
    assert "worst_margin_micro" in document and document["reasons"] == []
    assert document["honest_chance_log10"] >= document["honest_chance_budget_log10"] == -6.0
    from_stdin = run(home, "verify", "-", *SHIPPED, stdin=sampled_result_file.read_text())
    assert from_stdin.returncode == 0 and "valid" in from_stdin.stdout
    assert "honest chance" in from_stdin.stdout and "misses" in from_stdin.stdout


def test_verify_rejects_a_forged_result_with_exit_1(home, sampled_result_file, tmp_path):
    document = json.loads(sampled_result_file.read_text())
    document["tokens"][0] = (document["tokens"][0] + 1000) % 49152
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    verdict = run(home, "verify", str(forged), *SHIPPED)
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
    result = run(home, "verify", str(path), *SHIPPED)
    assert result.returncode == EXIT_BAD_INPUT and message in one_line_error(result)


def test_verify_of_a_result_for_an_unknown_model_exits_6(home, sampled_result_file, tmp_path):
    document = json.loads(sampled_result_file.read_text())
    document["model"] = "ab" * 32
    path = tmp_path / "other-model.json"
    path.write_text(json.dumps(document))
    result = run(home, "verify", str(path), *SHIPPED)
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
    verdict = run(home, "verify", str(path), *SHIPPED)
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
    result = run(home, "verify", str(path), *SHIPPED)
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
    verdict = run(home, "verify", str(path), *SHIPPED)
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    path.write_text(json.dumps(_job_document(result, output_digest="00" * 32)))
    mismatch = run(home, "verify", str(path), *SHIPPED)
    # Not the result the chain settled: its own exit code, 9 (tests/cli/test_verify_mismatch.py).
    assert mismatch.returncode == 9 and "this is not the result the chain settled" in one_line_error(mismatch)
    document = _job_document(result, status="assigned")
    del document["result"]
    path.write_text(json.dumps(document))
    pending = run(home, "verify", str(path), *SHIPPED)
    assert pending.returncode == EXIT_BAD_INPUT and "no revealed result (status assigned)" in one_line_error(pending)


# -- the chain is the source of truth for thresholds (issue 23, item 3) -------------------------

# Looser log-probability bounds than the shipped file's (0.1 mean, 1 max): a result whose
# log-probabilities are all 0.5 nats off is INVALID by the shipped file and valid by this chain.
LOOSE_MEAN_LOGPROB_ERROR = 1_000_000
LOOSE_MAX_LOGPROB_ERROR = 2_000_000


@pytest.fixture(scope="module")
def loose_node(tmp_path_factory):
    """A dev node whose genesis registers the embedded model with looser log-probability bounds."""
    from chain.genesis import dev_genesis_document

    base = tmp_path_factory.mktemp("loose-chain")
    document = dev_genesis_document()
    [model] = document["app_state"]["models"]["models"]
    model["thresholds"]["mean_logprob_error_micro"] = str(LOOSE_MEAN_LOGPROB_ERROR)
    model["thresholds"]["max_logprob_error_micro"] = str(LOOSE_MAX_LOGPROB_ERROR)
    genesis = base / "genesis.json"
    genesis.write_text(json.dumps(document))
    node = NodeProcess(base / "node", free_port(), ("--chain", str(genesis))).start()
    yield node
    node.kill()


@pytest.fixture(scope="module")
def shifted_result_file(sampled_result_file) -> Path:
    document = json.loads(sampled_result_file.read_text())
    document["logprobs_micronats"] = [value - 500_000 for value in document["logprobs_micronats"]]
    path = sampled_result_file.parent / "shifted.json"
    path.write_text(json.dumps(document))
    return path


def test_verify_without_node_or_thresholds_file_says_what_is_missing(home, sampled_result_file):
    result = run(home, "verify", str(sampled_result_file))
    line = one_line_error(result)
    assert result.returncode == EXIT_USAGE and "no thresholds to judge by" in line
    assert "--node HOST:PORT" in line and "--thresholds FILE" in line


def test_verify_judges_by_the_thresholds_registered_on_the_chain_and_says_so(home, loose_node, shifted_result_file):
    by_chain = run(home, "verify", str(shifted_result_file), "--node", loose_node.target)
    assert by_chain.returncode == 0, by_chain.stdout + by_chain.stderr
    [line] = [line for line in by_chain.stdout.splitlines() if line.startswith("thresholds")]
    assert re.search(rf"registered on the chain \(ModelInfo of {re.escape(EMBEDDED_NAME)}\) at height \d+ "
                     rf"\(block [0-9a-f]{{16}}\.\.\.\) from {re.escape(loose_node.target)}", line), line
    # The same result by the shipped file, named explicitly: invalid, and the output says which file judged.
    by_file = run(home, "verify", str(shifted_result_file), *SHIPPED)
    assert by_file.returncode == 1, by_file.stdout + by_file.stderr
    assert f"local file {SHIPPED_FILE} (--thresholds, not the chain's)" in by_file.stdout
    assert "log-probabilities differ by 0.5000 nats on average (at most 0.1000)" in by_file.stdout


def test_verify_json_names_the_height_of_the_chains_thresholds(home, loose_node, shifted_result_file):
    verdict = run(home, "verify", str(shifted_result_file), "--node", loose_node.target, "--output", "json")
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    document = json.loads(verdict.stdout)
    source = document["thresholds"]
    assert source["source"] == "chain" and source["node"] == loose_node.target
    # A height is a 64-bit integer: a decimal string in every command's JSON (docs/cli.md).
    assert int(source["height"]) >= 1 and len(source["block_hash"]) == 64
    assert document["valid"] and document["mean_logprob_error_micro"] == 500_000
    by_file = run(home, "verify", str(shifted_result_file), *SHIPPED, "--output", "json")
    assert json.loads(by_file.stdout)["thresholds"] == {
        "source": "file", "path": str(SHIPPED_FILE), "engine": json.loads(SHIPPED_FILE.read_text())[
            document["model"]]["engine"]}


def test_a_model_the_chain_has_not_registered_gets_no_verdict(loose_node):
    import argparse

    from chain.cli.errors import CliError
    from chain.cli.infer import chain_thresholds

    with pytest.raises(CliError, match="model abab.* is not registered on the chain at height") as raised:
        chain_thresholds(argparse.Namespace(node=loose_node.target), "ab" * 32)
    assert raised.value.exit_code == EXIT_REFUSED


def test_registered_thresholds_are_read_with_a_proof_against_a_header(loose_node):
    from chain.client import Client
    from chain.client.verification import model_info_key, proven_model_info
    from inference.registration import EMBEDDED_MODEL_ID, registered_thresholds

    model_id = bytes.fromhex(EMBEDDED_MODEL_ID)
    with Client(loose_node.target) as client:
        value = client.state_proof(model_info_key(model_id))
        block = client.block(hash=value.block_hash)
    thresholds = registered_thresholds(proven_model_info(model_id, value, block))
    assert thresholds.mean_logprob_error_micro == LOOSE_MEAN_LOGPROB_ERROR
    assert thresholds.max_logprob_error_micro == LOOSE_MAX_LOGPROB_ERROR
    # A node that names another block's root, or sends another model's value, is caught.
    from dataclasses import replace as replaced

    from chain.client import ProofError

    with pytest.raises(ProofError, match="is not the state root"):
        proven_model_info(model_id, replaced(value, state_root=bytes(32)), block)
    with pytest.raises(ProofError, match="another state key"):
        proven_model_info(bytes(32), value, block)


@pytest.mark.parametrize(
    "extra, code, message",
    [(("--node", "127.0.0.1:1", *SHIPPED), EXIT_USAGE, "not allowed with argument"),
     (("--node", "127.0.0.1:99999"), EXIT_USAGE, "port from 1 to 65535"),
     (("--node", "127.0.0.1:PORT"), EXIT_UNREACHABLE, "")],
)
def test_verify_node_errors_are_one_line(home, sampled_result_file, extra, code, message):
    if "127.0.0.1:PORT" in extra:
        extra = ("--node", f"127.0.0.1:{free_port()}")
    result = run(home, "verify", str(sampled_result_file), *extra)
    assert result.returncode == code, result.stderr
    if code == EXIT_USAGE and "usage:" in result.stderr:
        assert message in result.stderr
    else:
        assert message in one_line_error(result)


@pytest.mark.parametrize(
    "content, message",
    [(None, "cannot read the thresholds file"), ("{not json", "not a thresholds file: not JSON"),
     ('{"model": "' + "ab" * 32 + '"}', "unusable thresholds: thresholds lack"),
     ('{"' + "cd" * 32 + '": {}}', "has no thresholds for model")],
)
def test_verify_with_an_unusable_thresholds_file_exits_6(home, sampled_result_file, tmp_path, content, message):
    path = tmp_path / "thresholds.json"
    if content is not None:
        path.write_text(content)
    result = run(home, "verify", str(sampled_result_file), "--thresholds", str(path))
    assert result.returncode == EXIT_BAD_INPUT and message in one_line_error(result)


def test_verify_refuses_a_thresholds_file_of_another_model(home, sampled_result_file, tmp_path):
    shipped = json.loads(SHIPPED_FILE.read_text())
    [(model_id, thresholds)] = shipped.items()
    path = tmp_path / "other.json"
    path.write_text(json.dumps({**thresholds, "model": "cd" * 32}))
    result = run(home, "verify", str(sampled_result_file), "--thresholds", str(path))
    assert result.returncode == EXIT_BAD_INPUT
    assert f"holds the thresholds of model cdcdcdcdcdcd..., not of model {model_id[:12]}..." in one_line_error(result)


def test_thresholds_the_verifier_cannot_use_are_refused_at_genesis_so_verify_never_meets_them():
    # Once the runtime accepted a miss rate of 0 per million, which the count-and-depth test cannot use; the rule
    # now has one home (proto/thresholds.py) that the runtime and the verifier share.
    from chain.genesis import GenesisError, dev_genesis_document, parse_genesis

    document = dev_genesis_document()
    [model] = document["app_state"]["models"]["models"]
    model["thresholds"]["miss_rate_ppm"] = "0"
    with pytest.raises(GenesisError, match="thresholds: miss_rate_ppm must be between 0 and 1,000,000"):
        parse_genesis(document)


def test_endless_input_files_are_refused_after_a_bounded_read(home, sampled_result_file):
    result = run(home, "verify", "/dev/zero", *SHIPPED)
    assert result.returncode == EXIT_BAD_INPUT and "larger than 16777216 bytes" in one_line_error(result)
    thresholds = run(home, "verify", str(sampled_result_file), "--thresholds", "/dev/zero")
    assert thresholds.returncode == EXIT_BAD_INPUT
    assert "/dev/zero is not a thresholds file: larger than 1000000 bytes" in one_line_error(thresholds)


def test_verify_of_a_result_made_on_a_class_the_model_has_no_thresholds_for_gives_no_verdict(
        home, loose_node, shifted_result_file):
    result = run(home, "verify", str(shifted_result_file), "--node", loose_node.target, "--made-on", "gpu-a")
    line = one_line_error(result)
    assert result.returncode == EXIT_ENGINE, line
    assert "engine class 'gpu-a' judged on class 'cpu'" in line
    named_badly = run(home, "verify", str(shifted_result_file), "--node", loose_node.target, "--made-on", "GPU")
    assert named_badly.returncode == EXIT_USAGE and "argument --made-on: an engine class name is" in named_badly.stderr
