"""Following the chain: the executor's assignments block by block (one WatchAssignments stream), and
the job records at start.

The node sends, for each finalized block, the jobs assigned to this executor that the block changed
(their records as they stand after it), the receipts of the executor's own transactions and the
events naming it. What to do is decided from the job's record (worker.py), so a repeated update
cannot mislead the worker, and no job is read again per block.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable, Iterable

import grpc

from chain.client import ClientError
from chain.client.errors import translate_rpc_error
from chain.client.results import Event, Receipt, events_of, receipt_of
from proto import node_pb2, node_pb2_grpc, state_pb2, types_pb2
from runtime.jobs import FINAL_STATUSES

log = logging.getLogger("inferchain.worker")

STAKING_MODULE = "staking"
# Jobs listed per ListJobs page when the worker looks for its unfinished assignments.
LIST_PAGE = 100
# Waits between reconnection attempts after the node went away, doubling up to the last.
RECONNECT_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
# The most job ids a WatchAssignments request carries (the node's bound, chain/node/market_api.py).
MAX_FOLLOWED_JOBS = 1024


@dataclass(frozen=True)
class AssignmentsUpdate:
    """What one finalized block changed for this executor."""

    height: int
    block_hash: bytes
    jobs: tuple[state_pb2.Job, ...]
    receipts: tuple[Receipt, ...]
    events: tuple[Event, ...]


def update_of(reply: node_pb2.AssignmentsUpdate) -> AssignmentsUpdate:
    return AssignmentsUpdate(
        reply.height, reply.block_hash, tuple(reply.jobs), tuple(receipt_of(receipt) for receipt in reply.receipts),
        events_of(reply.events),
    )


def offer_events(update: AssignmentsUpdate) -> list[str]:
    """Names of the staking offer events in the update (they all name this executor)."""
    return [event.name for event in update.events if event.module == STAKING_MODULE and event.name.startswith("Offer")]


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
    """A thread handing the executor's update of every finalized block, in height order, to `deliver`;
    it opens the stream again when it ends and waits for the node when it goes away, so no height is
    skipped. It remembers which jobs to follow when it reconnects (those it was given, and every job
    an update sent, until one shows it final)."""

    def __init__(self, target: str, executor: bytes, deliver: Callable[[AssignmentsUpdate], None],
                 on_trouble: Callable[[str], None] = log.warning):
        self.target = target
        self.executor = executor
        self._deliver = deliver
        self._on_trouble = on_trouble
        self._stop = threading.Event()
        self._channel: grpc.Channel | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._followed: dict[bytes, None] = {}
        self.next_height = 0

    def start(self, from_height: int, job_ids: Iterable[bytes] = ()) -> None:
        self.next_height = from_height
        self._followed = dict.fromkeys(job_ids)
        self._thread = threading.Thread(target=self._follow, name="follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._channel is not None:
                self._channel.close()  # ends the open stream
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _follow(self) -> None:
        failures = 0
        while not self._stop.is_set():
            with self._lock:
                self._channel = grpc.insecure_channel(self.target)
            try:
                for update in self._stream(self._channel):
                    if self._stop.is_set():
                        return
                    self._remember(update)
                    self._deliver(update)
                    self.next_height = update.height + 1
                    failures = 0
            except ClientError as error:
                if self._stop.is_set():
                    return
                if error.code != "DEADLINE_EXCEEDED":  # a stream's lifetime ended: open it again at once
                    delay = RECONNECT_DELAYS_S[min(failures, len(RECONNECT_DELAYS_S) - 1)]
                    failures += 1
                    self._on_trouble(f"following assignments from #{self.next_height}: {error.message}; "
                                     f"retrying in {delay:g} s")
                    self._stop.wait(delay)
            finally:
                with self._lock:
                    self._channel.close()
                    self._channel = None

    def _stream(self, channel: grpc.Channel):
        request = node_pb2.WatchAssignmentsRequest(
            executor=self.executor, from_height=self.next_height, job_ids=list(self._followed)[-MAX_FOLLOWED_JOBS:]
        )
        stream = node_pb2_grpc.NodeStub(channel).WatchAssignments(request)
        try:
            for reply in stream:
                yield update_of(reply)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED or not self._stop.is_set():
                raise translate_rpc_error(error, self.target, None) from None
        finally:
            stream.cancel()

    def _remember(self, update: AssignmentsUpdate) -> None:
        for job in update.jobs:
            if job.status in FINAL_STATUSES:
                self._followed.pop(job.id, None)
            else:
                self._followed[job.id] = None
