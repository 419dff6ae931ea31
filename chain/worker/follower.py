"""Following the chain: every finalized block from a height on, the job events in it, and the job records.

The follower only says that something happened to a job; what to do is decided from the job's
record as the node serves it (GetJob), so a missed or repeated event cannot mislead the worker.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable, Iterable

import grpc

from chain.client import Block, Client, ClientError
from chain.client.errors import translate_rpc_error
from proto import node_pb2, node_pb2_grpc, state_pb2, types_pb2

log = logging.getLogger("inferchain.worker")

JOBS_MODULE = "jobs"
STAKING_MODULE = "staking"
JOB_ASSIGNED = "JobAssigned"
# Jobs listed per ListJobs page when the worker looks for its unfinished assignments.
LIST_PAGE = 100
# Waits between reconnection attempts after the node went away, doubling up to the last.
RECONNECT_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


@dataclass(frozen=True)
class JobEvent:
    """A jobs-module event: its name, the job it concerns and the executor it names (if any)."""

    name: str
    job_id: bytes
    executor: bytes | None


def job_events(block: Block) -> list[JobEvent]:
    """The block's jobs events, from its transactions then its hooks, skipping malformed ones."""
    events = [event for receipt in block.receipts for event in receipt.events] + list(block.block_events)
    found = []
    for event in events:
        if event.module != JOBS_MODULE:
            continue
        job_id = _hex_bytes(event.attribute("job"))
        if job_id is None:
            continue
        found.append(JobEvent(event.name, job_id, _hex_bytes(event.attribute("executor"))))
    return found


def names_account(block: Block, module: str, account: bytes) -> list[str]:
    """Names of the module's events in the block with an attribute holding the account."""
    account_hex = account.hex()
    events = [event for receipt in block.receipts for event in receipt.events] + list(block.block_events)
    return [
        event.name for event in events
        if event.module == module and any(value == account_hex for _, value in event.attributes)
    ]


def _hex_bytes(text: str | None) -> bytes | None:
    if not text or len(text) != 64:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


class MarketReader:
    """The node's market API (GetJob, ListJobs, GetExecutors, ListModels) on a channel of its own; ClientError on failure."""

    def __init__(self, target: str, timeout: float = 10.0):
        self.target = target
        self.timeout = timeout
        self._channel = grpc.insecure_channel(target)
        self._stub = node_pb2_grpc.NodeStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def job(self, job_id: bytes) -> state_pb2.Job | None:
        """The job's record at the node's head; None when the node knows no such job."""
        try:
            view = self._call(self._stub.GetJob, node_pb2.GetJobRequest(job_id=job_id))
        except ClientError as error:
            if error.code == "NOT_FOUND":
                return None
            raise
        return view.job if view.HasField("job") else None

    def jobs_of(self, executor: bytes, statuses: Iterable[int]) -> tuple[list[state_pb2.Job], int]:
        """Every job assigned to `executor` in one of `statuses`, and the lowest height they were read at."""
        jobs: list[state_pb2.Job] = []
        height = None
        for status in statuses:
            token = b""
            while True:
                request = node_pb2.ListJobsRequest(executor=executor, status=status, limit=LIST_PAGE, page_token=token)
                reply = self._call(self._stub.ListJobs, request)
                jobs.extend(reply.jobs)
                height = reply.height if height is None else min(height, reply.height)
                token = reply.next_page_token
                if not token:
                    break
        return jobs, height or 0

    def offer(self, account: bytes) -> state_pb2.Offer | None:
        """The account's offer, or None when it has none."""
        reply = self._call(self._stub.GetExecutors, node_pb2.GetExecutorsRequest())
        for executor in reply.executors:
            if executor.account == account:
                return executor.offer
        return None

    def models(self) -> list[types_pb2.ModelInfo]:
        """The registered models."""
        return list(self._call(self._stub.ListModels, node_pb2.ListModelsRequest()).models)

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise translate_rpc_error(error, self.target, self.timeout) from None


class Follower:
    """A thread handing every finalized block, in height order, to `deliver`; it resubscribes when a
    stream ends and waits for the node when it goes away, so no height is skipped."""

    def __init__(self, target: str, deliver: Callable[[Block], None], on_trouble: Callable[[str], None] = log.warning):
        self.target = target
        self._deliver = deliver
        self._on_trouble = on_trouble
        self._stop = threading.Event()
        self._client: Client | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.next_height = 0

    def start(self, from_height: int) -> None:
        self.next_height = from_height
        self._thread = threading.Thread(target=self._follow, name="follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._client is not None:
                self._client.close()  # ends the open stream
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _follow(self) -> None:
        failures = 0
        while not self._stop.is_set():
            with self._lock:
                self._client = Client(self.target)
            try:
                for block in self._client.subscribe_blocks(self.next_height):
                    if self._stop.is_set():
                        return
                    self._deliver(block)
                    self.next_height = block.height + 1
                    failures = 0
            except ClientError as error:
                if self._stop.is_set():
                    return
                if error.code != "DEADLINE_EXCEEDED":  # a stream's lifetime ended: resubscribe at once
                    delay = RECONNECT_DELAYS_S[min(failures, len(RECONNECT_DELAYS_S) - 1)]
                    failures += 1
                    self._on_trouble(f"following blocks from #{self.next_height}: {error.message}; retrying in {delay:g} s")
                    self._stop.wait(delay)
            finally:
                with self._lock:
                    self._client.close()
                    self._client = None
