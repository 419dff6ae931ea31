"""balances: free and reserved balances, transfers, the existential deposit.

Shape: params, storage keys (accounts live in system's account record, as in
Substrate), errors, events, calls, genesis.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from proto import state_pb2, types_pb2
from runtime import system
from runtime.arithmetic import U64_MAX
from runtime.primitives import DispatchError, make_event
from runtime.state import Overlay, StateReader

MODULE = "balances"

# --- params -------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """The least balance that creates a new account (so dust cannot bloat state)."""

    existential_deposit: int = 1_000_000

    def validate(self) -> None:
        if not 0 < self.existential_deposit <= U64_MAX:
            raise ValueError("balances.params.existential_deposit must be a positive 64-bit integer")


# --- storage keys ---------------------------------------------------------------

PARAMS_KEY = b"balances/params"


def read_params(state: StateReader) -> Params:
    return Params(**json.loads(state.get(PARAMS_KEY)))


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


def transfer_event(sender: bytes, dest: bytes, amount: int) -> types_pb2.Event:
    return make_event(MODULE, "Transfer", sender=sender.hex(), dest=dest.hex(), amount=amount)


# --- calls ----------------------------------------------------------------------


def transfer(state: Overlay, origin: bytes, call: types_pb2.Transfer) -> None:
    """Move `call.amount` from the origin's free balance to `call.dest`."""
    amount = call.amount
    dest = call.dest
    if len(dest) != 32:
        raise InvalidDestination(f"destination must be a 32-byte account id, got {len(dest)} bytes")
    if amount == 0:
        raise ZeroAmount("transfer amount must be positive")
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


def transfer_cost(call: types_pb2.Transfer) -> int:
    """What the call spends from the sender beside the fee (checked before queueing)."""
    return call.amount


# --- genesis --------------------------------------------------------------------


@dataclass(frozen=True)
class GenesisConfig:
    params: Params
    # (account id, free balance), in genesis order.
    balances: tuple[tuple[bytes, int], ...]

    @property
    def total_issuance(self) -> int:
        return sum(amount for _, amount in self.balances)


def genesis(state: Overlay, config: GenesisConfig) -> None:
    """Write the parameters and the endowed accounts."""
    config.params.validate()
    state.set(PARAMS_KEY, json.dumps(asdict(config.params), sort_keys=True).encode())
    seen: set[bytes] = set()
    for account, amount in config.balances:
        if len(account) != 32:
            raise ValueError("balances.balances: every account must be a 32-byte public key")
        if account in seen:
            raise ValueError(f"balances.balances: account {account.hex()} is listed twice")
        if amount < config.params.existential_deposit:
            raise ValueError(f"balances.balances: {amount} is below the existential deposit")
        seen.add(account)
        system.write_account(state, account, state_pb2.AccountInfo(free=amount))
    if config.total_issuance > U64_MAX:
        raise ValueError("balances.balances: the total issuance does not fit in 64 bits")
