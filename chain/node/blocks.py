"""Blocks as consensus handles them: built from the pool, checked when proposed or synced, then committed.

A `Candidate` is a block executed on top of the head, with everything its commit will write
(receipts, index entries, state changes and the new tree nodes in an unwritten batch). Consensus
may build or receive several candidates for one height (one per round); only the decided one is
committed. Checking a block from a peer re-executes it and compares every root in its header, so a
block is valid exactly when executing it reproduces its header.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from chain.consensus.commit import CommitError, VotingPower, commit_time_ms, verify_commit
from chain.genesis import Genesis
from chain.storage import BlockWrite, ChainStore
from proto import types_pb2
from runtime import slashing, staking
from runtime.encoding import EncodingError, decode_canonical
from runtime.block import BlockSpace, evidence_that_fits, read_block_limits
from runtime.executive import BlockExecution, TransactionRules, process_block, transaction_weight
from runtime.hashing import blake2b_256, evidence_root, receipts_root, transactions_root
from runtime.primitives import BlockContext, CheckedTransaction, DispatchError, InvalidTransaction, TransactionNotYetValid


class InvalidProposedBlock(ValueError):
    """A block that does not extend the head validly; the message says which rule it breaks."""


@dataclass
class Candidate:
    """A block executed on top of the head, ready to commit once decided."""

    height: int
    block: types_pb2.Block
    block_hash: bytes
    header: types_pb2.Header
    state_root: bytes
    receipts: types_pb2.BlockReceipts
    changes: dict
    batch: object
    included: list[CheckedTransaction]
    dropped: list[tuple[CheckedTransaction, str]] = field(default_factory=list)

    def write(self, commit: types_pb2.Commit) -> BlockWrite:
        finalized = types_pb2.FinalizedBlock(block=self.block, commit=commit)
        return BlockWrite(
            self.height, self.block_hash, finalized, self.receipts, [tx.hash for tx in self.included], self.changes
        )


class BlockBuilder:
    """Builds and checks blocks on top of the store's head (one caller at a time: the consensus thread)."""

    def __init__(self, store: ChainStore, genesis: Genesis, rules: Callable[[], TransactionRules],
                 known: Callable[[bytes], CheckedTransaction | None] = lambda tx_hash: None):
        self.store = store
        # A transaction this node already checked (its pool's): its signature is not verified twice.
        self.known = known
        self.genesis = genesis
        self.rules = rules
        self._genesis_set = genesis.state().get(staking.VALIDATOR_SET_KEY, b"")

    # --- validator sets ---------------------------------------------------------------

    def validator_set(self, height: int) -> types_pb2.ValidatorSet:
        """The set that signs block `height`: staking's set in the state after block `height - 1`."""
        head = self.store.head
        if height == head.height + 1:
            return staking.read_validator_set(self.store.state)
        if not self.genesis.initial_height <= height <= head.height + 1:
            raise KeyError(f"no validator set known for #{height}")
        if height == self.genesis.initial_height:
            return types_pb2.ValidatorSet.FromString(self._genesis_set)
        parent = self.store.finalized_block(self.store.block_hash_at(height - 1))
        root = types_pb2.Header.FromString(parent.block.header).state_root
        return types_pb2.ValidatorSet.FromString(self.store.tree.get(root, staking.VALIDATOR_SET_KEY) or b"")

    # --- building -----------------------------------------------------------------------

    def build(self, author: bytes, candidates: Sequence[CheckedTransaction],
              evidence: Sequence[types_pb2.DuplicateVoteEvidence] = (), time_budget_s: float | None = None,
              randao_reveal: bytes = b"") -> Candidate:
        """Execute the next block from pool candidates (those that fail are left out) and admissible evidence.

        With a time budget, transactions stop being added once executing them has taken that long: every
        other validator must execute the block too before its propose timeout ends.
        """
        head = self.store.head
        height = head.height + 1
        limits = read_block_limits(self.store.state)
        admissible = evidence_that_fits(limits, slashing.admissible_evidence(self.store.state, evidence, height))
        last_commit = self._last_commit(head)
        context = BlockContext(height, self._next_time_ms(), author, tuple(admissible), randao_reveal)
        execution = BlockExecution(self.store.state, context, self.rules())
        # The hooks' declared weight is taken first; transactions fill the rest of max_block_weight.
        space = BlockSpace(limits, self.genesis.chain_id, last_commit, admissible, execution.hooks_weight)
        included, dropped = _execute(execution, candidates, space, time_budget_s)
        block_state, receipts = execution.finish()
        return self._finish(block_state, receipts, context, head, included, dropped, last_commit)

    def _next_time_ms(self) -> int:
        """BFT time: the stake-weighted median of the parent's precommit times; the first block comes one
        millisecond after genesis. No node's clock alone decides it, so judging a block reads no clock."""
        head = self.store.head
        if head.height < self.genesis.initial_height:
            return self.genesis.genesis_time_ms + 1
        powers = VotingPower.of(self.validator_set(head.height)).powers
        return commit_time_ms(self.store.finalized_block(head.hash).commit, powers)

    def _parent_time_ms(self) -> int:
        head = self.store.head
        if head.height < self.genesis.initial_height:
            return self.genesis.genesis_time_ms
        parent = self.store.finalized_block(head.hash)
        return types_pb2.Header.FromString(parent.block.header).time_ms

    def _last_commit(self, head) -> types_pb2.Commit:
        if head.height < self.genesis.initial_height:
            return types_pb2.Commit()
        return self.store.finalized_block(head.hash).commit

    def _finish(self, block_state, receipts: types_pb2.BlockReceipts, context: BlockContext, head, included, dropped,
                last_commit: types_pb2.Commit) -> Candidate:
        changes = block_state.writes
        batch = self.store.new_batch()
        state_root = self.store.compute_state_root(changes, batch)
        header = types_pb2.Header(
            chain_id=self.genesis.chain_id,
            height=context.height,
            time_ms=context.time_ms,
            parent_hash=head.hash,
            state_root=state_root,
            transactions_root=transactions_root([tx.hash for tx in included]),
            receipts_root=receipts_root(receipts),
            proposer=context.author,
            validators_hash=VotingPower.of(self.validator_set(context.height)).hash,
            last_commit_hash=blake2b_256(last_commit.SerializeToString()),
            evidence_root=evidence_root(context.evidence),
            randao_reveal=context.randao_reveal,
        )
        header_bytes = header.SerializeToString()
        block = types_pb2.Block(
            header=header_bytes, transactions=[tx.raw for tx in included], last_commit=last_commit,
            evidence=list(context.evidence),
        )
        return Candidate(
            context.height, block, blake2b_256(header_bytes), header, state_root, receipts, dict(changes), batch,
            included, dropped,
        )

    # --- checking -------------------------------------------------------------------------

    def check(self, block: types_pb2.Block, proposer: bytes | None = None) -> Candidate:
        """Re-execute a block from a peer on top of the head; its Candidate, or InvalidProposedBlock."""
        head = self.store.head
        height = head.height + 1
        try:
            header = decode_canonical(types_pb2.Header, block.header, "block header")
        except EncodingError as error:
            raise InvalidProposedBlock(str(error)) from None
        expected = (
            (header.chain_id == self.genesis.chain_id, f"its chain id is {header.chain_id[:64]!r}"),
            (header.height == height, f"its height is {header.height}, the next is {height}"),
            (header.parent_hash == head.hash, "its parent is not the head"),
            (proposer is None or header.proposer == proposer, "its header names another proposer"),
            (header.time_ms > self._parent_time_ms(), "its time is not after its parent's"),
            (header.validators_hash == VotingPower.of(self.validator_set(height)).hash,
             "its validators hash is not the current set's"),
            (header.last_commit_hash == blake2b_256(block.last_commit.SerializeToString()),
             "its last_commit_hash does not match its last commit"),
        )
        for holds, reason in expected:
            if not holds:
                raise InvalidProposedBlock(f"block #{header.height}: {reason}")
        self._check_last_commit(block.last_commit, head)
        self._check_time(header, block.last_commit, head)
        context = BlockContext(height, header.time_ms, header.proposer, tuple(block.evidence), header.randao_reveal)
        try:
            block_state, receipts, checked = process_block(self.store.state, block, context, self.rules(), self.known)
        except DispatchError as error:
            raise InvalidProposedBlock(f"block #{height}: {error}") from None
        candidate = self._finish(block_state, receipts, context, head, checked, [], block.last_commit)
        if candidate.block_hash != blake2b_256(block.header):
            differing = [
                name for name in ("state_root", "transactions_root", "receipts_root", "evidence_root")
                if getattr(candidate.header, name) != getattr(header, name)
            ]
            raise InvalidProposedBlock(
                f"block #{height}: executing it gives a different header ({', '.join(differing) or 'fields'} differ)"
            )
        candidate.block = block
        return candidate

    def _check_last_commit(self, last_commit: types_pb2.Commit, head) -> None:
        if head.height < self.genesis.initial_height:
            if last_commit.ByteSize():
                raise InvalidProposedBlock("the first block must carry no last commit")
            return
        try:
            verify_commit(last_commit, VotingPower.of(self.validator_set(head.height)), self.genesis.chain_id,
                          head.height, head.hash)
        except CommitError as error:
            raise InvalidProposedBlock(f"block #{head.height + 1}: its last commit: {error}") from None

    def _check_time(self, header: types_pb2.Header, last_commit: types_pb2.Commit, head) -> None:
        if head.height < self.genesis.initial_height:
            expected = self.genesis.genesis_time_ms + 1
        else:
            expected = commit_time_ms(last_commit, VotingPower.of(self.validator_set(head.height)).powers)
        if header.time_ms != expected:
            raise InvalidProposedBlock(
                f"block #{header.height}: its time is {header.time_ms}, but the median time of its last commit is {expected}"
            )

    def check_commit(self, height: int, block_hash: bytes, commit: types_pb2.Commit) -> None:
        """Raise CommitError unless `commit` finalizes `block_hash` at `height` under that height's set."""
        verify_commit(commit, VotingPower.of(self.validator_set(height)), self.genesis.chain_id, height, block_hash)


def _execute(
    execution: BlockExecution, candidates: Sequence[CheckedTransaction], space: BlockSpace,
    time_budget_s: float | None = None,
) -> tuple[list[CheckedTransaction], list[tuple[CheckedTransaction, str]]]:
    """Apply candidates in order while the block has room (runtime/block.py) and within the time budget; a sender
    whose transaction fails, or does not fit, is skipped for the rest of the block (its later nonces would not
    apply)."""
    included: list[CheckedTransaction] = []
    dropped: list[tuple[CheckedTransaction, str]] = []
    blocked: set[bytes] = set()
    deadline = time.perf_counter() + time_budget_s if time_budget_s is not None else None
    for index, tx in enumerate(candidates):
        if space.full or (deadline is not None and index and index % 64 == 0 and time.perf_counter() > deadline):
            break
        if tx.sender in blocked:
            continue
        weight = transaction_weight(tx.body, tx.size)
        if not space.fits(tx.size, weight):
            blocked.add(tx.sender)
            continue
        try:
            execution.try_apply(tx)
        except TransactionNotYetValid:
            blocked.add(tx.sender)
        except InvalidTransaction as error:
            blocked.add(tx.sender)
            dropped.append((tx, str(error)))
        else:
            space.take(tx.size, weight)
            included.append(tx)
    return included, dropped
