"""Types every runtime module shares: errors, the checked transaction, the block context, events."""

from __future__ import annotations

from dataclasses import dataclass

from proto import types_pb2


class DispatchError(Exception):
    """A runtime rule refused a call; each module declares its own subclasses.

    `module` and the class name identify the error in receipts and API replies;
    the message says what was wrong in words a person can act on.
    """

    module = "runtime"

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def message(self) -> str:
        return str(self)


class InvalidTransaction(DispatchError):
    """A transaction that can never be included as it stands (bad bytes, signature, chain, fee)."""

    module = "system"
    # The gRPC status an API edge maps this to; set per subclass.
    status = "INVALID_ARGUMENT"


class TransactionNotYetValid(InvalidTransaction):
    """A transaction that may become valid later (a nonce ahead of the account's)."""

    status = "FAILED_PRECONDITION"


class TransactionUnpayable(InvalidTransaction):
    """A transaction whose fee (or call) the sender cannot afford now."""

    status = "FAILED_PRECONDITION"


class TransactionStale(InvalidTransaction):
    """A transaction whose nonce was already used: a replay."""

    status = "FAILED_PRECONDITION"


@dataclass(frozen=True, slots=True)
class CheckedTransaction:
    """A transaction whose encoding, chain binding and signature have been checked."""

    hash: bytes
    raw: bytes
    body: types_pb2.TransactionBody
    sender: bytes
    nonce: int
    fee: int

    @property
    def size(self) -> int:
        return len(self.raw)


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a call handler knows of the transaction that carries the call, passed in explicitly.

    `nonce` is the transaction's own nonce (the account's nonce has already moved past it when the
    handler runs), so a handler derives ids from it without reading state the executive changed.
    """

    origin: bytes
    nonce: int
    transaction_hash: bytes

    @classmethod
    def at_genesis(cls, origin: bytes) -> "CallContext":
        """A call made by genesis building on an account's behalf: no transaction carries it."""
        return cls(origin, 0, b"")


@dataclass(frozen=True, slots=True)
class BlockContext:
    """What the runtime knows of the block being applied, from its header."""

    height: int
    time_ms: int
    author: bytes
    # Block.evidence: types_pb2.DuplicateVoteEvidence messages, punished in staking's on_initialize.
    evidence: tuple = ()
    # Header.randao_reveal: the proposer's RANDAO reveal, checked and mixed in randomness's on_initialize.
    randao_reveal: bytes = b""


def make_event(module: str, name: str, /, **attributes: object) -> types_pb2.Event:
    """An event with string attributes, in the order given."""
    return types_pb2.Event(
        module=module,
        name=name,
        attributes=[types_pb2.EventAttribute(key=key, value=str(value)) for key, value in attributes.items()],
    )
