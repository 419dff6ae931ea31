"""Commands to a running devnet from another terminal: `inferchain devnet status|stop|start|restart`.

The running `inferchain devnet` owns its node processes; it listens on a Unix socket (mode 0600,
BASE_DIR/control.sock or the short path `layout.control_socket_path` gives) for one JSON line per
connection and answers with one JSON line:

    request  {"command": "stop", "name": "validator2", "force": false}
    reply    {"outcome": "ok", "message": "validator2 stopped (exit 0); 3 of 4 validators run", "nodes": [...]}

`outcome` is ok, unknown (no such validator), refused (it would cost quorum, or the devnet is still
starting) or failed (the node did not come back). Only the launcher's main thread starts and
stops nodes (on Linux a node's parent-death signal follows the thread that started it): the
socket's threads put each command on a queue, which the status loop takes one at a time between
refreshes and advances at each, so the table keeps drawing while a node stops or starts.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from chain.devnet.launcher import STOP_TIMEOUT_S, Devnet, last_log_line
from chain.devnet.layout import CONTROL_FILE, DevnetError, Layout
from chain.devnet.status import STARTING_S, NodeStatus, status_document, status_from_document

COMMANDS = ("status", "stop", "start", "restart")
OUTCOMES = ("ok", "unknown", "refused", "failed")
MAX_REQUEST_BYTES = 4096
# A reply carries every node's status: 64 nodes fit many times over.
MAX_REPLY_BYTES = 1024 * 1024
MAX_NAME_CHARS = 64
REQUEST_READ_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 8
MAX_PENDING = 16
# Stopping (up to STOP_TIMEOUT_S, then a kill), then starting until the API answers (STARTING_S).
CLIENT_TIMEOUT_S = STOP_TIMEOUT_S + STARTING_S + 30.0


class ControlError(DevnetError):
    """A command could not be sent or its reply not read; the message says why."""


@dataclass(frozen=True)
class ControlRequest:
    """One command to the running devnet."""

    command: str
    name: str = ""
    force: bool = False


@dataclass(frozen=True)
class ControlReply:
    """What the devnet did: an outcome, a line for the operator, and every node's status."""

    outcome: str
    message: str
    nodes: tuple[NodeStatus, ...] = ()


def quorum(validators: int) -> int:
    """Validators needed to finalize: more than two thirds of the stake, every devnet validator bonding the same."""
    return validators * 2 // 3 + 1


def unknown_name_message(name: str, layout: Layout) -> str:
    """The refusal of a name that is not one of the devnet's validators, listing those that are."""
    shown = name if len(name) <= MAX_NAME_CHARS else name[:MAX_NAME_CHARS] + "…"
    names = ", ".join(validator.name for validator in layout.validators)
    return f"{shown!r} is not part of the devnet in {layout.base_dir}; its validators: {names}"


# --- the wire ---------------------------------------------------------------------------


def encode_request(request: ControlRequest) -> bytes:
    return json.dumps({"command": request.command, "name": request.name, "force": request.force}).encode() + b"\n"


def decode_request(line: bytes) -> ControlRequest:
    """The request a line holds; ValueError naming what is wrong with it."""
    if len(line) > MAX_REQUEST_BYTES:
        raise ValueError(f"a request is at most {MAX_REQUEST_BYTES} bytes")
    document = json.loads(line.decode("utf-8"))
    if not isinstance(document, dict) or set(document) - {"command", "name", "force"}:
        raise ValueError("a request is an object with command, name and force only")
    command, name, force = document.get("command"), document.get("name", ""), document.get("force", False)
    if command not in COMMANDS:
        raise ValueError(f"command must be one of {', '.join(COMMANDS)}")
    if not isinstance(name, str) or not isinstance(force, bool):
        raise ValueError("name must be a string and force a boolean")
    return ControlRequest(command, name, force)


def encode_reply(reply: ControlReply) -> bytes:
    document = {"outcome": reply.outcome, "message": reply.message,
                "nodes": [status_document(status) for status in reply.nodes]}
    return json.dumps(document).encode() + b"\n"


def decode_reply(line: bytes) -> ControlReply:
    """The reply a line holds; ValueError when it is not one."""
    document = json.loads(line.decode("utf-8"))
    if not isinstance(document, dict) or document.get("outcome") not in OUTCOMES:
        raise ValueError("no outcome")
    message, nodes = document.get("message"), document.get("nodes", [])
    if not isinstance(message, str) or not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
        raise ValueError("message or nodes malformed")
    return ControlReply(document["outcome"], message, tuple(status_from_document(node) for node in nodes))


def _read_line(connection: socket.socket, limit: int) -> bytes:
    """Bytes up to the first newline; ValueError past `limit` bytes, ConnectionError when closed first."""
    data = bytearray()
    while b"\n" not in data:
        if len(data) > limit:
            raise ValueError(f"more than {limit} bytes without a newline")
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a whole line")
        data += chunk
    line = bytes(data[:data.index(b"\n")])
    if len(line) > limit:
        raise ValueError(f"more than {limit} bytes")
    return line


# --- the client: `inferchain devnet stop NAME` ----------------------------------------------------


def send(path: Path, request: ControlRequest, timeout: float = CLIENT_TIMEOUT_S) -> ControlReply:
    """Send one command to the devnet listening at `path` and wait for its reply; ControlError when none comes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        try:
            connection.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise ControlError(f"nothing answers at {path}") from None
        except OSError as error:
            raise ControlError(f"cannot reach {path}: {error.strerror or error}") from None
        try:
            connection.sendall(encode_request(request))
            return decode_reply(_read_line(connection, MAX_REPLY_BYTES))
        except socket.timeout:
            raise ControlError(f"no answer from {path} within {timeout:g} s") from None
        except (OSError, ConnectionError) as error:
            raise ControlError(f"the devnet at {path} closed the connection: {error}") from None
        except (ValueError, UnicodeDecodeError) as error:
            raise ControlError(f"the devnet at {path} answered something unreadable: {error}") from None


# --- the server: in the running `inferchain devnet` ------------------------------------------------


@dataclass
class Call:
    """A command waiting for the status loop, and the reply it gets."""

    request: ControlRequest
    done: threading.Event = field(default_factory=threading.Event)
    reply: ControlReply | None = None

    def answer(self, reply: ControlReply) -> None:
        if self.reply is None:
            self.reply = reply
            self.done.set()


class ControlServer:
    """The devnet's Unix socket: accepts commands, answers `status` from the last refresh, queues the rest."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.calls: queue.Queue[Call] = queue.Queue(maxsize=MAX_PENDING)
        self.wake = threading.Event()
        # Set by the status loop: None until the devnet shows its status (then commands are taken).
        self.statuses: tuple[NodeStatus, ...] | None = None
        self._listener: socket.socket | None = None
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._waiting: list[Call] = []

    def open(self) -> None:
        """Bind the socket (replacing a stale one) and serve it from a thread; DevnetError when it cannot be."""
        # BASE_DIR/control.sock lies in the devnet's own directory; the short fallback in a shared /tmp.
        _prepare_directory(self.path.parent, private=self.path.name != CONTROL_FILE)
        if self.path.exists() or self.path.is_symlink():
            try:
                send(self.path, ControlRequest("status"), timeout=2.0)
            except ControlError:
                self.path.unlink(missing_ok=True)  # left by a launcher that was killed
            else:
                raise DevnetError(f"another devnet launcher answers at {self.path}")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(self.path))
            os.chmod(self.path, 0o600)
            listener.listen(MAX_CONNECTIONS)
        except OSError as error:
            listener.close()
            raise DevnetError(f"cannot listen for commands at {self.path}: {error.strerror or error}") from None
        self._listener = listener
        threading.Thread(target=self._serve, name="devnet-control", daemon=True).start()

    def close(self, reason: str = "the devnet is stopping") -> None:
        """Stop taking commands, answer every waiting one with `reason`, remove the socket."""
        self._closing.set()
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        with self._lock:
            waiting = list(self._waiting)
        for call in waiting:
            call.answer(ControlReply("refused", reason, self.statuses or ()))

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            if not self._slots.acquire(blocking=False):
                self._refuse(connection, f"the devnet already serves {MAX_CONNECTIONS} commands; try again")
                continue
            threading.Thread(target=self._handle, args=(connection,), name="devnet-command", daemon=True).start()

    def _refuse(self, connection: socket.socket, message: str) -> None:
        with connection:
            try:
                connection.sendall(encode_reply(ControlReply("refused", message)))
            except OSError:
                pass

    def _handle(self, connection: socket.socket) -> None:
        try:
            with connection:
                connection.settimeout(REQUEST_READ_TIMEOUT_S)
                try:
                    request = decode_request(_read_line(connection, MAX_REQUEST_BYTES))
                except (ValueError, UnicodeDecodeError) as error:
                    connection.sendall(encode_reply(ControlReply("refused", f"unreadable request: {error}")))
                    return
                reply = self._reply(request)
                connection.settimeout(None)
                connection.sendall(encode_reply(reply))
        except OSError:
            pass  # the client went away; what it asked for is done regardless
        finally:
            self._slots.release()

    def _reply(self, request: ControlRequest) -> ControlReply:
        statuses = self.statuses
        if statuses is None:
            return ControlReply("refused", "the devnet is still starting; it takes commands once its status "
                                           "table shows (after the demo job)")
        if request.command == "status":
            return ControlReply("ok", f"{sum(s.state == 'up' for s in statuses)} of {len(statuses)} validators up",
                                statuses)
        call = Call(request)
        with self._lock:
            if self._closing.is_set():
                return ControlReply("refused", "the devnet is stopping", statuses)
            try:
                self.calls.put_nowait(call)
            except queue.Full:
                return ControlReply("refused", f"{MAX_PENDING} commands already wait; try again", statuses)
            self._waiting.append(call)
        self.wake.set()
        call.done.wait()
        with self._lock:
            self._waiting.remove(call)
        return call.reply


def _prepare_directory(directory: Path, private: bool) -> None:
    """BASE_DIR exists already; the short fallback's directory in /tmp is made private to this user, or refused."""
    if not directory.exists() and private:
        directory.mkdir(mode=0o700, parents=True)
    if not private:
        return
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise DevnetError(f"{directory} is not a directory private to this user (mode 0700); remove it")


# --- the commands, carried out by the status loop ------------------------------------------------


@dataclass
class Operation:
    """The command being carried out: its call, its phase (stopping, starting) and that phase's deadline."""

    call: Call
    phase: str
    deadline: float
    killed: bool = False

    @property
    def name(self) -> str:
        return self.call.request.name


class Controller:
    """Carries out queued commands one at a time, one step per status refresh, from the main thread."""

    def __init__(self, devnet: Devnet, server: ControlServer, report=lambda line: None, clock=time.monotonic):
        self.devnet = devnet
        self.server = server
        self.report = report
        self.clock = clock
        self.operation: Operation | None = None
        self._names = [validator.name for validator in devnet.layout.validators]

    def step(self, statuses: Sequence[NodeStatus]) -> None:
        """Advance the command in progress with this refresh's statuses, then begin the next one if none is."""
        if self.operation is not None:
            self._advance(statuses)
        while self.operation is None:
            try:
                call = self.server.calls.get_nowait()
            except queue.Empty:
                return
            self._begin(call, statuses)

    def abort(self, reason: str) -> None:
        """Answer the command in progress with `reason` (the devnet is stopping)."""
        if self.operation is not None:
            self.operation.call.answer(ControlReply("refused", reason))
            self.operation = None

    # --- beginning -------------------------------------------------------------------

    def _begin(self, call: Call, statuses: Sequence[NodeStatus]) -> None:
        request = call.request
        if request.name not in self._names:
            call.answer(ControlReply("unknown", unknown_name_message(request.name, self.devnet.layout), tuple(statuses)))
            return
        node = self.devnet.node(request.name)
        alive = node is not None and node.exit_code() is None
        self.report(f"{request.name}: {request.command}{' --force' if request.force else ''} requested from another "
                    "terminal")
        if request.command == "stop":
            self._begin_stop(call, alive, statuses)
        elif alive and request.command == "start":
            call.answer(ControlReply("ok", f"{request.name} is already running (pid {node.pid})", tuple(statuses)))
        elif alive:  # restart
            self._terminate(call, restart=True)
        else:
            self._spawn(call, statuses)

    def _begin_stop(self, call: Call, alive: bool, statuses: Sequence[NodeStatus]) -> None:
        name = call.request.name
        if not alive:
            already = name in self.devnet.stopped
            self.devnet.stopped.add(name)
            what = "is already stopped" if already else f"had exited (code {self.devnet.node(name).exit_code()}); it stays stopped"
            call.answer(ControlReply("ok", f"{name} {what}", tuple(statuses)))
            return
        count = len(self._names)
        left = len(self.devnet.running()) - 1
        needed = quorum(count)
        if left < needed and not call.request.force:
            message = (f"stopping {name} would leave {left} of {count} validators running, and the chain finalizes "
                       f"only with {needed} of {count} (more than two thirds of the stake): finality would stop until "
                       "one is started again; --force stops it anyway")
            self.report(f"{name}: refused: {message}")
            call.answer(ControlReply("refused", message, tuple(statuses)))
            return
        self._terminate(call)

    def _terminate(self, call: Call, restart: bool = False) -> None:
        self.devnet.terminate(call.request.name, restart)
        self.operation = Operation(call, "stopping", self.clock() + STOP_TIMEOUT_S)

    def _spawn(self, call: Call, statuses: Sequence[NodeStatus]) -> None:
        try:
            node = self.devnet.respawn(call.request.name)
        except DevnetError as error:
            call.answer(ControlReply("failed", str(error), tuple(statuses)))
            self.operation = None
            return
        self.report(f"{node.name}: started (pid {node.pid})")
        self.operation = Operation(call, "starting", self.clock() + STARTING_S)

    # --- advancing -------------------------------------------------------------------

    def _advance(self, statuses: Sequence[NodeStatus]) -> None:
        operation = self.operation
        node = self.devnet.node(operation.name)
        if operation.phase == "stopping":
            code = node.exit_code()
            if code is None:
                if self.clock() >= operation.deadline and not operation.killed:
                    self.devnet.kill(operation.name)
                    operation.killed = True
                return
            self.devnet.record()
            self.report(f"{operation.name}: stopped (exit {code})")
            if operation.call.request.command == "stop":
                running = len(self.devnet.running())
                operation.call.answer(ControlReply(
                    "ok", f"{operation.name} stopped (exit {code}); {running} of {len(self._names)} validators run",
                    tuple(statuses)))
                self.operation = None
                return
            self.operation = None
            self._spawn(operation.call, statuses)
            return
        self._advance_start(operation, node, statuses)

    def _advance_start(self, operation: Operation, node, statuses: Sequence[NodeStatus]) -> None:
        code = node.exit_code()
        if code is not None:
            operation.call.answer(ControlReply(
                "failed", f"{node.name} exited with code {code} while starting; its last log line: "
                          f"{last_log_line(node.validator.log_path)} (log: {node.validator.log_path})",
                tuple(statuses)))
            self.operation = None
            return
        status = next((status for status in statuses if status.name == node.name), None)
        if status is not None and status.answering and status.pid == node.pid:
            behind = f", {status.behind} behind the others" if status.behind > 0 else ""
            operation.call.answer(ControlReply(
                "ok", f"{node.name} started (pid {node.pid}), its API at {node.addresses.rpc} answers: finalized "
                      f"#{status.finalized}{behind}; the status table follows it", tuple(statuses)))
            self.operation = None
            return
        if self.clock() >= operation.deadline:
            operation.call.answer(ControlReply(
                "failed", f"{node.name} runs (pid {node.pid}) but its API at {node.addresses.rpc} has not answered "
                          f"for {STARTING_S:g} s; its last log line: {last_log_line(node.validator.log_path)}",
                tuple(statuses)))
            self.operation = None
