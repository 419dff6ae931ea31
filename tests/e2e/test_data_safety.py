"""Real node processes against a full disk and a damaged database: nothing reported is lost or rewritten."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chain.node.runner import BLOCK_PRODUCTION_HEALTH
from proto import node_pb2, node_pb2_grpc
from tests.commands import inferchain
from tests.nodes import NodeProcess, fill_filesystem, free_port

pytestmark = pytest.mark.slow

RECOVERY = "restore it from a backup or resync"


def chain_info(stub) -> node_pb2.ChainInfo:
    return stub.GetChainInfo(node_pb2.GetChainInfoRequest(), timeout=5)


def wait_height(stub, height: int, timeout: float = 30.0) -> node_pb2.ChainInfo:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = chain_info(stub)
        if info.best_height >= height:
            return info
        time.sleep(0.1)
    raise TimeoutError(f"no block {height} within {timeout} s")


def health_of(target: str, service: str) -> int:
    with grpc.insecure_channel(target) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def database_of(node: NodeProcess) -> Path:
    return node.base_path / "chains" / "inferchain-dev" / "db"


def node_command(base_path: Path, *extra: str) -> subprocess.CompletedProcess:
    """`inferchain node --dev` in the foreground; a node that starts instead of refusing fails the test."""
    try:
        return inferchain(
            "node", "--dev", "--base-path", str(base_path), "--rpc-port", str(free_port()), "--no-prometheus", *extra,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the node started (and ran for 30 s) instead of refusing its data directory")


def refusal_line(result: subprocess.CompletedProcess) -> str:
    """The node may log its start-up first; then exactly one `error:` line, a non-zero exit, no traceback."""
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


# --- a full disk ----------------------------------------------------------------------------------


# A real node writes its log and blocks besides the database: more room than the default 8 MiB.
SMALL_DISK_MB = 16


def wait_for_halt(node: NodeProcess, stub, timeout: float = 60.0) -> int:
    """Poll until block production reports halted; the highest height the API reported meanwhile."""
    deadline = time.monotonic() + timeout
    highest = 0
    while time.monotonic() < deadline:
        highest = max(highest, chain_info(stub).best_height)
        if health_of(node.target, BLOCK_PRODUCTION_HEALTH) == health_pb2.HealthCheckResponse.NOT_SERVING:
            return max(highest, chain_info(stub).best_height)
        time.sleep(0.1)
    raise TimeoutError(f"block production did not halt within {timeout} s of the disk filling")


def test_a_full_disk_halts_production_and_the_restart_is_at_the_last_reported_block(small_disk):
    # The base path is the mount point itself, so the node's log (beside it) stays off the full disk.
    node = NodeProcess(base_path=small_disk, rpc_port=free_port()).start()
    try:
        stub = node_pb2_grpc.NodeStub(grpc.insecure_channel(node.target))
        wait_height(stub, 2)
        assert health_of(node.target, BLOCK_PRODUCTION_HEALTH) == health_pb2.HealthCheckResponse.SERVING
        filler = fill_filesystem(small_disk / "filler")
        highest_reported = wait_for_halt(node, stub)

        halted = chain_info(stub)  # queries are still answered
        assert halted.best_height == highest_reported
        assert health_of(node.target, "") == health_pb2.HealthCheckResponse.SERVING
        metrics = node.metrics()
        assert "inferchain_block_production_halted 1" in metrics
        assert "inferchain_storage_errors_total 1" in metrics
        halt_lines = [line for line in node.log().splitlines() if "block production halted" in line]
        assert len(halt_lines) == 1 and "No space left on device" in halt_lines[0], node.log()

        filler.unlink()
        time.sleep(3.5)  # three block times with space to spare: still no block
        assert chain_info(stub).best_height == halted.best_height
        assert node.stop() == 0
    finally:
        node.kill()

    node.start()
    try:
        stub = node_pb2_grpc.NodeStub(grpc.insecure_channel(node.target))
        starts = re.findall(r"best #(\d+) \(([0-9a-f]{16})\)", node.log())
        assert starts[-1] == (str(halted.best_height), halted.best_hash.hex()[:16])
        block = stub.GetBlock(node_pb2.GetBlockRequest(height=halted.best_height), timeout=5)
        assert block.block_hash == halted.best_hash
        wait_height(stub, halted.best_height + 1)  # production resumes after the restart
        assert health_of(node.target, BLOCK_PRODUCTION_HEALTH) == health_pb2.HealthCheckResponse.SERVING
    finally:
        node.stop()


# --- a damaged database ---------------------------------------------------------------------------


def test_bytes_flipped_in_the_write_ahead_log_are_refused_at_restart(node_factory):
    node = node_factory("flip")
    stub = node_pb2_grpc.NodeStub(grpc.insecure_channel(node.target))
    wait_height(stub, 6)
    node.kill()  # kill -9: LevelDB's log is not compacted into a table
    (log_file,) = database_of(node).glob("*.log")
    log = bytearray(log_file.read_bytes())
    middle = len(log) // 2
    log[middle:middle + 4] = bytes(byte ^ 0xFF for byte in log[middle:middle + 4])
    log_file.write_bytes(bytes(log))

    line = refusal_line(node_command(node.base_path))
    assert "is damaged" in line and RECOVERY in line, line


def test_a_deleted_current_file_is_reported_as_damage(node_factory):
    node = node_factory("current")
    wait_height(node_pb2_grpc.NodeStub(grpc.insecure_channel(node.target)), 2)
    assert node.stop() == 0
    (database_of(node) / "CURRENT").unlink()

    line = refusal_line(node_command(node.base_path))
    assert "is damaged: LevelDB's CURRENT file is missing; " + RECOVERY in line, line
    assert not (database_of(node) / "CURRENT").exists()  # nothing was created over the old files


def test_a_base_path_that_is_a_file_is_one_line(tmp_path):
    base = tmp_path / "not-a-directory"
    base.write_text("a file\n")
    line = refusal_line(node_command(base))
    assert "is a file, not a directory" in line, line
    line = refusal_line(node_command(base / "below"))
    assert "cannot use" in line and "as the data directory" in line, line
