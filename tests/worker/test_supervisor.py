"""The node's worker supervisor: a worker process only while the key has an offer, started again after a
failure, stopped with the node."""

from __future__ import annotations

import sys
import threading
import time

from chain.worker.supervisor import WorkerLaunch, WorkerSupervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_the_worker_starts_once_an_offer_appears_and_stops_with_the_node():
    offered = threading.Event()
    supervisor = WorkerSupervisor(SLEEPER, offered.is_set, check_interval_s=0.05)
    supervisor.start()
    try:
        time.sleep(0.3)
        assert supervisor.process is None, "no offer, no worker"
        offered.set()
        wait_until(lambda: supervisor.process is not None)
        process = supervisor.process
    finally:
        supervisor.stop()
    assert process.poll() is not None, "stopping the supervisor stops the worker"


def test_a_failed_worker_is_started_again(tmp_path):
    runs = tmp_path / "runs"
    failing = [sys.executable, "-c", f"open({str(runs)!r}, 'a').write('x'); raise SystemExit(3)"]
    supervisor = WorkerSupervisor(failing, lambda: True, check_interval_s=0.05, restart_delays_s=(0.1,))
    supervisor.start()
    try:
        wait_until(lambda: runs.exists() and len(runs.read_text()) >= 3)
    finally:
        supervisor.stop()


def test_the_worker_command_names_the_node_key_store_and_parent(tmp_path):
    command = WorkerLaunch("alice", "debug", "json").command("127.0.0.1:5000", tmp_path)
    assert command[1:4] == ["-m", "chain.cli", "worker"]
    text = " ".join(command)
    assert f"--node 127.0.0.1:5000 --key alice --base-path {tmp_path}" in text
    assert "--log-level debug --log-format json --parent-pid" in text
    assert "--stream-endpoint" not in text  # the worker's default: the --node target


def test_the_nodes_stream_endpoint_reaches_its_worker(tmp_path):
    launch = WorkerLaunch("alice", stream_endpoint="node.example.org:9944")
    command = launch.command("127.0.0.1:5000", tmp_path)
    assert command[command.index("--stream-endpoint") + 1] == "node.example.org:9944"
    assert WorkerLaunch("alice", stream_endpoint="").command("127.0.0.1:5000", tmp_path)[-2:] == [
        "--stream-endpoint", ""]


def test_the_nodes_engine_class_and_batching_reach_its_worker(tmp_path):
    command = WorkerLaunch("alice", engine_class="gpu-a", batch_jobs=8).command("127.0.0.1:5000", tmp_path)
    assert command[command.index("--engine-class") + 1] == "gpu-a"
    assert command[command.index("--batch-jobs") + 1] == "8"
    plain = " ".join(WorkerLaunch("alice").command("127.0.0.1:5000", tmp_path))
    assert "--engine-class" not in plain and "--batch-jobs" not in plain  # the worker's defaults
