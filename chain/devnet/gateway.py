"""The devnet's gateway: `inferchain gateway` on the first validator, started after the nodes finalize.

It runs as its own process (stopped with the devnet, and by the kernel when the launcher dies, as the
nodes are), signs jobs with one dev account's key, and keeps its API keys in the devnet's directory, so a
resumed devnet hands out the same key. A gateway that cannot start (its port taken) is reported in one
line and the devnet runs on without it.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from chain.devnet.launcher import ROOT, _node_environment, _stop_with_parent, _stop_with_parent_prefix
from chain.devnet.layout import Layout

# The dev account the gateway signs jobs with (not a validator: its jobs go to the validators' executors).
GATEWAY_POSTER = "charlie"
GATEWAY_PORT = 8080
API_KEYS_FILE = "gateway-api-keys.json"
GATEWAY_LOG = "gateway.log"
# What `inferchain gateway` prints once it serves (chain/cli/gateway.py), and how long to wait for it.
READY_LINES = ("OpenAI-compatible API: ", "API key: ", "explorer: ")
START_TIMEOUT_S = 30.0


class GatewayNotStarted(Exception):
    """The gateway exited or said nothing in time; the message is its last output line."""


@dataclass
class RunningGateway:
    process: subprocess.Popen
    base_url: str
    api_key: str
    explorer: str

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def gateway_command(layout: Layout, rpc: str, port: int) -> list[str]:
    return [sys.executable, "-m", "chain.cli", "gateway", "--node", rpc, "--key", GATEWAY_POSTER,
            "--listen", f"127.0.0.1:{port}", "--api-keys", str(layout.base_dir / API_KEYS_FILE)]


def start_gateway(layout: Layout, rpc: str, port: int = GATEWAY_PORT,
                  timeout: float = START_TIMEOUT_S) -> RunningGateway:
    """Start the gateway against the node at `rpc` and wait for its URL and key (GatewayNotStarted)."""
    command = _stop_with_parent_prefix() + gateway_command(layout, rpc, port)
    with open(layout.base_dir / GATEWAY_LOG, "ab") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
            env=_node_environment(), text=True, start_new_session=True,
            preexec_fn=None if command[0] == "setpriv" else _stop_with_parent(),
        )
    said: dict[str, str] = {}
    last = [""]

    def read() -> None:
        for line in process.stdout:
            last[0] = line.strip() or last[0]
            for prefix in READY_LINES:
                if line.startswith(prefix):
                    said[prefix] = line[len(prefix):].strip()
            if len(said) == len(READY_LINES):
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        reader.join(timeout)
    except BaseException:  # Ctrl-C while it starts: it goes with the devnet
        process.kill()
        process.wait()
        raise
    if len(said) < len(READY_LINES):
        running = process.poll() is None
        if running:
            process.kill()
        process.wait()
        log = _last_line(layout.base_dir / GATEWAY_LOG) or last[0] or "no output"
        raise GatewayNotStarted(("said nothing in time" if running else f"exited with code {process.returncode}")
                                + f"; its last line: {log}")
    # Keep reading (and discarding) what it prints, so a full pipe never blocks it.
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    return RunningGateway(process, said[READY_LINES[0]], said[READY_LINES[1]], said[READY_LINES[2]])


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""
