"""Real node processes for tests: start `inferchain node` on free 127.0.0.1 ports, wait, stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import contextlib
import errno
import re
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.commands import ROOT



def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_serving(target: str, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    """Block until the node at `target` reports SERVING on gRPC health, or fail."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"node exited with {process.returncode} before serving")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"node at {target} did not serve within {timeout} s")


@dataclass
class NodeProcess:
    """One `inferchain node` process and where it listens."""

    base_path: Path
    rpc_port: int
    extra_args: tuple[str, ...] = ()
    # Run the validator's executor worker (it loads the model): only tests that execute jobs want it.
    worker: bool = False
    # Let that worker post sealed probes (a job of its own, or another poster's next job adopted, paid back by the
    # probe fund): off, so tests and benchmarks count only the jobs they post (tests/worker/test_prober.py and the
    # devnet launcher run the default).
    probes: bool = False
    # The peer-to-peer address (port 0: any free one) and whether to run the dev chain (else extra_args name
    # --chain and --key).
    p2p: str = "127.0.0.1:0"
    dev: bool = True
    rpc_host: str = "127.0.0.1"
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    _log: object = field(default=None, repr=False)

    @property
    def target(self) -> str:
        return f"{self.rpc_host}:{self.rpc_port}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "chain.cli", "node", *(("--dev",) if self.dev else ()),
            "--base-path", str(self.base_path),
            "--rpc-addr", self.target,
            "--listen-addr", self.p2p,
            "--prometheus-addr", f"{self.rpc_host}:0",
            *(() if self.worker else ("--no-worker",)),
            *(("--worker-no-probes",) if self.worker and not self.probes else ()),
            *self.extra_args,
        ]

    def start(self, wait: bool = True) -> "NodeProcess":
        self.log_path = self.base_path.parent / f"{self.base_path.name}.log"
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command(), cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        if wait:
            wait_serving(self.target, process=self.process)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def metrics(self) -> str:
        """The node's /metrics page (the port it picked is in its log)."""
        found = re.search(r"prometheus metrics on (http://\S+/metrics)", self.log())
        if found is None:
            raise RuntimeError("the node logged no metrics address")
        with urllib.request.urlopen(found.group(1), timeout=5) as reply:
            return reply.read().decode()

    def kill(self) -> None:
        """SIGKILL: the crash a node must survive."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self._close_log()

    def stop(self) -> int | None:
        """SIGTERM and wait for a clean exit."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._close_log()
        return self.process.returncode if self.process else None

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def wait_quiet(target: str, blocks: int = 3) -> None:
    """Return once `blocks` new blocks in a row carried no transaction and no event: what was posted before has
    settled, and the node's pace holds its full credit again (three idle heights fill it; chain/consensus/pace.py),
    as on a network not busy with other jobs for three block times."""
    from chain.client import Client

    quiet = 0
    with Client(target) as client:
        for block in client.subscribe_blocks():
            quiet = quiet + 1 if not block.transactions and not block.block_events else 0
            if quiet >= blocks:
                return


@contextlib.contextmanager
def small_filesystem(path: Path, size_mb: int):
    """A tmpfs of `size_mb` MiB mounted at `path` (needs root), unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        raise RuntimeError(f"cannot mount a tmpfs at {path}: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill_filesystem(path: Path) -> Path:
    """Write a file at `path` until its filesystem has no space left; the file, to delete to free it."""
    chunk = b"\0" * (64 * 1024)
    with open(path, "wb", buffering=0) as file:
        while True:
            try:
                file.write(chunk)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                break
    return path


def market_genesis(path: Path, block_time_ms: int, **jobs_params) -> Path:
    """The dev genesis (Alice bonded, offering the embedded model) with another block time and jobs params."""
    from chain.genesis import dev_genesis_document

    document = dev_genesis_document()
    document["consensus_params"]["block"]["block_time_ms"] = str(block_time_ms)
    document["app_state"]["jobs"]["params"].update({name: str(value) for name, value in jobs_params.items()})
    path.write_text(json.dumps(document, indent=2))
    return path
