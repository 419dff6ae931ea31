"""Transaction gossip: announce hashes, fetch only what this node lacks (docs/network.md, "Transaction gossip").

Flooding whole transactions to every peer cost one CometBFT validator 12 GB in 3 hours
(tendermint issue 9706). Here a transaction entering the pool is announced by its hash, in
batches (TxAnnounce, at most 4,096 hashes, every `announce_interval_s`); a peer that lacks it asks
the first announcer for it (TxRequest) and gets the bytes (TxBatch, at most 4 MiB). A hash asked
for is not asked of another peer until the request times out; then the next peer that announced
it is asked. Requests waiting for an answer are bounded, and so are the hashes remembered.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Protocol

from chain.p2p.wire import MAX_HASHES_PER_MESSAGE, MAX_TX_BATCH_BYTES, TX_HASH_BYTES
from proto import p2p_pb2
from runtime.hashing import transaction_hash

log = logging.getLogger("inferchain.p2p")

MAX_BATCH_BYTES = MAX_TX_BATCH_BYTES


@dataclass(frozen=True)
class TxGossipLimits:
    """Batching, timeouts and memory bounds of transaction gossip."""

    announce_interval_s: float = 0.05
    # Hashes waiting to be announced; beyond this the oldest are announced late, never stored more.
    max_pending_announcements: int = 65_536
    # Hashes asked of a peer and not yet received, all peers together, and of one peer: a peer that
    # announces hashes it never delivers holds at most a quarter of the room, so honest gossip flows.
    max_outstanding: int = 16_384
    max_outstanding_per_peer: int = 4096
    request_timeout_s: float = 2.0
    # Other peers remembered per outstanding hash, to ask when the first does not answer.
    max_alternates: int = 4
    # Hashes received lately, not fetched again even when the pool refused them.
    recently_received: int = 65_536


class GossipNetwork(Protocol):
    """What transaction gossip needs of chain.p2p.network.Network."""

    def broadcast(self, envelope: p2p_pb2.Envelope, exclude: bytes | None = None) -> None: ...

    def send(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> bool: ...

    def disconnect(self, peer_id: bytes, reason: str) -> None: ...

    def call_every(self, interval_s: float, callback: Callable[[], None]) -> None: ...

    clock: Callable[[], float]


@dataclass
class _Request:
    """A hash asked of `peer`, answered by `deadline`, else asked of the next alternate."""

    peer: bytes
    deadline: float
    alternates: list[bytes] = field(default_factory=list)


class TxGossip:
    """Announces this node's new transactions and fetches the ones peers announce that it lacks."""

    def __init__(
        self,
        network: GossipNetwork,
        *,
        has: Callable[[bytes], bool],
        get_raw: Callable[[bytes], bytes | None],
        submit: Callable[[bytes], None],
        limits: TxGossipLimits = TxGossipLimits(),
    ):
        self.network = network
        self.has = has
        self.get_raw = get_raw
        self.submit = submit
        self.limits = limits
        self.clock = network.clock
        self._lock = threading.Lock()
        self._pending: OrderedDict[bytes, None] = OrderedDict()
        self._outstanding: dict[bytes, _Request] = {}
        self._asked_of: dict[bytes, int] = {}  # peer -> hashes in _outstanding asked of it
        self._received: OrderedDict[bytes, None] = OrderedDict()
        # Counters, for metrics and tests.
        self.hashes_requested = 0
        self.transactions_received = 0
        self.unsolicited = 0
        network.call_every(limits.announce_interval_s, self.tick)

    # --- our transactions ---

    def announce(self, tx_hash: bytes) -> None:
        """A transaction entered our pool: announce its hash with the next batch."""
        with self._lock:
            self._pending[tx_hash] = None
            while len(self._pending) > self.limits.max_pending_announcements:
                self._pending.popitem(last=False)

    def tick(self) -> None:
        """Send the announcements gathered since the last tick and re-ask hashes whose request timed out."""
        self._flush_announcements()
        self._retry_late_requests()

    def _flush_announcements(self) -> None:
        with self._lock:
            hashes = list(self._pending)
            self._pending.clear()
        for start in range(0, len(hashes), MAX_HASHES_PER_MESSAGE):
            chunk = hashes[start : start + MAX_HASHES_PER_MESSAGE]
            self.network.broadcast(p2p_pb2.Envelope(tx_announce=p2p_pb2.TxAnnounce(hashes=chunk)))

    def _retry_late_requests(self) -> None:
        now = self.clock()
        retry: dict[bytes, list[bytes]] = {}
        with self._lock:
            late = [h for h, request in self._outstanding.items() if request.deadline <= now]
            for tx_hash in late:
                request = self._outstanding[tx_hash]
                if not request.alternates:
                    self._forget_request(tx_hash)
                    continue
                self._count_asked(request.peer, -1)
                request.peer = request.alternates.pop(0)
                self._count_asked(request.peer, +1)
                request.deadline = now + self.limits.request_timeout_s
                retry.setdefault(request.peer, []).append(tx_hash)
        for peer_id, hashes in retry.items():
            self._request(peer_id, hashes)

    # --- messages from peers ---

    def on_message(self, peer_id: bytes, envelope: p2p_pb2.Envelope) -> bool:
        """Handle a tx_announce, tx_request or tx_batch; False for any other message."""
        kind = envelope.WhichOneof("message")
        if kind == "tx_announce":
            self._on_announce(peer_id, envelope.tx_announce)
        elif kind == "tx_request":
            self._on_request(peer_id, envelope.tx_request)
        elif kind == "tx_batch":
            self._on_batch(peer_id, envelope.tx_batch)
        else:
            return False
        return True

    def _on_announce(self, peer_id: bytes, announce: p2p_pb2.TxAnnounce) -> None:
        if not self._valid_hashes(peer_id, announce.hashes, "TxAnnounce"):
            return
        now = self.clock()
        wanted: list[bytes] = []
        for tx_hash in announce.hashes:
            if self._known(tx_hash) or self.has(tx_hash):
                continue
            with self._lock:
                if self._take_request(peer_id, tx_hash, now):
                    wanted.append(tx_hash)
        if wanted:
            self._request(peer_id, wanted)

    def _known(self, tx_hash: bytes) -> bool:
        with self._lock:
            return tx_hash in self._received

    def _take_request(self, peer_id: bytes, tx_hash: bytes, now: float) -> bool:
        """True when `tx_hash` is now to be asked of `peer_id`; else it is asked of someone already (or no room)."""
        request = self._outstanding.get(tx_hash)
        if request is not None:
            if request.peer != peer_id and peer_id not in request.alternates:
                if len(request.alternates) < self.limits.max_alternates:
                    request.alternates.append(peer_id)
            return False
        if len(self._outstanding) >= self.limits.max_outstanding:
            return False  # announced again by the peers that have it once room frees
        if self._asked_of.get(peer_id, 0) >= self.limits.max_outstanding_per_peer:
            return False  # asked of another announcer, or of this one once it delivered
        self._outstanding[tx_hash] = _Request(peer=peer_id, deadline=now + self.limits.request_timeout_s)
        self._count_asked(peer_id, +1)
        return True

    def _count_asked(self, peer_id: bytes, change: int) -> None:
        count = self._asked_of.get(peer_id, 0) + change
        if count > 0:
            self._asked_of[peer_id] = count
        else:
            self._asked_of.pop(peer_id, None)

    def _forget_request(self, tx_hash: bytes) -> None:
        request = self._outstanding.pop(tx_hash)
        self._count_asked(request.peer, -1)

    def _request(self, peer_id: bytes, hashes: list[bytes]) -> None:
        if self.network.send(peer_id, p2p_pb2.Envelope(tx_request=p2p_pb2.TxRequest(hashes=hashes))):
            with self._lock:
                self.hashes_requested += len(hashes)
            return
        with self._lock:  # not sent (the peer left or its queue is full): free the hashes for others
            for tx_hash in hashes:
                request = self._outstanding.get(tx_hash)
                if request is not None and request.peer == peer_id:
                    self._forget_request(tx_hash)

    def _on_request(self, peer_id: bytes, request: p2p_pb2.TxRequest) -> None:
        if not self._valid_hashes(peer_id, request.hashes, "TxRequest"):
            return
        transactions: list[bytes] = []
        size = 0
        for tx_hash in request.hashes:
            raw = self.get_raw(tx_hash)
            if raw is None:
                continue
            if size + len(raw) > MAX_BATCH_BYTES:
                break  # the rest times out at the requester, which asks again or elsewhere
            transactions.append(raw)
            size += len(raw)
        if transactions:
            self.network.send(peer_id, p2p_pb2.Envelope(tx_batch=p2p_pb2.TxBatch(transactions=transactions)))

    def _on_batch(self, peer_id: bytes, batch: p2p_pb2.TxBatch) -> None:
        size = sum(len(raw) for raw in batch.transactions)
        if size > MAX_BATCH_BYTES:
            self.network.disconnect(peer_id, f"a TxBatch of {size} bytes (limit {MAX_BATCH_BYTES})")
            return
        for raw in batch.transactions:
            tx_hash = transaction_hash(raw)
            with self._lock:
                request = self._outstanding.get(tx_hash)
                if request is None or request.peer != peer_id:
                    self.unsolicited += 1
                    continue
                self._forget_request(tx_hash)
                self._remember_received(tx_hash)
                self.transactions_received += 1
            try:
                self.submit(raw)
            except Exception as error:  # the pool refused it (invalid, stale nonce, full): it stays out
                log.debug("p2p: a gossiped transaction %s… was not accepted: %s", tx_hash.hex()[:12], error)

    def _remember_received(self, tx_hash: bytes) -> None:
        self._received[tx_hash] = None
        while len(self._received) > self.limits.recently_received:
            self._received.popitem(last=False)

    def _valid_hashes(self, peer_id: bytes, hashes, what: str) -> bool:
        """Disconnect a peer whose hash list breaks the limits; True when it is fine."""
        if len(hashes) > MAX_HASHES_PER_MESSAGE:
            self.network.disconnect(peer_id, f"a {what} with {len(hashes)} hashes (limit {MAX_HASHES_PER_MESSAGE})")
            return False
        wrong = next((h for h in hashes if len(h) != TX_HASH_BYTES), None)
        if wrong is not None:
            self.network.disconnect(peer_id, f"a {what} with a {len(wrong)}-byte hash (hashes are {TX_HASH_BYTES} bytes)")
            return False
        return True
