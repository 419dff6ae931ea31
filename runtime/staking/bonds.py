"""Bonds: free balance bonded as stake, unbonded over `unbonding_period_blocks`, then withdrawn.

Unbonding stake stays reserved for `unbonding_period_blocks`, longer than every challenge
window, so an offence found late can still be slashed (runtime/slashing/); and none is withdrawn
before the ledger's `locked_until`, which the jobs and disputes modules raise while a job the
account executed, or a dispute it sits on, can still prove an offence (lock_stake): an executor that
unbonds the moment it is assigned still has its stake when its forgery is judged.
"""

from __future__ import annotations

from proto import state_pb2, types_pb2
from runtime import balances, system
import runtime.staking.events as events
from runtime.primitives import CallContext
from runtime.staking.errors import (
    BelowMinimumBond,
    InsufficientBalance,
    NotBonded,
    NothingToWithdraw,
    OfferActive,
    TooManyUnbondingChunks,
    ZeroAmount,
)
from runtime.staking.params import read_params
from runtime.staking.storage import (
    CANDIDATES_KEY,
    add_totals,
    read_accounts,
    read_ledger,
    read_offer,
    write_accounts,
    write_ledger,
)
from runtime.state import Overlay, StateReader


def bond_cost(state: StateReader, call: types_pb2.Bond) -> int:
    """What a bond spends from the free balance: its amount."""
    return call.amount


def bond(state: Overlay, context: CallContext, call: types_pb2.Bond) -> None:
    """Bond `amount` more (0 only to change `validate`), and declare whether to validate."""
    origin = context.origin
    ledger = read_ledger(state, origin) or state_pb2.StakeLedger()
    if call.amount == 0 and call.validate == ledger.validate:
        raise ZeroAmount("bond amount must be positive (or change --validate)")
    params = read_params(state)
    new_bonded = ledger.bonded + call.amount
    if new_bonded < params.min_bond:
        raise BelowMinimumBond(f"bonded stake would be {new_bonded}, below the minimum bond {params.min_bond}")
    if call.amount:
        balances.reserve(state, origin, call.amount, InsufficientBalance)
    if call.validate != ledger.validate:
        candidates = set(read_accounts(state, CANDIDATES_KEY))
        (candidates.add if call.validate else candidates.discard)(origin)
        write_accounts(state, CANDIDATES_KEY, list(candidates))
    ledger.bonded = new_bonded
    ledger.validate = call.validate
    write_ledger(state, origin, ledger)
    add_totals(state, bonded_delta=call.amount)
    state.deposit_event(events.event(events.BONDED, account=origin.hex(), amount=call.amount, bonded=new_bonded))


def check_amount(call) -> None:
    """An unbond of nothing can never succeed."""
    if call.amount == 0:
        raise ZeroAmount("amount must be positive")


def unbond(state: Overlay, context: CallContext, call: types_pb2.Unbond) -> None:
    """Start unbonding `amount`; it stays reserved (and slashable) until its release height."""
    origin = context.origin
    check_amount(call)
    ledger = read_ledger(state, origin)
    have = 0 if ledger is None else ledger.bonded
    if call.amount > have:
        raise NotBonded(f"unbond of {call.amount} exceeds the bonded stake {have}")
    params = read_params(state)
    remaining = have - call.amount
    if remaining < params.min_bond:
        if read_offer(state, origin) is not None:
            raise OfferActive(
                f"unbonding leaves {remaining}, below the minimum bond {params.min_bond}, while an offer stands: "
                "clear the offer first"
            )
        if 0 < remaining:
            raise BelowMinimumBond(f"unbonding leaves {remaining}: unbond everything or keep at least {params.min_bond}")
    release = system.read_chain(state).height + params.unbonding_period_blocks
    if ledger.unbonding and ledger.unbonding[-1].release_height == release:
        ledger.unbonding[-1].amount += call.amount
    elif len(ledger.unbonding) >= params.max_unbonding_chunks:
        raise TooManyUnbondingChunks(
            f"{len(ledger.unbonding)} unbonding amounts already wait (the limit); withdraw released ones first"
        )
    else:
        ledger.unbonding.append(state_pb2.UnbondingChunk(amount=call.amount, release_height=release))
    ledger.bonded = remaining
    if remaining == 0 and ledger.validate:
        ledger.validate = False
        write_accounts(state, CANDIDATES_KEY, [a for a in read_accounts(state, CANDIDATES_KEY) if a != origin])
    write_ledger(state, origin, ledger)
    add_totals(state, bonded_delta=-call.amount, unbonding_delta=call.amount)
    state.deposit_event(events.event(events.UNBONDED, account=origin.hex(), amount=call.amount, release_height=release))


def withdraw_unbonded(state: Overlay, context: CallContext, call: types_pb2.WithdrawUnbonded) -> None:
    """Return every released unbonding amount to free balance (none while the stake is locked)."""
    origin = context.origin
    ledger = read_ledger(state, origin)
    height = system.read_chain(state).height
    released = [chunk for chunk in (ledger.unbonding if ledger else []) if chunk.release_height <= height]
    if released and height < ledger.locked_until:
        raise NothingToWithdraw(
            f"the stake is locked until height {ledger.locked_until} (this is {height}): a job this account executed "
            "or a dispute it sits on can still prove an offence until then"
        )
    if not released:
        pending = "" if not ledger or not ledger.unbonding else f"; the next release is at height {ledger.unbonding[0].release_height}"
        raise NothingToWithdraw(f"no unbonding amount is released at height {height}{pending}")
    amount = sum(chunk.amount for chunk in released)
    kept = [chunk for chunk in ledger.unbonding if chunk.release_height > height]
    del ledger.unbonding[:]
    ledger.unbonding.extend(kept)
    write_ledger(state, origin, ledger)
    balances.unreserve(state, origin, amount)
    add_totals(state, unbonding_delta=-amount)
    state.deposit_event(events.event(events.WITHDRAWN, account=origin.hex(), amount=amount))


def lock_stake(state: Overlay, account: bytes, until: int) -> None:
    """Keep the account's unbonding stake from being withdrawn before height `until` (never shortens a lock)."""
    ledger = read_ledger(state, account)
    if ledger is not None and until > ledger.locked_until:
        ledger.locked_until = until
        write_ledger(state, account, ledger)
