"""The state transition function: check, validate and apply transactions and blocks.

`apply_block(state, header, transactions)` is deterministic: the same state and
block give the same writes, receipts and events on every machine. Stateless
checks (encoding, chain binding, signature) are in `check_transaction`, so a node
can run them once per transaction and cache the result; stateful validity (nonce,
fee, affordability) is in `validate_transaction`.

Every function that dispatches a call, runs a hook or reads a module's declaration takes the
`runtime` (runtime/registry.py) it executes: the registry's RUNTIME, which the node runs, unless
another is given (a test-only runtime with a module the chain does not have goes through this
same code).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence


from proto import types_pb2
from runtime import system, weights
from runtime.arithmetic import U64_MAX
from runtime.block import InvalidBlock, check_block_body, check_block_weight, read_block_limits
from runtime.encoding import EncodingError, decode_transaction
from runtime.hashing import transaction_hash
from runtime.primitives import (
    BlockContext,
    CallContext,
    CheckedTransaction,
    DispatchError,
    InvalidTransaction,
    TransactionNotYetValid,
    TransactionStale,
    TransactionUnpayable,
)
from runtime.registry import RUNTIME, Runtime
from runtime.signatures import verify_signature
from runtime.state import Overlay, StateReader

log = logging.getLogger("inferchain.runtime")

TRANSACTION_SIGNING_CONTEXT = b"inferchain/tx/v1"


@dataclass(frozen=True)
class TransactionRules:
    """What stateless and fee checks need, read once from state."""

    chain_id: str
    genesis_hash: bytes
    params: system.Params
    # A transaction declaring more weight than a whole block may hold can never be included.
    max_block_weight: int = U64_MAX


def transaction_rules(state: StateReader) -> TransactionRules:
    """The rules in force in `state`."""
    chain = system.read_chain(state)
    return TransactionRules(chain.chain_id, chain.genesis_hash, system.read_params(state),
                            read_block_limits(state).max_block_weight)


# --- weights --------------------------------------------------------------------


def call_weight(body: types_pb2.TransactionBody, *, runtime: Runtime = RUNTIME) -> int:
    """The declared weight of the body's call (its module's CallSpec.weight), from the call alone."""
    name = body.WhichOneof("call")
    return runtime.calls[name].weight(getattr(body, name))


def transaction_weight(body: types_pb2.TransactionBody, size: int, *, runtime: Runtime = RUNTIME) -> int:
    """A transaction's declared weight: its signature, the per-transaction work, its bytes, and its call's weight.

    A function of the transaction alone, so the pool, the proposer, every validator and the
    client (for the fee) compute the same number before anything is executed. The signature
    counts even where a node verified it in its pool already: a proposer may include
    transactions no other validator has seen.
    """
    return weights.SIGNATURE + weights.TRANSACTION + weights.BYTE * size + call_weight(body, runtime=runtime)


def check_weight_bounds(state: StateReader, *, runtime: Runtime = RUNTIME) -> None:
    """Refuse a genesis whose parameters exceed the ceilings the call weights are declared for (ValueError)."""
    staking_params = runtime.module("staking").read_params(state)
    jobs_params = runtime.module("jobs").read_params(state)
    weights.check_parameter_bounds(staking_params.max_executors_per_model, jobs_params.max_redundancy,
                                   jobs_params.max_prompt_bytes, staking_params.max_offer_models)


def hooks_weight(state: StateReader, block: BlockContext, *, runtime: Runtime = RUNTIME) -> int:
    """The declared weight of every module's on_initialize and on_finalize in `block`, from the parent state."""
    total = 0
    for module in runtime.modules:
        if module.on_initialize is None and module.on_finalize is None:
            continue
        total += weights.UNDECLARED_HOOKS if module.hooks_weight is None else module.hooks_weight(state, block)
    return total


# --- errors (system-level transaction validity) ---------------------------------


class MalformedTransaction(InvalidTransaction):
    """The bytes are not a transaction."""


class Oversized(InvalidTransaction):
    """The transaction is larger than the chain accepts."""


class WrongChain(InvalidTransaction):
    """The transaction is bound to another chain id or genesis."""


class BadSignature(InvalidTransaction):
    """The signature does not verify for the sender."""


class UnknownCall(InvalidTransaction):
    """The transaction carries no call this runtime knows."""


class InvalidCall(InvalidTransaction):
    """The call can never succeed whatever the state (its module's stateless check refused it)."""


class CallWouldFail(TransactionUnpayable):
    """Applied to the latest state the call fails; the pool refuses it rather than let it pay a fee for nothing."""


class FeeTooLow(InvalidTransaction):
    """The offered fee is below the chain's fee for this size and weight."""


class TooHeavy(InvalidTransaction):
    """The transaction declares more weight than a block may hold: no block can ever include it."""


class NoRoomInBlock(TransactionNotYetValid):
    """The block's weight so far leaves no room for this transaction's: it waits for a later block."""


class StaleNonce(TransactionStale):
    """The nonce was already used: a replay of an included transaction."""


class FutureNonce(TransactionNotYetValid):
    """The nonce skips ahead of the account's next nonce."""


class UnknownSender(TransactionUnpayable):
    """The sender has no account: nothing was ever sent to it."""


class CannotPayFee(TransactionUnpayable):
    """The sender's free balance does not cover the fee."""


class CannotAfford(TransactionUnpayable):
    """The sender's free balance does not cover the fee plus what the call spends."""


# --- transaction checks ---------------------------------------------------------


def check_transaction(raw: bytes, rules: TransactionRules, *, runtime: Runtime = RUNTIME) -> CheckedTransaction:
    """Stateless checks: size, encoding, chain binding, call, signature. Raises InvalidTransaction."""
    limit = rules.params.max_transaction_bytes
    if len(raw) > limit:
        raise Oversized(f"transaction is {len(raw)} bytes, the limit is {limit}")
    transaction, body = _decode(raw, runtime)
    if body.chain_id != rules.chain_id:
        raise WrongChain(f"transaction is for chain id {_short_text(body.chain_id)}, this chain is {rules.chain_id!r}")
    if body.genesis_hash != rules.genesis_hash:
        raise WrongChain(
            f"transaction is for genesis {_short_hex(body.genesis_hash)}, "
            f"this chain's genesis is {rules.genesis_hash.hex()}"
        )
    if len(body.sender) != 32:
        raise MalformedTransaction(f"sender must be a 32-byte public key, got {len(body.sender)} bytes")
    call = body.WhichOneof("call")
    spec = runtime.calls.get(call)
    if spec is None:
        raise UnknownCall("transaction carries no call" if call is None else f"unknown call {call!r}")
    try:
        spec.check(getattr(body, call))
    except DispatchError as error:
        raise InvalidCall(f"{error.module}.{error.name}: {error.message}") from None
    weight = transaction_weight(body, len(raw), runtime=runtime)
    if weight > rules.max_block_weight:
        raise TooHeavy(f"the transaction declares weight {weight}, more than a whole block may hold "
                       f"({rules.max_block_weight})")
    _verify_signature(body.sender, transaction.signature, transaction.body)
    return CheckedTransaction(
        hash=transaction_hash(raw), raw=raw, body=body, sender=body.sender, nonce=body.nonce, fee=body.fee
    )


def _short_text(text: str, limit: int = 64) -> str:
    # Error messages quote at most a prefix of what the sender wrote (HARDENING.md, "Answers out").
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}… ({len(text)} characters)"


def _short_hex(data: bytes, limit: int = 32) -> str:
    if not data:
        return "(none)"
    return data.hex() if len(data) <= limit else f"{data[:limit].hex()}… ({len(data)} bytes)"


def _decode(raw: bytes, runtime: Runtime) -> tuple[types_pb2.Transaction, types_pb2.TransactionBody]:
    # Only the canonical encoding is accepted: otherwise anyone relaying a transaction could
    # re-wrap it under a new hash (docs/protocol.md, "Canonical encoding").
    try:
        transaction, body = decode_transaction(raw, runtime.transaction_body)
    except EncodingError as error:
        raise MalformedTransaction(str(error)) from None
    if not transaction.body:
        raise MalformedTransaction("transaction has an empty body")
    return transaction, body


def _verify_signature(sender: bytes, signature: bytes, body: bytes) -> None:
    if len(signature) != 64:
        raise BadSignature(f"signature must be 64 bytes, got {len(signature)}")
    if not verify_signature(sender, signature, TRANSACTION_SIGNING_CONTEXT + body):
        raise BadSignature("signature does not verify for the sender's public key")


def validate_transaction(
    state: StateReader,
    checked: CheckedTransaction,
    rules: TransactionRules,
    *,
    allow_future: bool = False,
    for_pool: bool = True,
    weight: int | None = None,
    runtime: Runtime = RUNTIME,
) -> types_pb2.Receipt | None:
    """Stateful checks against `state`: sender, fee, nonce, affordability. Raises InvalidTransaction.

    The one home of the admission rules: the pool and block execution both call it, so
    what the pool admits a block can apply. With allow_future a nonce ahead of the
    account's is accepted (the pool holds it until the gap fills). The pool (for_pool)
    also refuses a call the sender cannot afford now, and a call at the account's next
    nonce that fails when applied to the latest state (inside a block such a call is
    included and fails, keeping the fee); it returns that dry run's receipt, events
    included, or None when the nonce is ahead and nothing was run. `weight` is the transaction's
    (transaction_weight), when the caller has it already.
    """
    weight = transaction_weight(checked.body, checked.size, runtime=runtime) if weight is None else weight
    minimum = rules.params.minimum_fee(checked.size, weight)
    if checked.fee < minimum:
        raise FeeTooLow(
            f"fee {checked.fee} is below the minimum {minimum} for {checked.size} bytes and weight {weight}"
        )
    account = system.read_account(state, checked.sender)
    if account is None:
        # Only an existing account can send: on a zero-fee chain an unknown sender would otherwise create
        # records for nothing (and once reached block execution with no account to charge).
        raise UnknownSender(
            f"sender {checked.sender.hex()} has no account on this chain, so it cannot pay the fee {checked.fee}; "
            "it must receive funds before it can send"
        )
    if checked.nonce < account.nonce:
        raise StaleNonce(f"nonce {checked.nonce} was already used; the account's next nonce is {account.nonce}")
    if checked.nonce > account.nonce and not allow_future:
        raise FutureNonce(f"nonce {checked.nonce} is ahead of the account's next nonce {account.nonce}")
    if account.free < checked.fee:
        raise CannotPayFee(f"free balance {account.free} cannot pay the fee {checked.fee}")
    if not for_pool:
        return None
    spend = call_cost(state, checked.body, runtime=runtime)
    if account.free < checked.fee + spend:
        raise CannotAfford(
            f"free balance {account.free} cannot pay the fee {checked.fee} plus {spend} spent by the call"
        )
    if checked.nonce != account.nonce:
        return None
    return _dry_run(state, checked, runtime)


def _dry_run(state: StateReader, checked: CheckedTransaction, runtime: Runtime) -> types_pb2.Receipt:
    """Apply the transaction alone to a throw-away layer over `state`; refuse it when its call fails there.

    Only at the account's next nonce: a queued later transaction may depend on what
    the earlier ones do, so it is judged when its turn comes. The call sees the chain
    at the next height, where a block would apply it, so its events (release heights,
    deadlines) are those the block will give; other modules' block hooks do not run.
    """
    receipt = apply_alone(state, checked, runtime=runtime)
    if not receipt.success:
        raise CallWouldFail(f"{receipt.error_module}.{receipt.error_name}: {receipt.error_message}")
    return receipt


def apply_alone(state: StateReader, checked: CheckedTransaction, *, runtime: Runtime = RUNTIME) -> types_pb2.Receipt:
    """The transaction's receipt when applied alone at the next height on a throw-away layer over `state`; no
    block hook runs (the pool's dry run, and SimulateTransaction after the stateful checks)."""
    scratch = Overlay(state)
    system.enter_next_block(scratch)
    return apply_transaction(scratch, checked, runtime=runtime)


def call_cost(state: StateReader, body: types_pb2.TransactionBody, *, runtime: Runtime = RUNTIME) -> int:
    """What the body's call spends from the sender beside the fee, under the rules in `state`."""
    name = body.WhichOneof("call")
    return runtime.calls[name].cost(state, getattr(body, name))


# --- applying -------------------------------------------------------------------

# What a handler's own bug raises, the same way on every node that runs the same code on the same state (no I/O,
# no memory pressure): a transaction that meets one fails as a refused call (system.CallFailed) instead of making
# every block that carries it impossible to build or import. A storage failure, MemoryError or RecursionError
# is not one of these and still stops the block (a node cannot know what the others computed).
HANDLER_BUGS = (ArithmeticError, AssertionError, AttributeError, LookupError, TypeError, ValueError)


def apply_transaction(
    block_state: Overlay, checked: CheckedTransaction, *, runtime: Runtime = RUNTIME
) -> types_pb2.Receipt:
    """Charge the fee and bump the nonce, then dispatch the call; a failed call keeps the fee.

    The caller has validated the transaction against `block_state` (nonce equal,
    fee payable), so charging cannot fail here.
    """
    account = system.read_account(block_state, checked.sender)
    system.charge_fee(block_state, checked.sender, account, checked.fee)
    receipt = types_pb2.Receipt(transaction_hash=checked.hash, fee_paid=checked.fee)
    call_state = block_state.child()
    name = checked.body.WhichOneof("call")
    try:
        context = CallContext(checked.sender, checked.nonce, checked.hash)
        runtime.calls[name].handler(call_state, context, getattr(checked.body, name))
    except DispatchError as error:
        return _failed(receipt, call_state, error)
    except HANDLER_BUGS as error:
        log.error("the %s call of transaction %s raised %s inside the runtime (a bug): it fails, keeping its fee",
                  name, checked.hash.hex(), type(error).__name__, exc_info=True)
        # Only the error's type goes into the receipt: its text may differ between nodes (an object's address).
        return _failed(receipt, call_state, system.CallFailed(
            f"the {name} call failed inside the runtime ({type(error).__name__}): a bug in this chain's code, not "
            "a rule of the call; nothing it did was kept"))
    receipt.success = True
    receipt.events.extend(call_state.take_events())
    call_state.commit()
    return receipt


def _failed(receipt: types_pb2.Receipt, call_state: Overlay, error: DispatchError) -> types_pb2.Receipt:
    call_state.discard()
    receipt.success = False
    receipt.error_module = error.module
    receipt.error_name = error.name
    receipt.error_message = error.message
    return receipt


class BlockExecution:
    """One block being applied: hooks first, then transactions one at a time, then hooks.

    A block producer calls `try_apply` for each candidate and leaves out those it
    refuses; an importer uses `apply_block`, which refuses the whole block instead.
    """

    def __init__(self, state: StateReader, block: BlockContext, rules: TransactionRules | None = None, *,
                 runtime: Runtime = RUNTIME):
        self.block = block
        self.runtime = runtime
        self.rules = rules or transaction_rules(state)
        # The hooks' declared weight, from the parent state, is counted before any transaction; `weight` is
        # the block's declared weight so far (docs/protocol.md, "Block validity", the weight rule).
        self.max_weight = read_block_limits(state).max_block_weight
        self.hooks_weight = hooks_weight(state, block, runtime=runtime)
        self.weight = self.hooks_weight
        self.state = Overlay(state)
        self.receipts = types_pb2.BlockReceipts()
        self.fees = 0
        try:
            for on_initialize in runtime.hooks("on_initialize"):
                on_initialize(self.state, block)
        except DispatchError as error:
            raise InvalidBlock(str(error)) from None
        self._initialize_events = self.state.take_events()

    def try_apply(self, checked: CheckedTransaction) -> types_pb2.Receipt:
        """Validate against the block's state so far and apply; InvalidTransaction leaves no trace.

        Raises NoRoomInBlock when the transaction would take the block past max_block_weight (a
        builder asks BlockSpace first; apply_block makes it the block's InvalidBlock).
        """
        weight = transaction_weight(checked.body, checked.size, runtime=self.runtime)
        if self.weight + weight > self.max_weight:
            raise NoRoomInBlock(
                f"it declares weight {weight}; with the block's {self.weight} so far (hooks {self.hooks_weight}) "
                f"it passes the limit {self.max_weight}"
            )
        validate_transaction(self.state, checked, self.rules, for_pool=False, weight=weight, runtime=self.runtime)
        receipt = apply_transaction(self.state, checked, runtime=self.runtime)
        self.receipts.transactions.append(receipt)
        self.fees += checked.fee
        self.weight += weight
        return receipt

    def finish(self) -> tuple[Overlay, types_pb2.BlockReceipts]:
        """Run the closing hooks; return the block's writes and receipts."""
        for on_finalize in self.runtime.hooks("on_finalize"):
            on_finalize(self.state, self.block, self.fees)
        self.receipts.block_events.extend(self._initialize_events)
        self.receipts.block_events.extend(self.state.take_events())
        return self.state, self.receipts


def apply_block(
    state: StateReader,
    block: BlockContext,
    transactions: Sequence[CheckedTransaction],
    rules: TransactionRules | None = None,
    *,
    runtime: Runtime = RUNTIME,
) -> tuple[Overlay, types_pb2.BlockReceipts]:
    """Apply a whole block to `state`; return its writes (an Overlay) and its receipts.

    Raises InvalidBlock when the header or any transaction breaks the rules; then
    nothing is written (the caller drops the overlay).
    """
    execution = BlockExecution(state, block, rules, runtime=runtime)
    for index, checked in enumerate(transactions):
        try:
            execution.try_apply(checked)
        except InvalidTransaction as error:
            raise InvalidBlock(f"transaction {index} ({checked.hash.hex()}) is invalid: {error}") from None
    return execution.finish()


def process_block(
    state: StateReader,
    block: types_pb2.Block,
    context: BlockContext,
    rules: TransactionRules | None = None,
    known: Callable[[bytes], CheckedTransaction | None] = lambda tx_hash: None,
    *,
    runtime: Runtime = RUNTIME,
) -> tuple[Overlay, types_pb2.BlockReceipts, list[CheckedTransaction]]:
    """Every block-validity rule the state can judge; the block's writes, receipts and checked transactions.

    In order, cheapest first: the size rules of runtime/block.py (no transaction of a block
    too large is decoded or verified), each transaction's stateless checks (`known` returns
    one this node already checked, by hash, so its signature is not verified twice), the
    weight rule (the hooks' declared weight plus every transaction's, before anything is
    executed), then apply_block: height and time, evidence, each transaction in order.
    `context` is read from the block's header. Raises InvalidBlock; nothing is written.
    """
    check_block_body(state, block)
    rules = rules or transaction_rules(state)
    checked = [_checked(raw, index, rules, known, runtime) for index, raw in enumerate(block.transactions)]
    check_block_weight(read_block_limits(state), hooks_weight(state, context, runtime=runtime),
                       [transaction_weight(tx.body, tx.size, runtime=runtime) for tx in checked])
    block_state, receipts = apply_block(state, context, checked, rules, runtime=runtime)
    return block_state, receipts, checked


def _checked(raw: bytes, index: int, rules: TransactionRules, known, runtime: Runtime) -> CheckedTransaction:
    cached = known(transaction_hash(raw))
    if cached is not None and cached.raw == raw:
        return cached
    try:
        return check_transaction(raw, rules, runtime=runtime)
    except InvalidTransaction as error:
        raise InvalidBlock(f"transaction {index} is invalid: {error}") from None
