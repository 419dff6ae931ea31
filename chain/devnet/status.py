"""The devnet's live status: per node its state, height, finalized height, peers, round, jobs and load.

Read from each node's API (GetChainInfo; ListJobs and GetExecutors for the validator's own
account) once per refresh. A node's state is what an operator acts on:

    up           answering and finalizing with the others
    catching up  answering, but syncing or more than CATCH_UP_BLOCKS behind the highest finalized height
    stalled      answering, but its finalized height has not moved for STALL_S seconds
    starting     its process runs and its API does not answer yet (for STARTING_S after a start)
    no answer    its process runs and its API has not answered for longer than that
    stopping     asked to stop, its process not yet gone
    stopped      stopped on request (`inferchain devnet stop NAME`)
    restarting   being stopped to be started again (`inferchain devnet restart NAME`)
    exited N     its process ended on its own with code N

On a terminal the table is redrawn in place (rich); elsewhere (a pipe, a log file) a line is
printed only when a node's state changes, plus one line of height progress every summary period.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Callable, Sequence, TextIO

import grpc

from chain.devnet.launcher import Devnet, RunningNode
from proto import node_pb2, node_pb2_grpc

QUERY_TIMEOUT_S = 0.8
# Jobs are counted from one listing page: past it, the table says "100+".
JOBS_PAGE = 100
# At one block a second, reads of different nodes a few milliseconds apart differ by a block at most.
CATCH_UP_BLOCKS = 3
STALL_S = 10.0
# A node loads its database and opens its API within seconds; a worker's model loads later, apart.
STARTING_S = 60.0
SUMMARY_S = 60.0
HEADERS = ("node", "rpc", "state", "height", "finalized", "peers", "round", "jobs", "load")
# A stopped node's channel retries its connection with back-off; capped low so a node started again
# is seen within a refresh or two instead of after gRPC's default of up to two minutes.
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 1000),
)
ANSWERING = ("up", "catching up", "stalled")
NUMERIC = ("height", "finalized", "peers", "round", "jobs", "load")


@dataclass(frozen=True)
class NodeStatus:
    """One node as it answered; `state` says why the numbers are missing when it did not."""

    name: str
    rpc: str
    state: str
    height: int = 0
    finalized: int = 0
    peers: int = 0
    round: int = 0
    syncing: bool = False
    jobs: str = "-"
    load: str = "-"
    pid: int | None = None
    behind: int = 0  # blocks behind the highest finalized height of the devnet
    log: str = ""

    @property
    def answering(self) -> bool:
        return self.state in ANSWERING


def status_document(status: NodeStatus) -> dict:
    """A status as JSON (`inferchain devnet status --output json`, the control socket's replies)."""
    return asdict(status)


def status_from_document(document: dict) -> NodeStatus:
    """The status a document describes; ValueError when it is not one (a reply is checked, not trusted)."""
    values = {}
    for field in fields(NodeStatus):
        if field.name not in document:
            continue
        value = document[field.name]
        expected = {"int": int, "bool": bool, "str": str, "int | None": (int, type(None))}[str(field.type)]
        if not isinstance(value, expected) or (isinstance(value, bool) and field.type != "bool"):
            raise ValueError(f"status field {field.name} is not {field.type}")
        values[field.name] = value
    if "name" not in values or "rpc" not in values or "state" not in values:
        raise ValueError("a status without name, rpc or state")
    return NodeStatus(**values)


class StatusReader:
    """Reads the status of every node of a running devnet, following nodes that are stopped and started again."""

    def __init__(self, devnet: Devnet, clock: Callable[[], float] = time.monotonic):
        self.devnet = devnet
        self.clock = clock
        self._channels: dict[str, grpc.Channel] = {}
        self._stubs: dict[str, node_pb2_grpc.NodeStub] = {}
        # name -> (pid, finalized height, when it was first seen at that height)
        self._progress: dict[str, tuple[int, int, float]] = {}

    def read(self) -> list[NodeStatus]:
        nodes = list(self.devnet.nodes)
        executors = self._executors(nodes)
        statuses = [self._node_status(node, executors) for node in nodes]
        return self.judge(statuses)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()

    def _stub(self, node: RunningNode) -> node_pb2_grpc.NodeStub:
        if node.name not in self._stubs:
            self._channels[node.name] = grpc.insecure_channel(str(node.addresses.rpc), options=CHANNEL_OPTIONS)
            self._stubs[node.name] = node_pb2_grpc.NodeStub(self._channels[node.name])
        return self._stubs[node.name]

    def _node_status(self, node: RunningNode, executors: dict[bytes, node_pb2.ExecutorView]) -> NodeStatus:
        rpc = str(node.addresses.rpc)
        log = str(node.validator.log_path)
        code = node.exit_code()
        if node.name in self.devnet.stopped:
            return NodeStatus(node.name, rpc, "stopped" if code is not None else "stopping", log=log)
        if node.name in self.devnet.restarting:
            return NodeStatus(node.name, rpc, "restarting", log=log)
        if code is not None:
            return NodeStatus(node.name, rpc, f"exited {code}", log=log)
        stub = self._stub(node)
        try:
            info = stub.GetChainInfo(node_pb2.GetChainInfoRequest(), timeout=QUERY_TIMEOUT_S)
        except grpc.RpcError:
            young = self.clock() - node.started_at < STARTING_S
            return NodeStatus(node.name, rpc, "starting" if young else "no answer", pid=node.pid, log=log)
        return NodeStatus(
            node.name, rpc, "up", info.best_height, info.finalized_height, info.peers,
            info.consensus_round, info.syncing, self._jobs(stub, node.validator.account),
            _load(executors.get(node.validator.account)), node.pid, log=log,
        )

    def judge(self, statuses: list[NodeStatus]) -> list[NodeStatus]:
        """Mark answering nodes that are behind the others (catching up) or not finalizing (stalled)."""
        now = self.clock()
        answering = [status for status in statuses if status.answering]
        lead = max((status.finalized for status in answering), default=0)
        judged = []
        for status in statuses:
            if not status.answering:
                self._progress.pop(status.name, None)
                judged.append(status)
                continue
            pid, height, since = self._progress.get(status.name, (None, None, now))
            if pid != status.pid or height != status.finalized:
                since = now
                self._progress[status.name] = (status.pid, status.finalized, now)
            behind = lead - status.finalized
            state = "up"
            if now - since >= STALL_S:
                state = "stalled"
            elif status.syncing or behind > CATCH_UP_BLOCKS:
                state = "catching up"
            judged.append(replace(status, state=state, behind=behind))
        return judged

    def _executors(self, nodes: Sequence[RunningNode]) -> dict[bytes, node_pb2.ExecutorView]:
        """Every executor's offer and load, from the first node that answers."""
        for node in nodes:
            if node.exit_code() is not None or node not in self.devnet.running():
                continue
            try:
                reply = self._stub(node).GetExecutors(node_pb2.GetExecutorsRequest(), timeout=QUERY_TIMEOUT_S)
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


# --- what is shown -------------------------------------------------------------------


def state_text(status: NodeStatus) -> str:
    """The state column: 'catching up (12 behind)', 'exited 1, see LOG', or the state alone."""
    if status.state == "catching up" and status.behind > 0:
        return f"catching up ({status.behind} behind)"
    if status.state.startswith("exited") and status.log:
        return f"{status.state}, see {status.log}"
    return status.state


def _row(status: NodeStatus) -> tuple[str, ...]:
    if not status.answering:
        return (status.name, status.rpc, state_text(status), "", "", "", "", "", "")
    height = f"{status.height}" + (" (syncing)" if status.syncing else "")
    return (status.name, status.rpc, state_text(status), height, str(status.finalized), str(status.peers),
            str(status.round), status.jobs, status.load)


def table_lines(statuses: Sequence[NodeStatus]) -> list[str]:
    """The status as an aligned table with a header line (`inferchain devnet status`)."""
    rows = [HEADERS, *(_row(status) for status in statuses)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(HEADERS))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def change_text(status: NodeStatus) -> str:
    """One node's state in words, for the line printed when it changes."""
    peers = f"{status.peers} peer{'' if status.peers == 1 else 's'}"
    if status.state == "up":
        return f"{status.name} up: finalized #{status.finalized}, height {status.height}, {peers}"
    if status.state == "catching up":
        syncing = ", syncing" if status.syncing else ""
        return (f"{status.name} catching up: finalized #{status.finalized}, {status.behind} behind{syncing}, "
                f"{peers}")
    if status.state == "stalled":
        return (f"{status.name} stalled: finalized #{status.finalized} for {STALL_S:g} s or more, "
                f"round {status.round}, {peers}")
    if status.state == "starting" and status.pid is not None:
        return f"{status.name} starting (pid {status.pid})"
    return f"{status.name} {state_text(status)}"


class ChangeLog:
    """For a pipe or a log file: a line when a node's state changes, and the height progress once a period."""

    def __init__(self, stream: TextIO, summary_s: float = SUMMARY_S, clock: Callable[[], float] = time.time):
        self.stream = stream
        self.summary_s = summary_s
        self.clock = clock
        self._states: dict[str, str] = {}
        self._summary: tuple[float, int] | None = None  # (when, highest finalized) at the last summary

    def show(self, statuses: Sequence[NodeStatus]) -> None:
        now = self.clock()
        stamp = time.strftime("%H:%M:%S", time.localtime(now))
        lines = []
        for status in statuses:
            if self._states.get(status.name) != status.state:
                self._states[status.name] = status.state
                lines.append(f"{stamp} {change_text(status)}")
        lead = max((status.finalized for status in statuses if status.answering), default=0)
        if self._summary is None:
            self._summary = (now, lead)
        elif now - self._summary[0] >= self.summary_s:
            lines.append(f"{stamp} {summary_text(statuses, lead, lead - self._summary[1], now - self._summary[0])}")
            self._summary = (now, lead)
        if lines:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()

    def close(self) -> None:
        pass


def summary_text(statuses: Sequence[NodeStatus], lead: int, advanced: int, seconds: float) -> str:
    """'finalized #812 (+60 in 60 s); 4 of 4 validators up'."""
    up = sum(status.state == "up" for status in statuses)
    progress = f"+{advanced} in {seconds:.0f} s" if advanced > 0 else f"no block finalized in {seconds:.0f} s"
    return f"finalized #{lead} ({progress}); {up} of {len(statuses)} validators up"


STATE_STYLES = {"up": "green", "catching up": "yellow", "starting": "yellow", "stalled": "bold red",
                "no answer": "red", "stopping": "dim", "stopped": "dim", "restarting": "yellow"}


class LiveTable:
    """For a terminal: the table redrawn in place by rich, with a footer."""

    def __init__(self, stream: TextIO, footer: str = "", errors: TextIO | None = None):
        from rich.console import Console
        from rich.live import Live

        self.footer = footer
        self.console = Console(file=stream, force_terminal=True, highlight=False)
        # Progress lines written to stderr meanwhile are printed above the table, not through it; stderr
        # is taken over only when it is a terminal too (`inferchain devnet 2>log` keeps its log).
        errors = errors if errors is not None else sys.stderr
        self.live = Live(console=self.console, auto_refresh=False, redirect_stdout=True,
                         redirect_stderr=errors.isatty())
        self._started = False

    def show(self, statuses: Sequence[NodeStatus]) -> None:
        if not self._started:
            self.live.start()
            self._started = True
        self.live.update(self._table(statuses), refresh=True)

    def close(self) -> None:
        if self._started:
            self.live.stop()
            self._started = False

    def _table(self, statuses: Sequence[NodeStatus]):
        from rich.table import Table

        # One space between columns and a short state, so the table fits an 80-column terminal.
        table = Table(caption=self.footer or None, caption_justify="left", box=None, pad_edge=False,
                      padding=(0, 1, 0, 0))
        for header in HEADERS:
            table.add_column(header, no_wrap=True, justify="right" if header in NUMERIC else "left")
        for status in statuses:
            style = STATE_STYLES.get(status.state, "red")
            state = f"[{style}]{_escape(status.state)}[/]"
            if not status.answering:
                table.add_row(status.name, status.rpc, state)
                continue
            table.add_row(status.name, status.rpc, state, str(status.height), str(status.finalized),
                          str(status.peers), str(status.round), status.jobs, status.load)
        return table


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def status_display(stream: TextIO, footer: str = "", summary_s: float = SUMMARY_S):
    """The live table on a terminal, the change log elsewhere."""
    if stream.isatty():
        return LiveTable(stream, footer)
    return ChangeLog(stream, summary_s)
