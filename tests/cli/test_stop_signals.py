"""Stopping on SIGTERM and SIGINT survives a burst of signals.

A node outlived its devnet launcher (CI at 0b1cf19): the launcher's death sends the node its
parent-death SIGTERM once per launcher thread that exits, and a handler calling Event.set() ran
nested inside another one holding the event's lock, so the node deadlocked in its own handler and
kept finalizing blocks. A faster burst crashed the node with a RecursionError of nested handlers.
Now the Python-level handler does nothing; the interpreter writes each signal to a wakeup pipe that
a thread reads (chain/stop_signals.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.commands import ROOT
from tests.nodes import NodeProcess, free_port

# Signals are sent for this long, or until the process is gone.
BURST_S = 3.0


def burst(process, signum: int = signal.SIGTERM) -> None:
    """Signals as fast as they can be sent, while the process stops: handlers run nested inside each other."""
    deadline = time.monotonic() + BURST_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            os.kill(process.pid, signum)
        except ProcessLookupError:
            return


@pytest.mark.parametrize("attempt", range(3))
def test_a_node_stops_cleanly_after_a_burst_of_sigterms(tmp_path, attempt):
    node = NodeProcess(tmp_path / "node", free_port()).start()
    try:
        burst(node.process)
        # Signals still arriving once the node has stopped and Python is exiting meet the default action.
        assert node.process.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        node.kill()
    assert "stopped at #" in node.log(), node.log()[-2000:]


def test_a_process_waiting_on_the_stop_event_wakes_after_a_burst_of_signals():
    """The helper itself, in a process whose main thread waits on the event (as the worker's does)."""
    code = textwrap.dedent("""
        import sys, threading
        from chain.stop_signals import on_stop_signals
        stop = threading.Event()
        on_stop_signals(stop.set)
        print("ready", flush=True)
        while not stop.wait(0.01):
            pass
        print("stopped", flush=True)
    """)
    for signum in (signal.SIGTERM, signal.SIGINT):
        child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            assert child.stdout.readline().strip() == "ready"
            burst(child, signum)
            assert child.wait(timeout=10) in (0, -signum, 1)  # 1: a KeyboardInterrupt during exit
            assert child.stdout.read().strip() == "stopped"
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
