"""The gateway served in this process for tests (uvicorn in a thread on a free 127.0.0.1 port), and the dev
node with its worker that the gateway tests run against."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import uvicorn

from chain.gateway.app import BODY_S, MAX_IN_FLIGHT, create_app
from chain.gateway.keys import open_api_keys, poster_source, read_entries
from chain.gateway.server import REQUEST_HEAD_S, uvicorn_config
from tests.nodes import NodeProcess, free_port

# What the node's executor worker logs once its model is loaded and it follows its assignments.
WORKER_READY = "executing jobs for"


def wait_for_log(node: NodeProcess, text: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in node.log():
        assert time.monotonic() < deadline, f"{text!r} not logged within {timeout} s:\n{node.log()[-3000:]}"
        time.sleep(0.2)


@contextlib.contextmanager
def worker_node(directory: Path) -> Iterator[NodeProcess]:
    """A `--dev` node under `directory` whose own worker runs the embedded model, once the worker is ready."""
    node = NodeProcess(directory / "node", free_port(), worker=True).start()
    try:
        wait_for_log(node, WORKER_READY)
        yield node
    finally:
        node.kill()


@contextlib.contextmanager
def running_gateway(node_target: str, api_keys_path: Path, poster_keys: list[str], *,
                    max_in_flight: int = MAX_IN_FLIGHT, body_s: float = BODY_S,
                    request_head_s: float = REQUEST_HEAD_S) -> Iterator[tuple[str, dict]]:
    """The base URL (http://127.0.0.1:PORT/v1) and {poster key source: API key}; stopped at the end."""
    api_keys, _ = open_api_keys(api_keys_path, poster_keys)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    app = create_app(node_target, api_keys, max_in_flight=max_in_flight, body_s=body_s)
    server = uvicorn.Server(uvicorn_config(app, "warning", request_head_s=request_head_s))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the gateway did not start"
        time.sleep(0.02)
    by_source = {source: key for key, source in read_entries(api_keys_path).items()}
    try:
        yield f"http://127.0.0.1:{port}/v1", {name: by_source[poster_source(name)] for name in poster_keys}
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        listener.close()
