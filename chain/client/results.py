"""What the client returns: frozen dataclasses, read from the node's messages by field name."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from google.protobuf.message import Message

from chain.transactions import FeeRule
from proto import node_pb2, proof_pb2, types_pb2


@dataclass(frozen=True)
class ChainInfo:
    """What a node says about its chain and head."""

    chain_id: str
    genesis_hash: bytes
    best_height: int
    best_hash: bytes
    finalized_height: int
    finalized_hash: bytes
    block_time_ms: int
    node_version: str
    pending_transactions: int
    ss58_prefix: int
    ss58_prefix_name: str
    base_fee: int
    fee_per_byte: int
    max_transaction_bytes: int
    existential_deposit: int
    # How amounts are shown: 10^token_decimals base units make one token_symbol.
    token_symbol: str
    token_decimals: int
    # Consensus and networking (docs/consensus.md).
    peers: int = 0
    consensus_round: int = 0
    syncing: bool = False
    is_validator: bool = False
    validators: int = 0
    total_voting_power: int = 0
    # When asked with a signer: that account's next nonce, counting its pending transactions.
    signer_next_nonce: int = 0
    # The runtime version the node executes (runtime/registry.py SPEC_VERSION).
    spec_version: int = 0
    # The fee rule's weight part (base units per million weight units).
    fee_per_weight: int = 0

    @property
    def fee_rule(self) -> FeeRule:
        return FeeRule(self.base_fee, self.fee_per_byte, self.fee_per_weight)


@dataclass(frozen=True)
class Account:
    """An account's balances and nonce, proven against the state root of block `height`."""

    public_key: bytes
    address: str
    exists: bool
    free: int
    reserved: int
    nonce: int
    # The nonce for the next transaction, counting this sender's pending ones (not proven).
    next_nonce: int
    height: int
    block_hash: bytes
    state_root: bytes


@dataclass(frozen=True)
class Event:
    """Something a runtime module reported."""

    module: str
    name: str
    attributes: tuple[tuple[str, str], ...]

    def attribute(self, key: str) -> str | None:
        return next((value for name, value in self.attributes if name == key), None)


@dataclass(frozen=True)
class Receipt:
    """The outcome of one included transaction (a failed call still paid its fee)."""

    transaction_hash: bytes
    success: bool
    fee_paid: int
    error_module: str
    error_name: str
    error_message: str
    events: tuple[Event, ...]

    @property
    def error(self) -> str:
        if self.success:
            return ""
        return f"{self.error_module}.{self.error_name}: {self.error_message}"


@dataclass(frozen=True)
class TransactionStatus:
    """Where a transaction stands: unknown, pending, included (with its receipt) or rejected."""

    hash: bytes
    status: str
    height: int = 0
    block_hash: bytes = b""
    index: int = 0
    receipt: Receipt | None = None
    reason: str = ""
    raw: bytes = b""

    @property
    def included(self) -> bool:
        return self.status == "included"


@dataclass(frozen=True)
class Submission:
    """A signed and submitted transaction, whatever its call; `inclusion` is set when the submitter waited."""

    hash: bytes
    call: str
    nonce: int
    fee: int
    inclusion: TransactionStatus | None = None
    # Nonces tried: more than one when other submitters from the same account took them first.
    attempts: int = 1
    # The node's admission dry run against its latest state (success, events such as JobPosted), or
    # None when the transaction waits behind the sender's pending ones and was not run yet.
    dry_run: Receipt | None = None

    @property
    def receipt(self) -> Receipt | None:
        """The receipt of the included transaction (None unless the submitter waited)."""
        return self.inclusion.receipt if self.inclusion is not None else None


@dataclass(frozen=True)
class Verdict:
    """One transaction's answer in a batch submission (`dry_run` as in Submission, when accepted)."""

    hash: bytes
    accepted: bool
    code: str
    reason: str
    dry_run: Receipt | None = None


@dataclass(frozen=True)
class Simulation:
    """What applying a transaction now would do, without queueing it."""

    hash: bytes
    valid: bool
    code: str
    reason: str
    fee: int
    minimum_fee: int
    events: tuple[Event, ...]


@dataclass(frozen=True)
class TransactionSummary:
    """The readable parts of a signed transaction."""

    hash: bytes
    sender: bytes
    nonce: int
    fee: int
    call: str
    # The call's own message (types_pb2.Transfer, ...), as signed; None when the body carries none.
    arguments: Message | None = None

    @property
    def dest(self) -> bytes:
        """A transfer's destination (empty for other calls)."""
        return self.arguments.dest if self.call == "transfer" else b""

    @property
    def amount(self) -> int:
        """A transfer's amount (0 for other calls)."""
        return self.arguments.amount if self.call == "transfer" else 0


@dataclass(frozen=True)
class Block:
    """A block whose hash, transactions root and receipts root were recomputed from its bytes."""

    hash: bytes
    height: int
    chain_id: str
    time_ms: int
    parent_hash: bytes
    state_root: bytes
    transactions_root: bytes
    receipts_root: bytes
    proposer: bytes
    header: bytes
    transactions: tuple[bytes, ...]
    transaction_hashes: tuple[bytes, ...]
    receipts: tuple[Receipt, ...]
    block_events: tuple[Event, ...]


@dataclass(frozen=True)
class CommittedBlock:
    """A block (hash and roots checked) with the commit the node holds for it, not yet checked against a
    validator set (chain/client/light.py does that)."""

    block: Block
    commit: types_pb2.Commit


@dataclass(frozen=True)
class StateValue:
    """One state key's value (None: absent) after block `height`, proven against the state root the node
    names; that the root is the block's, and the block the chain's, is the light client's check."""

    key: bytes
    value: bytes | None
    height: int
    block_hash: bytes
    state_root: bytes
    proof: proof_pb2.StateProof


STATUS_NAMES = {
    node_pb2.TRANSACTION_STATUS_UNKNOWN: "unknown",
    node_pb2.TRANSACTION_STATUS_PENDING: "pending",
    node_pb2.TRANSACTION_STATUS_INCLUDED: "included",
    node_pb2.TRANSACTION_STATUS_REJECTED: "rejected",
}


# --- reading the node's messages ------------------------------------------------------


def _by_field_name(result: type, message: Message, **converted):
    """`result` from the message's fields of the same names; `converted` gives the others."""
    names = [field.name for field in dataclasses.fields(result) if field.name not in converted]
    return result(**{name: getattr(message, name) for name in names}, **converted)


def chain_info_of(reply: node_pb2.ChainInfo) -> ChainInfo:
    return _by_field_name(ChainInfo, reply)


def event_of(event: types_pb2.Event) -> Event:
    return _by_field_name(Event, event, attributes=tuple((a.key, a.value) for a in event.attributes))


def events_of(events) -> tuple[Event, ...]:
    return tuple(event_of(event) for event in events)


def receipt_of(receipt: types_pb2.Receipt) -> Receipt:
    return _by_field_name(Receipt, receipt, events=events_of(receipt.events))


def dry_run_of(reply: node_pb2.SubmitTransactionResponse | node_pb2.TransactionVerdict) -> Receipt | None:
    """The admission dry run a submission's answer carries, if one ran."""
    return receipt_of(reply.dry_run) if reply.HasField("dry_run") else None


def verdict_of(verdict: node_pb2.TransactionVerdict) -> Verdict:
    return _by_field_name(Verdict, verdict, hash=verdict.transaction_hash, dry_run=dry_run_of(verdict))


def simulation_of(reply: node_pb2.SimulateTransactionResponse) -> Simulation:
    return _by_field_name(Simulation, reply, hash=reply.transaction_hash, events=events_of(reply.events))


def unproven_status_of(transaction_hash: bytes, reply: node_pb2.GetTransactionResponse) -> TransactionStatus:
    """A pending, rejected or unknown transaction's status (an inclusion is read with its proof)."""
    return TransactionStatus(
        hash=reply.transaction_hash or transaction_hash,
        status=STATUS_NAMES.get(reply.status, "unknown"),
        height=reply.height,
        block_hash=reply.block_hash,
        index=reply.index,
        receipt=receipt_of(reply.receipt) if reply.HasField("receipt") else None,
        reason=reply.reason,
        raw=reply.transaction,
    )
