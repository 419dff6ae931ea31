"""The node's side of the worker: run `inferchain worker` in its own process while the validator key has an offer.

A separate process, not a thread: llama.cpp's evaluation then never holds the node's GIL or
delays a block. The supervisor looks at the node's own state every few seconds: it starts the
worker once the key has an offer (at start, or after a SetOffer), starts it again if it exits
(waiting longer after each failure), and stops it with the node. The worker is told the node's
process id and stops by itself when the node dies without stopping it (SIGKILL, a crash).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

log = logging.getLogger("inferchain.node")

CHECK_INTERVAL_S = 5.0
# Waits before starting a worker again after it exited with an error, growing up to the last; a
# worker that ran for HEALTHY_RUN_S before failing starts the sequence over.
RESTART_DELAYS_S = (5.0, 15.0, 60.0, 300.0)
HEALTHY_RUN_S = 600.0
STOP_TIMEOUT_S = 15.0


# Jobs one batch may hold (worker --batch-jobs): each sequence keeps a whole context of KV cache (8192
# tokens of the embedded model are ~190 MB), and llama.cpp caps sequences per context at 256.
MAX_BATCH_JOBS = 64


@dataclass(frozen=True)
class WorkerLaunch:
    """What the node passes to its worker: the key (a dev name or a key file path), log settings, threads and
    parallel jobs, where posters reach its token streams, its engine class, batching, and whether it probes."""

    key: str
    log_level: str = "info"
    log_format: str = "plain"
    threads: int | None = None
    parallel: int | None = None
    # The offer's endpoint for the worker's token streams (--stream-endpoint); None: the node's API address.
    stream_endpoint: str | None = None
    # The worker's engine class (--engine-class; None: its default, cpu) and --batch-jobs (None: off).
    engine_class: str | None = None
    batch_jobs: int | None = None
    # The worker's --no-probes: it posts no sealed probes (docs/protocol.md, "Sealed probes").
    no_probes: bool = False

    def command(self, target: str, base_path: Path) -> list[str]:
        """`inferchain worker` against the node at `target`, models and journal under the node's base path."""
        return [
            sys.executable, "-m", "chain.cli", "worker",
            "--node", target,
            "--key", self.key,
            "--base-path", str(base_path),
            "--log-level", self.log_level,
            "--log-format", self.log_format,
            "--parent-pid", str(os.getpid()),
            *(["--threads", str(self.threads)] if self.threads is not None else []),
            *(["--parallel", str(self.parallel)] if self.parallel is not None else []),
            *(["--stream-endpoint", self.stream_endpoint] if self.stream_endpoint is not None else []),
            *(["--engine-class", self.engine_class] if self.engine_class is not None else []),
            *(["--batch-jobs", str(self.batch_jobs)] if self.batch_jobs is not None else []),
            *(["--no-probes"] if self.no_probes else []),
        ]


class WorkerSupervisor:
    """A thread that keeps one worker process running while `has_offer()` says so."""

    def __init__(self, command: list[str], has_offer: Callable[[], bool], check_interval_s: float = CHECK_INTERVAL_S,
                 restart_delays_s: tuple[float, ...] = RESTART_DELAYS_S):
        self.command = command
        self.has_offer = has_offer
        self.check_interval_s = check_interval_s
        self.restart_delays_s = restart_delays_s
        self.process: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._failures = 0
        self._started_at = 0.0
        self._said_no_offer = False
        self._thread = threading.Thread(target=self._supervise, name="worker-supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop supervising, then SIGTERM the worker and wait for it (SIGKILL after STOP_TIMEOUT_S)."""
        self._stop.set()
        self._thread.join(timeout=STOP_TIMEOUT_S)
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("the worker did not stop within %g s; killing it", STOP_TIMEOUT_S)
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)

    def _supervise(self) -> None:
        delay = 0.0
        while not self._stop.wait(delay):
            delay = self.check_interval_s
            if self.process is not None:
                code = self.process.poll()
                if code is None:
                    continue
                delay = self._after_exit(code)
                self.process = None
                continue
            if self._offered():
                self._launch()

    def _offered(self) -> bool:
        try:
            offered = self.has_offer()
        except Exception:  # a damaged read: the node reports it on its own paths; try again later
            log.exception("cannot read the validator's offer")
            return False
        if not offered and not self._said_no_offer:
            log.info("no offer for the validator key: not executing jobs (set one with `inferchain tx offer`)")
            self._said_no_offer = True
        if offered:
            self._said_no_offer = False
        return offered

    def _launch(self) -> None:
        try:
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        except OSError as error:
            log.error("cannot start the executor worker: %s", error.strerror or error)
            self._failures += 1
            return
        self._started_at = time.monotonic()
        log.info("started the executor worker, process %d (the validator key has an offer)", self.process.pid)

    def _after_exit(self, code: int) -> float:
        """Say how the worker ended; the wait before starting another."""
        if code == 0:
            log.info("the executor worker stopped")
            self._failures = 0
            return self.check_interval_s
        if time.monotonic() - self._started_at >= HEALTHY_RUN_S:
            self._failures = 0
        delay = self.restart_delays_s[min(self._failures, len(self.restart_delays_s) - 1)]
        self._failures += 1
        log.error("the executor worker exited with code %d (its error is above); starting it again in %g s", code, delay)
        return delay

