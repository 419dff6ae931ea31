"""End to end with the real embedded model (take /tmp/team/llama.lock to run these): the dev node's own
worker settles a greedy job with the engine's exact text; a worker killed mid-job leaves the job to
another executor; a worker never outlives its node."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chain.client import Client
from chain.crypto import dev_keypair
from chain.worker.executor import inference_job
from inference.engine import Engine, EngineConfig
from inference.model_store import ModelStore
from proto import state_pb2
from tests.commands import ROOT
from tests.nodes import NodeProcess, free_port
from tests.nodes import market_genesis
from tests.worker.conftest import final, offer_as_executor, post_job, wait_for_job

pytestmark = pytest.mark.slow

CHARLIE = dev_keypair("charlie")
WORKER_READY = "executing jobs for"


def wait_for_log(read, text: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while text not in read():
        if time.monotonic() > deadline:
            lines = [line for line in read().splitlines() if "produced #" not in line]
            raise AssertionError(f"{text!r} not logged within {timeout} s; the log without blocks:\n" + "\n".join(lines[-40:]))
        time.sleep(0.1)
    return read()


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def start_worker(target: str, key: str, home: Path) -> tuple[subprocess.Popen, Path]:
    log_path = home.with_suffix(".log")
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "chain.cli", "worker", "--node", target, "--key", key, "--base-path", str(home)],
            cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    return process, log_path


def test_the_dev_nodes_worker_settles_a_greedy_job_with_the_engines_exact_text(tmp_path):
    node = NodeProcess(tmp_path / "node", free_port(), worker=True).start()
    try:
        logged = wait_for_log(node.log, WORKER_READY)
        worker_pid = int(re.search(r"executor worker, process (\d+)", logged).group(1))
        with Client(node.target) as client:
            job_id = post_job(client, CHARLIE, redundancy=1, max_tokens=16, prompt="Name three colours.")
        job = wait_for_job(node.target, job_id, final, timeout=90)
    finally:
        node.kill()
    assert job.status == state_pb2.JOB_STATUS_SETTLED, job.reason
    reveal = job.assignments[0].reveal

    embedded = ModelStore(tmp_path / "store").embedded()
    engine = Engine(embedded.path, embedded.id, EngineConfig(threads=2))
    try:
        local = engine.generate(inference_job(job))
    finally:
        engine.close()
    assert (list(reveal.tokens), reveal.text, reveal.stop_reason) == (list(local.tokens), local.text, local.stop_reason)
    assert job.output_digest == local.output_digest()

    deadline = time.monotonic() + 10
    while alive(worker_pid):
        assert time.monotonic() < deadline, "the worker outlived its node by 10 s"
        time.sleep(0.1)


def test_a_worker_killed_mid_job_leaves_the_job_to_another_executor(tmp_path):
    # Half-second blocks; a 128-token job (about 2 s here) gets 10 + 128/20 = 17 blocks to commit, 60 in all.
    genesis = market_genesis(tmp_path / "genesis.json", block_time_ms=500, commit_blocks=10, min_tokens_per_block=20,
                             reveal_blocks=4, job_timeout_blocks=60)
    node = NodeProcess(tmp_path / "node", free_port(), ("--chain", str(genesis), "--no-worker")).start()
    workers = {}
    try:
        with Client(node.target) as client:
            offer_as_executor(client, "bob")
            for name in ("alice", "bob"):
                workers[dev_keypair(name).public_key] = start_worker(node.target, name, tmp_path / name)
            for process, log_path in workers.values():
                wait_for_log(log_path.read_text, WORKER_READY)
            job_id = post_job(client, CHARLIE, redundancy=1, max_tokens=128, prompt="Tell a long story about a fox.")
            first = wait_for_job(node.target, job_id, lambda job: len(job.assignments) == 1).assignments[0].executor
            workers[first][0].send_signal(signal.SIGKILL)
            job = wait_for_job(node.target, job_id, final, timeout=90)
    finally:
        for process, _ in workers.values():
            process.kill()
            process.wait(timeout=10)
        node.kill()
    worker_logs = "\n".join(log_path.read_text()[-3000:] for _, log_path in workers.values())
    assert job.status == state_pb2.JOB_STATUS_SETTLED, f"{job.reason}\n{worker_logs}"
    killed, replacement = job.assignments
    assert killed.executor == first and killed.status == state_pb2.ASSIGNMENT_STATUS_MISSED
    assert replacement.status == state_pb2.ASSIGNMENT_STATUS_REVEALED and replacement.payment > 0
