"""The node core: admits transactions, produces and commits blocks, answers queries.

One lock guards the pool and the head. Signature checks run outside it, so gRPC
worker threads verify in parallel (the cryptography package releases the GIL).
Block production snapshots the ready transactions under the lock, executes them
without it (only the producer writes the store), and commits under it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from chain.crypto import Keypair
from chain.genesis import Genesis
from chain.mempool import Mempool, PoolError, PoolLimits
from chain.storage import BlockWrite, ChainStore, Head, StoreError
from proto import state_pb2, types_pb2
from runtime import system
from runtime.executive import (
    BlockExecution,
    TransactionRules,
    check_transaction,
    transaction_rules,
    validate_transaction,
)
from runtime.hashing import blake2b_256, receipts_root, transactions_root
from runtime.primitives import BlockContext, CheckedTransaction, InvalidTransaction, TransactionNotYetValid

log = logging.getLogger(__name__)

VOTE_SIGNING_CONTEXT = b"inferchain/vote/v1"


class ProductionHalted(Exception):
    """A block could not be stored; this node produces no more blocks until it is restarted."""


class Rejected(Exception):
    """A transaction the node refuses; `status` is the gRPC status code name."""

    def __init__(self, status: str, message: str, tx_hash: bytes = b""):
        super().__init__(message)
        self.status = status
        self.tx_hash = tx_hash


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
        self._validators_hash = blake2b_256(_validator_set(genesis).SerializeToString())

    # --- identity and head ----------------------------------------------------

    @property
    def rules(self) -> TransactionRules:
        return self._rules

    @property
    def head(self) -> Head:
        return self.store.head

    # --- admitting transactions ------------------------------------------------

    def submit(self, raw: bytes) -> bytes:
        """Check, validate and queue one transaction; its hash, or Rejected."""
        checked = self._check(raw)
        with self._lock:
            self._admit(checked)
        return checked.hash

    def submit_many(self, raws: Iterable[bytes]) -> list[tuple[bytes, Rejected | None]]:
        """Each transaction accepted or rejected on its own: (hash, None) or (hash, Rejected)."""
        checked: list[CheckedTransaction | Rejected] = []
        for raw in raws:
            try:
                checked.append(self._check(raw))
            except Rejected as rejection:
                checked.append(rejection)
        verdicts: list[tuple[bytes, Rejected | None]] = []
        with self._lock:
            for item in checked:
                if isinstance(item, Rejected):
                    verdicts.append((item.tx_hash, item))
                    continue
                try:
                    self._admit(item)
                    verdicts.append((item.hash, None))
                except Rejected as rejection:
                    verdicts.append((item.hash, rejection))
        return verdicts

    def _check(self, raw: bytes) -> CheckedTransaction:
        try:
            return check_transaction(raw, self._rules)
        except InvalidTransaction as error:
            self.stats.rejected += 1
            raise Rejected(error.status, str(error)) from None

    def _admit(self, checked: CheckedTransaction) -> None:
        """Under the lock: validate against the latest state and queue."""
        self.stats.submitted += 1
        if checked.hash in self.pool:
            return  # resubmitting a pending transaction is harmless; the answer is its hash
        try:
            validate_transaction(self.store.state, checked, self._rules, allow_future=True)
            account = system.read_account(self.store.state, checked.sender)
            self.pool.add(checked, account.nonce if account is not None else 0)
        except InvalidTransaction as error:
            self.stats.rejected += 1
            raise Rejected(error.status, str(error), checked.hash) from None
        except PoolError as error:
            self.stats.rejected += 1
            raise Rejected(error.status, str(error), checked.hash) from None

    def simulate(self, raw: bytes) -> tuple[CheckedTransaction, types_pb2.Receipt]:
        """Apply one transaction to a throw-away copy of the latest state; raises Rejected when invalid."""
        checked = self._check(raw)
        chain = system.read_chain(self.store.state)
        context = BlockContext(chain.height + 1, max(int(self.clock() * 1000), chain.time_ms + 1), self.validator.public_key)
        try:
            receipt = BlockExecution(self.store.state, context, self._rules).try_apply(checked)
        except InvalidTransaction as error:
            raise Rejected(error.status, str(error), checked.hash) from None
        return checked, receipt

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

    def pending_rejection(self, tx_hash: bytes) -> tuple[CheckedTransaction | None, str | None]:
        with self._lock:
            return self.pool.get(tx_hash), self.pool.rejection(tx_hash)

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

    # --- producing blocks (single validator: --dev) ----------------------------

    def produce_block(self) -> ProducedBlock:
        """Build, execute, sign and commit the next block from the pool's best transactions."""
        if self.stats.production_halted:
            raise ProductionHalted(f"block production halted at #{self.head.height} after a failed write")
        started = time.perf_counter()
        with self._lock:
            head = self.head
            candidates = self._select_candidates()
        parent = self.store.finalized_block(head.hash) if head.height >= self.genesis.initial_height else None
        context = BlockContext(
            height=head.height + 1,
            time_ms=self._next_block_time(parent),
            author=self.validator.public_key,
        )
        execution = BlockExecution(self.store.state, context, self._rules)
        included, dropped = _execute(execution, candidates)
        block_state, receipts = execution.finish()
        changes = block_state.writes
        batch = self.store.new_batch()
        state_root = self.store.compute_state_root(changes, batch)
        last_commit = parent.commit if parent is not None else types_pb2.Commit()
        header = types_pb2.Header(
            chain_id=self.genesis.chain_id,
            height=context.height,
            time_ms=context.time_ms,
            parent_hash=head.hash,
            state_root=state_root,
            transactions_root=transactions_root([tx.hash for tx in included]),
            receipts_root=receipts_root(receipts),
            proposer=self.validator.public_key,
            validators_hash=self._validators_hash,
            last_commit_hash=blake2b_256(last_commit.SerializeToString()),
        )
        header_bytes = header.SerializeToString()
        block_hash = blake2b_256(header_bytes)
        block = types_pb2.Block(header=header_bytes, transactions=[tx.raw for tx in included], last_commit=last_commit)
        finalized = types_pb2.FinalizedBlock(block=block, commit=self._commit_for(context, block_hash))
        write = BlockWrite(context.height, block_hash, finalized, receipts, [tx.hash for tx in included], changes)
        with self._new_block:
            try:
                self.store.commit_block(write, state_root, batch)
            except StoreError as error:
                raise self.halt_production(error) from None
            self._after_commit(included, dropped)
            self._new_block.notify_all()
        elapsed = time.perf_counter() - started
        self.stats.blocks += 1
        self.stats.included += len(included)
        self.stats.last_block_transactions = len(included)
        self.stats.last_block_seconds = elapsed
        return ProducedBlock(context.height, block_hash, len(included), elapsed)

    def halt_production(self, error: StoreError) -> ProductionHalted:
        """Stop producing after a storage failure: the head stays at what is on disk, no block is built on it.

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
        limits = self.genesis.consensus
        nonces: dict[bytes, int] = {}

        def account_nonce(sender: bytes) -> int:
            if sender not in nonces:
                account = system.read_account(self.store.state, sender)
                nonces[sender] = account.nonce if account is not None else 0
            return nonces[sender]

        candidates, size = [], 0
        for tx in self.pool.ready(account_nonce):
            if len(candidates) >= limits.max_block_transactions:
                break
            if size + tx.size > limits.max_block_bytes - 16 * 1024:
                continue
            candidates.append(tx)
            size += tx.size
        return candidates

    def _next_block_time(self, parent: types_pb2.FinalizedBlock | None) -> int:
        parent_time = self.genesis.genesis_time_ms
        if parent is not None:
            parent_time = types_pb2.Header.FromString(parent.block.header).time_ms
        return max(int(self.clock() * 1000), parent_time + 1)

    def _commit_for(self, context: BlockContext, block_hash: bytes) -> types_pb2.Commit:
        """The single validator's precommit: with all the voting power it finalizes the block."""
        body = types_pb2.VoteBody(
            chain_id=self.genesis.chain_id,
            type=types_pb2.VOTE_TYPE_PRECOMMIT,
            height=context.height,
            round=0,
            block_hash=block_hash,
            time_ms=context.time_ms,
            validator=self.validator.public_key,
        ).SerializeToString()
        vote = types_pb2.Vote(body=body, signature=self.validator.sign(VOTE_SIGNING_CONTEXT + body))
        return types_pb2.Commit(height=context.height, round=0, block_hash=block_hash, precommits=[vote])

    def _after_commit(self, included: list[CheckedTransaction], dropped: list[tuple[CheckedTransaction, str]]) -> None:
        """Under the lock: forget included and dropped transactions, and those the block made stale."""
        for tx, reason in dropped:
            self.pool.drop(tx, reason)
        senders = {tx.sender for tx in included}
        state = self.store.state

        def account_nonce(sender: bytes) -> int:
            account = system.read_account(state, sender)
            return account.nonce if account is not None else 0

        self.pool.prune(senders, account_nonce)


def _execute(
    execution: BlockExecution, candidates: list[CheckedTransaction]
) -> tuple[list[CheckedTransaction], list[tuple[CheckedTransaction, str]]]:
    """Apply candidates in order; a sender whose transaction fails is skipped for the rest of the block."""
    included: list[CheckedTransaction] = []
    dropped: list[tuple[CheckedTransaction, str]] = []
    blocked: set[bytes] = set()
    for tx in candidates:
        if tx.sender in blocked:
            continue
        try:
            execution.try_apply(tx)
        except TransactionNotYetValid:
            blocked.add(tx.sender)
        except InvalidTransaction as error:
            blocked.add(tx.sender)
            dropped.append((tx, str(error)))
        else:
            included.append(tx)
    return included, dropped


def _validator_set(genesis: Genesis) -> types_pb2.ValidatorSet:
    return types_pb2.ValidatorSet(
        validators=[
            types_pb2.Validator(public_key=validator.public_key, voting_power=validator.power)
            for validator in genesis.validators
        ]
    )
