"""The Client: one connection to a node's gRPC API, and every request the client makes."""

from __future__ import annotations

import time
from typing import Iterable, Iterator

import grpc
from google.protobuf.message import Message

from chain.client.calls import AccountLike, account_public_key, checked_call, optional_u64, transfer
from chain.client.errors import (
    DEFAULT_TARGET,
    ClientError,
    InclusionTimeout,
    ProofError,
    TransactionRejected,
    translate_rpc_error,
)
from chain.client.disputes import DisputeCalls
from chain.client.jobs import JobCalls
from chain.client.tokens import TokenCalls
from chain.client.results import (
    Account,
    Block,
    ChainInfo,
    CommittedBlock,
    Receipt,
    Simulation,
    StateValue,
    Submission,
    TransactionStatus,
    Verdict,
    chain_info_of,
    dry_run_of,
    simulation_of,
    unproven_status_of,
    verdict_of,
)
from chain.client.verification import inclusion_in_block, proven_account_info, proven_inclusion, verified_block
from chain.crypto import Keypair
from chain.ss58 import encode_address
from chain.state.proof import verify_proof
from chain.transactions import FeeRule, SignedTransaction, sign_transaction
from proto import node_pb2, node_pb2_grpc

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_WAIT_S = 30.0
# One SubmitTransactions request carries at most this many: large enough to amortise the call
# (DESIGN.md section 4: 100 per request already gave 105,000 tx/s)...
SUBMIT_CHUNK = 500
# ...and at most this many bytes of transactions: a node refuses a request larger than one block
# (docs/operator.md, the API's limits), and blocks are at least this large.
SUBMIT_CHUNK_BYTES = 2 * 1024 * 1024
_MESSAGE_LIMIT = 64 * 1024 * 1024
# How many nonces an automatic-nonce submission tries before giving up; each refusal means another
# submitter from the same account took the nonce first.
NONCE_ATTEMPTS = 50
# The pool takes only a sender's next nonce, so racing submitters contest one nonce at a time and,
# as in a lottery, some lose dozens of times in a row (8 processes x 200 transfers: up to 29 tries).
# While a client has lost a race in the last CONTENTION_MEMORY_S, it waits before each try, less the
# more tries it has lost, so the longest-waiting go first: then at most 10 tries, and all done sooner
# (10 s, not 15 s; tests/e2e/test_concurrent_nonces.py). A submitter that meets no race never waits.
CONTENTION_MEMORY_S = 1.0
CONTENTION_STEP_S = 0.002
CONTENTION_PRIORITY_LEVELS = 16
# Status codes with which the node refuses a nonce that another transaction took (the pool: "already
# pending", "already used", or a gap after a dropped one); whether it was the nonce is checked after.
_NONCE_CONFLICT_CODES = ("FAILED_PRECONDITION", "ALREADY_EXISTS")


class Client(JobCalls, DisputeCalls, TokenCalls):
    """A connection to one node's gRPC API; use as a context manager or call close().

    The market's requests (get_job, list_jobs, watch_job, list_models, get_executors, post_job) are in
    chain/client/jobs.py; disputes and slashes (dispute, disputes, slashes) in chain/client/disputes.py;
    token streams (publish_tokens, stream_tokens) in chain/client/tokens.py.
    """

    def __init__(self, target: str = DEFAULT_TARGET, timeout: float = DEFAULT_TIMEOUT_S):
        self.target = target
        self.timeout = timeout
        self._channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", _MESSAGE_LIMIT),
                ("grpc.max_send_message_length", _MESSAGE_LIMIT),
            ],
        )
        self._stub = node_pb2_grpc.NodeStub(self._channel)
        self._signing: tuple[str, bytes, FeeRule] | None = None
        # A signer's next nonce that came with the chain info (one request instead of two); used once,
        # by the signer's next automatic-nonce submission.
        self._nonce_hints: dict[bytes, int] = {}
        self._last_nonce_conflict = -1e9

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel (open subscriptions end)."""
        self._channel.close()

    # --- chain and accounts -----------------------------------------------------

    def chain_info(self, signer: AccountLike | None = None) -> ChainInfo:
        """Chain id, genesis hash, best and finalized heads, fee rule, limits and token; with `signer`, also
        its next nonce (signer_next_nonce), which that signer's next submit() uses instead of asking again."""
        public_key = account_public_key(signer) if signer is not None else b""
        info = chain_info_of(self._call(self._stub.GetChainInfo, node_pb2.GetChainInfoRequest(signer=public_key)))
        self._signing = (info.chain_id, info.genesis_hash, info.fee_rule)
        if public_key:
            self._nonce_hints[public_key] = info.signer_next_nonce
        return info

    def account(self, account: AccountLike) -> Account:
        """An account's balances and nonce, verified against the proof and the named block's header."""
        public_key = account_public_key(account)
        reply = self._call(self._stub.GetAccount, node_pb2.GetAccountRequest(account=public_key))
        info = proven_account_info(public_key, reply)
        self._check_root_in_header(reply)
        return Account(
            public_key=public_key,
            address=encode_address(public_key),
            exists=info is not None,
            free=info.free if info else 0,
            reserved=info.reserved if info else 0,
            nonce=info.nonce if info else 0,
            next_nonce=reply.next_nonce,
            height=reply.height,
            block_hash=reply.block_hash,
            state_root=reply.state_root,
        )

    def next_nonce(self, account: AccountLike) -> int:
        """The nonce for the account's next transaction, counting its pending ones."""
        public_key = account_public_key(account)
        reply = self._call(self._stub.GetAccount, node_pb2.GetAccountRequest(account=public_key))
        return reply.next_nonce

    def _check_root_in_header(self, reply: node_pb2.GetAccountResponse) -> None:
        if reply.block_hash == self._signing_context()[1]:
            # Read before the first block: genesis has no header to hold its state root. Only the genesis
            # document itself proves that root (chain/client/light.py starts from one).
            return
        block = self.block(hash=reply.block_hash)
        if block.height != reply.height:
            raise ProofError(
                f"the account was reported at height {reply.height} but block "
                f"{reply.block_hash.hex()} has height {block.height}"
            )
        if block.state_root != reply.state_root:
            raise ProofError(
                f"state root {reply.state_root.hex()} of the account proof is not the state root "
                f"{block.state_root.hex()} in the header of block {block.height}"
            )

    def state_proof(self, key: bytes, height: int = 0) -> StateValue:
        """A state key's value after block `height` (0: the best), its proof checked against the state root
        the node names (chain/client/light.py checks that root against a committed header)."""
        height = optional_u64(height, "height")
        reply = self._call(self._stub.GetStateProof, node_pb2.GetStateProofRequest(key=key, height=height))
        return _proven_state_value(key, height, reply)

    # --- signing and submitting any call ----------------------------------------

    def sign(
        self, keypair: Keypair, call: Message, *, fee: int | None = None, nonce: int | None = None
    ) -> SignedTransaction:
        """Sign any call (e.g. types_pb2.Transfer(...)) for this node's chain: minimum fee and next nonce unless given."""
        checked_call(call)
        fee, nonce = optional_u64(fee, "fee"), optional_u64(nonce, "nonce")
        chain_id, genesis, fee_rule = self._signing_context()
        if nonce is None:
            nonce = self.next_nonce(keypair.public_key)
        return sign_transaction(
            keypair, chain_id=chain_id, genesis_hash=genesis, nonce=nonce, call=call, fee=fee, fee_rule=fee_rule
        )

    def submit(
        self,
        keypair: Keypair,
        call: Message,
        *,
        wait: bool = False,
        timeout: float = DEFAULT_WAIT_S,
        fee: int | None = None,
        nonce: int | None = None,
    ) -> Submission:
        """Sign and submit any call; optionally wait for its inclusion.

        The fee is the minimum for the size unless given. With no nonce given, the sender's next
        free one: when another submitter from the same account takes it first, the next free one
        after it (up to NONCE_ATTEMPTS tries). A nonce given is used as it is, never changed.
        """
        name = checked_call(call)
        if nonce is None:
            signed, attempts, dry_run = self._submit_at_free_nonce(keypair, call, fee)
        else:
            signed, attempts = self.sign(keypair, call, fee=fee, nonce=nonce), 1
            dry_run = self._submit_one(signed.raw)[1]
        inclusion = self.wait_for_inclusion(signed.hash, timeout) if wait else None
        return Submission(signed.hash, name, signed.nonce, signed.fee, inclusion, attempts, dry_run)

    def _submit_at_free_nonce(
        self, keypair: Keypair, call: Message, fee: int | None
    ) -> tuple[SignedTransaction, int, Receipt | None]:
        contended = time.monotonic() - self._last_nonce_conflict < CONTENTION_MEMORY_S
        tried, refusal = None, None
        if self._signing is None:
            self.chain_info(keypair.public_key)  # the signing context and the nonce in one request
        for attempt in range(1, NONCE_ATTEMPTS + 1):
            if contended:
                time.sleep(_contention_delay(attempt))
            nonce = self._nonce_hints.pop(keypair.public_key, None)
            if nonce is None or refusal is not None:
                nonce = self.next_nonce(keypair.public_key)
            if refusal is not None:
                if nonce == tried:
                    raise refusal  # the next free nonce did not move: the refusal was not about it
                self._last_nonce_conflict = time.monotonic()
            signed = self.sign(keypair, call, fee=fee, nonce=nonce)
            try:
                return signed, attempt, self._submit_one(signed.raw)[1]
            except ClientError as error:
                if error.code not in _NONCE_CONFLICT_CODES:
                    raise
                tried, refusal, contended = nonce, error, True
        raise ClientError(
            "ABORTED",
            f"no free nonce for {encode_address(keypair.public_key)} after {NONCE_ATTEMPTS} tries: other "
            f"submitters from this account took each one first (last refusal: {refusal.message})",
        )

    def dry_run(
        self, keypair: Keypair, call: Message, *, fee: int | None = None, nonce: int | None = None
    ) -> Simulation:
        """What submitting `call` would do against the latest block's state; nothing is submitted.

        The node applies a transaction only at the account's on-chain nonce, so one meant for a
        later nonce (the sender has pending transactions) is simulated at the on-chain nonce:
        the verdict is the call's against the latest state, before the pending ones.
        """
        nonce = optional_u64(nonce, "nonce")
        account = self.account(keypair.public_key)
        intended = account.next_nonce if nonce is None else nonce
        return self.simulate(self.sign(keypair, call, fee=fee, nonce=min(intended, account.nonce)).raw)

    def sign_transfer(
        self, keypair: Keypair, dest: AccountLike, amount: int, *, fee: int | None = None, nonce: int | None = None
    ) -> SignedTransaction:
        """A signed balances transfer (sign() of a types_pb2.Transfer)."""
        return self.sign(keypair, transfer(dest, amount), fee=fee, nonce=nonce)

    def transfer(
        self,
        keypair: Keypair,
        dest: AccountLike,
        amount: int,
        *,
        fee: int | None = None,
        nonce: int | None = None,
        wait: bool = False,
        timeout: float = DEFAULT_WAIT_S,
    ) -> Submission:
        """Move `amount` base units to `dest` (any account form): submit() of a balances transfer."""
        return self.submit(keypair, transfer(dest, amount), wait=wait, timeout=timeout, fee=fee, nonce=nonce)

    # --- signed bytes -----------------------------------------------------------

    def submit_raw(self, raw: bytes) -> bytes:
        """Submit one signed transaction's bytes; its hash once the node has queued it."""
        return self._submit_one(raw)[0]

    def _submit_one(self, raw: bytes) -> tuple[bytes, Receipt | None]:
        """Submit one signed transaction: its hash and the node's admission dry run (None when none ran)."""
        reply = self._call(self._stub.SubmitTransaction, node_pb2.SubmitTransactionRequest(transaction=raw))
        return reply.transaction_hash, dry_run_of(reply)

    def submit_many(self, raws: Iterable[bytes], chunk: int = SUBMIT_CHUNK, *, dry_runs: bool = False) -> list[Verdict]:
        """Submit many in batches (SubmitTransactions); one verdict per transaction, in order; with `dry_runs`,
        each accepted one carries the node's admission dry run (when one ran) as `Verdict.dry_run`."""
        verdicts: list[Verdict] = []
        for batch in _batches(list(raws), chunk, SUBMIT_CHUNK_BYTES):
            reply = self._call(
                self._stub.SubmitTransactions,
                node_pb2.SubmitTransactionsRequest(transactions=batch, dry_runs=dry_runs),
            )
            if len(reply.verdicts) != len(batch):
                raise ClientError(
                    "INTERNAL", f"node answered {len(reply.verdicts)} verdicts for {len(batch)} transactions"
                )
            verdicts.extend(verdict_of(verdict) for verdict in reply.verdicts)
        return verdicts

    def simulate(self, raw: bytes) -> Simulation:
        """Fee and validity of a signed transaction against the current state, without applying it."""
        reply = self._call(self._stub.SimulateTransaction, node_pb2.SimulateTransactionRequest(transaction=raw))
        return simulation_of(reply)

    # --- following transactions -------------------------------------------------

    def transaction(self, transaction_hash: bytes) -> TransactionStatus:
        """A transaction's status; "unknown" when the node has never seen it; an inclusion comes proven (ProofError)."""
        try:
            reply = self._call(
                self._stub.GetTransaction, node_pb2.GetTransactionRequest(transaction_hash=transaction_hash)
            )
        except ClientError as error:
            if error.code == "NOT_FOUND":
                return TransactionStatus(hash=transaction_hash, status="unknown")
            raise
        if reply.status == node_pb2.TRANSACTION_STATUS_INCLUDED:
            return proven_inclusion(transaction_hash, reply)
        return unproven_status_of(transaction_hash, reply)

    def wait_for_inclusion(self, transaction_hash: bytes, timeout: float = DEFAULT_WAIT_S) -> TransactionStatus:
        """Block until the transaction is in a finalized block; raise on rejection or after `timeout` s."""
        deadline = time.monotonic() + timeout
        start_height = self.chain_info().best_height
        status = self.transaction(transaction_hash)
        if self._settled(status) is not None:
            return status
        # Blocks from the one after the head seen above, so an inclusion in between is replayed.
        included = self._watch_blocks(transaction_hash, start_height + 1, deadline)
        if included is not None:
            return included
        # The stream ended early (the node closed it): poll until the deadline.
        while time.monotonic() < deadline:
            status = self.transaction(transaction_hash)
            if self._settled(status) is not None:
                return status
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        raise InclusionTimeout(transaction_hash, timeout, self.transaction(transaction_hash).status)

    def _watch_blocks(self, transaction_hash: bytes, from_height: int, deadline: float) -> TransactionStatus | None:
        """The inclusion seen in the block stream; None when the stream ends or the deadline passes."""
        remaining = max(0.001, deadline - time.monotonic())
        stream = self._stub.SubscribeBlocks(node_pb2.SubscribeBlocksRequest(from_height=from_height), timeout=remaining)
        try:
            for event in stream:
                if inclusion_in_block(transaction_hash, event) is not None:
                    # Seen in the stream; answer with the status whose inclusion proof was checked.
                    return self.transaction(transaction_hash)
                # Not in this block: it may have been dropped from the pool meanwhile.
                status = self.transaction(transaction_hash)
                if self._settled(status) is not None:
                    return status
                if time.monotonic() >= deadline:
                    return None
        except grpc.RpcError as error:
            # The stream's lifetime ended, or the node has no stream to spare: wait_for_inclusion polls.
            if error.code() not in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED):
                raise translate_rpc_error(error, self.target, remaining) from None
        finally:
            stream.cancel()
        return None

    @staticmethod
    def _settled(status: TransactionStatus) -> TransactionStatus | None:
        if status.status == "included":
            return status
        if status.status == "rejected":
            raise TransactionRejected(status.hash, "FAILED_PRECONDITION", status.reason or "no reason given")
        return None

    # --- blocks -----------------------------------------------------------------

    def block(self, height: int | None = None, hash: bytes | None = None) -> Block:
        """A block by height or hash (neither: the best block), its hash and roots checked."""
        return self._checked_block(height, hash)[0]

    def committed_block(self, height: int) -> CommittedBlock:
        """The block at `height`, its hash and roots checked, with its commit (not checked here: a light
        client checks it against the validator set, chain/client/light.py)."""
        block, reply = self._checked_block(optional_u64(height, "height"), None)
        return CommittedBlock(block, reply.commit)

    def _checked_block(self, height: int | None, hash: bytes | None) -> tuple[Block, node_pb2.GetBlockResponse]:
        if height is not None and hash is not None:
            raise ClientError("INVALID_ARGUMENT", "give a block height or a block hash, not both")
        if height is not None:
            request = node_pb2.GetBlockRequest(height=height)
        elif hash is not None:
            request = node_pb2.GetBlockRequest(hash=hash)
        else:
            request = node_pb2.GetBlockRequest()
        reply = self._call(self._stub.GetBlock, request)
        block = verified_block(reply.block_hash, reply.block, reply.receipts)
        if hash is not None and block.hash != hash:
            raise ProofError(f"asked for block {hash.hex()}, the node sent block {block.hash.hex()}")
        if height is not None and block.height != height:
            raise ProofError(f"asked for block {height}, the node sent block {block.height}")
        return block, reply

    def subscribe_blocks(self, from_height: int = 0) -> Iterator[Block]:
        """Finalized blocks from `from_height` (0: the next new one) on, as they come; close() to stop."""
        stream = self._stub.SubscribeBlocks(node_pb2.SubscribeBlocksRequest(from_height=from_height))
        try:
            for event in stream:
                yield verified_block(event.block_hash, event.block, event.receipts)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                raise translate_rpc_error(error, self.target, None) from None
        finally:
            stream.cancel()

    # --- plumbing ---------------------------------------------------------------

    def _signing_context(self) -> tuple[str, bytes, FeeRule]:
        # Chain id, genesis hash and fee rule are fixed at genesis: one GetChainInfo per client.
        if self._signing is None:
            self.chain_info()
        return self._signing

    def _call(self, method, request, timeout: float | None = None):
        timeout = self.timeout if timeout is None else timeout
        try:
            return method(request, timeout=timeout)
        except grpc.RpcError as error:
            raise translate_rpc_error(error, self.target, timeout) from None


def _proven_state_value(key: bytes, height: int, reply: node_pb2.GetStateProofResponse) -> StateValue:
    """The value the reply proves under its own state root; ProofError otherwise."""
    if height and reply.height != height:
        raise ProofError(f"asked for the state after block {height}, the node answered for block {reply.height}")
    # An empty value can be stored, so `exists`, not emptiness, tells presence (as for accounts).
    if reply.value and not reply.exists:
        raise ProofError(f"the node sent a value for state key {key[:96]!r} but says the key is absent")
    value = reply.value if reply.exists else None
    if not verify_proof(reply.state_root, key, value, reply.proof):
        held = "holds the value sent" if value is not None else "is absent"
        raise ProofError(
            f"the node's proof that state key {key[:96]!r} {held} after block {reply.height} does not verify "
            f"against state root {reply.state_root.hex()}"
        )
    return StateValue(key, value, reply.height, reply.block_hash, reply.state_root, reply.proof)


def _contention_delay(attempt: int) -> float:
    """How long a try waits while other submitters race for the same account's nonces."""
    return CONTENTION_STEP_S * max(0, CONTENTION_PRIORITY_LEVELS - attempt)


def _batches(raws: list[bytes], count: int, size: int) -> Iterator[list[bytes]]:
    """Consecutive batches of at most `count` transactions and `size` bytes (a larger transaction goes alone)."""
    batch: list[bytes] = []
    total = 0
    for raw in raws:
        if batch and (len(batch) >= count or total + len(raw) > size):
            yield batch
            batch, total = [], 0
        batch.append(raw)
        total += len(raw)
    if batch:
        yield batch
