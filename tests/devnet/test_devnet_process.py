"""`inferchain devnet` as a person runs it: real node processes on their own loopback addresses.

Every run here is `--no-worker` (no model loaded) except the demo-job test, and each stops its
devnet with SIGINT, as Ctrl-C does; the fixture kills whatever a failed test left running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chain.client import Client
from chain.devnet.layout import Address, NodeAddresses, prepare, write_record
from tests.commands import ROOT, inferchain, one_line_error

READY = "every validator is finalizing"
START_TIMEOUT_S = 120


class DevnetRun:
    """One `inferchain devnet` process, its output in files (its stdout is no terminal: plain status lines)."""

    def __init__(self, base_dir: Path, *args: str):
        self.base_dir = base_dir
        self.out_path = base_dir.parent / f"{base_dir.name}.{time.monotonic_ns()}.out"
        self.err_path = self.out_path.with_suffix(".err")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "chain.cli", "devnet", "--base-dir", str(base_dir), *args],
                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
            )

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = START_TIMEOUT_S, where: str = "stderr") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in getattr(self, where):
                return
            if self.process.poll() is not None:
                pytest.fail(f"devnet exited with {self.process.returncode} before {text!r}:\n{self.stderr}")
            time.sleep(0.2)
        pytest.fail(f"no {text!r} within {timeout} s:\n{self.stderr}")

    def record(self) -> dict:
        return json.loads((self.base_dir / "devnet.json").read_text())

    def interrupt(self, timeout: float = 60) -> int:
        """SIGINT, as Ctrl-C in its terminal; its exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def finish(self, timeout: float = 60) -> int:
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for pid in _recorded_pids(self.base_dir):
            _kill_group(pid)


def _recorded_pids(base_dir: Path) -> list[int]:
    try:
        document = json.loads((base_dir / "devnet.json").read_text())
    except (OSError, ValueError):
        return []
    return [node["pid"] for node in document["nodes"] if isinstance(node.get("pid"), int)]


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for every purpose here.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pids: list[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if _alive(pid)]


@pytest.fixture
def devnet(tmp_path):
    """Start `inferchain devnet --base-dir DIR ARGS`; every run and its nodes are killed at the end."""
    runs: list[DevnetRun] = []

    def start(*args: str, base_dir: Path | None = None) -> DevnetRun:
        run = DevnetRun(base_dir or tmp_path / "devnet", *args)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.kill()


# --- one validator (runs on any node that accepts a one-validator genesis) --------------------------


def test_a_one_validator_devnet_finalizes_lists_its_node_and_stops_cleanly_on_ctrl_c(devnet):
    run = devnet("--validators", "1", "--no-worker")
    run.wait_for(READY)
    node = run.record()["nodes"][0]
    assert node["name"] == "validator1" and node["rpc"].startswith("127.0.0.2:")
    assert node["p2p"].startswith("127.0.0.2:") and node["prometheus"].startswith("127.0.0.2:")
    assert node["base_path"] == str(run.base_dir / "validator1") and _alive(node["pid"])
    with Client(node["rpc"]) as client:
        info = client.chain_info()
    assert info.chain_id == "inferchain-devnet" and info.finalized_height >= 1
    run.wait_for("validator1 height", where="stdout")
    assert run.interrupt() == 0
    _wait_gone([node["pid"]])
    assert run.record()["nodes"][0]["pid"] is None
    assert "stopped: validator1 (exit 0)" in run.stderr
    assert "Traceback" not in run.stderr
    assert (run.base_dir / "validator1" / "node.log").read_text().count("inferchain devnet: starting validator1") == 1


def test_a_node_that_dies_later_shows_in_the_status_as_exited_with_its_log(devnet):
    run = devnet("--validators", "1", "--no-worker")
    run.wait_for(READY)
    node = run.record()["nodes"][0]
    os.kill(node["pid"], signal.SIGKILL)
    run.wait_for(f"validator1 exited -9, see {node['log']}", where="stdout", timeout=30)
    assert run.interrupt() == 0


def test_running_again_resumes_the_same_chain_from_the_same_directories(devnet):
    first = devnet("--validators", "1", "--no-worker")
    first.wait_for(READY)
    rpc = first.record()["nodes"][0]["rpc"]
    with Client(rpc) as client:
        before = client.chain_info()
    key = (first.base_dir / "validator1" / "key.json").read_text()
    assert first.interrupt() == 0

    second = devnet("--no-worker")  # no count: the devnet's own
    second.wait_for(READY)
    rpc = second.record()["nodes"][0]["rpc"]
    with Client(rpc) as client:
        after = client.chain_info()
        assert client.block(height=before.finalized_height).hash == before.finalized_hash
    assert after.genesis_hash == before.genesis_hash
    assert after.finalized_height > before.finalized_height
    assert (second.base_dir / "validator1" / "key.json").read_text() == key
    assert second.interrupt() == 0


def test_a_base_dir_holding_a_devnet_of_another_size_is_refused(tmp_path):
    prepare(tmp_path / "devnet", 1)
    result = inferchain("devnet", "--validators", "2", "--no-worker", "--base-dir", str(tmp_path / "devnet"))
    assert result.returncode == 6
    assert "holds a devnet of 1 validator, not 2: run with --validators 1" in one_line_error(result)


def test_a_base_dir_that_is_no_devnet_is_refused(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    result = inferchain("devnet", "--no-worker", "--base-dir", str(tmp_path))
    assert result.returncode == 6
    assert "holds no devnet" in one_line_error(result)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mine.txt"]


@pytest.mark.parametrize("count", ["0", "65"])
def test_a_validator_count_out_of_range_is_a_usage_error(tmp_path, count):
    result = inferchain("devnet", "--validators", count, "--base-dir", str(tmp_path / "devnet"))
    assert result.returncode == 2
    assert "--validators must be between 1 and 64" in one_line_error(result)


def test_a_devnet_that_is_already_running_is_not_started_twice(devnet):
    first = devnet("--validators", "1", "--no-worker")
    first.wait_for(READY)
    pid = first.record()["nodes"][0]["pid"]
    second = devnet("--no-worker")
    assert second.finish() == 1
    assert f"a devnet is already running from {first.base_dir} (validator1 is pid {pid})" in second.stderr
    assert _alive(pid)
    assert first.interrupt() == 0


def test_a_node_that_fails_to_start_is_named_with_its_last_log_line(devnet, tmp_path):
    layout = prepare(tmp_path / "devnet", 1)
    (layout.validators[0].base_path / "chains").write_text("not a directory")
    run = devnet("--no-worker")
    assert run.finish() == 1
    error = one_line_error(subprocess.CompletedProcess([], 1, "", _without_progress(run.stderr)))
    assert error.startswith("error: validator1 exited with code 1 while starting; its last log line: ")
    assert f"(log: {layout.validators[0].log_path})" in error
    last_line = [line for line in layout.validators[0].log_path.read_text().splitlines() if line.strip()][-1]
    assert last_line.strip()[:100] in error


def test_a_node_not_finalizing_in_time_is_named_and_every_node_stopped(devnet):
    run = devnet("--validators", "1", "--no-worker", "--start-timeout", "0.5")
    assert run.finish() == 1
    error = _without_progress(run.stderr).strip()
    assert error.startswith("error: validator1 is not finalizing after 0.5 s (")
    assert "its last log line:" in error
    assert "stopped: validator1" in run.stderr


def test_ctrl_c_while_starting_stops_every_node_started_so_far(devnet):
    run = devnet("--validators", "1", "--no-worker")
    deadline = time.monotonic() + 30
    while not _recorded_pids(run.base_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = _recorded_pids(run.base_dir)
    assert pids
    assert run.interrupt() == 130
    _wait_gone(pids)
    assert run.stderr.rstrip().endswith("interrupted")
    assert "Traceback" not in run.stderr


def test_stale_pids_and_a_taken_port_do_not_stop_a_start(devnet, tmp_path):
    layout = prepare(tmp_path / "devnet", 1)
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    with socket.socket() as listener:
        listener.bind(("127.0.0.2", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        # The record says the node had the taken port and a pid that is gone (a crash, a reboot).
        write_record(layout, {"validator1": NodeAddresses(Address("127.0.0.2", taken + 1), Address("127.0.0.2", taken),
                                                          Address("127.0.0.2", taken + 2))},
                     {"validator1": finished.pid})
        run = devnet("--no-worker")
        run.wait_for(READY)
        rpc = run.record()["nodes"][0]["rpc"]
        assert rpc != f"127.0.0.2:{taken}"
        with Client(rpc) as client:
            assert client.chain_info().chain_id == "inferchain-devnet"
        assert run.interrupt() == 0


def _without_progress(stderr: str) -> str:
    """The error line alone: progress lines (started, stopping, stopped) taken out."""
    return "\n".join(line for line in stderr.splitlines() if line.startswith("error: "))


# --- four validators: needs the node's multi-validator consensus ---------------------------------


def test_four_validators_all_finalize_the_same_blocks_with_each_other_as_peers(devnet):
    run = devnet("--no-worker")  # the default: 4
    run.wait_for(READY)
    nodes = run.record()["nodes"]
    assert [node["name"] for node in nodes] == ["validator1", "validator2", "validator3", "validator4"]
    assert [node["rpc"].split(":")[0] for node in nodes] == ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
    infos = []
    for node in nodes:
        with Client(node["rpc"]) as client:
            infos.append(client.chain_info())
    assert {info.genesis_hash for info in infos} == {infos[0].genesis_hash}
    height = min(info.finalized_height for info in infos)
    hashes = set()
    for node in nodes:
        with Client(node["rpc"]) as client:
            hashes.add(client.block(height=height).hash)
    assert len(hashes) == 1
    raw = _raw_chain_info(nodes[0]["rpc"])
    assert raw.peers == 3 and raw.validators == 4 and raw.is_validator
    assert run.interrupt() == 0
    _wait_gone([node["pid"] for node in nodes])


def _raw_chain_info(target: str):
    import grpc

    from proto import node_pb2, node_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        return node_pb2_grpc.NodeStub(channel).GetChainInfo(node_pb2.GetChainInfoRequest(), timeout=5)


# --- the demo job: loads the model in every validator's worker ------------------------------------


def test_the_demo_job_is_executed_verified_and_its_answer_printed(devnet):
    run = devnet()  # 4 validators, each with its executor worker
    run.wait_for("the demo job's verified answer", timeout=400, where="stdout")
    run.wait_for("height", where="stdout")
    assert "settled at height" in run.stderr
    assert "verdict         valid" in run.stdout
    document = json.loads((run.base_dir / "demo-job.json").read_text())
    assert document["status"] == "settled" and document["result"]
    verified = inferchain("verify", str(run.base_dir / "demo-job.json"), "--node", run.record()["nodes"][0]["rpc"],
                          timeout=120)
    assert verified.returncode == 0, verified.stderr
    assert document["text"].strip() in run.stdout
    # A job posted to another node is assigned across validators (redundancy 3) and settles.
    third = run.record()["nodes"][2]["rpc"]
    posted = inferchain("job", "submit", "Say hello.", "--from", "bob", "--redundancy", "3", "--max-tokens", "24",
                        "--wait", "--output", "json", "--node", third, timeout=300)
    assert posted.returncode == 0, posted.stderr
    job = json.loads(posted.stdout)
    assert job["status"] == "settled"
    executors = {slot["executor"] for slot in job["executors"]}
    assert len(executors) == 3
    assert run.interrupt() == 0
