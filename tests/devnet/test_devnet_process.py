"""`inferchain devnet` as a person runs it: real node processes on their own loopback addresses.

Every run here is `--no-worker` (no model loaded) except the demo-job test, and each stops its
devnet with SIGINT, as Ctrl-C does; the fixture kills whatever a failed test left running. Each
new devnet gets port bases nothing else uses (--rpc-port and the others), so runs beside other
tests' nodes do not meet a taken port.
"""

from __future__ import annotations

import json
import os
import re
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from chain.client import Client
from chain.devnet.layout import PortBases, node_addresses, port_is_free, prepare, validator_host, write_record
from tests.commands import ROOT, inferchain, one_line_error
from tests.nodes import free_port

READY = "every validator is finalizing"
START_TIMEOUT_S = 120


def free_bases(count: int) -> PortBases:
    """Port bases whose `count` ports of each kind are free on each of the devnet's loopback addresses."""
    for _ in range(200):
        base = random.randrange(20000, 60000, 10)
        bases = PortBases(p2p=base, rpc=base + 100, prometheus=base + 200)
        if all(port_is_free(validator_host(index), bases.port(kind, index))
               for index in range(count) for kind in ("p2p", "rpc", "prometheus")):
            return bases
    raise AssertionError("no free port bases")


def port_options(bases: PortBases) -> list[str]:
    return ["--p2p-port", str(bases.p2p), "--rpc-port", str(bases.rpc), "--prometheus-port", str(bases.prometheus)]


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

    def start(*args: str, base_dir: Path | None = None, ports: bool = True) -> DevnetRun:
        """`ports`: give new port bases (a resumed devnet without them keeps those devnet.json records)."""
        extra = port_options(free_bases(int(args[args.index("--validators") + 1]) if "--validators" in args else 4))
        # The gateway serves the validators' executors: started (on a free port) only where they run.
        gateway = ["--no-gateway"] if "--no-worker" in args else ["--gateway-port", str(free_port())]
        run = DevnetRun(base_dir or tmp_path / "devnet", *args, *(extra if ports else []), *gateway)
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
    run.wait_for("validator1 up: finalized #", where="stdout")
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

    second = devnet("--no-worker", ports=False)  # no count, no ports: the devnet's own
    second.wait_for(READY)
    assert second.record()["nodes"][0]["rpc"] == rpc  # its own ports, though the last run's connections linger
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


def test_a_launcher_killed_with_sigkill_takes_its_nodes_with_it(devnet):
    run = devnet("--validators", "1", "--no-worker")
    run.wait_for(READY)
    pid = run.record()["nodes"][0]["pid"]
    run.process.kill()  # no Ctrl-C, no cleanup: the node's parent-death signal stops it
    run.process.wait(10)
    # The signal starts the node's own clean stop. The node used to outlive its launcher here now and then
    # (CI at 4caddc5 and 0b1cf19): the parent-death SIGTERM comes once per launcher thread that exits, and
    # nested handlers deadlocked on the stop event's lock (tests/cli/test_stop_signals.py). The wait stays
    # generous for a loaded 2-core machine.
    _wait_gone([pid], timeout=75)


def test_a_devnet_that_is_already_running_is_not_started_twice(devnet):
    first = devnet("--validators", "1", "--no-worker")
    first.wait_for(READY)
    pid = first.record()["nodes"][0]["pid"]
    second = devnet("--no-worker", ports=False)
    assert second.finish() == 1
    assert f"a devnet is already running from {first.base_dir} (validator1 is pid {pid})" in second.stderr
    assert _alive(pid)
    assert first.interrupt() == 0


def test_a_node_that_fails_to_start_is_named_with_its_last_log_line(devnet, tmp_path):
    layout = prepare(tmp_path / "devnet", 1)
    (layout.validators[0].base_path / "chains").write_text("not a directory")
    run = devnet("--no-worker", "--validators", "1")
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


def test_stale_pids_do_not_stop_a_start(devnet, tmp_path):
    layout = prepare(tmp_path / "devnet", 1)
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    # The record names a pid that is gone (a crash, a reboot).
    write_record(layout, node_addresses(layout), {"validator1": finished.pid})
    run = devnet("--no-worker", "--validators", "1")
    run.wait_for(READY)
    with Client(run.record()["nodes"][0]["rpc"]) as client:
        assert client.chain_info().chain_id == "inferchain-devnet"
    assert run.interrupt() == 0


def test_a_taken_port_is_refused_naming_it_and_the_option_that_moves_the_base(tmp_path):
    bases = free_bases(2)
    with socket.socket() as listener:
        listener.bind(("127.0.0.3", bases.rpc + 1))  # validator2's API
        listener.listen()
        result = inferchain("devnet", "--validators", "2", "--no-worker", "--base-dir", str(tmp_path / "devnet"),
                            *port_options(bases))
    assert result.returncode == 1
    assert one_line_error(result) == (
        f"error: 127.0.0.3:{bases.rpc + 1} (validator2's gRPC API) is in use by another program (`ss -ltnp` names "
        f"it); stop it, or move every validator's gRPC API with --rpc-port BASE (validator K gets BASE+K-1; "
        f"now {bases.rpc})")


def test_port_bases_that_overlap_or_leave_the_range_are_a_usage_error(tmp_path):
    for options, message in ((["--rpc-port", "9615"], "--rpc-port 9615 and --prometheus-port 9615 overlap"),
                             (["--rpc-port", "65534"], "--rpc-port 65534 does not fit 4 validators")):
        result = inferchain("devnet", "--no-worker", "--base-dir", str(tmp_path / "devnet"), *options)
        assert result.returncode == 2
        assert message in one_line_error(result)
        assert not (tmp_path / "devnet").exists()


def test_commands_to_a_devnet_that_is_not_running_or_not_there_are_refused(tmp_path):
    missing = inferchain("devnet", "status", "--base-dir", str(tmp_path / "nothing"))
    assert missing.returncode == 6
    assert f"{tmp_path / 'nothing'} holds no devnet" in one_line_error(missing)
    prepare(tmp_path / "devnet", 2)
    stopped = inferchain("devnet", "--base-dir", str(tmp_path / "devnet"), "restart", "validator2")
    assert stopped.returncode == 1
    assert f"no devnet is running from {tmp_path / 'devnet'}" in one_line_error(stopped)
    unknown = inferchain("devnet", "stop", "validator3", "--base-dir", str(tmp_path / "devnet"))
    assert unknown.returncode == 6
    assert one_line_error(unknown) == (f"error: 'validator3' is not part of the devnet in {tmp_path / 'devnet'}; "
                                       "its validators: validator1, validator2")


def _without_progress(stderr: str) -> str:
    """The error line alone: progress lines (started, stopping, stopped) taken out."""
    return "\n".join(line for line in stderr.splitlines() if line.startswith("error: "))


# --- four validators: needs the node's multi-validator consensus ---------------------------------


def test_four_validators_all_finalize_the_same_blocks_with_each_other_as_peers(devnet):
    run = devnet("--no-worker")  # the default: 4
    run.wait_for(READY)
    nodes = run.record()["nodes"]
    assert [node["name"] for node in nodes] == ["validator1", "validator2", "validator3", "validator4"]
    base = run.record()["ports"]["rpc"]
    assert [node["rpc"] for node in nodes] == [f"127.0.0.{k + 1}:{base + k - 1}" for k in range(1, 5)]
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


def test_a_validator_stopped_and_started_from_another_terminal_is_tracked_and_catches_up(devnet):
    run = devnet("--no-worker", "--refresh", "0.5")
    run.wait_for(READY)
    run.wait_for("validator4 up: finalized #", where="stdout")
    base_dir = str(run.base_dir)

    def command(*args: str) -> subprocess.CompletedProcess:
        return inferchain("devnet", *args, "--base-dir", base_dir, timeout=150)

    def states() -> dict[str, dict]:
        reply = command("status", "--output", "json")
        assert reply.returncode == 0, reply.stderr
        return {node["name"]: node for node in json.loads(reply.stdout)["nodes"]}

    table = command("status")
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:3] == ["node", "rpc", "state"]
    unknown = command("restart", "validator5")
    assert unknown.returncode == 6
    assert one_line_error(unknown).endswith("its validators: validator1, validator2, validator3, validator4")

    stopped = command("stop", "validator2")
    assert stopped.returncode == 0 and stopped.stdout.startswith("validator2 stopped (exit 0); 3 of 4 validators run")
    assert states()["validator2"]["state"] == "stopped" and run.record()["nodes"][1]["pid"] is None
    refused = command("stop", "validator3")
    assert refused.returncode == 1
    assert "would leave 2 of 4 validators running, and the chain finalizes only with 3 of 4" in one_line_error(refused)
    at_stop = states()["validator1"]["finalized"]
    deadline = time.monotonic() + 30
    while states()["validator1"]["finalized"] < at_stop + 5 and time.monotonic() < deadline:
        time.sleep(0.5)  # three of four go on finalizing without validator2

    started = command("start", "validator2")
    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith("validator2 started (pid ")
    restarted = command("restart", "validator3")
    assert restarted.returncode == 0, restarted.stderr
    deadline = time.monotonic() + 60
    while {node["state"] for node in states().values()} != {"up"} and time.monotonic() < deadline:
        time.sleep(0.5)
    nodes = states()
    assert {node["state"] for node in nodes.values()} == {"up"}, nodes
    assert nodes["validator2"]["finalized"] >= at_stop + 5
    assert nodes["validator2"]["pid"] == run.record()["nodes"][1]["pid"] != None  # noqa: E711
    height = min(node["finalized"] for node in nodes.values())
    hashes = set()
    for node in nodes.values():
        with Client(node["rpc"]) as client:
            hashes.add(client.block(height=height).hash)
    assert len(hashes) == 1

    # The pipe got a line per change of state, not one per block: validator2 stopped, then back up.
    lines = [line.split(" ", 1)[1] for line in run.stdout.splitlines()]
    states_shown = [line[len("validator2 "):].split(":")[0].split(" (")[0]
                    for line in lines if line.startswith("validator2 ")]
    states_shown = [state for state in states_shown if state != "stopping"]  # seen when a refresh falls in the stop
    assert "validator3 restarting" in lines and "validator3 stopped" not in lines
    assert states_shown[:2] == ["up", "stopped"] and states_shown[-1] == "up", lines
    assert set(states_shown[2:-1]) <= {"starting", "catching up"}, lines
    assert all(state != following for state, following in zip(states_shown, states_shown[1:])), lines
    assert len(lines) < 30, lines
    log = (run.base_dir / "validator2" / "node.log").read_text()
    assert log.count("inferchain devnet: starting validator2") == 2
    assert "validator3: restart requested from another terminal" in run.stderr
    assert run.interrupt() == 0
    assert "Traceback" not in run.stderr


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
    # The gateway on the first validator: its URL and API key printed, and OpenAI's model list served.
    run.wait_for("gateway: OpenAI-compatible API", timeout=60)
    gateway = re.search(r"gateway: OpenAI-compatible API (\S+), API key (\S+) ", run.stderr)
    models = httpx.get(f"{gateway.group(1)}/models", headers={"Authorization": f"Bearer {gateway.group(2)}"},
                       timeout=30)
    assert models.status_code == 200 and models.json()["data"][0]["id"] == "SmolLM2-135M-Instruct-Q4_1"
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
