"""The gRPC client API (proto/node.proto): parse the request, call the core, map errors to status codes."""

from __future__ import annotations

import logging

import grpc

from chain.node.core import NodeCore, Rejected
from chain.node.disputes_api import DisputesApi
from chain.node.market_api import MarketApi, head_at
from chain.node.token_streams import TokenStreams
from chain.node.tokens_api import TokensApi
from chain.ss58 import SS58_PREFIX, SS58_PREFIX_NAME, AddressError, decode_address, encode_address
from proto import node_pb2, node_pb2_grpc
from runtime import balances, hashing
from runtime.executive import transaction_weight
from runtime.registry import RUNTIME

log = logging.getLogger(__name__)

NODE_VERSION = "0.1.0"
MAX_BATCH = 10_000
# How long a subscription waits for the next block before checking that its client is still there.
SUBSCRIPTION_POLL_SECONDS = 1.0
# The longest rejection message sent back: a chain id quoted in full once made a 60 KB status.
MAX_REASON_CHARS = 512
# The longest state key GetStateProof reads: the runtime's longest key is 89 bytes (jobs/by_executor/...).
MAX_STATE_KEY_BYTES = 1024

_STATUS = {
    "INVALID_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
    "FAILED_PRECONDITION": grpc.StatusCode.FAILED_PRECONDITION,
    "ALREADY_EXISTS": grpc.StatusCode.ALREADY_EXISTS,
    "RESOURCE_EXHAUSTED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "INTERNAL": grpc.StatusCode.INTERNAL,
}


def _reason(rejection: Rejected) -> str:
    """The rejection's message, cut to MAX_REASON_CHARS where a rule quoted too much of the input."""
    text = str(rejection)
    if len(text) <= MAX_REASON_CHARS:
        return text
    return f"{text[:MAX_REASON_CHARS]}… (cut at {MAX_REASON_CHARS} of {len(text)} characters)"


def _abort(context: grpc.ServicerContext, rejection: Rejected) -> None:
    context.abort(_STATUS.get(rejection.status, grpc.StatusCode.INVALID_ARGUMENT), _reason(rejection))


class NodeApi(MarketApi, DisputesApi, TokensApi, node_pb2_grpc.NodeServicer):
    """Thin edge over NodeCore: no rule lives here (the market's calls, jobs, models and executors:
    chain/node/market_api.py; disputes and slashes: chain/node/disputes_api.py; token streams:
    chain/node/tokens_api.py over the in-memory chain/node/token_streams.py)."""

    def __init__(self, core: NodeCore, block_time_ms: int, token_streams: TokenStreams | None = None):
        self.core = core
        self.block_time_ms = block_time_ms
        self.token_streams = TokenStreams() if token_streams is None else token_streams

    # --- transactions -------------------------------------------------------

    def SubmitTransaction(self, request, context):
        try:
            verdict = self.core.admit(request.transaction)
        except Rejected as rejection:
            _abort(context, rejection)
        return node_pb2.SubmitTransactionResponse(transaction_hash=verdict.hash, dry_run=verdict.dry_run)

    def SubmitTransactions(self, request, context):
        if len(request.transactions) > MAX_BATCH:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"a batch holds at most {MAX_BATCH} transactions, got {len(request.transactions)}",
            )
        dry_runs = request.dry_runs
        verdicts = [
            node_pb2.TransactionVerdict(
                transaction_hash=verdict.hash, accepted=True, dry_run=verdict.dry_run if dry_runs else None
            )
            if verdict.rejection is None
            else node_pb2.TransactionVerdict(
                transaction_hash=verdict.hash, accepted=False, code=verdict.rejection.status,
                reason=_reason(verdict.rejection),
            )
            for verdict in self.core.admit_many(request.transactions)
        ]
        return node_pb2.SubmitTransactionsResponse(verdicts=verdicts)

    def SimulateTransaction(self, request, context):
        rules = self.core.rules
        try:
            checked, receipt = self.core.simulate(request.transaction)
        except Rejected as rejection:
            return node_pb2.SimulateTransactionResponse(
                transaction_hash=rejection.tx_hash, valid=False, code=rejection.status, reason=_reason(rejection),
                # A refused transaction may not decode: its weight is unknown, the fee for its size alone is given.
                minimum_fee=rules.params.minimum_fee(len(request.transaction), 0),
            )
        response = node_pb2.SimulateTransactionResponse(
            transaction_hash=checked.hash,
            valid=receipt.success,
            fee=checked.fee,
            minimum_fee=rules.params.minimum_fee(checked.size, transaction_weight(checked.body, checked.size)),
            events=receipt.events,
        )
        if not receipt.success:
            response.code = "FAILED_PRECONDITION"
            response.reason = f"{receipt.error_module}.{receipt.error_name}: {receipt.error_message}"
        return response

    def GetTransaction(self, request, context):
        tx_hash = request.transaction_hash
        if len(tx_hash) != 32:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"a transaction hash is 32 bytes, got {len(tx_hash)}")
        location, pending, rejection = self.core.lookup(tx_hash)
        if location is not None:
            return self._included(tx_hash, location)
        if pending is not None:
            return node_pb2.GetTransactionResponse(
                transaction_hash=tx_hash, status=node_pb2.TRANSACTION_STATUS_PENDING, transaction=pending.raw
            )
        if rejection is not None:
            return node_pb2.GetTransactionResponse(
                transaction_hash=tx_hash, status=node_pb2.TRANSACTION_STATUS_REJECTED, reason=rejection
            )
        context.abort(grpc.StatusCode.NOT_FOUND, f"transaction {tx_hash.hex()} is neither pending nor included")

    def _included(self, tx_hash: bytes, location) -> node_pb2.GetTransactionResponse:
        store = self.core.store
        block_hash = store.block_hash_at(location.height)
        finalized = store.finalized_block(block_hash)
        receipts = store.receipts(block_hash)
        index = location.index
        receipt = receipts.transactions[index]
        transaction_hashes = [hashing.transaction_hash(raw) for raw in finalized.block.transactions]
        return node_pb2.GetTransactionResponse(
            transaction_hash=tx_hash,
            status=node_pb2.TRANSACTION_STATUS_INCLUDED,
            height=location.height,
            block_hash=block_hash,
            index=index,
            receipt=receipt,
            transaction=finalized.block.transactions[index],
            header=finalized.block.header,
            transaction_proof=hashing.merkle_proof(transaction_hashes, index),
            # The stored receipts are canonical (the node encoded them), so these are the stored bytes.
            receipt_bytes=hashing.receipt_bytes(receipt),
            receipt_proof=hashing.merkle_proof(hashing.receipt_leaves(receipts), index),
        )

    # --- blocks -------------------------------------------------------------

    def GetBlock(self, request, context):
        store = self.core.store
        selector = request.WhichOneof("selector")
        if selector == "hash":
            block_hash = request.hash
            if len(block_hash) != 32:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"a block hash is 32 bytes, got {len(block_hash)}")
        else:
            height = request.height if selector == "height" else self.core.head.height
            block_hash = store.block_hash_at(height)
            if block_hash is None:
                context.abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"no block at height {height}; the best height is {self.core.head.height}",
                )
        finalized = store.finalized_block(block_hash)
        if finalized is None:
            if block_hash == self.core.genesis.hash:
                context.abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"{block_hash.hex()} is the genesis hash: genesis has no block, the chain's first block is "
                    f"at height {self.core.genesis.initial_height}",
                )
            context.abort(grpc.StatusCode.NOT_FOUND, f"no block with hash {block_hash.hex()}")
        return node_pb2.GetBlockResponse(
            block_hash=block_hash, block=finalized.block, commit=finalized.commit, receipts=store.receipts(block_hash)
        )

    def SubscribeBlocks(self, request, context):
        store = self.core.store
        next_height = request.from_height or self.core.head.height + 1
        if next_height < self.core.genesis.initial_height:
            next_height = self.core.genesis.initial_height
        while context.is_active():
            if next_height > self.core.head.height:
                self.core.wait_for_block(next_height - 1, SUBSCRIPTION_POLL_SECONDS)
                continue
            block_hash = store.block_hash_at(next_height)
            finalized = store.finalized_block(block_hash)
            yield node_pb2.BlockEvent(
                height=next_height, block_hash=block_hash, block=finalized.block, receipts=store.receipts(block_hash)
            )
            next_height += 1

    # --- state --------------------------------------------------------------

    def GetAccount(self, request, context):
        account = request.account
        if request.account and request.address:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "give the account as `account` (a 32-byte public key) or as `address` (SS58), not both",
            )
        if request.address:
            try:
                account = decode_address(request.address)
            except AddressError as error:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        if len(account) != 32:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"an account is a 32-byte public key or an SS58 address, got {len(account)} bytes"
            )
        state = self.core.account(account)
        return node_pb2.GetAccountResponse(
            account=account,
            address=encode_address(account),
            free=state.info.free,
            reserved=state.info.reserved,
            nonce=state.info.nonce,
            next_nonce=state.next_nonce,
            height=state.head.height,
            block_hash=state.head.hash,
            state_root=state.head.state_root,
            state_key=state.state_key,
            state_value=state.state_value or b"",
            proof=state.proof,
            exists=state.state_value is not None,
        )

    def GetStateProof(self, request, context):
        key = request.key
        if not 1 <= len(key) <= MAX_STATE_KEY_BYTES:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"a state key is 1 to {MAX_STATE_KEY_BYTES} bytes, got {len(key)}"
            )
        best = self.core.head
        height = request.height or best.height
        if not self.core.genesis.initial_height <= height <= best.height:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no block at height {height}; the best height is {best.height}")
        head = head_at(self.core.store, height, best)
        value, proof = self.core.store.tree.get_with_proof(head.state_root, key)
        return node_pb2.GetStateProofResponse(
            height=head.height, block_hash=head.hash, state_root=head.state_root,
            exists=value is not None, value=value or b"", proof=proof,
        )

    def GetChainInfo(self, request, context):
        if request.signer and len(request.signer) != 32:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"signer is a 32-byte public key, got {len(request.signer)} bytes"
            )
        core = self.core
        head = core.head
        params = core.rules.params
        token = balances.read_params(core.store.state)
        return node_pb2.ChainInfo(
            chain_id=core.genesis.chain_id,
            genesis_hash=core.genesis.hash,
            best_height=head.height,
            best_hash=head.hash,
            # BFT finality: a block is committed only once more than 2/3 of the power precommitted it.
            finalized_height=head.height,
            finalized_hash=head.hash,
            block_time_ms=self.block_time_ms,
            node_version=NODE_VERSION,
            pending_transactions=len(core.pool),
            ss58_prefix_name=SS58_PREFIX_NAME,
            ss58_prefix=SS58_PREFIX,
            base_fee=params.base_fee,
            fee_per_byte=params.fee_per_byte,
            fee_per_weight=params.fee_per_weight,
            max_transaction_bytes=params.max_transaction_bytes,
            existential_deposit=token.existential_deposit,
            token_symbol=token.token_symbol,
            token_decimals=token.token_decimals,
            signer_next_nonce=core.account(request.signer).next_nonce if request.signer else 0,
            spec_version=RUNTIME.spec_version,
            **_consensus_fields(core),
        )


def _consensus_fields(core) -> dict:
    """ChainInfo's consensus fields from the node's driver (absent for a core without consensus)."""
    if core.consensus_status is None:
        return {}
    status = core.consensus_status()
    return {
        "peers": status.peers,
        "consensus_round": status.round,
        "syncing": status.syncing,
        "is_validator": status.is_validator,
        "validators": status.validators,
        "total_voting_power": status.total_power,
    }
