"""The Python client of a node (`chain.client`): connect, sign, submit, wait, query, subscribe.

    from chain.client import Client
    from chain.crypto import dev_keypair

    with Client("127.0.0.1:9944") as client:
        result = client.transfer(dev_keypair("alice"), "bob", 5_000_000, wait=True)
        print(result.inclusion.height, client.account("bob").free)

Accounts are accepted everywhere as a dev name (alice, bob, ... any case), an SS58 address, a
64-character hex public key, a key file, a Keypair or 32 raw bytes (chain.keys).

The client trusts the node for nothing it can check: an account's figures come from the value
proven against the state root, and that root must be the one in the header of the block the node
names, whose hash and transactions root are recomputed here. (Checking that header's commit
signatures against the validator set is the next step of a light client and is not done yet.)

Every failure is a ClientError carrying the gRPC status code name (`code`) and a readable message.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Iterable, Iterator, Union

import grpc
from google.protobuf.message import DecodeError, Message

from chain.crypto import Keypair
from chain.keys import KeyResolutionError, ResolvedAccount, account_id
from chain.ss58 import encode_address
from chain.state.inclusion import verify_inclusion
from chain.state.proof import verify_proof
from chain.text import quote_input
from chain.transactions import FeeRule, SignedTransaction, call_field, sign_transaction, transfer_call
from proto import node_pb2, node_pb2_grpc, state_pb2, types_pb2
from runtime import hashing
from runtime.encoding import EncodingError, decode_header, decode_receipt
from runtime.primitives import DispatchError
from runtime.registry import RUNTIME
from runtime.system import account_key

DEFAULT_TARGET = "127.0.0.1:9944"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_WAIT_S = 30.0
# One SubmitTransactions request carries at most this many: large enough to amortise the call
# (DESIGN.md section 4: 100 per request already gave 105,000 tx/s), small enough to stay far
# below gRPC's message limit with maximum-size transactions.
SUBMIT_CHUNK = 500
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
U64_MAX = 2**64 - 1
# Status codes with which the node refuses a nonce that another transaction took (the pool: "already
# pending", "already used", or a gap after a dropped one); whether it was the nonce is checked after.
_NONCE_CONFLICT_CODES = ("FAILED_PRECONDITION", "ALREADY_EXISTS")

AccountLike = Union[str, bytes, Keypair, ResolvedAccount]


class ClientError(Exception):
    """A failed request: `code` is a gRPC status code name, `message` says what was wrong."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class ProofError(ClientError):
    """The node's answer does not match its own proof or header: it cannot be trusted."""

    def __init__(self, message: str):
        super().__init__("DATA_LOSS", message)


class TransactionRejected(ClientError):
    """The node refused or dropped a transaction; `reason` is its explanation."""

    def __init__(self, transaction_hash: bytes, code: str, reason: str):
        super().__init__(code, f"transaction {transaction_hash.hex()} was rejected: {reason}")
        self.transaction_hash = transaction_hash
        self.reason = reason


class InclusionTimeout(ClientError):
    """A transaction was not included within the time given."""

    def __init__(self, transaction_hash: bytes, timeout: float, status: str):
        super().__init__(
            "DEADLINE_EXCEEDED",
            f"transaction {transaction_hash.hex()} was not included within {timeout:g} s (status: {status})",
        )
        self.transaction_hash = transaction_hash


# --- what the client returns ------------------------------------------------------


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

    @property
    def fee_rule(self) -> FeeRule:
        return FeeRule(self.base_fee, self.fee_per_byte)


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
class Verdict:
    """One transaction's answer in a batch submission."""

    hash: bytes
    accepted: bool
    code: str
    reason: str


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
    dest: bytes = b""
    amount: int = 0


@dataclass(frozen=True)
class Block:
    """A block whose hash and transactions root were recomputed from its bytes."""

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
class Submission:
    """A signed and submitted transaction, whatever its call; `inclusion` is set when the submitter waited."""

    hash: bytes
    call: str
    nonce: int
    fee: int
    inclusion: TransactionStatus | None = None
    # Nonces tried: more than one when other submitters from the same account took them first.
    attempts: int = 1

    @property
    def receipt(self) -> Receipt | None:
        """The receipt of the included transaction (None unless the submitter waited)."""
        return self.inclusion.receipt if self.inclusion is not None else None


_STATUS_NAMES = {
    node_pb2.TRANSACTION_STATUS_UNKNOWN: "unknown",
    node_pb2.TRANSACTION_STATUS_PENDING: "pending",
    node_pb2.TRANSACTION_STATUS_INCLUDED: "included",
    node_pb2.TRANSACTION_STATUS_REJECTED: "rejected",
}


# --- the client -------------------------------------------------------------------


class Client:
    """A connection to one node's gRPC API; use as a context manager or call close()."""

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
        self._last_nonce_conflict = -1e9

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel (open subscriptions end)."""
        self._channel.close()

    # --- chain and accounts -----------------------------------------------------

    def chain_info(self) -> ChainInfo:
        """Chain id, genesis hash, best and finalized heads, fee rule and limits."""
        reply = self._call(self._stub.GetChainInfo, node_pb2.GetChainInfoRequest())
        # ChainInfo mirrors the reply's fields by name.
        info = ChainInfo(**{field.name: getattr(reply, field.name) for field in dataclasses.fields(ChainInfo)})
        self._signing = (info.chain_id, info.genesis_hash, info.fee_rule)
        return info

    def account(self, account: AccountLike) -> Account:
        """An account's balances and nonce, verified against the proof and the named block's header."""
        public_key = _account_id(account)
        reply = self._call(self._stub.GetAccount, node_pb2.GetAccountRequest(account=public_key))
        info = _proven_account_info(public_key, reply)
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
        public_key = _account_id(account)
        reply = self._call(self._stub.GetAccount, node_pb2.GetAccountRequest(account=public_key))
        return reply.next_nonce

    def _check_root_in_header(self, reply: node_pb2.GetAccountResponse) -> None:
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

    # --- transactions -----------------------------------------------------------

    def submit_raw(self, raw: bytes) -> bytes:
        """Submit one signed transaction's bytes; its hash once the node has queued it."""
        reply = self._call(self._stub.SubmitTransaction, node_pb2.SubmitTransactionRequest(transaction=raw))
        return reply.transaction_hash

    def submit_many(self, raws: Iterable[bytes], chunk: int = SUBMIT_CHUNK) -> list[Verdict]:
        """Submit many in batches (SubmitTransactions); one verdict per transaction, in order."""
        raws = list(raws)
        verdicts: list[Verdict] = []
        for start in range(0, len(raws), chunk):
            batch = raws[start : start + chunk]
            reply = self._call(
                self._stub.SubmitTransactions, node_pb2.SubmitTransactionsRequest(transactions=batch)
            )
            if len(reply.verdicts) != len(batch):
                raise ClientError(
                    "INTERNAL", f"node answered {len(reply.verdicts)} verdicts for {len(batch)} transactions"
                )
            verdicts.extend(
                Verdict(hash=v.transaction_hash, accepted=v.accepted, code=v.code, reason=v.reason)
                for v in reply.verdicts
            )
        return verdicts

    def simulate(self, raw: bytes) -> Simulation:
        """Fee and validity of a signed transaction against the current state, without applying it."""
        reply = self._call(
            self._stub.SimulateTransaction, node_pb2.SimulateTransactionRequest(transaction=raw)
        )
        return Simulation(
            hash=reply.transaction_hash,
            valid=reply.valid,
            code=reply.code,
            reason=reply.reason,
            fee=reply.fee,
            minimum_fee=reply.minimum_fee,
            events=tuple(_event(event) for event in reply.events),
        )

    def sign(
        self, keypair: Keypair, call: Message, *, fee: int | None = None, nonce: int | None = None
    ) -> SignedTransaction:
        """Sign any call (e.g. types_pb2.Transfer(...)) for this node's chain: minimum fee and next nonce unless given."""
        _checked_call(call)
        fee, nonce = _optional_u64(fee, "fee"), _optional_u64(nonce, "nonce")
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
        name = _checked_call(call)
        if nonce is None:
            signed, attempts = self._submit_at_free_nonce(keypair, call, fee)
        else:
            signed, attempts = self.sign(keypair, call, fee=fee, nonce=nonce), 1
            self.submit_raw(signed.raw)
        inclusion = self.wait_for_inclusion(signed.hash, timeout) if wait else None
        return Submission(signed.hash, name, signed.nonce, signed.fee, inclusion, attempts)

    def _submit_at_free_nonce(
        self, keypair: Keypair, call: Message, fee: int | None
    ) -> tuple[SignedTransaction, int]:
        contended = time.monotonic() - self._last_nonce_conflict < CONTENTION_MEMORY_S
        tried, refusal = None, None
        for attempt in range(1, NONCE_ATTEMPTS + 1):
            if contended:
                time.sleep(_contention_delay(attempt))
            nonce = self.next_nonce(keypair.public_key)
            if refusal is not None:
                if nonce == tried:
                    raise refusal  # the next free nonce did not move: the refusal was not about it
                self._last_nonce_conflict = time.monotonic()
            signed = self.sign(keypair, call, fee=fee, nonce=nonce)
            try:
                self.submit_raw(signed.raw)
                return signed, attempt
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
        nonce = _optional_u64(nonce, "nonce")
        account = self.account(keypair.public_key)
        intended = account.next_nonce if nonce is None else nonce
        return self.simulate(self.sign(keypair, call, fee=fee, nonce=min(intended, account.nonce)).raw)

    def sign_transfer(
        self, keypair: Keypair, dest: AccountLike, amount: int, *, fee: int | None = None, nonce: int | None = None
    ) -> SignedTransaction:
        """A signed balances transfer (sign() of a types_pb2.Transfer)."""
        return self.sign(keypair, _transfer(dest, amount), fee=fee, nonce=nonce)

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
        return self.submit(keypair, _transfer(dest, amount), wait=wait, timeout=timeout, fee=fee, nonce=nonce)

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
            return _proven_inclusion(transaction_hash, reply)
        receipt = _receipt(reply.receipt) if reply.HasField("receipt") else None
        return TransactionStatus(
            hash=reply.transaction_hash or transaction_hash,
            status=_STATUS_NAMES.get(reply.status, "unknown"),
            height=reply.height,
            block_hash=reply.block_hash,
            index=reply.index,
            receipt=receipt,
            reason=reply.reason,
            raw=reply.transaction,
        )

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
                included = _inclusion_from_event(transaction_hash, event)
                if included is not None:
                    return included
                # Not in this block: it may have been dropped from the pool meanwhile.
                status = self.transaction(transaction_hash)
                if self._settled(status) is not None:
                    return status
                if time.monotonic() >= deadline:
                    return None
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise self._translate(error, remaining) from None
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
        """A block by height or hash (neither: the best block), its hash and transactions root checked."""
        if height is not None and hash is not None:
            raise ClientError("INVALID_ARGUMENT", "give a block height or a block hash, not both")
        if height is not None:
            request = node_pb2.GetBlockRequest(height=height)
        elif hash is not None:
            request = node_pb2.GetBlockRequest(hash=hash)
        else:
            request = node_pb2.GetBlockRequest()
        reply = self._call(self._stub.GetBlock, request)
        block = _block(reply.block_hash, reply.block, reply.receipts)
        if hash is not None and block.hash != hash:
            raise ProofError(f"asked for block {hash.hex()}, the node sent block {block.hash.hex()}")
        if height is not None and block.height != height:
            raise ProofError(f"asked for block {height}, the node sent block {block.height}")
        return block

    def subscribe_blocks(self, from_height: int = 0) -> Iterator[Block]:
        """Finalized blocks from `from_height` (0: the next new one) on, as they come; close() to stop."""
        stream = self._stub.SubscribeBlocks(node_pb2.SubscribeBlocksRequest(from_height=from_height))
        try:
            for event in stream:
                yield _block(event.block_hash, event.block, event.receipts)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                raise self._translate(error, None) from None
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
            raise self._translate(error, timeout) from None

    def _translate(self, error: grpc.RpcError, timeout: float | None) -> ClientError:
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        details = (error.details() if hasattr(error, "details") else "") or ""
        if code == grpc.StatusCode.UNAVAILABLE:
            return ClientError(code.name, self._unavailable_message(details))
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            within = "in time" if timeout is None else f"within {timeout:g} s"
            return ClientError(code.name, f"the node at {self.target} did not answer {within}")
        if code == grpc.StatusCode.UNIMPLEMENTED:
            # A gRPC server without our service, or an HTTP/2 server ("http2 header with status: 404").
            return ClientError(code.name, f"{self.target} answered, but does not serve this inferchain call "
                                          f"({details}): is it an inferchain node, and one as new as this client?")
        return ClientError(code.name, details or f"the node at {self.target} answered {code.name}")

    def _unavailable_message(self, details: str) -> str:
        # gRPC words every failed connection "failed to connect to all addresses; last error: ...":
        # the last error tells nothing listening from something listening that is not a gRPC node.
        lowered = details.lower()
        api_hint = f"the API is on the node's --rpc-port, default {DEFAULT_TARGET.rsplit(':', 1)[1]}"
        if "connection refused" in lowered:
            return f"cannot connect to a node at {self.target}: connection refused (is `inferchain node` running there?)"
        if "failed to connect to all addresses" in lowered and "http/2" in lowered:
            return (f"{self.target} answered, but not as an inferchain gRPC node "
                    f"(is it the Prometheus port or another HTTP server? {api_hint})")
        if "failed to connect to all addresses" in lowered and ("socket closed" in lowered or "reset by peer" in lowered):
            return f"{self.target} accepted the connection and closed it without answering gRPC ({api_hint})"
        if "resolving" in lowered or "dns" in lowered:
            return f"cannot connect to a node at {self.target}: the host name does not resolve"
        return f"the node at {self.target} is unavailable: {details}"


# --- decoding and checking what the node sends -------------------------------------


def _checked_call(call: Message) -> str:
    """The call's `TransactionBody` field name, after its module's stateless checks; ClientError otherwise."""
    try:
        name = call_field(call)
    except ValueError as error:
        raise ClientError("INVALID_ARGUMENT", str(error)) from None
    spec = RUNTIME.calls.get(name)
    if spec is None:
        raise ClientError("INVALID_ARGUMENT", f"the runtime has no {name!r} call")
    try:
        spec.check(call)
    except DispatchError as error:
        # It could never succeed: refuse it before it costs a fee.
        raise ClientError("INVALID_ARGUMENT", f"{name} refused: {error.message}") from None
    return name


def _contention_delay(attempt: int) -> float:
    """How long a try waits while other submitters race for the same account's nonces."""
    return CONTENTION_STEP_S * max(0, CONTENTION_PRIORITY_LEVELS - attempt)


def _transfer(dest: AccountLike, amount: int) -> types_pb2.Transfer:
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= U64_MAX:
        raise ClientError("INVALID_ARGUMENT", f"amount must be a positive integer below 2^64, got {quote_input(amount)}")
    return transfer_call(_account_id(dest), amount)


def _optional_u64(value: int | None, what: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= U64_MAX:
        raise ClientError("INVALID_ARGUMENT", f"{what} must be an integer from 0 to 2^64-1, got {quote_input(value)}")
    return value


def _account_id(account) -> bytes:
    try:
        return account_id(account)
    except KeyResolutionError as error:
        raise ClientError("INVALID_ARGUMENT", str(error)) from None


def _proven_account_info(public_key: bytes, reply: node_pb2.GetAccountResponse) -> state_pb2.AccountInfo | None:
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


def _event(event: types_pb2.Event) -> Event:
    return Event(event.module, event.name, tuple((a.key, a.value) for a in event.attributes))


def _receipt(receipt: types_pb2.Receipt) -> Receipt:
    return Receipt(
        transaction_hash=receipt.transaction_hash,
        success=receipt.success,
        fee_paid=receipt.fee_paid,
        error_module=receipt.error_module,
        error_name=receipt.error_name,
        error_message=receipt.error_message,
        events=tuple(_event(event) for event in receipt.events),
    )


def _decoded_header(raw: bytes, block_hash: bytes) -> types_pb2.Header:
    try:
        return decode_header(raw)
    except EncodingError as error:
        raise ProofError(f"the header of block {block_hash.hex()} is unusable: {error}") from None


def _proven_inclusion(transaction_hash: bytes, reply: node_pb2.GetTransactionResponse) -> TransactionStatus:
    """The inclusion and receipt that the reply proves against its block hash; ProofError otherwise."""
    where = f"transaction {transaction_hash.hex()}"
    sent = hashing.transaction_hash(reply.transaction)
    if reply.transaction_hash not in (b"", transaction_hash) or sent != transaction_hash:
        raise ProofError(f"asked for {where}, the node sent another transaction")
    if hashing.blake2b_256(reply.header) != reply.block_hash:
        raise ProofError(f"block hash {reply.block_hash.hex()} is not the hash of the header sent for {where}")
    header = _decoded_header(reply.header, reply.block_hash)
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
        receipt=_receipt(receipt),
        raw=reply.transaction,
    )


def _block(block_hash: bytes, block: types_pb2.Block, receipts: types_pb2.BlockReceipts) -> Block:
    """Decode a block and check its hash, transactions root and receipts root against its own bytes."""
    if hashing.blake2b_256(block.header) != block_hash:
        raise ProofError(f"block hash {block_hash.hex()} is not the hash of the header sent")
    header = _decoded_header(block.header, block_hash)
    hashes = tuple(hashing.transaction_hash(raw) for raw in block.transactions)
    if hashing.transactions_root(list(hashes)) != header.transactions_root:
        raise ProofError(f"the transactions of block {header.height} do not match its transactions root")
    if hashing.receipts_root(receipts) != header.receipts_root:
        raise ProofError(f"the receipts of block {header.height} do not match its receipts root")
    return Block(
        hash=block_hash,
        height=header.height,
        chain_id=header.chain_id,
        time_ms=header.time_ms,
        parent_hash=header.parent_hash,
        state_root=header.state_root,
        transactions_root=header.transactions_root,
        receipts_root=header.receipts_root,
        proposer=header.proposer,
        header=block.header,
        transactions=tuple(block.transactions),
        transaction_hashes=hashes,
        receipts=tuple(_receipt(receipt) for receipt in receipts.transactions),
        block_events=tuple(_event(event) for event in receipts.block_events),
    )


def _inclusion_from_event(transaction_hash: bytes, event: node_pb2.BlockEvent) -> TransactionStatus | None:
    for index, raw in enumerate(event.block.transactions):
        if hashing.transaction_hash(raw) != transaction_hash:
            continue
        receipts = event.receipts.transactions
        receipt = _receipt(receipts[index]) if index < len(receipts) else None
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


def describe_transaction(raw: bytes) -> TransactionSummary:
    """The sender, nonce, fee and call of signed transaction bytes; ClientError when they do not decode."""
    try:
        body = types_pb2.TransactionBody.FromString(types_pb2.Transaction.FromString(raw).body)
    except DecodeError:
        raise ClientError("INVALID_ARGUMENT", "the bytes are not a signed transaction") from None
    call = body.WhichOneof("call") or ""
    summary = TransactionSummary(hashing.transaction_hash(raw), body.sender, body.nonce, body.fee, call)
    if call == "transfer":
        return TransactionSummary(
            summary.hash, body.sender, body.nonce, body.fee, call, body.transfer.dest, body.transfer.amount
        )
    return summary


def decode_hash(text: str, what: str = "hash") -> bytes:
    """32 bytes from 64 hex digits (0x optional); ClientError otherwise."""
    digits = text.strip()
    digits = digits[2:] if digits.lower().startswith("0x") else digits
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ClientError("INVALID_ARGUMENT", f"{text!r} is not a {what} (64 hex digits)")
    return raw


__all__ = [
    "Account",
    "Block",
    "ChainInfo",
    "Client",
    "ClientError",
    "Event",
    "InclusionTimeout",
    "ProofError",
    "Receipt",
    "Simulation",
    "TransactionRejected",
    "TransactionStatus",
    "TransactionSummary",
    "Submission",
    "Verdict",
    "decode_hash",
    "describe_transaction",
]
