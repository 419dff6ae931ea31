"""Checking what a node sends against its own proofs and headers: a mismatch is a ProofError.

The client trusts the node for nothing it can check: an account's figures come from the value
proven against the state root; a block's hash, transactions root and receipts root are recomputed
from its bytes; a transaction's inclusion and receipt are proven against its block's header by
Merkle audit paths (docs/protocol.md); a model's registration (ModelInfo, whose thresholds judge
results) is proven against the state root in a block's header. Checking a header's commit signatures against the validator
set is the next step of a light client and is not done yet.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from chain.client.errors import ProofError
from chain.client.results import Block, StateValue, TransactionStatus, _by_field_name, events_of, receipt_of
from chain.ss58 import encode_address
from chain.state.inclusion import verify_inclusion
from chain.state.proof import verify_proof
from proto import node_pb2, state_pb2, types_pb2
from runtime import hashing, models
from runtime.encoding import EncodingError, decode_canonical, decode_header, decode_receipt
from runtime.system import account_key


def proven_account_info(public_key: bytes, reply: node_pb2.GetAccountResponse) -> state_pb2.AccountInfo | None:
    """The account value the proof establishes under the reply's state root; ProofError otherwise."""
    if reply.account and reply.account != public_key:
        raise ProofError(f"asked for account {public_key.hex()}, the node answered for {reply.account.hex()}")
    # An all-zero AccountInfo serialises to no bytes, so `exists`, not emptiness, tells presence.
    if reply.state_value and not reply.exists:
        raise ProofError("the node sent an account value but says the account does not exist")
    value = reply.state_value if reply.exists else None
    if not verify_proof(reply.state_root, account_key(public_key), value, reply.proof):
        held = "holds the value sent" if value is not None else "does not exist"
        raise ProofError(
            f"the node's proof that account {encode_address(public_key)} {held} does not verify "
            f"against state root {reply.state_root.hex()}"
        )
    if value is None:
        if reply.free or reply.reserved or reply.nonce:
            raise ProofError("the node reports balances for an account its proof shows absent")
        return None
    try:
        info = state_pb2.AccountInfo.FromString(value)
    except DecodeError:
        raise ProofError("the proven account value does not decode as AccountInfo") from None
    if (info.free, info.reserved, info.nonce) != (reply.free, reply.reserved, reply.nonce):
        raise ProofError("the node's reported balances or nonce differ from the value it proved")
    return info


def model_info_key(model_id: bytes) -> bytes:
    """The state key of a registered model's ModelInfo (runtime/models.py)."""
    return models.MODEL_PREFIX + model_id


def proven_model_info(model_id: bytes, value: StateValue, block: Block) -> types_pb2.ModelInfo | None:
    """The model's registration that `value` proves under the state root in `block`'s header (None: not
    registered there); ProofError when the proof, the block or the value does not hold together."""
    if value.key != model_info_key(model_id):
        raise ProofError(f"asked for model {model_id.hex()}, the node proved another state key")
    if block.hash != value.block_hash or block.height != value.height:
        raise ProofError(f"the model's proof names block {value.height} ({value.block_hash.hex()}), "
                         f"the node sent block {block.height} ({block.hash.hex()})")
    if block.state_root != value.state_root:
        raise ProofError(
            f"state root {value.state_root.hex()} of the model's proof is not the state root "
            f"{block.state_root.hex()} in the header of block {block.height}"
        )
    if value.value is None:
        return None
    try:
        info = decode_canonical(types_pb2.ModelInfo, value.value, "registered model")
    except EncodingError as error:
        raise ProofError(f"the proven registration of model {model_id.hex()} is unusable: {error}") from None
    if info.id != model_id:
        raise ProofError(f"the proven registration under model {model_id.hex()} is for model {info.id.hex()}")
    return info


def decoded_header(raw: bytes, block_hash: bytes) -> types_pb2.Header:
    try:
        return decode_header(raw)
    except EncodingError as error:
        raise ProofError(f"the header of block {block_hash.hex()} is unusable: {error}") from None


def proven_inclusion(transaction_hash: bytes, reply: node_pb2.GetTransactionResponse) -> TransactionStatus:
    """The inclusion and receipt that the reply proves against its block hash; ProofError otherwise."""
    where = f"transaction {transaction_hash.hex()}"
    sent = hashing.transaction_hash(reply.transaction)
    if reply.transaction_hash not in (b"", transaction_hash) or sent != transaction_hash:
        raise ProofError(f"asked for {where}, the node sent another transaction")
    if hashing.blake2b_256(reply.header) != reply.block_hash:
        raise ProofError(f"block hash {reply.block_hash.hex()} is not the hash of the header sent for {where}")
    header = decoded_header(reply.header, reply.block_hash)
    if header.height != reply.height:
        raise ProofError(f"{where} was reported at height {reply.height}, its block's header says {header.height}")
    transaction_proof, receipt_proof = reply.transaction_proof, reply.receipt_proof
    if transaction_proof.leaf_index != reply.index or not verify_inclusion(
        header.transactions_root, transaction_hash, transaction_proof
    ):
        raise ProofError(
            f"the node's proof that {where} is transaction {reply.index} of block {header.height} "
            f"does not verify against its transactions root"
        )
    # The receipts tree has a leaf per transaction, then one for the block's own events.
    if (
        receipt_proof.leaf_index != reply.index
        or receipt_proof.leaf_count != transaction_proof.leaf_count + 1
        or not verify_inclusion(header.receipts_root, hashing.blake2b_256(reply.receipt_bytes), receipt_proof)
    ):
        raise ProofError(
            f"the node's proof of the receipt of {where} does not verify "
            f"against the receipts root of block {header.height}"
        )
    try:
        receipt = decode_receipt(reply.receipt_bytes)
    except EncodingError as error:
        raise ProofError(f"the proven receipt of {where} is unusable: {error}") from None
    if receipt.transaction_hash != transaction_hash:
        raise ProofError(f"the proven receipt of {where} is for transaction {receipt.transaction_hash.hex()}")
    return TransactionStatus(
        hash=transaction_hash,
        status="included",
        height=header.height,
        block_hash=reply.block_hash,
        index=reply.index,
        receipt=receipt_of(receipt),
        raw=reply.transaction,
    )


def verified_block(block_hash: bytes, block: types_pb2.Block, receipts: types_pb2.BlockReceipts) -> Block:
    """Decode a block and check its hash, transactions root and receipts root against its own bytes."""
    if hashing.blake2b_256(block.header) != block_hash:
        raise ProofError(f"block hash {block_hash.hex()} is not the hash of the header sent")
    header = decoded_header(block.header, block_hash)
    hashes = tuple(hashing.transaction_hash(raw) for raw in block.transactions)
    if hashing.transactions_root(list(hashes)) != header.transactions_root:
        raise ProofError(f"the transactions of block {header.height} do not match its transactions root")
    if hashing.receipts_root(receipts) != header.receipts_root:
        raise ProofError(f"the receipts of block {header.height} do not match its receipts root")
    # The header's fields by name; the rest from the block and its receipts.
    return _by_field_name(
        Block,
        header,
        hash=block_hash,
        header=block.header,
        transactions=tuple(block.transactions),
        transaction_hashes=hashes,
        receipts=tuple(receipt_of(receipt) for receipt in receipts.transactions),
        block_events=events_of(receipts.block_events),
    )


def inclusion_in_block(transaction_hash: bytes, event: node_pb2.BlockEvent) -> TransactionStatus | None:
    """The transaction's inclusion in a block from the block stream (checked by the caller), or None."""
    for index, raw in enumerate(event.block.transactions):
        if hashing.transaction_hash(raw) != transaction_hash:
            continue
        receipts = event.receipts.transactions
        receipt = receipt_of(receipts[index]) if index < len(receipts) else None
        return TransactionStatus(
            hash=transaction_hash,
            status="included",
            height=event.height,
            block_hash=event.block_hash,
            index=index,
            receipt=receipt,
            raw=raw,
        )
    return None
