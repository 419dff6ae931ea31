"""Block validity: every rule a block must meet that the state alone can judge, in one place.

As `process_block` in the ethereum specs: the proposer builds with these rules and every
validator checks with them, so no block an honest validator would refuse can be built by an
honest proposer, and no block an honest proposer would not build is accepted from a
byzantine one. The node keeps only what the state cannot know: the parent hash, the
signatures of the last commit and the BFT time computed from them, the proposer's turn,
and the clock. docs/protocol.md, "Block validity", lists every rule.

The limits are chain parameters (genesis `consensus_params.block`), stored in state under
`system/block_limits` so a block is judged by the limits in force at its parent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

from proto import state_pb2, types_pb2
from runtime.arithmetic import U64_MAX
from runtime.module import ParamsSpec
from runtime.params import decode_params
from runtime.primitives import DispatchError
from runtime.state import StateReader

BLOCK_LIMITS_KEY = b"system/block_limits"
# The least max_block_weight a chain may set: 50 ms of reference execution, more than one assignment at
# weights.MAX_EXECUTORS_PER_MODEL (about 10 ms) plus the hooks of a quiet block.
MIN_BLOCK_WEIGHT = 50_000_000
# A header is at most this many bytes besides its chain id: eight 32-byte hashes and keys, two
# integers, each with its tag and length (docs/protocol.md, "Blocks"); the builder keeps this room.
MAX_HEADER_BYTES_BESIDES_CHAIN_ID = 8 * 34 + 2 * 11 + 2


@dataclass(frozen=True)
class BlockLimits:
    """What one block may hold."""

    # The whole serialized Block: header, transactions, last commit and evidence.
    max_block_bytes: int = 4 * 1024 * 1024
    max_block_transactions: int = 20_000
    max_block_evidence: int = 16
    # All evidence of one block together, serialized.
    max_evidence_bytes: int = 64 * 1024
    # The declared weight (runtime/weights.py: nanoseconds of reference execution) of the block's hooks and
    # transactions together: the default 1 s block time. Declared weights bound the work, so a full block executes
    # within the block time, inside the 2 s propose timeout; half of it would halve the transfers a block holds
    # (1,740 instead of 3,480, each transfer declaring its signature check). docs/economics.md, "Work per block".
    max_block_weight: int = 1_000_000_000

    def validate(self) -> None:
        for name, value in asdict(self).items():
            if not 0 <= value <= U64_MAX:
                raise ValueError(f"consensus_params.block.{name} must be an integer in [0, 2^64), got {value}")
        if self.max_block_transactions < 1 or self.max_block_bytes < 1024:
            raise ValueError("consensus_params.block limits are too small to hold a transaction "
                             "(max_block_transactions >= 1, max_block_bytes >= 1024)")
        if self.max_evidence_bytes >= self.max_block_bytes:
            raise ValueError("consensus_params.block.max_evidence_bytes must be below max_block_bytes")
        if self.max_block_weight < MIN_BLOCK_WEIGHT:
            raise ValueError(f"consensus_params.block.max_block_weight must be at least {MIN_BLOCK_WEIGHT} "
                             "(room for the block hooks and one transaction of the largest declared weight)")


LIMITS = ParamsSpec(BlockLimits, state_pb2.BlockLimits, BLOCK_LIMITS_KEY)


class InvalidBlock(DispatchError):
    """A block that breaks a block-validity rule: every honest validator refuses it (prevotes nil)."""

    module = "block"


class BlockTooLarge(InvalidBlock):
    """The serialized block is larger than max_block_bytes."""


class TooManyTransactions(InvalidBlock):
    """The block carries more transactions than max_block_transactions."""


class TooMuchEvidence(InvalidBlock):
    """The block carries more evidence than max_block_evidence, or more bytes of it than max_evidence_bytes."""


class BlockOverweight(InvalidBlock):
    """The block's hooks and transactions declare more weight than max_block_weight."""


def read_block_limits(state: StateReader) -> BlockLimits:
    """The limits in force in `state`."""
    return decode_params(LIMITS, state.get(BLOCK_LIMITS_KEY))


# --- the rules ------------------------------------------------------------------------


def check_block_size(limits: BlockLimits, block: types_pb2.Block) -> None:
    """Rule: the serialized block is at most max_block_bytes."""
    size = block.ByteSize()
    if size > limits.max_block_bytes:
        raise BlockTooLarge(f"the block is {size} bytes, the limit is {limits.max_block_bytes}")


def check_transaction_count(limits: BlockLimits, block: types_pb2.Block) -> None:
    """Rule: at most max_block_transactions transactions."""
    count = len(block.transactions)
    if count > limits.max_block_transactions:
        raise TooManyTransactions(f"the block carries {count} transactions, the limit is {limits.max_block_transactions}")


def check_evidence_size(limits: BlockLimits, evidence: Sequence[types_pb2.DuplicateVoteEvidence]) -> None:
    """Rule: at most max_block_evidence pieces of evidence, together at most max_evidence_bytes."""
    if len(evidence) > limits.max_block_evidence:
        raise TooMuchEvidence(f"the block carries {len(evidence)} pieces of evidence, the limit is {limits.max_block_evidence}")
    size = sum(piece.ByteSize() for piece in evidence)
    if size > limits.max_evidence_bytes:
        raise TooMuchEvidence(f"the block's evidence is {size} bytes, the limit is {limits.max_evidence_bytes}")


def check_block_weight(limits: BlockLimits, hooks_weight: int, transaction_weights: Sequence[int]) -> None:
    """Rule: the hooks' declared weight plus every transaction's is at most max_block_weight.

    The hooks run whatever the block holds, so their weight is counted first; a transaction
    that would take the total past the limit makes the block invalid.
    """
    total = hooks_weight
    for index, weight in enumerate(transaction_weights):
        total += weight
        if total > limits.max_block_weight:
            raise BlockOverweight(
                f"the block declares weight {hooks_weight + sum(transaction_weights)} (hooks {hooks_weight}, "
                f"transactions from index {index} on take it past the limit), the limit is {limits.max_block_weight}"
            )


def check_block_body(state: StateReader, block: types_pb2.Block) -> None:
    """The size rules of a whole block, by the limits in `state` (its parent's state). Raises InvalidBlock.

    The remaining rules follow in runtime/executive.py: the weight rule (check_block_weight, once
    the transactions are decoded, before anything runs), then while the block executes (apply_block):
    height and time (system's on_initialize), evidence admissibility (slashing), and each
    transaction's validity in order.
    """
    limits = read_block_limits(state)
    check_transaction_count(limits, block)
    check_evidence_size(limits, block.evidence)
    check_block_size(limits, block)


# --- building within the rules --------------------------------------------------------


def _field_bytes(size: int) -> int:
    """Bytes a length-delimited field of `size` bytes takes in its message: tag, varint length, content."""
    return 1 + max(1, (size.bit_length() + 6) // 7) + size


def evidence_that_fits(limits: BlockLimits, evidence: Sequence[types_pb2.DuplicateVoteEvidence]) -> list:
    """The longest prefix of `evidence` within max_block_evidence and max_evidence_bytes."""
    kept, size = [], 0
    for piece in evidence[: limits.max_block_evidence]:
        size += piece.ByteSize()
        if size > limits.max_evidence_bytes:
            break
        kept.append(piece)
    return kept


class BlockSpace:
    """What a block being built may still take, by the same limits `check_block_body` applies.

    Starts from everything but the transactions (header, last commit, evidence) and takes
    transactions one at a time; a transaction `fits` only while the finished block would
    still be valid.
    """

    def __init__(self, limits: BlockLimits, chain_id: str, last_commit: types_pb2.Commit,
                 evidence: Sequence[types_pb2.DuplicateVoteEvidence], hooks_weight: int = 0):
        check_evidence_size(limits, evidence)
        self.limits = limits
        self.transactions = 0
        # The hooks run whatever the block holds: their declared weight is taken first (check_block_weight).
        self.weight = hooks_weight
        self.bytes = (
            _field_bytes(MAX_HEADER_BYTES_BESIDES_CHAIN_ID + len(chain_id.encode()))
            + _field_bytes(last_commit.ByteSize())
            + sum(_field_bytes(piece.ByteSize()) for piece in evidence)
        )

    def fits(self, transaction_bytes: int, weight: int = 0) -> bool:
        """Whether a transaction of this size and declared weight keeps the block valid."""
        return (
            self.transactions < self.limits.max_block_transactions
            and self.bytes + _field_bytes(transaction_bytes) <= self.limits.max_block_bytes
            and self.weight + weight <= self.limits.max_block_weight
        )

    def take(self, transaction_bytes: int, weight: int = 0) -> None:
        self.transactions += 1
        self.bytes += _field_bytes(transaction_bytes)
        self.weight += weight

    @property
    def full(self) -> bool:
        """No more transactions can be taken, whatever their size and weight."""
        return self.transactions >= self.limits.max_block_transactions or self.weight >= self.limits.max_block_weight
