"""balances: free and reserved balances, transfers, the existential deposit, the token's display.

Shape: params, storage keys (accounts live in system's account record, as in
Substrate), errors, events, calls, genesis, and the declaration for the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from proto import state_pb2, types_pb2
from runtime import system, weights
from runtime.arithmetic import U64_MAX
from runtime.module import (
    ACCOUNT,
    AMOUNT,
    INTEGER,
    CallSpec,
    EventSpec,
    GenesisContext,
    GenesisInvalid,
    GenesisSpec,
    ModuleSpec,
    ParamsSpec,
    QuerySpec,
    check_section_keys,
    params_query,
    require_id,
)
from runtime.params import decode_params, encode_params, params_from_json, params_to_json, parse_integer
from runtime.primitives import CallContext, DispatchError, make_event
from runtime.state import IterableState, Overlay, StateReader

MODULE = "balances"
MAX_GENESIS_ACCOUNTS = 100_000

# --- params -------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """The least balance that creates a new account (so dust cannot bloat state), and the token's display."""

    existential_deposit: int = 1_000_000
    token_symbol: str = "INFER"
    # 9 decimals: a u64 of base units holds up to 18,446,744,073.709551615 INFER, the supply cap
    # (docs/economics.md, "Token and supply"); at 18 decimals the whole supply was 18.45 INFER.
    token_decimals: int = 9

    def validate(self) -> None:
        if not 0 < self.existential_deposit <= U64_MAX:
            raise ValueError("balances.params.existential_deposit must be a positive 64-bit integer")
        if not (self.token_symbol.isascii() and self.token_symbol.isalnum() and 0 < len(self.token_symbol) <= 12):
            raise ValueError("balances.params.token_symbol must be 1 to 12 ASCII letters or digits")
        if not 0 <= self.token_decimals <= 19:
            # 10^19 is the first power of ten past 2^64: a larger unit could never be held.
            raise ValueError("balances.params.token_decimals must be between 0 and 19")


# --- storage keys ---------------------------------------------------------------

PARAMS_KEY = b"balances/params"
PARAMS = ParamsSpec(Params, state_pb2.BalancesParams, PARAMS_KEY)


def read_params(state: StateReader) -> Params:
    return decode_params(PARAMS, state.get(PARAMS_KEY))


# --- errors ---------------------------------------------------------------------


class BalancesError(DispatchError):
    module = MODULE


class InsufficientBalance(BalancesError):
    """The sender's free balance is smaller than the amount."""


class ExistentialDeposit(BalancesError):
    """A transfer to a new account is below the existential deposit."""


class InvalidDestination(BalancesError):
    """The destination is not a 32-byte account id."""


class ZeroAmount(BalancesError):
    """A transfer of nothing."""


# --- events ---------------------------------------------------------------------

TRANSFER = "Transfer"

EVENTS = (
    EventSpec(
        TRANSFER,
        "An amount moved from one account's free balance to another's.",
        {"sender": ACCOUNT, "dest": ACCOUNT, "amount": AMOUNT},
    ),
)


def transfer_event(sender: bytes, dest: bytes, amount: int) -> types_pb2.Event:
    return make_event(MODULE, TRANSFER, sender=sender.hex(), dest=dest.hex(), amount=amount)


# --- calls ----------------------------------------------------------------------


def check_transfer(call: types_pb2.Transfer) -> None:
    """What makes a transfer fail whatever the state: refused before it costs a fee."""
    if len(call.dest) != 32:
        raise InvalidDestination(f"destination must be a 32-byte account id, got {len(call.dest)} bytes")
    if call.amount == 0:
        raise ZeroAmount("transfer amount must be positive")


def transfer(state: Overlay, context: CallContext, call: types_pb2.Transfer) -> None:
    """Move `call.amount` from the origin's free balance to `call.dest`."""
    origin = context.origin
    check_transfer(call)
    amount = call.amount
    dest = call.dest
    sender_account = system.read_account(state, origin)
    if sender_account is None or sender_account.free < amount:
        free = 0 if sender_account is None else sender_account.free
        raise InsufficientBalance(f"transfer of {amount} exceeds the free balance {free}")
    dest_account = system.read_account(state, dest) if dest != origin else sender_account
    if dest_account is None:
        deposit = read_params(state).existential_deposit
        if amount < deposit:
            raise ExistentialDeposit(
                f"transfer of {amount} to a new account is below the existential deposit {deposit}"
            )

    if dest == origin:
        state.deposit_event(transfer_event(origin, dest, amount))
        return
    sender_account.free -= amount
    system.write_account(state, origin, sender_account)
    if dest_account is None:
        dest_account = state_pb2.AccountInfo()
        state.deposit_event(system.new_account_event(dest))
    dest_account.free += amount
    system.write_account(state, dest, dest_account)
    state.deposit_event(transfer_event(origin, dest, amount))


# --- reserves (used by staking, models and jobs) ----------------------------------


def reserve(state: Overlay, account: bytes, amount: int, error: type[DispatchError] = InsufficientBalance) -> None:
    """Move `amount` from the account's free to its reserved balance; raises `error` when free is short."""
    info = system.read_account(state, account)
    free = 0 if info is None else info.free
    if free < amount:
        raise error(f"{amount} exceeds the free balance {free}")
    info.free -= amount
    info.reserved += amount
    system.write_account(state, account, info)


def _take_reserved(state: StateReader, account: bytes, amount: int) -> state_pb2.AccountInfo:
    """The account with `amount` less reserved (not yet written); the caller's records say it is there."""
    info = system.read_account(state, account)
    if info is None or info.reserved < amount:
        raise ValueError(f"account {account.hex()} has less than {amount} reserved")
    info.reserved -= amount
    return info


def unreserve(state: Overlay, account: bytes, amount: int) -> None:
    """Move `amount` from reserved back to free."""
    info = _take_reserved(state, account, amount)
    info.free += amount
    system.write_account(state, account, info)


def repatriate_reserved(state: Overlay, source: bytes, dest: bytes, amount: int) -> None:
    """Move `amount` from `source`'s reserved to `dest`'s reserved balance (a held payment)."""
    system.write_account(state, source, _take_reserved(state, source, amount))
    target = system.read_account(state, dest)
    if target is None:
        target = state_pb2.AccountInfo()
        state.deposit_event(system.new_account_event(dest))
    target.reserved += amount
    system.write_account(state, dest, target)


def burn_reserved(state: Overlay, account: bytes, amount: int) -> None:
    """Destroy `amount` of the account's reserved balance, recorded in the supply's burned figure."""
    system.write_account(state, account, _take_reserved(state, account, amount))
    system.record_burn(state, amount)


def transfer_cost(state: StateReader, call: types_pb2.Transfer) -> int:
    """What the call spends from the sender beside the fee (checked before queueing)."""
    return call.amount


CALLS = (
    CallSpec(
        name="transfer",
        message=types_pb2.Transfer,
        doc="Move an amount from your free balance to another account.",
        handler=transfer,
        cost=transfer_cost,
        check=check_transfer,
        fields={"dest": ACCOUNT, "amount": AMOUNT},
        # Two accounts read and written, an event (and a NewAccount event for a new one).
        weight=lambda call: 2 * weights.READ + 2 * weights.WRITE,
    ),
)

# --- queries --------------------------------------------------------------------


def query_account(state: StateReader, request: state_pb2.AccountQuery) -> state_pb2.AccountInfo:
    """An account's nonce and free and reserved balances; KeyError when it has never existed."""
    account = system.read_account(state, require_id(request.account, "account"))
    if account is None:
        raise KeyError(f"account {request.account.hex()}")
    return account


QUERIES = (
    QuerySpec(name="account", doc="An account's nonce, free and reserved balances.", request=state_pb2.AccountQuery,
              response=state_pb2.AccountInfo, handler=query_account,
              fields={"account": ACCOUNT, "nonce": INTEGER, "free": AMOUNT, "reserved": AMOUNT}),
    params_query(PARAMS),
)

# --- genesis --------------------------------------------------------------------


@dataclass(frozen=True)
class GenesisConfig:
    params: Params
    # (account id, free balance), in genesis order.
    balances: tuple[tuple[bytes, int], ...]

    @property
    def total_issuance(self) -> int:
        return sum(amount for _, amount in self.balances)


def token_text(amount: int, params: Params) -> str:
    """`amount` base units in tokens, exactly, for messages: 10^9 at 9 decimals is '1.000000000 INFER'."""
    whole, fraction = divmod(amount, 10**params.token_decimals)
    digits = f"{whole}.{fraction:0{params.token_decimals}d}" if params.token_decimals else str(whole)
    return f"{digits} {params.token_symbol}"


def check_total_issuance(config: GenesisConfig) -> None:
    """Every balance, stake, escrow and payment is a share of the total issuance, so it must fit a u64.

    Nothing mints after genesis: a u64 supply bounds every sum of amounts the runtime forms.
    """
    total = config.total_issuance
    if total > U64_MAX:
        raise GenesisInvalid(
            f"app_state.balances.balances: the total issuance must be at most {U64_MAX} base units "
            f"(2^64-1, {token_text(U64_MAX, config.params)}), got {total} base units "
            f"({token_text(total, config.params)})"
        )


def parse_genesis(section: Mapping[str, Any], context: GenesisContext) -> GenesisConfig:
    """`app_state.balances`: {"params": {...}, "balances": [{"address", "amount", "name"?}, ...]}."""
    check_section_keys(section, ("params", "balances"), "app_state.balances")
    params = params_from_json(PARAMS, section.get("params", {}), "app_state.balances.params")
    entries = section.get("balances", [])
    if not isinstance(entries, list) or len(entries) > MAX_GENESIS_ACCOUNTS:
        raise GenesisInvalid(f"app_state.balances.balances must be a list of at most {MAX_GENESIS_ACCOUNTS} entries")
    endowed = tuple(_endowment(entry, f"app_state.balances.balances[{index}]", context) for index, entry in enumerate(entries))
    config = GenesisConfig(params=params, balances=endowed)
    check_total_issuance(config)
    return config


def _endowment(entry: Any, where: str, context: GenesisContext) -> tuple[bytes, int]:
    check_section_keys(entry, ("name", "address", "amount"), where)
    address = entry.get("address")
    if not isinstance(address, str):
        raise GenesisInvalid(f"{where}.address must be an address string")
    try:
        account = context.decode_account(address)
    except ValueError as error:
        raise GenesisInvalid(f"{where}.address: {error}") from None
    return account, parse_integer(entry.get("amount"), f"{where}.amount", unit="base units")


def genesis(state: Overlay, config: GenesisConfig) -> None:
    """Write the parameters and the endowed accounts, and add them to the total issuance."""
    config.params.validate()
    check_total_issuance(config)
    state.set(PARAMS_KEY, encode_params(PARAMS, config.params))
    seen: set[bytes] = set()
    for account, amount in config.balances:
        if len(account) != 32:
            raise GenesisInvalid("app_state.balances.balances: every account must be a 32-byte public key")
        if account in seen:
            raise GenesisInvalid(f"app_state.balances.balances: account {account.hex()} is listed twice")
        if amount < config.params.existential_deposit:
            raise GenesisInvalid(f"app_state.balances.balances: {amount} is below the existential deposit")
        seen.add(account)
        system.write_account(state, account, state_pb2.AccountInfo(free=amount))
    system.add_issuance(state, config.total_issuance)


def export_genesis(state: IterableState, encode_account=bytes.hex) -> dict:
    """The `app_state.balances` section: parameters, and every account's free balance in key order."""
    endowed = []
    for key, value in state.iter_prefix(system.ACCOUNT_PREFIX):
        account = key[len(system.ACCOUNT_PREFIX):]
        info = state_pb2.AccountInfo.FromString(value)
        endowed.append({"address": encode_account(account), "amount": str(info.free + info.reserved)})
    return {"params": params_to_json(PARAMS, read_params(state)), "balances": endowed}


# --- declaration ----------------------------------------------------------------

SPEC = ModuleSpec(
    name=MODULE,
    doc="Free and reserved balances, transfers, the existential deposit.",
    params=PARAMS,
    genesis=GenesisSpec(parse=parse_genesis, build=genesis, export=export_genesis,
                        default=lambda: GenesisConfig(Params(), ())),
    calls=CALLS,
    events=EVENTS,
    errors=(InsufficientBalance, ExistentialDeposit, InvalidDestination, ZeroAmount),
    queries=QUERIES,
)
