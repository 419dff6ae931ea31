"""The devnet's live status: per node its height, finalized height, peers, round, jobs and executor load.

Read from each node's API (GetChainInfo; ListJobs and GetExecutors for the validator's own
account) once per refresh. On a terminal the table is redrawn in place; elsewhere (a pipe, a
log file) each refresh prints plain lines, one per node.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence, TextIO

import grpc

from chain.devnet.launcher import RunningNode
from proto import node_pb2, node_pb2_grpc

QUERY_TIMEOUT_S = 0.8
# Jobs are counted from one listing page: past it, the table says "100+".
JOBS_PAGE = 100
HEADERS = ("node", "rpc", "height", "finalized", "peers", "round", "jobs", "load")


@dataclass(frozen=True)
class NodeStatus:
    """One node as it answered; `state` says why the numbers are missing when it did not."""

    name: str
    rpc: str
    state: str  # "up", "no answer", or "exited N"
    height: int = 0
    finalized: int = 0
    peers: int = 0
    round: int = 0
    syncing: bool = False
    jobs: str = "-"
    load: str = "-"


class StatusReader:
    """Reads the status of every node of a running devnet."""

    def __init__(self, nodes: Sequence[RunningNode]):
        self.nodes = list(nodes)
        self._channels = {node.name: grpc.insecure_channel(str(node.addresses.rpc)) for node in self.nodes}
        self._stubs = {name: node_pb2_grpc.NodeStub(channel) for name, channel in self._channels.items()}

    def read(self) -> list[NodeStatus]:
        executors = self._executors()
        return [self._node_status(node, executors) for node in self.nodes]

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()

    def _node_status(self, node: RunningNode, executors: dict[bytes, node_pb2.ExecutorView]) -> NodeStatus:
        rpc = str(node.addresses.rpc)
        code = node.exit_code()
        if code is not None:
            return NodeStatus(node.name, rpc, f"exited {code}, see {node.validator.log_path}")
        stub = self._stubs[node.name]
        try:
            info = stub.GetChainInfo(node_pb2.GetChainInfoRequest(), timeout=QUERY_TIMEOUT_S)
        except grpc.RpcError:
            return NodeStatus(node.name, rpc, "no answer")
        return NodeStatus(
            node.name, rpc, "up", info.best_height, info.finalized_height, info.peers,
            info.consensus_round, info.syncing, self._jobs(stub, node.validator.account),
            _load(executors.get(node.validator.account)),
        )

    def _executors(self) -> dict[bytes, node_pb2.ExecutorView]:
        """Every executor's offer and load, from the first node that answers."""
        for node in self.nodes:
            if node.exit_code() is not None:
                continue
            try:
                reply = self._stubs[node.name].GetExecutors(node_pb2.GetExecutorsRequest(), timeout=QUERY_TIMEOUT_S)
            except grpc.RpcError:
                continue
            return {view.account: view for view in reply.executors}
        return {}

    @staticmethod
    def _jobs(stub, account: bytes) -> str:
        """How many jobs the validator has been assigned, from one listing page."""
        try:
            reply = stub.ListJobs(node_pb2.ListJobsRequest(executor=account, limit=JOBS_PAGE), timeout=QUERY_TIMEOUT_S)
        except grpc.RpcError:
            return "?"
        return f"{len(reply.jobs)}+" if reply.next_page_token else str(len(reply.jobs))


def _load(view: node_pb2.ExecutorView | None) -> str:
    """Jobs assigned and not finished, of the offer's capacity: '1/8'; '-' without an offer."""
    if view is None:
        return "-"
    return f"{view.load}/{view.offer.capacity}"


def _row(status: NodeStatus) -> tuple[str, ...]:
    if status.state != "up":
        return (status.name, status.rpc, status.state, "", "", "", "", "")
    height = f"{status.height}" + (" (syncing)" if status.syncing else "")
    return (status.name, status.rpc, height, str(status.finalized), str(status.peers), str(status.round),
            status.jobs, status.load)


def table_lines(statuses: Sequence[NodeStatus]) -> list[str]:
    """The status as an aligned table with a header line."""
    rows = [HEADERS, *(_row(status) for status in statuses)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(HEADERS))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def plain_lines(statuses: Sequence[NodeStatus], now: float | None = None) -> list[str]:
    """One line per node, prefixed by the time, for a pipe or a log file."""
    stamp = time.strftime("%H:%M:%S", time.localtime(now))
    lines = []
    for status in statuses:
        if status.state != "up":
            lines.append(f"{stamp} {status.name} {status.state}")
            continue
        lines.append(
            f"{stamp} {status.name} height {status.height} finalized {status.finalized} peers {status.peers} "
            f"round {status.round} jobs {status.jobs} load {status.load}" + (" syncing" if status.syncing else "")
        )
    return lines


class StatusDisplay:
    """Writes each refresh: the table redrawn in place on a terminal, plain lines elsewhere."""

    def __init__(self, stream: TextIO, footer: str = ""):
        self.stream = stream
        self.tty = stream.isatty()
        self.footer = footer
        self._drawn = 0

    def show(self, statuses: Sequence[NodeStatus]) -> None:
        if not self.tty:
            self._write(plain_lines(statuses))
            return
        lines = table_lines(statuses) + ([self.footer] if self.footer else [])
        if self._drawn:
            # Up to the first line drawn last time, then clear to the end of the screen.
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
        self._write(lines)
        self._drawn = len(lines)

    def _write(self, lines: list[str]) -> None:
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()
