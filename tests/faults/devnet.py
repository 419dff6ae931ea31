"""A devnet of real `inferchain node` processes to break, and the checks that say what breaking it did.

The layout (keys, genesis) is chain/devnet's (`prepare`), each node's command line the launcher's
(`node_command`, `--no-worker`: no model is loaded), with a short block time and free ports on
each validator's own loopback address (127.0.0.2 ...). Unlike the launcher, each node here can be
killed (-9), paused (SIGSTOP/SIGCONT), stopped, restarted, restarted from an empty chain database,
restarted isolated (no boot nodes, on a port no peer knows) or with extra environment (the
clock offset), one at a time.

What the checks read, from outside as an operator would:
- heights and block hashes over the gRPC API (GetChainInfo, GetBlock), every finalized height of
  every node, so a fork (two hashes at one height) is seen wherever it is;
- double-signs three ways: evidence in any block, `double-sign by` in any node's log, and each
  validator's stake ledger (bonded stake and jail) through a proven state read;
- memory: each node's resident set from /proc, sampled twice a second, the peak kept.

Nodes run in sessions of their own and, on Linux, get SIGTERM when the process that started them
dies (setpriv --pdeathsig; start them from the main thread, since the signal follows the thread).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import grpc

from chain.devnet.launcher import LaunchOptions, node_command
from chain.devnet.layout import Address, NodeAddresses, Validator, prepare, template_document
from proto import node_pb2, node_pb2_grpc, state_pb2, types_pb2
from runtime import staking
from tests.nodes import wait_serving

ROOT = Path(__file__).absolute().parent.parent.parent
BLOCK_TIME_MS = 400
CLOCK_OFFSET_ENV = "INFERCHAIN_CLOCK_OFFSET_S"
PROBE_TIMEOUT_S = 2.0
RSS_SAMPLE_S = 0.5
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0
DOUBLE_SIGN_MARK = "double-sign by "


class FaultFailure(AssertionError):
    """A fault case saw something it must not (or did not see what it must, in time)."""


def free_port(host: str) -> int:
    """A TCP port on `host` that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _stop_with_parent() -> list[str]:
    """A command prefix that has Linux SIGTERM the node when the process that started it dies (or nothing).

    setpriv(1) sets PR_SET_PDEATHSIG and execs the node in place. Not a preexec_fn: Python code run
    between fork and exec can crash a process whose other threads are inside gRPC (hostile peers
    run on a loop in this process), while a spawn without one uses vfork, which runs no fork handlers."""
    if sys.platform.startswith("linux") and shutil.which("setpriv"):
        return ["setpriv", "--pdeathsig", "TERM"]
    return []


@dataclass
class Member:
    """One validator of the devnet and its current process."""

    validator: Validator
    addresses: NodeAddresses
    process: subprocess.Popen | None = None
    paused: bool = False
    # How the running process was started ("normal", "isolated", "clock offset -40 s", ...).
    mode: str = "stopped"
    _channel: grpc.Channel | None = field(default=None, repr=False)
    _stub: node_pb2_grpc.NodeStub | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.validator.name

    @property
    def public_key(self) -> bytes:
        return self.validator.account

    @property
    def rpc(self) -> str:
        return str(self.addresses.rpc)

    @property
    def p2p(self) -> str:
        return str(self.addresses.p2p)

    @property
    def log_path(self) -> Path:
        return self.validator.log_path

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.running else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stub(self) -> node_pb2_grpc.NodeStub:
        if self._stub is None:
            self._channel = grpc.insecure_channel(self.rpc)
            self._stub = node_pb2_grpc.NodeStub(self._channel)
        return self._stub

    def chain_info(self) -> node_pb2.ChainInfo | None:
        """The node's GetChainInfo, or None while it does not answer (stopped, paused, busy)."""
        if not self.running or self.paused:
            return None
        try:
            return self.stub().GetChainInfo(node_pb2.GetChainInfoRequest(), timeout=PROBE_TIMEOUT_S)
        except grpc.RpcError:
            return None

    def height(self) -> int:
        """The finalized height, -1 when the node does not answer."""
        info = self.chain_info()
        return info.finalized_height if info is not None else -1

    def block(self, height: int) -> node_pb2.GetBlockResponse | None:
        try:
            return self.stub().GetBlock(node_pb2.GetBlockRequest(height=height), timeout=PROBE_TIMEOUT_S)
        except grpc.RpcError:
            return None

    def rss_mb(self) -> float | None:
        """Resident memory of the node process in MiB (None when it is not running)."""
        pid = self.pid
        if pid is None:
            return None
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except (OSError, ValueError, IndexError):
            return None
        return None

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(offset)
                return handle.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 12) -> str:
        size = self.log_size()
        return "\n".join(self.log_since(max(0, size - 64 * 1024)).splitlines()[-lines:])

    def close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel = None
        self._stub = None


@dataclass(frozen=True)
class Evidence:
    """Double-sign evidence found in a block."""

    block_height: int
    node: str
    validator: bytes
    vote_height: int


@dataclass(frozen=True)
class Fork:
    height: int
    node: str
    hash: bytes
    canonical: bytes


class FaultNet:
    """N validators as real processes, their faults, and what an observer outside can check."""

    def __init__(self, base_dir: Path, validators: int = 4, block_time_ms: int = BLOCK_TIME_MS):
        self.base_dir = Path(base_dir)
        self.block_time_ms = block_time_ms
        template = template_document()
        template["consensus_params"]["block"]["block_time_ms"] = str(block_time_ms)
        self.layout = prepare(self.base_dir, validators, template=template)
        self.chain_id = self.layout.chain_id
        self.members = [
            Member(validator, NodeAddresses(*(Address(validator.host, free_port(validator.host)) for _ in range(3))))
            for validator in self.layout.validators
        ]
        self._addresses = {member.name: member.addresses for member in self.members}
        self.canonical: dict[int, bytes] = {}
        self.scanned: dict[str, int] = {member.name: 0 for member in self.members}
        self.forks: list[Fork] = []
        self.evidence: list[Evidence] = []
        self.rss_peak: dict[str, float] = {}
        self._rss_stop = threading.Event()
        self._rss_thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- processes ------------------------------------------------------------------------------

    def by_name(self, name: str) -> Member:
        return next(member for member in self.members if member.name == name)

    def others(self, member: Member) -> list[Member]:
        return [other for other in self.members if other is not member]

    def command(self, member: Member, isolated_p2p: Address | None = None) -> list[str]:
        command = node_command(self.layout, member.validator, self._addresses, LaunchOptions(worker=False))
        if isolated_p2p is None:
            return command
        if "--bootnodes" in command:
            command = command[: command.index("--bootnodes")]
        return [str(isolated_p2p) if part == member.p2p else part for part in command]

    def start(self, member: Member, *, env: dict[str, str] | None = None, isolated: bool = False,
              wait: bool = True) -> None:
        """Start `member`'s node (normally, isolated, or with extra environment) and wait until it serves."""
        if member.running:
            raise RuntimeError(f"{member.name} is already running")
        isolated_p2p = Address(member.validator.host, free_port(member.validator.host)) if isolated else None
        mode = "isolated" if isolated else ("normal" if not env else " ".join(f"{k}={v}" for k, v in env.items()))
        environment = {key: value for key, value in os.environ.items() if key != CLOCK_OFFSET_ENV}
        environment.update({"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT), "GRPC_VERBOSITY": "NONE"})
        environment.update(env or {})
        member.validator.base_path.mkdir(parents=True, exist_ok=True)
        with open(member.log_path, "ab") as log:
            log.write(f"--- faults: starting {member.name} ({mode}) at {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            member.process = subprocess.Popen(
                _stop_with_parent() + self.command(member, isolated_p2p), cwd=ROOT, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True,
            )
        member.paused = False
        member.mode = mode
        if wait:
            wait_serving(member.rpc, timeout=START_TIMEOUT_S, process=member.process)

    def start_all(self) -> None:
        for member in self.members:
            self.start(member, wait=False)
        for member in self.members:
            wait_serving(member.rpc, timeout=START_TIMEOUT_S, process=member.process)
        self._start_rss_sampler()

    def kill(self, member: Member) -> None:
        """kill -9 (the node's whole session)."""
        if member.process is None:
            return
        if member.process.poll() is None:
            try:
                os.killpg(member.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                member.process.kill()
        member.process.wait(10)
        member.paused = False
        member.mode = "stopped"

    def stop(self, member: Member) -> int | None:
        """SIGTERM (after SIGCONT, if paused), then SIGKILL after STOP_TIMEOUT_S; the exit code."""
        if member.process is None:
            return None
        if member.process.poll() is None:
            if member.paused:
                self.resume(member)
            member.process.send_signal(signal.SIGTERM)
            try:
                member.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill(member)
        member.mode = "stopped"
        return member.process.returncode

    def pause(self, member: Member) -> None:
        os.kill(member.process.pid, signal.SIGSTOP)
        member.paused = True

    def resume(self, member: Member) -> None:
        os.kill(member.process.pid, signal.SIGCONT)
        member.paused = False

    def database_dir(self, member: Member) -> Path:
        return member.validator.base_path / "chains" / self.chain_id / "db"

    def remove_database(self, member: Member) -> None:
        """Remove chains/<id>/db only (docs/operator.md's resync), the node stopped."""
        if member.running:
            raise RuntimeError(f"stop {member.name} before removing its database")
        shutil.rmtree(self.database_dir(member))

    def close(self) -> None:
        self._rss_stop.set()
        for member in self.members:
            try:
                self.stop(member)
            except Exception:
                self.kill(member)
            member.close_channel()
        if self._rss_thread is not None:
            self._rss_thread.join(timeout=5)

    # --- progress --------------------------------------------------------------------------------

    def heights(self, members: Iterable[Member] | None = None) -> dict[str, int]:
        return {member.name: member.height() for member in (self.members if members is None else members)}

    def wait_until(self, condition: Callable[[], bool], timeout: float, what: str,
                   members: Iterable[Member] = ()) -> float:
        """Seconds until `condition()` held; FaultFailure naming `what` (with log tails) after `timeout`."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if condition():
                return time.monotonic() - started
            time.sleep(0.2)
        tails = "\n".join(f"--- {member.name} ({member.mode}, height {member.height()}):\n{member.log_tail()}"
                          for member in members)
        raise FaultFailure(f"not within {timeout:g} s: {what}\n{tails}")

    def wait_advance(self, members: list[Member], blocks: int, timeout: float, what: str = "") -> float:
        """Seconds until every one of `members` finalized `blocks` more than the highest of them now."""
        start = max(self.heights(members).values())
        names = ", ".join(member.name for member in members)
        return self.wait_until(
            lambda: min(self.heights(members).values()) >= start + blocks, timeout,
            what or f"{names} finalize {blocks} blocks past #{start}", members,
        )

    def signed_since(self, member: Member, height: int, observer: Member) -> bool:
        """Whether `member`'s precommit is in the commit of any block above `height` that `observer` holds."""
        best = observer.height()
        for at in range(max(height + 1, best - 3), best + 1):
            reply = observer.block(at)
            if reply is None:
                continue
            for vote in reply.commit.precommits:
                if types_pb2.VoteBody.FromString(vote.body).validator == member.public_key:
                    return True
        return False

    def wait_rejoined(self, member: Member, timeout: float) -> float:
        """Seconds until `member` finalized what the others had now and its precommit is in a later commit."""
        others = [other for other in self.others(member) if other.running and not other.paused]
        target = max(self.heights(others).values())
        started = time.monotonic()
        self.wait_until(lambda: member.height() >= target, timeout,
                        f"{member.name} catches up to #{target}", [member, *others])
        remaining = max(1.0, timeout - (time.monotonic() - started))
        self.wait_until(lambda: self.signed_since(member, target, others[0]), remaining,
                        f"{member.name}'s precommit in a commit above #{target}", [member, *others])
        return time.monotonic() - started

    # --- invariants -------------------------------------------------------------------------------

    def scan(self) -> None:
        """Read every finalized block not read yet from every answering node: forks and evidence."""
        for member in self.members:
            best = member.height()
            if best < 0:
                continue
            for at in range(self.scanned[member.name] + 1, best + 1):
                reply = member.block(at)
                if reply is None:
                    break
                known = self.canonical.setdefault(at, reply.block_hash)
                if known != reply.block_hash:
                    self.forks.append(Fork(at, member.name, reply.block_hash, known))
                for evidence in reply.block.evidence:
                    body = types_pb2.VoteBody.FromString(evidence.first.body)
                    self.evidence.append(Evidence(at, member.name, body.validator, body.height))
                self.scanned[member.name] = at

    def forget_blocks_of(self, member: Member) -> None:
        """After its database was removed, read `member`'s chain again from the start."""
        self.scanned[member.name] = 0

    def name_of(self, key: bytes) -> str | None:
        return next((member.name for member in self.members if member.public_key == key), None)

    def log_offsets(self) -> dict[str, int]:
        return {member.name: member.log_size() for member in self.members}

    def double_sign_lines(self, offsets: dict[str, int]) -> list[tuple[str, str, str | None]]:
        """(node, line, accused validator's name or None for a key outside the set) for each `double-sign by` logged."""
        found = []
        for member in self.members:
            for line in member.log_since(offsets.get(member.name, 0)).splitlines():
                if DOUBLE_SIGN_MARK not in line:
                    continue
                prefix = line.split(DOUBLE_SIGN_MARK, 1)[1].split()[0].rstrip(":,")
                accused = next((m.name for m in self.members if prefix and m.public_key.hex().startswith(prefix)), None)
                found.append((member.name, line.strip()[:300], accused))
        return found

    def ledgers(self) -> dict[str, tuple[int, int]]:
        """Each validator's (bonded, jailed_until), read with a proof from the first node that answers."""
        for reader in self.members:
            if reader.chain_info() is None:
                continue
            try:
                from chain.client import Client

                with Client(reader.rpc, timeout=5) as client:
                    result = {}
                    for member in self.members:
                        value = client.state_proof(staking.LEDGER_PREFIX + member.public_key).value
                        ledger = state_pb2.StakeLedger.FromString(value or b"")
                        result[member.name] = (ledger.bonded, ledger.jailed_until)
                    return result
            except Exception:
                continue
        return {}

    # --- memory -----------------------------------------------------------------------------------

    def _start_rss_sampler(self) -> None:
        if self._rss_thread is not None:
            return

        def sample() -> None:
            while not self._rss_stop.wait(RSS_SAMPLE_S):
                self.sample_rss()

        self._rss_thread = threading.Thread(target=sample, name="rss-sampler", daemon=True)
        self._rss_thread.start()

    def sample_rss(self) -> None:
        for member in self.members:
            rss = member.rss_mb()
            if rss is not None:
                with self._lock:
                    self.rss_peak[member.name] = max(self.rss_peak.get(member.name, 0.0), rss)

    def reset_rss_peaks(self) -> None:
        with self._lock:
            self.rss_peak = {}
        self.sample_rss()

    def peak_rss(self) -> tuple[str, float]:
        """The node with the highest resident memory seen since the last reset, and that peak in MiB."""
        self.sample_rss()
        with self._lock:
            if not self.rss_peak:
                return "", 0.0
            name = max(self.rss_peak, key=self.rss_peak.get)
            return name, self.rss_peak[name]
