"""The transaction pool: per-account nonce order, fee priority, count and byte bounds.

Transactions arrive checked (encoding, chain, signature) and validated against the
latest state. A sender's pending transactions always have consecutive nonces from
the account's: a nonce that skips ahead of `next_nonce` is refused, and dropping
one transaction drops the sender's later ones too. A block takes the best ready
transactions: across senders by fee per byte, within a sender by nonce.
`next_nonce` counts the sender's pending transactions, so a client that asks for
it before each submission never reuses or skips a nonce.

Each pending transaction keeps the verdict it was admitted with (the dry run's receipt, when
one ran), so a resubmission or a gossiped copy is answered without checking it again.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Container, Iterable, Iterator

from proto import types_pb2
from runtime.primitives import CheckedTransaction

# A replacement (same sender and nonce) must raise the fee by at least this fraction,
# so that a sender cannot make the pool churn for free.
REPLACEMENT_BUMP_PERCENT = 10


class PoolError(Exception):
    """A transaction the pool refuses; `status` is the gRPC status name the API returns."""

    status = "FAILED_PRECONDITION"


class AlreadyKnown(PoolError):
    status = "ALREADY_EXISTS"


class ReplacementUnderpriced(PoolError):
    pass


class PoolFull(PoolError):
    status = "RESOURCE_EXHAUSTED"


class NonceGap(PoolError):
    pass


@dataclass(frozen=True)
class PoolLimits:
    max_count: int = 50_000
    max_bytes: int = 64 * 1024 * 1024
    # How many dropped transactions (and why) GetTransaction can still report.
    remembered_rejections: int = 10_000


def _priority(tx: CheckedTransaction) -> int:
    """Fee per byte, scaled to integers: higher goes first."""
    return tx.fee * 1_000 // max(1, tx.size)


class Mempool:
    """Not thread-safe: the node calls it under its own lock."""

    def __init__(self, limits: PoolLimits = PoolLimits()):
        self.limits = limits
        self._by_sender: dict[bytes, dict[int, CheckedTransaction]] = {}
        self._by_hash: dict[bytes, CheckedTransaction] = {}
        self._dry_runs: dict[bytes, types_pb2.Receipt] = {}
        self._bytes = 0
        self._rejected: OrderedDict[bytes, str] = OrderedDict()

    # --- queries ------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_hash)

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._by_hash

    def get(self, tx_hash: bytes) -> CheckedTransaction | None:
        return self._by_hash.get(tx_hash)

    def dry_run(self, tx_hash: bytes) -> types_pb2.Receipt | None:
        """The receipt of the dry run a pending transaction was admitted with; None when none ran."""
        return self._dry_runs.get(tx_hash)

    def rejection(self, tx_hash: bytes) -> str | None:
        """Why a transaction was dropped, if it was recently."""
        return self._rejected.get(tx_hash)

    def next_nonce(self, sender: bytes, account_nonce: int) -> int:
        """The nonce for the sender's next transaction: past its contiguous pending ones."""
        pending = self._by_sender.get(sender)
        nonce = account_nonce
        if pending:
            while nonce in pending:
                nonce += 1
        return nonce

    # --- adding -------------------------------------------------------------

    def add(self, tx: CheckedTransaction, account_nonce: int, dry_run: types_pb2.Receipt | None = None) -> None:
        """Queue a validated transaction (with its admission dry run, if one ran); PoolError when it is refused."""
        if tx.hash in self._by_hash:
            raise AlreadyKnown(f"transaction {tx.hash.hex()} is already pending")
        expected = self.next_nonce(tx.sender, account_nonce)
        if tx.nonce > expected:
            raise NonceGap(
                f"nonce {tx.nonce} skips ahead: the account's next nonce is {expected} "
                f"({account_nonce} on chain, {expected - account_nonce} pending)"
            )
        pending = self._by_sender.setdefault(tx.sender, {})
        replaced = pending.get(tx.nonce)
        if replaced is not None:
            self._check_replacement(replaced, tx)
        elif not self._has_room_for(tx):
            self._evict_for(tx)
        if replaced is not None:
            self._remove(replaced, "replaced by a transaction with a higher fee")
            pending = self._by_sender.setdefault(tx.sender, {})
        pending[tx.nonce] = tx
        self._by_hash[tx.hash] = tx
        if dry_run is not None:
            self._dry_runs[tx.hash] = dry_run
        self._bytes += tx.size

    def _check_replacement(self, old: CheckedTransaction, new: CheckedTransaction) -> None:
        needed = old.fee + old.fee * REPLACEMENT_BUMP_PERCENT // 100 + 1
        if new.fee < needed:
            raise ReplacementUnderpriced(
                f"a transaction with nonce {new.nonce} is already pending; a replacement needs a fee of at least {needed}"
            )

    def _has_room_for(self, tx: CheckedTransaction) -> bool:
        return len(self._by_hash) < self.limits.max_count and self._bytes + tx.size <= self.limits.max_bytes

    def _evict_for(self, tx: CheckedTransaction) -> None:
        """Make room by dropping the lowest-priority sender tails, if the newcomer pays more."""
        while not self._has_room_for(tx):
            victim = self._lowest_priority_tail(exclude=tx.sender)
            if victim is None or _priority(victim) >= _priority(tx):
                raise PoolFull(
                    f"the pool is full ({len(self._by_hash)} transactions, {self._bytes} bytes); "
                    "offer a higher fee or retry later"
                )
            self._remove(victim, "evicted from a full pool by a higher fee")

    def _lowest_priority_tail(self, exclude: bytes) -> CheckedTransaction | None:
        # Only a sender's last transaction may go, so no sender is left with a nonce gap.
        tails = (pending[max(pending)] for sender, pending in self._by_sender.items() if pending and sender != exclude)
        return min(tails, key=_priority, default=None)

    # --- removing -----------------------------------------------------------

    def _remove(self, tx: CheckedTransaction, reason: str | None) -> None:
        pending = self._by_sender.get(tx.sender)
        if pending is not None and pending.get(tx.nonce) is tx:
            del pending[tx.nonce]
            if not pending:
                del self._by_sender[tx.sender]
        if self._by_hash.pop(tx.hash, None) is not None:
            self._bytes -= tx.size
        self._dry_runs.pop(tx.hash, None)
        if reason is not None:
            self._remember_rejection(tx.hash, reason)

    def _remember_rejection(self, tx_hash: bytes, reason: str) -> None:
        self._rejected[tx_hash] = reason
        self._rejected.move_to_end(tx_hash)
        while len(self._rejected) > self.limits.remembered_rejections:
            self._rejected.popitem(last=False)

    def drop(self, tx: CheckedTransaction, reason: str) -> None:
        """Remove a transaction that can no longer be included, and the sender's later ones, remembering why."""
        pending = self._by_sender.get(tx.sender, {})
        later = sorted(nonce for nonce in pending if nonce > tx.nonce)
        self._remove(tx, reason)
        for nonce in later:
            self._remove(pending[nonce], f"an earlier transaction of this sender (nonce {tx.nonce}) was dropped: {reason}")

    def prune(self, senders: Iterable[bytes], account_nonce: Callable[[bytes], int],
              included: Container[bytes] = frozenset(), where: str = "in a block") -> None:
        """After a block: drop each sender's transactions whose nonce is now used.

        One that is not itself `included` lost its nonce to another transaction of its sender (the one
        it replaced, already in the block being built when the replacement was accepted, or one sent to
        another node): it is remembered as rejected, with why, so a lookup never finds it in neither
        place after it was accepted.
        """
        for sender in senders:
            pending = self._by_sender.get(sender)
            if not pending:
                continue
            current = account_nonce(sender)
            for nonce in [nonce for nonce in pending if nonce < current]:
                tx = pending[nonce]
                reason = None if tx.hash in included else (
                    f"its nonce {nonce} was used by another transaction of this sender, included {where}")
                self._remove(tx, reason)

    # --- block building -----------------------------------------------------

    def ready(self, account_nonce: Callable[[bytes], int]) -> Iterator[CheckedTransaction]:
        """Ready transactions, best first: by fee per byte across senders, by nonce within one.

        The caller may stop early; if one of a sender's transactions cannot apply,
        the caller must skip that sender's later ones too.
        """
        counter = itertools.count()
        heap: list[tuple[int, int, CheckedTransaction]] = []
        for sender, pending in self._by_sender.items():
            tx = pending.get(account_nonce(sender))
            if tx is not None:
                heap.append((-_priority(tx), next(counter), tx))
        heapq.heapify(heap)
        while heap:
            _, _, tx = heapq.heappop(heap)
            yield tx
            following = self._by_sender.get(tx.sender, {}).get(tx.nonce + 1)
            if following is not None:
                heapq.heappush(heap, (-_priority(following), next(counter), following))
