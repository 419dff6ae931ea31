"""Stopping a process on SIGTERM and SIGINT without doing anything inside a signal handler.

Python runs a signal handler in the main thread between two bytecodes, and runs it again, nested,
when another signal comes meanwhile. A handler that set a threading.Event (it takes the event's
lock) deadlocked a node when signals came in a burst (its devnet launcher's death sends the
parent-death SIGTERM once per launcher thread that exits: the node outlived its launcher, still
finalizing blocks), and a burst of longer handlers ended in a RecursionError. So the handler here
does nothing: the interpreter's C-level handler writes the signal's number to a pipe
(`signal.set_wakeup_fd`), and a thread of its own reads the pipe and calls `on_signal`.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Callable

SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Bytes read from the wakeup pipe at once (one per signal delivered).
READ_BYTES = 512


def _noted(signum, frame) -> None:
    """The Python-level handler: nothing to do (the number is already in the wakeup pipe)."""


def on_stop_signals(on_signal: Callable[[], None], signals: tuple[signal.Signals, ...] = SIGNALS) -> None:
    """Call `on_signal` (in a thread of its own, once per batch of signals read) when one of `signals` arrives.
    From the main thread, once per process: it takes the process's wakeup pipe."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    wanted = {int(signum) for signum in signals}
    for signum in signals:
        signal.signal(signum, _noted)

    def relay() -> None:
        while True:
            received = os.read(read_end, READ_BYTES)
            if wanted.intersection(received):
                on_signal()

    threading.Thread(target=relay, name="stop-signals", daemon=True).start()
