"""Building and signing transactions (the client, the CLI and the benchmarks share this).

A call is the protobuf message of one transaction type (`types_pb2.Transfer(...)`); the
`TransactionBody.call` field that carries it is found from the message type, so a new
transaction type needs nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from chain.crypto import Keypair
from proto import types_pb2
from runtime import system
from runtime.executive import TRANSACTION_SIGNING_CONTEXT, transaction_weight
from runtime.hashing import transaction_hash

_CALL_FIELDS = types_pb2.TransactionBody.DESCRIPTOR.oneofs_by_name["call"].fields


@dataclass(frozen=True)
class FeeRule:
    """A chain's fee parameters as a client learns them (ChainInfo); the rule itself is the runtime's."""

    base_fee: int
    fee_per_byte: int
    # Per million weight units (runtime/weights.py); a transaction's weight is computed from it alone.
    fee_per_weight: int = 0

    def minimum(self, size: int, weight: int) -> int:
        """The least fee for a transaction of `size` bytes declaring `weight` (runtime/system.py minimum_fee)."""
        return system.minimum_fee(self.base_fee, self.fee_per_byte, size, self.fee_per_weight, weight)

    def minimum_for(self, body: types_pb2.TransactionBody, size: int) -> int:
        """The least fee for this body signed into `size` bytes: its weight is the runtime's declaration."""
        return self.minimum(size, transaction_weight(body, size))


@dataclass(frozen=True)
class SignedTransaction:
    raw: bytes
    hash: bytes
    nonce: int
    fee: int


def call_field(call: Message) -> str:
    """The `TransactionBody.call` field that carries a message of this type; ValueError when none does."""
    descriptor = getattr(call, "DESCRIPTOR", None)
    for field in _CALL_FIELDS:
        if field.message_type is descriptor:
            return field.name
    name = descriptor.full_name if descriptor is not None else type(call).__name__
    known = ", ".join(field.message_type.name for field in _CALL_FIELDS)
    raise ValueError(f"{name} is not a transaction call (calls: {known})")


def transfer_call(dest: bytes, amount: int) -> types_pb2.Transfer:
    """A balances transfer call."""
    return types_pb2.Transfer(dest=dest, amount=amount)


def sign_transaction(
    keypair: Keypair,
    *,
    chain_id: str,
    genesis_hash: bytes,
    nonce: int,
    call: Message,
    fee: int | None = None,
    fee_rule: FeeRule | None = None,
) -> SignedTransaction:
    """Sign a call; with no explicit fee, pay exactly the minimum fee for the resulting size and weight."""
    if fee is None and fee_rule is None:
        raise ValueError("give either a fee or the chain's fee rule")
    body = types_pb2.TransactionBody(
        chain_id=chain_id, genesis_hash=genesis_hash, sender=keypair.public_key, nonce=nonce, **{call_field(call): call}
    )
    offered = fee if fee is not None else fee_rule.minimum_for(body, 0)
    # The fee's own varint length changes the size it pays for (and the weight, by its bytes): settle on a fixed point.
    for _ in range(4):
        body.fee = offered
        raw = _signed_bytes(keypair, body.SerializeToString())
        if fee is not None or offered >= fee_rule.minimum_for(body, len(raw)):
            break
        offered = fee_rule.minimum_for(body, len(raw))
    return SignedTransaction(raw=raw, hash=transaction_hash(raw), nonce=nonce, fee=offered)


def _signed_bytes(keypair: Keypair, body: bytes) -> bytes:
    signature = keypair.sign(TRANSACTION_SIGNING_CONTEXT + body)
    return types_pb2.Transaction(body=body, signature=signature).SerializeToString()
