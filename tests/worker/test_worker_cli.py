"""`inferchain worker` says in one line, with its exit code, why it cannot start (no model is loaded here)."""

from __future__ import annotations

import copy
import json
import threading

import pytest

from chain.cli.errors import EXIT_BAD_INPUT, EXIT_ENGINE, EXIT_FAILURE, EXIT_UNREACHABLE
from chain.crypto import dev_keypair
from chain.genesis import dev_genesis_document, dev_stake
from inference.engine import engine_version
from tests.commands import inferchain, one_line_error
from tests.nodes import NodeProcess, free_port

UNKNOWN_MODEL = "ab" * 32
OTHER_BUILD = "llama-cpp-python 0.3.36 cpu avx512 llamafile"
GPU_BUILD = "llama-cpp-python 0.3.36 cuda sm90 driver 550-560"


@pytest.fixture(scope="module")
def node_with_missing_model(tmp_path_factory):
    """A dev node whose genesis also registers a model no store holds, which Bob offers."""
    base = tmp_path_factory.mktemp("worker-cli")
    document = dev_genesis_document()
    models = document["app_state"]["models"]["models"]
    other = copy.deepcopy(models[0])
    other.update(id=UNKNOWN_MODEL, name="nowhere")
    models.append(other)
    stake = dev_stake("bob")
    stake["validate"] = False
    stake["offer"]["models"] = [UNKNOWN_MODEL]
    document["app_state"]["staking"]["stakes"].append(stake)
    genesis = base / "genesis.json"
    genesis.write_text(json.dumps(document))
    node = NodeProcess(base / "node", free_port(), ("--chain", str(genesis), "--no-worker")).start()
    yield node
    node.kill()


@pytest.fixture(scope="module")
def node_calibrated_on_another_build(tmp_path_factory):
    """A dev node whose genesis says the embedded model was calibrated on another llama.cpp build, and registers a
    GPU class "gpu-a" of yet another build."""
    base = tmp_path_factory.mktemp("worker-engine")
    document = dev_genesis_document()
    model = document["app_state"]["models"]["models"][0]
    model["engine"] = OTHER_BUILD
    model["engine_classes"] = [{"name": "gpu-a", "engine": GPU_BUILD, "thresholds": model["thresholds"]}]
    model["class_pairs"] = [{"executor_class": "gpu-a", "verifier_class": "cpu", "thresholds": model["thresholds"]}]
    genesis = base / "genesis.json"
    genesis.write_text(json.dumps(document))
    node = NodeProcess(base / "node", free_port(), ("--chain", str(genesis), "--no-worker")).start()
    yield node
    node.kill()


def worker(node_target: str, *args: str, home) -> object:
    return inferchain("worker", "--node", node_target, "--base-path", str(home), *args, timeout=60)


def test_an_account_without_an_offer_is_told_to_offer_first(node_with_missing_model, tmp_path):
    result = worker(node_with_missing_model.target, "--key", "charlie", home=tmp_path)
    assert result.returncode == EXIT_FAILURE
    line = one_line_error(result)
    assert dev_keypair("charlie").address in line and "no offer" in line and "tx offer" in line


def test_a_chain_on_a_newer_runtime_is_refused_before_anything_loads(node_with_missing_model, tmp_path, monkeypatch,
                                                                      capsys):
    """A worker built for runtime version N does not execute jobs of a chain on N + 1 (a job's sampling option it
    does not know would be ignored, and its result slashed). In-process: this build plays the older one."""
    from chain.cli import main
    from chain.cli import worker as worker_cli

    monkeypatch.setattr(worker_cli, "SPEC_VERSION", worker_cli.SPEC_VERSION - 1)
    # The worker's signal handling is for its own process, not for pytest's.
    monkeypatch.setattr(worker_cli, "stop_on_signals", lambda parent_pid: threading.Event())
    code = main(["worker", "--node", node_with_missing_model.target, "--key", "bob", "--base-path", str(tmp_path)])
    assert code == EXIT_FAILURE
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and "runs runtime version" in line and "upgrade inferchain" in line


def test_an_offered_model_missing_from_the_store_is_named(node_with_missing_model, tmp_path):
    result = worker(node_with_missing_model.target, "--key", "bob", home=tmp_path)
    assert result.returncode == EXIT_BAD_INPUT
    line = one_line_error(result)
    assert UNKNOWN_MODEL in line and str(tmp_path / "models") in line and "inferchain model add" in line


def test_an_unreachable_node_is_a_clear_error(tmp_path):
    result = worker(f"127.0.0.1:{free_port()}", "--key", "alice", home=tmp_path)
    assert result.returncode == EXIT_UNREACHABLE
    assert "connection refused" in one_line_error(result)


def test_an_unreadable_key_file_is_bad_input(tmp_path):
    key = tmp_path / "key.json"
    key.write_text("not a key")
    result = worker(f"127.0.0.1:{free_port()}", "--key", str(key), home=tmp_path)
    assert result.returncode == EXIT_BAD_INPUT
    assert "cannot load the executor key" in one_line_error(result)


def test_a_model_calibrated_on_another_build_is_refused(node_calibrated_on_another_build, tmp_path):
    # Validators recompute the pinned build's logits exactly and judge strictly: a worker on another
    # build would have its honest results judged invalid, so it does not serve unless told to.
    result = worker(node_calibrated_on_another_build.target, "--key", "alice", home=tmp_path)
    assert result.returncode == EXIT_ENGINE
    line = one_line_error(result)
    assert OTHER_BUILD in line and engine_version() in line and "--allow-engine-mismatch" in line


def test_a_worker_whose_build_is_not_its_classs_engine_is_refused(node_calibrated_on_another_build, tmp_path):
    result = worker(node_calibrated_on_another_build.target, "--key", "alice", "--engine-class", "gpu-a", home=tmp_path)
    assert result.returncode == EXIT_ENGINE
    line = one_line_error(result)
    assert "engine class gpu-a" in line and GPU_BUILD in line and engine_version() in line


def test_a_worker_of_a_class_the_model_lacks_is_refused_naming_the_classes(node_calibrated_on_another_build, tmp_path):
    result = worker(node_calibrated_on_another_build.target, "--key", "alice", "--engine-class", "tpu-v5",
                    "--allow-engine-mismatch", home=tmp_path)
    assert result.returncode == EXIT_BAD_INPUT
    line = one_line_error(result)
    assert "no engine class 'tpu-v5'" in line and "cpu, gpu-a" in line


def test_a_malformed_engine_class_is_a_usage_error(tmp_path):
    result = worker(f"127.0.0.1:{free_port()}", "--key", "alice", "--engine-class", "GPU A", home=tmp_path)
    assert result.returncode == 2
    assert "engine class name" in result.stderr


def test_batching_options_out_of_range_or_beside_parallel_are_usage_errors(tmp_path):
    target = f"127.0.0.1:{free_port()}"
    too_many = worker(target, "--key", "alice", "--batch-jobs", "65", home=tmp_path)
    assert too_many.returncode == 2 and "--batch-jobs is at most 64" in one_line_error(too_many)
    both = worker(target, "--key", "alice", "--batch-jobs", "4", "--parallel", "2", home=tmp_path)
    assert both.returncode == 2 and "--batch-jobs replaces --parallel" in one_line_error(both)
