"""The devnet's node processes: start them, wait until each finalizes, stop them all.

Each node is `python -m chain.cli node` with its own genesis copy, key, loopback address and data
directory, every other node as a bootnode, its output appended to BASE_DIR/<name>/node.log. Nodes
run in sessions of their own, so a Ctrl-C in the terminal reaches only the launcher, which then
stops them in order; on Linux each is also told to stop (SIGTERM) if the launcher itself dies.
One node can also be stopped and started again while the others run (`inferchain devnet stop
NAME`): it keeps its data directory, addresses and log, and catches up from its peers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import grpc

from chain.devnet.layout import DevnetError, Layout, NodeAddresses, Validator, write_record
from proto import node_pb2, node_pb2_grpc

# 4 nodes, 4 workers loading the model and consensus starting, on 2 cores: half a minute is normal.
DEFAULT_START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
PROBE_TIMEOUT_S = 1.0
POLL_INTERVAL_S = 0.25
LOG_TAIL_BYTES = 64 * 1024
LOG_LINE_CHARS = 300
ROOT = Path(__file__).resolve().parent.parent.parent


class NodeFailure(DevnetError):
    """A node exited or did not start finalizing; the message names it and quotes its log."""


@dataclass(frozen=True)
class LaunchOptions:
    """How every node of the devnet runs."""

    # Each validator executes jobs with its own worker; on a small machine one thread and one job
    # at a time each, so N workers do not oversubscribe the cores.
    worker: bool = True
    worker_threads: int = 1
    worker_parallel: int = 1
    # The workers post sealed probes (docs/protocol.md, "Sealed probes"); benchmarks that measure the market
    # alone turn it off.
    worker_probes: bool = True
    log_format: str = "plain"
    python: str = sys.executable


def node_command(layout: Layout, validator: Validator, addresses: Mapping[str, NodeAddresses],
                 options: LaunchOptions) -> list[str]:
    """The `inferchain node` command line of one validator."""
    own = addresses[validator.name]
    peers = [str(addresses[other.name].p2p) for other in layout.validators if other.name != validator.name]
    command = [
        options.python, "-m", "chain.cli", "node",
        "--chain", str(layout.genesis_path),
        "--key", str(validator.key_path),
        "--base-path", str(validator.base_path),
        "--listen-addr", str(own.p2p),
        "--public-addr", str(own.p2p),
        "--rpc-addr", str(own.rpc),
        "--prometheus-addr", str(own.prometheus),
        "--log-format", options.log_format,
    ]
    if options.worker:
        command += ["--worker-threads", str(options.worker_threads), "--worker-parallel", str(options.worker_parallel)]
        if not options.worker_probes:
            command.append("--worker-no-probes")
    else:
        command.append("--no-worker")
    if peers:
        command += ["--bootnodes", *peers]
    return command


def last_log_line(path: Path) -> str:
    """The last non-empty line of a log, cut to a readable length; a note when there is none."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
            tail = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    if not lines:
        return "(the log is empty)"
    line = lines[-1]
    return line if len(line) <= LOG_LINE_CHARS else line[:LOG_LINE_CHARS] + "…"


@dataclass
class RunningNode:
    """A started node process."""

    validator: Validator
    addresses: NodeAddresses
    process: subprocess.Popen
    started_at: float = 0.0  # time.monotonic() at the start

    @property
    def name(self) -> str:
        return self.validator.name

    @property
    def pid(self) -> int:
        return self.process.pid

    def exit_code(self) -> int | None:
        return self.process.poll()

    def exited_message(self, when: str) -> str:
        return (f"{self.name} exited with code {self.process.returncode} {when}; its last log line: "
                f"{last_log_line(self.validator.log_path)} (log: {self.validator.log_path})")


class Devnet:
    """The node processes of one devnet layout."""

    def __init__(self, layout: Layout, addresses: Mapping[str, NodeAddresses], options: LaunchOptions = LaunchOptions()):
        self.layout = layout
        self.addresses = dict(addresses)
        self.options = options
        self.nodes: list[RunningNode] = []
        # Names stopped on request (`inferchain devnet stop NAME`) and not started since, and names
        # being stopped to be started again (`restart`).
        self.stopped: set[str] = set()
        self.restarting: set[str] = set()

    def node(self, name: str) -> RunningNode | None:
        """The node of validator `name` (its latest process), None when it has not been started."""
        return next((node for node in self.nodes if node.name == name), None)

    def running(self) -> list[RunningNode]:
        """The nodes whose process runs and was not asked to stop."""
        return [node for node in self.nodes
                if node.exit_code() is None and node.name not in self.stopped and node.name not in self.restarting]

    # --- starting ------------------------------------------------------------------

    def start(self) -> None:
        """Start every node (not waiting for any), then record their pids in devnet.json."""
        write_record(self.layout, self.addresses, {})
        for validator in self.layout.validators:
            self.nodes.append(self._spawn(validator))
            write_record(self.layout, self.addresses, self.pids())

    def _spawn(self, validator: Validator) -> RunningNode:
        command = _stop_with_parent_prefix() + node_command(self.layout, validator, self.addresses, self.options)
        validator.base_path.mkdir(parents=True, exist_ok=True)
        with open(validator.log_path, "ab") as log:
            log.write(f"--- inferchain devnet: starting {validator.name} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
                      .encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=_node_environment(), start_new_session=True,
                    preexec_fn=None if command[0] == "setpriv" else _stop_with_parent(),
                )
            except OSError as error:
                raise NodeFailure(f"cannot start {validator.name}: {error.strerror or error}") from None
        return RunningNode(validator, self.addresses[validator.name], process, time.monotonic())

    def pids(self) -> dict[str, int | None]:
        return {node.name: node.pid if node.exit_code() is None else None for node in self.nodes}

    def wait_finalizing(self, timeout: float = DEFAULT_START_TIMEOUT_S,
                        report: Callable[[str], None] = lambda line: None) -> None:
        """Return once every node's finalized height has advanced; NodeFailure naming a node that exits or does not."""
        deadline = time.monotonic() + timeout
        first_seen: dict[str, int] = {}
        last_info: dict[str, node_pb2.ChainInfo] = {}
        finalizing: set[str] = set()
        probes = {node.name: ChainProbe(str(node.addresses.rpc)) for node in self.nodes}
        try:
            while len(finalizing) < len(self.nodes):
                for node in self.nodes:
                    if node.name in finalizing:
                        continue
                    if node.exit_code() is not None:
                        raise NodeFailure(node.exited_message("while starting"))
                    info = probes[node.name].chain_info()
                    if info is None:
                        continue
                    last_info[node.name] = info
                    if node.name not in first_seen:
                        first_seen[node.name] = info.finalized_height
                        report(f"{node.name} serving on {node.addresses.rpc} (finalized #{info.finalized_height})")
                    elif info.finalized_height > first_seen[node.name]:
                        finalizing.add(node.name)
                        report(f"{node.name} finalizing (#{info.finalized_height}, {_peers(info.peers)})")
                if len(finalizing) < len(self.nodes) and time.monotonic() >= deadline:
                    laggard = next(node for node in self.nodes if node.name not in finalizing)
                    raise NodeFailure(_not_finalizing(laggard, last_info.get(laggard.name), timeout))
                time.sleep(POLL_INTERVAL_S)
        finally:
            for probe in probes.values():
                probe.close()

    # --- one node, while the others run ------------------------------------------------

    def terminate(self, name: str, restart: bool = False) -> None:
        """Ask validator `name`'s node to stop (SIGTERM); it counts as stopped (or restarting) from now on."""
        node = self.node(name)
        (self.restarting if restart else self.stopped).add(name)
        if node is not None and node.exit_code() is None:
            _signal(node.process, signal.SIGTERM)

    def kill(self, name: str) -> None:
        """SIGKILL validator `name`'s node and what it started, when it outlived its stop timeout."""
        node = self.node(name)
        if node is not None and node.exit_code() is None:
            _kill_session(node.process)

    def respawn(self, name: str) -> RunningNode:
        """Start validator `name`'s node again (its process has exited), with its data, addresses and log."""
        index = next(position for position, node in enumerate(self.nodes) if node.name == name)
        old = self.nodes[index]
        if old.exit_code() is None:
            raise NodeFailure(f"{name} still runs (pid {old.pid})")
        self.nodes[index] = self._spawn(old.validator)
        self.stopped.discard(name)
        self.restarting.discard(name)
        self.record()
        return self.nodes[index]

    def record(self) -> None:
        """Rewrite devnet.json with every node's current pid (null for one not running)."""
        try:
            write_record(self.layout, self.addresses, self.pids())
        except OSError:
            pass  # only a record: the running launcher, not the file, knows the nodes

    # --- stopping ------------------------------------------------------------------

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> dict[str, int]:
        """SIGTERM every node, wait up to `timeout` s, then SIGKILL what remains (also on a second Ctrl-C)."""
        for node in self.nodes:
            if node.exit_code() is None:
                _signal(node.process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        try:
            for node in self.nodes:
                try:
                    node.process.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        except KeyboardInterrupt:
            pass
        for node in self.nodes:
            if node.exit_code() is None:
                _kill_session(node.process)
        self._record_stopped()
        return {node.name: node.process.returncode for node in self.nodes}

    def _record_stopped(self) -> None:
        try:
            write_record(self.layout, self.addresses, {})
        except OSError:
            pass  # a record with stale pids is harmless: the next start checks each


class ChainProbe:
    """GetChainInfo of one node, answering None while the node does not answer."""

    def __init__(self, target: str):
        self._channel = grpc.insecure_channel(target)
        self._stub = node_pb2_grpc.NodeStub(self._channel)

    def chain_info(self) -> node_pb2.ChainInfo | None:
        try:
            return self._stub.GetChainInfo(node_pb2.GetChainInfoRequest(), timeout=PROBE_TIMEOUT_S)
        except grpc.RpcError:
            return None

    def close(self) -> None:
        self._channel.close()


def _not_finalizing(node: RunningNode, info: node_pb2.ChainInfo | None, timeout: float) -> str:
    if info is None:
        state = f"its API at {node.addresses.rpc} has not answered"
    else:
        state = (f"finalized #{info.finalized_height}, best #{info.best_height}, round {info.consensus_round}, "
                 f"{_peers(info.peers)}")
    return (f"{node.name} is not finalizing after {timeout:g} s ({state}); its last log line: "
            f"{last_log_line(node.validator.log_path)} (log: {node.validator.log_path})")


def _peers(count: int) -> str:
    return f"{count} peer{'' if count == 1 else 's'}"


def _node_environment() -> dict[str, str]:
    python_path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(ROOT) + (os.pathsep + python_path if python_path else ""),
        # gRPC's C core would print its own copy of errors the node logs in one line.
        "GRPC_VERBOSITY": os.environ.get("GRPC_VERBOSITY", "NONE"),
    }


def _stop_with_parent_prefix() -> list[str]:
    """`setpriv --pdeathsig TERM`, which sets PR_SET_PDEATHSIG and execs the node in place, where it exists.

    Better than a pre-exec hook: Python run between fork and exec can hang or crash a process whose
    other threads are inside gRPC (the status reader's channels, when a node is started again)."""
    if sys.platform.startswith("linux") and shutil.which("setpriv"):
        return ["setpriv", "--pdeathsig", "TERM"]
    return []


def _stop_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGTERM the child when the launcher dies (prctl PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return None
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    libc = ctypes.CDLL(library, use_errno=True)  # loaded before the fork: the child only calls it
    pr_set_pdeathsig = 1

    def hook() -> None:
        libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)

    return hook


def _signal(process: subprocess.Popen, signum: int) -> None:
    try:
        process.send_signal(signum)
    except ProcessLookupError:
        pass


def _kill_session(process: subprocess.Popen) -> None:
    """SIGKILL the node and what it started (its worker shares its session's process group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        _signal(process, signal.SIGKILL)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        pass
