"""Building and signing transactions (the client, the CLI and the benchmarks share this)."""

from __future__ import annotations

from dataclasses import dataclass

from chain.crypto import Keypair
from proto import types_pb2
from runtime.executive import TRANSACTION_SIGNING_CONTEXT
from runtime.hashing import transaction_hash


@dataclass(frozen=True)
class FeeRule:
    """minimum fee = base_fee + fee_per_byte * size of the serialised transaction."""

    base_fee: int
    fee_per_byte: int

    def minimum(self, size: int) -> int:
        return self.base_fee + self.fee_per_byte * size


@dataclass(frozen=True)
class SignedTransaction:
    raw: bytes
    hash: bytes
    nonce: int
    fee: int


def transfer_call(dest: bytes, amount: int) -> dict:
    """The call fields of a balances transfer."""
    return {"transfer": types_pb2.Transfer(dest=dest, amount=amount)}


def sign_transaction(
    keypair: Keypair,
    *,
    chain_id: str,
    genesis_hash: bytes,
    nonce: int,
    call: dict,
    fee: int | None = None,
    fee_rule: FeeRule | None = None,
) -> SignedTransaction:
    """Sign a call; with no explicit fee, pay exactly the minimum fee for the resulting size."""
    if fee is None and fee_rule is None:
        raise ValueError("give either a fee or the chain's fee rule")
    body = types_pb2.TransactionBody(
        chain_id=chain_id, genesis_hash=genesis_hash, sender=keypair.public_key, nonce=nonce, **call
    )
    offered = fee if fee is not None else fee_rule.minimum(0)
    # The fee's own varint length changes the size it pays for: settle on a fixed point.
    for _ in range(4):
        body.fee = offered
        raw = _signed_bytes(keypair, body.SerializeToString())
        if fee is not None or offered >= fee_rule.minimum(len(raw)):
            break
        offered = fee_rule.minimum(len(raw))
    return SignedTransaction(raw=raw, hash=transaction_hash(raw), nonce=nonce, fee=offered)


def _signed_bytes(keypair: Keypair, body: bytes) -> bytes:
    signature = keypair.sign(TRANSACTION_SIGNING_CONTEXT + body)
    return types_pb2.Transaction(body=body, signature=signature).SerializeToString()
