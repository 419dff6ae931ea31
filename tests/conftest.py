"""Shared fixtures: real dev nodes on free ports, cleaned up after each test."""

from __future__ import annotations

import logging
import os
import time

import pytest

from tests.nodes import NodeProcess, free_port, small_filesystem


class _RuntimeBugs(logging.Handler):
    """Keeps what the runtime and the node log when a call's code raised a bug (runtime/executive.py HANDLER_BUGS)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is not None:
            self.records.append(record)


@pytest.fixture(autouse=True)
def no_runtime_bug(request):
    """A call that raises a bug fails as system.CallFailed instead of stopping the block, so the fuzzers would no
    longer see it raise: every in-process test fails when the runtime or the node's admission logged one, unless
    it is marked `runtime_bug` (it raises one on purpose)."""
    caught = _RuntimeBugs()
    loggers = [logging.getLogger("inferchain.runtime"), logging.getLogger("chain.node.core")]
    for logger in loggers:
        logger.addHandler(caught)
    yield caught
    for logger in loggers:
        logger.removeHandler(caught)
    if caught.records and request.node.get_closest_marker("runtime_bug") is None:
        record = caught.records[0]
        pytest.fail(f"a call raised inside the runtime: {record.getMessage()}\n"
                    f"{logging.Formatter().formatException(record.exc_info)}")


@pytest.fixture
def node_factory(tmp_path):
    """Start real `inferchain node --dev` processes; all are stopped at the end of the test."""
    started: list[NodeProcess] = []

    def start(name: str = "node", *extra_args: str, wait: bool = True) -> NodeProcess:
        node = NodeProcess(base_path=tmp_path / name, rpc_port=free_port(), extra_args=extra_args)
        started.append(node)
        return node.start(wait=wait)

    yield start
    for node in started:
        node.kill()


@pytest.fixture(scope="module")
def dev_node(tmp_path_factory):
    """One dev node shared by a test module (block time from the dev genesis: 1 s)."""
    base = tmp_path_factory.mktemp("dev-node")
    node = NodeProcess(base_path=base / "data", rpc_port=free_port()).start()
    wait_first_block(node.target)  # the API serves a moment before the first block is final
    yield node
    node.kill()


@pytest.fixture
def small_disk(tmp_path, request):
    """A small tmpfs under tmp_path to fill (8 MiB, or the module's SMALL_DISK_MB); skipped without root."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    size_mb = getattr(request.module, "SMALL_DISK_MB", 8)
    with small_filesystem(tmp_path / "disk", size_mb) as path:
        yield path


def wait_first_block(target: str, timeout: float = 30.0) -> None:
    """Block until the node at `target` has finalized a block."""
    from chain.client import Client

    deadline = time.monotonic() + timeout
    with Client(target) as client:
        while client.chain_info().best_height < 1:
            if time.monotonic() > deadline:
                raise AssertionError(f"no block finalized at {target} within {timeout:.0f} s")
            time.sleep(0.05)
