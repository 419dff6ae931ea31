"""Serving block sync: peers' BlocksRequests answered from the store on a worker thread of their own.

An answer reads up to SYNC_RESPONSE_BYTES (8 MiB) of finalized blocks from LevelDB. Read on the
p2p thread that reads that peer, it would hold back the peer's votes and proposals meanwhile; read
on the consensus loop, every height would wait for it. So requests wait in a bounded queue for this
worker: at most MAX_WAITING_REQUESTS in all and MAX_WAITING_PER_PEER from one peer (an honest
syncing node asks at most MAX_PARALLEL_RANGES ranges at once). A request that does not fit is
refused with its reason, counted and logged (once per interval), and not answered: the asker's range
times out and it asks another peer (chain/consensus/sync.py).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from typing import Callable

from chain.consensus.sync import MAX_PARALLEL_RANGES, SYNC_BATCH
from proto import p2p_pb2

log = logging.getLogger("inferchain.consensus")

SYNC_RESPONSE_BYTES = 8 * 1024 * 1024
MAX_WAITING_REQUESTS = 64
MAX_WAITING_PER_PEER = MAX_PARALLEL_RANGES
REFUSAL_LOG_INTERVAL_S = 10.0


class BlockServer:
    """A worker that answers block requests from the store; `submit` never waits."""

    def __init__(self, store, send: Callable[[bytes, p2p_pb2.Envelope], object],
                 max_waiting: int = MAX_WAITING_REQUESTS, max_per_peer: int = MAX_WAITING_PER_PEER,
                 clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.send = send
        self.max_per_peer = max_per_peer
        self.clock = clock
        self.served = 0
        self.refused = 0
        self._requests: queue.Queue[tuple[bytes, p2p_pb2.BlocksRequest] | None] = queue.Queue(maxsize=max_waiting)
        self._waiting: Counter[bytes] = Counter()  # requests queued or being answered, by peer
        self._lock = threading.Lock()
        self._stopping = False
        self._refusals_since_log = 0
        self._last_refusal_log = float("-inf")
        self._thread = threading.Thread(target=self._run, name="block-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the answer in progress; requests still waiting are not answered."""
        with self._lock:
            self._stopping = True
        if not self._thread.is_alive():
            return
        while True:
            try:
                self._requests.get_nowait()
            except queue.Empty:
                break
        self._requests.put(None)
        self._thread.join(timeout=10)

    def submit(self, peer_id: bytes, request: p2p_pb2.BlocksRequest) -> str | None:
        """Queue a peer's request for the worker: None when queued, else why it was refused (counted, logged)."""
        with self._lock:
            if self._stopping:
                return "the node is stopping"
            if self._waiting[peer_id] >= self.max_per_peer:
                reason = f"{self.max_per_peer} requests of this peer wait already"
            else:
                try:
                    self._requests.put_nowait((peer_id, request))
                except queue.Full:
                    reason = f"{self._requests.maxsize} requests wait already"
                else:
                    self._waiting[peer_id] += 1
                    return None
            self.refused += 1
        self._log_refusal(peer_id, reason)
        return reason

    def answer(self, request: p2p_pb2.BlocksRequest) -> p2p_pb2.BlocksResponse:
        """The finalized blocks from `request.from_height` on: at most SYNC_BATCH, and past the first at most
        SYNC_RESPONSE_BYTES; fewer when the chain ends sooner."""
        response = p2p_pb2.BlocksResponse()
        size = 0
        for height in range(request.from_height, request.from_height + min(request.count, SYNC_BATCH)):
            block_hash = self.store.block_hash_at(height)
            if block_hash is None:
                break
            finalized = self.store.finalized_block(block_hash)
            size += finalized.ByteSize()
            if response.blocks and size > SYNC_RESPONSE_BYTES:
                break
            response.blocks.append(finalized)
        return response

    def _run(self) -> None:
        while (item := self._requests.get()) is not None:
            peer_id, request = item
            try:
                self.send(peer_id, p2p_pb2.Envelope(blocks_response=self.answer(request)))
                self.served += 1
            except Exception:  # a damaged read or a closed store: this request fails, the next may not
                log.exception("block sync: answering blocks from #%d failed", request.from_height)
            finally:
                with self._lock:
                    self._waiting[peer_id] -= 1
                    if self._waiting[peer_id] <= 0:
                        del self._waiting[peer_id]

    def _log_refusal(self, peer_id: bytes, reason: str) -> None:
        now = self.clock()
        with self._lock:
            self._refusals_since_log += 1
            if now - self._last_refusal_log < REFUSAL_LOG_INTERVAL_S:
                return
            count, self._refusals_since_log, self._last_refusal_log = self._refusals_since_log, 0, now
        log.warning("block sync: refused a request of peer %s (%s); %d refused since the last report",
                    peer_id.hex()[:16], reason, count)
