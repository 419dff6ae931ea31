"""Every job the gateway follows, on one block subscription.

A WatchJob stream per request took one of the node's stream places per request: sixteen requests
took every place the node keeps for one client address, and a worker on the same host could then
not open its own streams (its assignments, its token publishing). Here one thread reads finalized
blocks (SubscribeBlocks) and asks for a followed job (GetJob) only when a block names it: an event
attribute equal to its id (every job and dispute event names its job), or the PostJob's transaction
included. A followed job costs no stream and one unary call per block that changes it.

Each follower holds a Watch: a blocking iterator of the job's views (the job now, then after each
change, ending with the final one), which any thread may close.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Iterator

from chain.client import Client, ClientError, JobView
from chain.client.jobs import posted_job_id
from chain.client.results import Block

log = logging.getLogger(__name__)

# A PostJob not included this long after its watch began is looked up, and again each time this long passes:
# pending, it is waited for longer; dropped by the pool (or never seen), its watch ends with FAILED_PRECONDITION.
INCLUSION_CHECK_S = 30.0
# The most a PostJob is waited for while the node still says it is pending.
INCLUSION_WAIT_S = 300.0
# After the block subscription breaks, it is opened again after this long (doubling up to RECONNECT_MAX_S);
# after FAIL_AFTER_S without blocks every watch ends with the last error (UNAVAILABLE).
RECONNECT_S = 0.5
RECONNECT_MAX_S = 5.0
FAIL_AFTER_S = 60.0
_CLOSED = object()


class Watch:
    """One followed job's views; created unbound by JobTracker.watcher(), bound by follow()."""

    def __init__(self, tracker: "JobTracker"):
        self._tracker = tracker
        self._items: queue.Queue = queue.Queue()
        self._closed = threading.Event()
        self._lock = threading.Lock()  # offer() comes from the follower's thread first, then the tracker's
        self.job_id: bytes | None = None
        self.transaction_hash: bytes | None = None
        self.last: JobView | None = None
        self.started = 0.0
        # When the PostJob not yet seen included is looked up (once per INCLUSION_CHECK_S, not every block).
        self.next_inclusion_check = 0.0

    def follow(self, job_id: bytes, transaction_hash: bytes) -> Iterator[JobView]:
        """The job now (once its PostJob is included), then after every change, until final or closed;
        ClientError when the node says the PostJob failed or was dropped, or cannot be reached."""
        if self._closed.is_set():
            return
        self.job_id, self.transaction_hash, self.started = job_id, transaction_hash, time.monotonic()
        self.next_inclusion_check = self.started + INCLUSION_CHECK_S
        self._tracker.add(self)
        try:
            self._tracker.refresh(self)  # after add: no block the tracker reads from now on is missed
            while True:
                item = self._items.get()
                if item is _CLOSED:
                    return
                if isinstance(item, ClientError):
                    raise item
                yield item
                if item.final:
                    return
        finally:
            self._tracker.remove(self)

    def offer(self, view: JobView) -> None:
        """A view read by the tracker: kept when the job or its dispute changed."""
        with self._lock:
            last = self.last
            if last is not None and (view.height < last.height or (view.job, view.dispute) == (last.job, last.dispute)):
                return
            self.last = view
            self._items.put(view)

    def fail(self, error: ClientError) -> None:
        self._items.put(error)

    def close(self) -> None:
        """End the follow (from any thread); a watch closed before it began follows nothing."""
        self._closed.set()
        self._items.put(_CLOSED)


class JobTracker:
    """The block subscription and the jobs followed on it; started with the first watch, stopped by close()."""

    def __init__(self, target: str, timeout: float = 10.0):
        self.target = target
        self.client = Client(target, timeout)  # GetJob and transaction lookups
        self._stream_client: Client | None = None
        self._watches: set[Watch] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def watcher(self) -> Watch:
        return Watch(self)

    def add(self, watch: Watch) -> None:
        with self._lock:
            if self._stopped.is_set():
                watch.fail(ClientError("UNAVAILABLE", "the gateway is shutting down"))
                return
            self._watches.add(watch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gateway-jobs", daemon=True)
                self._thread.start()

    def remove(self, watch: Watch) -> None:
        with self._lock:
            self._watches.discard(watch)

    def close(self) -> None:
        self._stopped.set()
        with self._lock:
            watches, self._watches = list(self._watches), set()
            stream_client = self._stream_client
        for watch in watches:
            watch.close()
        if stream_client is not None:
            stream_client.close()  # ends the subscription, and so the thread
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.client.close()

    # --- reading jobs -------------------------------------------------------------------------

    def refresh(self, watch: Watch) -> None:
        """Read the watch's job now; before its PostJob's inclusion the job does not exist yet (not an error)."""
        try:
            view = self.client.get_job(watch.job_id)
        except ClientError as error:
            if error.code == "NOT_FOUND":
                return
            watch.fail(error)
            return
        watch.offer(view)

    def _check_inclusion(self, watch: Watch) -> None:
        """A PostJob not included for INCLUSION_CHECK_S: still pending is fine for a while; else the watch ends."""
        waited = time.monotonic() - watch.started
        try:
            status = self.client.transaction(watch.transaction_hash)
        except ClientError as error:
            watch.fail(error)
            return
        if status.included:
            self._on_included(watch, status.receipt, status.height)
        elif status.status != "pending" or waited > INCLUSION_WAIT_S:
            reason = f": {status.reason}" if status.reason else ""
            watch.fail(ClientError("FAILED_PRECONDITION", f"the job's post_job transaction was not included after "
                                                          f"{waited:.0f} s (it is {status.status}{reason})"))

    def _on_included(self, watch: Watch, receipt, height: int) -> None:
        if receipt is not None and not receipt.success:
            watch.fail(ClientError("FAILED_PRECONDITION",
                                   f"post_job included at height {height} but failed: {receipt.error}"))
            return
        if receipt is not None and posted_job_id(receipt) not in (None, watch.job_id):
            watch.fail(ClientError("INTERNAL", f"transaction {watch.transaction_hash.hex()} posted another job"))
            return
        self.refresh(watch)

    # --- the block subscription -----------------------------------------------------------------

    def _run(self) -> None:
        next_height, wait, last_block = 0, RECONNECT_S, time.monotonic()
        while not self._stopped.is_set():
            stream_client = Client(self.target, self.client.timeout)
            with self._lock:
                self._stream_client = stream_client
            try:
                for block in stream_client.subscribe_blocks(next_height):
                    if next_height and block.height > next_height:  # the node skipped some: read every job again
                        self._refresh_all()
                    next_height, wait, last_block = block.height + 1, RECONNECT_S, time.monotonic()
                    self._on_block(block)
                    if self._stopped.is_set():
                        return
            except ClientError as error:
                if self._stopped.is_set():
                    return
                log.info("block subscription for followed jobs ended (%s); opening it again", error.message)
                if time.monotonic() - last_block > FAIL_AFTER_S:
                    self._fail_all(ClientError("UNAVAILABLE", f"no block from the node for {FAIL_AFTER_S:.0f} s: "
                                                              f"{error.message}"))
                    last_block = time.monotonic()
            except Exception:  # a bug, not the node: say so, and keep following
                log.exception("reading blocks for followed jobs failed")
            finally:
                stream_client.close()
            self._stopped.wait(wait)
            wait = min(RECONNECT_MAX_S, wait * 2)
            self._refresh_all()  # what changed while the subscription was down

    def _on_block(self, block: Block) -> None:
        named = {value for receipt in block.receipts for event in receipt.events for _, value in event.attributes}
        named.update(value for event in block.block_events for _, value in event.attributes)
        included = dict(zip(block.transaction_hashes, block.receipts))
        for watch in self._snapshot():
            if watch.last is None:
                receipt = included.get(watch.transaction_hash)
                if receipt is not None:
                    self._on_included(watch, receipt, block.height)
                elif watch.job_id.hex() in named:
                    self.refresh(watch)
                elif time.monotonic() >= watch.next_inclusion_check:
                    watch.next_inclusion_check = time.monotonic() + INCLUSION_CHECK_S
                    self._check_inclusion(watch)
            elif watch.job_id.hex() in named:
                self.refresh(watch)

    def _refresh_all(self) -> None:
        for watch in self._snapshot():
            self.refresh(watch)

    def _fail_all(self, error: ClientError) -> None:
        for watch in self._snapshot():
            watch.fail(error)

    def _snapshot(self) -> list[Watch]:
        with self._lock:
            return list(self._watches)
