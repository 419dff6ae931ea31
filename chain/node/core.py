"""The node core: admits transactions, builds and commits the blocks consensus decides, answers queries.

One lock guards the pool and the head. Signature checks run outside it, so gRPC
worker threads verify in parallel (the cryptography package releases the GIL).
Proposing snapshots the ready transactions under the lock and executes them without
it (chain/node/blocks.py; only the consensus thread writes the store); a decided
block is committed under it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from chain.consensus.commit import precommit_time_ms, sign_vote
from chain.crypto import Keypair
from chain.genesis import Genesis
from chain.mempool import Mempool, PoolError, PoolLimits
from chain.node.blocks import BlockBuilder, Candidate
from chain.node.randao import Randao
from chain.storage import ChainStore, Head, StoreError, TransactionLocation
from proto import state_pb2, types_pb2
from runtime import system
from runtime.block import read_block_limits
from runtime.jobs.assignment import draws_pending
from runtime.hashing import transaction_hash
from runtime.executive import (
    HANDLER_BUGS,
    TransactionRules,
    apply_alone,
    check_transaction,
    transaction_rules,
    validate_transaction,
)
from runtime.primitives import CheckedTransaction, InvalidTransaction

log = logging.getLogger(__name__)


class ProductionHalted(Exception):
    """A block could not be stored; this node produces no more blocks until it is restarted."""


class Rejected(Exception):
    """A transaction the node refuses; `status` is the gRPC status code name."""

    def __init__(self, status: str, message: str, tx_hash: bytes = b""):
        super().__init__(message)
        self.status = status
        self.tx_hash = tx_hash


@dataclass(frozen=True)
class Admission:
    """The verdict on one submitted transaction: its hash, and either the pool's dry run or the rejection.

    `dry_run` is the receipt of the call applied alone to the latest state when the nonce was the
    account's next one (it succeeded: a failing call is rejected); None when the transaction waits
    behind the sender's pending ones, or was rejected.
    """

    hash: bytes
    dry_run: types_pb2.Receipt | None
    rejection: Rejected | None = None


@dataclass(frozen=True)
class AccountState:
    """An account as the API reports it, with the proof of its stored record."""

    account: bytes
    info: state_pb2.AccountInfo
    next_nonce: int
    head: Head
    state_key: bytes
    state_value: bytes | None
    proof: object


@dataclass(frozen=True)
class ProducedBlock:
    height: int
    hash: bytes
    transactions: int
    elapsed_s: float


@dataclass
class NodeStats:
    """Counters for metrics and logs."""

    submitted: int = 0
    rejected: int = 0
    included: int = 0
    blocks: int = 0
    last_block_transactions: int = 0
    last_block_seconds: float = 0.0
    started_at: float = field(default_factory=time.time)
    # Set when a block could not be written: production stops for good (until a restart), queries go on.
    production_halted: bool = False
    storage_errors: int = 0


class NodeCore:
    """Everything the edges (gRPC, metrics, CLI) call."""

    def __init__(
        self,
        store: ChainStore,
        genesis: Genesis,
        validator: Keypair,
        pool_limits: PoolLimits = PoolLimits(),
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.genesis = genesis
        self.validator = validator
        self.clock = clock
        self.pool = Mempool(pool_limits)
        self.stats = NodeStats()
        self._lock = threading.Lock()
        self._new_block = threading.Condition(self._lock)
        self._rules: TransactionRules = transaction_rules(store.state)
        self.blocks = BlockBuilder(store, genesis, lambda: self._rules, known=self._pooled)
        # The reveal each block this node proposes carries (chain/node/randao.py).
        self.randao = Randao(validator)
        # Called (under the lock) with the hash of each transaction newly admitted to the pool: gossip.
        self.on_new_transaction: Callable[[bytes], None] | None = None
        # Set by the node: the consensus state for ChainInfo (None for a core without consensus).
        self.consensus_status: Callable[[], object] | None = None

    # --- identity and head ----------------------------------------------------

    @property
    def rules(self) -> TransactionRules:
        return self._rules

    @property
    def head(self) -> Head:
        return self.store.head

    def draws_pending(self) -> bool:
        """Whether a posted job waits for one of the next blocks to draw its executors."""
        return draws_pending(self.store.state, self.store.head.height)

    # --- admitting transactions ------------------------------------------------

    def submit(self, raw: bytes) -> bytes:
        """Check, validate and queue one transaction; its hash, or Rejected."""
        return self.admit(raw).hash

    def admit(self, raw: bytes) -> Admission:
        """Check, validate and queue one transaction; its admission verdict, or Rejected."""
        verdict = self.admit_many([raw])[0]
        if verdict.rejection is not None:
            raise verdict.rejection
        return verdict

    def submit_many(self, raws: Iterable[bytes]) -> list[tuple[bytes, Rejected | None]]:
        """Each transaction accepted or rejected on its own: (hash, None) or (hash, Rejected)."""
        return [(verdict.hash, verdict.rejection) for verdict in self.admit_many(raws)]

    def admit_many(self, raws: Iterable[bytes]) -> list[Admission]:
        """Each transaction accepted or rejected on its own, with its verdict (the dry run when one ran).

        A transaction already pending (resubmitted, or gossiped back by a peer) is answered from the
        pool: its signature is not verified again and its call not run again.
        """
        raws = list(raws)
        hashes = [transaction_hash(raw) if len(raw) <= self._rules.params.max_transaction_bytes else b""
                  for raw in raws]
        with self._lock:
            pending = [self._pending_verdict(tx_hash, raw) for tx_hash, raw in zip(hashes, raws)]
        checked: list[CheckedTransaction | Admission] = []
        for raw, known in zip(raws, pending):
            if known is not None:
                checked.append(known)
                continue
            try:
                checked.append(self._check(raw))
            except Rejected as rejection:
                checked.append(Admission(rejection.tx_hash, None, rejection))
        verdicts: list[Admission] = []
        with self._lock:
            for item in checked:
                verdicts.append(item if isinstance(item, Admission) else self._admit(item))
        return verdicts

    def _pending_verdict(self, tx_hash: bytes, raw: bytes) -> Admission | None:
        """Under the lock: the verdict a pending transaction was admitted with; None when it is not pending."""
        pooled = self.pool.get(tx_hash) if tx_hash else None
        if pooled is None or pooled.raw != raw:
            return None
        self.stats.submitted += 1
        return Admission(tx_hash, self.pool.dry_run(tx_hash))

    def _check(self, raw: bytes) -> CheckedTransaction:
        try:
            return check_transaction(raw, self._rules)
        except InvalidTransaction as error:
            self.stats.rejected += 1
            raise Rejected(error.status, str(error)) from None

    def _admit(self, checked: CheckedTransaction) -> Admission:
        """Under the lock: validate against the latest state (the pool's dry run) and queue; the verdict."""
        self.stats.submitted += 1
        if checked.hash in self.pool:  # admitted by another thread since the look in admit_many
            return Admission(checked.hash, self.pool.dry_run(checked.hash))
        try:
            dry_run = validate_transaction(self.store.state, checked, self._rules, allow_future=True)
            account = system.read_account(self.store.state, checked.sender)
            self.pool.add(checked, account.nonce if account is not None else 0, dry_run)
            if self.on_new_transaction is not None:
                self.on_new_transaction(checked.hash)
        except (InvalidTransaction, PoolError) as error:
            self.stats.rejected += 1
            return Admission(checked.hash, None, Rejected(error.status, str(error), checked.hash))
        except HANDLER_BUGS as error:  # a call's cost or check raised: this chain's bug, not the sender's fault
            log.error("checking transaction %s raised %s (a bug): refused", checked.hash.hex(), type(error).__name__,
                      exc_info=True)
            self.stats.rejected += 1
            return Admission(checked.hash, None, Rejected(
                "INTERNAL", f"the node failed to check this transaction ({type(error).__name__}): a bug in this "
                "chain's code, not in the transaction; the node's log has the details", checked.hash))
        return Admission(checked.hash, dry_run)

    def simulate(self, raw: bytes) -> tuple[CheckedTransaction, types_pb2.Receipt]:
        """Apply one transaction to a throw-away copy of the latest state; raises Rejected when invalid."""
        checked = self._check(raw)
        state = self.store.state
        try:
            validate_transaction(state, checked, self._rules, for_pool=False)
        except InvalidTransaction as error:
            raise Rejected(error.status, str(error), checked.hash) from None
        # Like the pool's dry run: the call alone at the next height, no block hook (draws, table builds) run
        # for a read-only request.
        return checked, apply_alone(state, checked)

    # --- queries ---------------------------------------------------------------

    def account(self, account: bytes) -> AccountState:
        """The account at the head, with next nonce and a proof of its record."""
        with self._lock:
            head = self.head
            key = system.account_key(account)
            value, proof = self.store.tree.get_with_proof(head.state_root, key)
            info = state_pb2.AccountInfo.FromString(value) if value is not None else state_pb2.AccountInfo()
            next_nonce = self.pool.next_nonce(account, info.nonce)
        return AccountState(account, info, next_nonce, head, key, value, proof)

    def _pooled(self, tx_hash: bytes) -> CheckedTransaction | None:
        with self._lock:
            return self.pool.get(tx_hash)

    def pool_contains(self, tx_hash: bytes) -> bool:
        with self._lock:
            return tx_hash in self.pool

    def pool_raw(self, tx_hash: bytes) -> bytes | None:
        with self._lock:
            tx = self.pool.get(tx_hash)
        return tx.raw if tx is not None else None

    def lookup(self, tx_hash: bytes) -> tuple[TransactionLocation | None, CheckedTransaction | None, str | None]:
        """Where a transaction is: (its location in a block, the pending transaction, its pool rejection).

        One look under the lock that commit holds while it writes a block and then prunes the pool: read
        apart, a transaction included in between was in neither place (a lookup right after a submit once
        answered NOT_FOUND for a transaction that was accepted)."""
        with self._lock:
            return self.store.transaction_location(tx_hash), self.pool.get(tx_hash), self.pool.rejection(tx_hash)

    def wait_for_block(self, after_height: int, timeout: float) -> bool:
        """Block until the head passes `after_height` or the timeout ends; True when it did."""
        deadline = time.monotonic() + timeout
        with self._new_block:
            while self.store.head.height <= after_height:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._new_block.wait(remaining)
        return True

    # --- blocks: built and checked by consensus, committed here -------------------

    def propose(self, evidence=(), time_budget_s: float | None = None) -> Candidate:
        """A candidate next block from the pool's best transactions, authored by this node's key."""
        self._check_producing()
        with self._lock:
            candidates = self._select_candidates()
        return self.blocks.build(self.validator.public_key, candidates, evidence, time_budget_s,
                                 randao_reveal=self.randao.reveal(self.store.state))

    def commit(self, candidate: Candidate, commit: types_pb2.Commit) -> Head:
        """Store a decided block with the commit that finalized it; ProductionHalted when the write fails."""
        self._check_producing()
        with self._new_block:
            if candidate.header.parent_hash != self.store.head.hash:
                raise ValueError(f"block #{candidate.height} does not extend the head #{self.store.head.height}")
            try:
                head = self.store.commit_block(candidate.write(commit), candidate.state_root, candidate.batch)
            except StoreError as error:
                raise self.halt_production(error) from None
            self._after_commit(candidate.included, candidate.dropped, candidate.height)
            self._new_block.notify_all()
        self.stats.blocks += 1
        self.stats.included += len(candidate.included)
        self.stats.last_block_transactions = len(candidate.included)
        return head

    def produce_block(self) -> ProducedBlock:
        """Build, sign and commit the next block alone: what consensus decides with this node as the only validator.

        For in-process tests and tools; a running node decides blocks through chain/consensus/driver.py.
        """
        started = time.perf_counter()
        candidate = self.propose()
        self.commit(candidate, self._commit_for(candidate))
        elapsed = time.perf_counter() - started
        self.stats.last_block_seconds = elapsed
        return ProducedBlock(candidate.height, candidate.block_hash, len(candidate.included), elapsed)

    def _check_producing(self) -> None:
        if self.stats.production_halted:
            raise ProductionHalted(f"block production halted at #{self.head.height} after a failed write")

    def halt_production(self, error: Exception) -> ProductionHalted:
        """Stop producing after a storage failure (the store, the consensus log or the sign state): the head stays
        at what is on disk, no block is built on it and nothing more is signed.

        The store refuses writes after a failed one itself; this makes the halt visible (metrics, one log line).
        """
        self.stats.production_halted = True
        self.stats.storage_errors += 1
        log.error(
            "block production halted: %s; still serving queries at #%d; fix the disk, then restart the node",
            error, self.head.height,
        )
        return ProductionHalted(str(error))

    def _select_candidates(self) -> list[CheckedTransaction]:
        limits = read_block_limits(self.store.state)
        nonces: dict[bytes, int] = {}

        def account_nonce(sender: bytes) -> int:
            if sender not in nonces:
                account = system.read_account(self.store.state, sender)
                nonces[sender] = account.nonce if account is not None else 0
            return nonces[sender]

        # A first cut only: the block builder applies the block limits exactly (runtime/block.py, BlockSpace).
        candidates, size = [], 0
        for tx in self.pool.ready(account_nonce):
            if len(candidates) >= limits.max_block_transactions or size >= limits.max_block_bytes:
                break
            candidates.append(tx)
            size += tx.size
        return candidates

    def _commit_for(self, candidate: Candidate) -> types_pb2.Commit:
        """This validator's own precommit as the whole commit (valid when it holds all the voting power)."""
        time_ms = precommit_time_ms(int(self.clock() * 1000), candidate.header.time_ms)
        vote = sign_vote(self.validator, self.genesis.chain_id, types_pb2.VOTE_TYPE_PRECOMMIT, candidate.height, 0,
                         candidate.block_hash, time_ms)
        return types_pb2.Commit(height=candidate.height, round=0, block_hash=candidate.block_hash, precommits=[vote])

    def _after_commit(self, included: list[CheckedTransaction], dropped: list[tuple[CheckedTransaction, str]],
                      height: int) -> None:
        """Under the lock: forget included and dropped transactions, and those the block made stale (remembered as
        rejected, so that GetTransaction still finds them)."""
        for tx, reason in dropped:
            self.pool.drop(tx, reason)
        senders = {tx.sender for tx in included}
        state = self.store.state

        def account_nonce(sender: bytes) -> int:
            account = system.read_account(state, sender)
            return account.nonce if account is not None else 0

        self.pool.prune(senders, account_nonce, {tx.hash for tx in included}, f"in block #{height}")
