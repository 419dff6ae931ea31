"""system: accounts and nonces, transaction fees, the chain's identity and clock, block hooks.

Shape (as every runtime module): params, storage keys, errors, events, calls, hooks, genesis,
and the module's declaration for the registry at the end.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from proto import state_pb2, types_pb2
from runtime import weights
from runtime.arithmetic import U64_MAX
from runtime.block import LIMITS, BlockLimits
from runtime.module import (
    ACCOUNT,
    AMOUNT,
    INTEGER,
    EventSpec,
    GenesisContext,
    GenesisInvalid,
    GenesisSpec,
    ModuleSpec,
    ParamsSpec,
    QuerySpec,
    check_section_keys,
    params_query,
)
from runtime.params import decode_params, encode_params, params_from_json, params_to_json
from runtime.primitives import BlockContext, DispatchError, make_event
from runtime.state import IterableState, Overlay, StateReader

MODULE = "system"

# --- params -------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """Fee and size rules for transactions, set at genesis."""

    base_fee: int = 1_000
    fee_per_byte: int = 10
    max_transaction_bytes: int = 65_536
    # Base units per million weight units (one millisecond of reference execution, runtime/weights.py): a
    # transfer (0.29 ms declared, mostly its signature) pays 1,435 more, a PostJob (9.7 ms, every offer of the
    # model read) about 48,500, so a block full of any call pays alike for the block time it takes
    # (docs/economics.md, "Work per block").
    fee_per_weight: int = 5_000

    def validate(self) -> None:
        for name, value in asdict(self).items():
            if not 0 <= value <= U64_MAX:
                raise ValueError(f"system.params.{name} must be an integer in [0, 2^64), got {value}")
        if self.max_transaction_bytes < 128:
            raise ValueError("system.params.max_transaction_bytes must be at least 128")

    def minimum_fee(self, transaction_bytes: int, weight: int) -> int:
        """The least fee a transaction of this many bytes and this declared weight must offer."""
        return minimum_fee(self.base_fee, self.fee_per_byte, transaction_bytes, self.fee_per_weight, weight)


# fee_per_weight is priced per this many weight units (one millisecond of reference execution).
WEIGHT_FEE_UNIT = 1_000_000


def minimum_fee(base_fee: int, fee_per_byte: int, transaction_bytes: int, fee_per_weight: int = 0,
                weight: int = 0) -> int:
    """The fee rule, the one copy clients and the pool share: base_fee + fee_per_byte x the serialised size
    + fee_per_weight x the transaction's declared weight (runtime/executive.py transaction_weight) in millions,
    rounded up."""
    return base_fee + fee_per_byte * transaction_bytes + -(-fee_per_weight * weight // WEIGHT_FEE_UNIT)


# --- storage keys ---------------------------------------------------------------

ACCOUNT_PREFIX = b"system/account/"
CHAIN_KEY = b"system/chain"
SUPPLY_KEY = b"system/supply"
PARAMS_KEY = b"system/params"

PARAMS = ParamsSpec(Params, state_pb2.SystemParams, PARAMS_KEY)


def account_key(account: bytes) -> bytes:
    """Where an account's nonce and balances are stored: the prefix, then the raw 32-byte id."""
    return ACCOUNT_PREFIX + account


# --- errors ---------------------------------------------------------------------


class SystemDispatchError(DispatchError):
    """The system module's errors: a block's height or time that does not follow its parent's."""

    module = MODULE


class InvalidBlockHeight(SystemDispatchError):
    """The block does not follow the chain's current height."""


class TimeWentBackwards(SystemDispatchError):
    """A block's time is not later than its parent's."""


class CallFailed(SystemDispatchError):
    """A call's handler raised an error no rule declares (a bug in the runtime): the transaction fails, keeping its
    fee, and nothing the call did is kept (runtime/executive.py, HANDLER_BUGS)."""


# --- events ---------------------------------------------------------------------

EVENTS = (
    EventSpec("NewAccount", "An account was stored for the first time.", {"account": ACCOUNT}),
    EventSpec("FeesPaid", "The block's transaction fees reached its author.", {"author": ACCOUNT, "amount": AMOUNT}),
)


def new_account_event(account: bytes) -> types_pb2.Event:
    return make_event(MODULE, "NewAccount", account=account.hex())


def fees_paid_event(author: bytes, amount: int) -> types_pb2.Event:
    return make_event(MODULE, "FeesPaid", author=author.hex(), amount=amount)


# --- storage access -------------------------------------------------------------


def read_account(state: StateReader, account: bytes) -> state_pb2.AccountInfo | None:
    """The stored account, or None when it has never existed."""
    raw = state.get(ACCOUNT_PREFIX + account)
    if raw is None:
        return None
    return state_pb2.AccountInfo.FromString(raw)


def write_account(state: Overlay, account: bytes, info: state_pb2.AccountInfo) -> None:
    state.set(ACCOUNT_PREFIX + account, info.SerializeToString(deterministic=True))


def read_params(state: StateReader) -> Params:
    return decode_params(PARAMS, state.get(PARAMS_KEY))


def read_chain(state: StateReader) -> state_pb2.ChainState:
    return state_pb2.ChainState.FromString(state.get(CHAIN_KEY))


def read_supply(state: StateReader) -> state_pb2.SupplyInfo:
    return state_pb2.SupplyInfo.FromString(state.get(SUPPLY_KEY))


def add_issuance(state: Overlay, amount: int) -> None:
    """Record `amount` created at genesis in the total issuance."""
    supply = read_supply(state)
    supply.total_issuance += amount
    if supply.total_issuance > U64_MAX:
        raise GenesisInvalid("the total issuance does not fit in 64 bits")
    state.set(SUPPLY_KEY, supply.SerializeToString(deterministic=True))


def record_burn(state: Overlay, amount: int) -> None:
    """Count `amount` destroyed (the caller took it from a balance) in the supply's burned figure."""
    supply = read_supply(state)
    supply.burned += amount
    state.set(SUPPLY_KEY, supply.SerializeToString(deterministic=True))


# --- calls (none) / fee handling --------------------------------------------------


def charge_fee(state: Overlay, sender: bytes, account: state_pb2.AccountInfo, fee: int) -> None:
    """Take the fee and bump the nonce; the fee reaches the author in on_finalize."""
    account.free -= fee
    account.nonce += 1
    write_account(state, sender, account)


def credit(state: Overlay, account: bytes, amount: int) -> None:
    """Add to an account's free balance, creating the account if needed."""
    info = read_account(state, account)
    if info is None:
        info = state_pb2.AccountInfo()
        state.deposit_event(new_account_event(account))
    info.free += amount
    write_account(state, account, info)


# --- hooks ----------------------------------------------------------------------


def on_initialize(state: Overlay, block: BlockContext) -> None:
    """Advance the chain's height and clock to the block's, checking both."""
    chain = read_chain(state)
    if block.height != chain.height + 1:
        raise InvalidBlockHeight(f"block height {block.height} does not follow the chain's height {chain.height}")
    if block.time_ms <= chain.time_ms:
        raise TimeWentBackwards(f"block time {block.time_ms} ms is not after its parent's {chain.time_ms} ms")
    chain.height = block.height
    chain.time_ms = block.time_ms
    state.set(CHAIN_KEY, chain.SerializeToString(deterministic=True))


def enter_next_block(state: Overlay) -> None:
    """Move the chain's height to the next block's and its clock to the earliest that block may have: what a
    transaction's dry run sees (runtime/executive.py)."""
    chain = read_chain(state)
    chain.height += 1
    chain.time_ms += 1
    state.set(CHAIN_KEY, chain.SerializeToString(deterministic=True))


def on_finalize(state: Overlay, block: BlockContext, fees: int) -> None:
    """Pay the block's fees to its author."""
    if fees:
        credit(state, block.author, fees)
        state.deposit_event(fees_paid_event(block.author, fees))


def hooks_weight(state: StateReader, block: BlockContext) -> int:
    """on_initialize reads and writes the chain record; on_finalize credits the author."""
    return 2 * weights.READ + 2 * weights.WRITE


# --- genesis --------------------------------------------------------------------


@dataclass(frozen=True)
class GenesisConfig:
    chain_id: str
    genesis_hash: bytes
    genesis_time_ms: int
    initial_height: int
    params: Params
    block_limits: BlockLimits = BlockLimits()


def parse_genesis(section: Mapping[str, Any], context: GenesisContext) -> GenesisConfig:
    """`app_state.system`: {"params": {...}}."""
    check_section_keys(section, ("params",), "app_state.system")
    params = params_from_json(PARAMS, section.get("params", {}), "app_state.system.params")
    return GenesisConfig(context.chain_id, context.genesis_hash, context.genesis_time_ms, context.initial_height, params,
                         context.block_limits or BlockLimits())


def genesis(state: Overlay, config: GenesisConfig) -> None:
    """Write the chain identity and parameters, and an empty supply that other modules add to."""
    config.params.validate()
    chain = state_pb2.ChainState(
        chain_id=config.chain_id,
        genesis_hash=config.genesis_hash,
        height=config.initial_height - 1,
        time_ms=config.genesis_time_ms,
    )
    state.set(CHAIN_KEY, chain.SerializeToString(deterministic=True))
    state.set(PARAMS_KEY, encode_params(PARAMS, config.params))
    config.block_limits.validate()
    state.set(LIMITS.key, encode_params(LIMITS, config.block_limits))
    state.set(SUPPLY_KEY, state_pb2.SupplyInfo().SerializeToString(deterministic=True))


def export_genesis(state: IterableState, encode_account=bytes.hex) -> dict:
    """The `app_state.system` section that rebuilds this module's parameters."""
    return {"params": params_to_json(PARAMS, read_params(state))}


# --- queries --------------------------------------------------------------------


def query_block_limits(state: StateReader, request: state_pb2.NoArguments) -> state_pb2.BlockLimits:
    """What a block may hold (docs/protocol.md, "Block validity")."""
    return state_pb2.BlockLimits.FromString(state.get(LIMITS.key))


QUERIES = (
    params_query(PARAMS),
    QuerySpec(name="block_limits", doc="What a block may hold: bytes, transactions, evidence, weight.",
              request=state_pb2.NoArguments, response=state_pb2.BlockLimits, handler=query_block_limits,
              fields={"max_block_bytes": INTEGER, "max_block_transactions": INTEGER, "max_block_evidence": INTEGER,
                      "max_evidence_bytes": INTEGER, "max_block_weight": INTEGER}),
)


# --- declaration ----------------------------------------------------------------

SPEC = ModuleSpec(
    name=MODULE,
    doc="Accounts, nonces, fees, the chain's identity and clock.",
    params=PARAMS,
    genesis=GenesisSpec(parse=parse_genesis, build=genesis, export=export_genesis),
    events=EVENTS,
    errors=(InvalidBlockHeight, TimeWentBackwards, CallFailed),
    queries=QUERIES,
    on_initialize=on_initialize,
    on_finalize=on_finalize,
    hooks_weight=hooks_weight,
)
