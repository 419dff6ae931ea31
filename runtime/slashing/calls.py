"""slashing calls: Unjail, which returns an account a dispute jailed to draws, committees and elections; SlashingBrake,
which a validator sends to pull or let go of the brake on dispute slashing (brake.py)."""

from __future__ import annotations

from proto import types_pb2
from runtime import system
from runtime.primitives import CallContext
from runtime.slashing import brake, events
from runtime.slashing.errors import AlreadyEngaged, NotEngaged, NotJailed, NotValidator, StillJailed
from runtime.slashing.storage import brake_pulled, write_brake_record
from runtime.staking.storage import read_ledger, read_validator_set, write_ledger
from runtime.state import Overlay


def check_unjail(call: types_pb2.Unjail) -> None:
    """Unjail carries no field, so nothing about it alone can fail; whether it may is the state's (the pool's dry
    run refuses it before a fee)."""


def unjail(state: Overlay, context: CallContext, call: types_pb2.Unjail) -> None:
    """Clear the sender's jail, at or after the height its jail ends."""
    origin = context.origin
    ledger = read_ledger(state, origin)
    height = system.read_chain(state).height
    if ledger is None or not ledger.jailed:
        term = "" if ledger is None or height >= ledger.jailed_until else (
            f"; its double-sign term keeps it out of elections below height {ledger.jailed_until} and ends by itself"
        )
        raise NotJailed(f"account {origin.hex()} is not jailed by a dispute, so there is nothing to unjail{term}")
    if height < ledger.jailed_until:
        raise StillJailed(
            f"account {origin.hex()} is jailed until height {ledger.jailed_until}; this is height {height}: "
            f"unjail at height {ledger.jailed_until} or later ({ledger.jailed_until - height} blocks from now)"
        )
    ledger.jailed = False
    write_ledger(state, origin, ledger)
    state.deposit_event(events.event(events.UNJAILED, account=origin.hex()))


def check_slashing_brake(call: types_pb2.SlashingBrake) -> None:
    """SlashingBrake carries one boolean, so nothing about it alone can fail; whether the sender may send it is the
    state's."""


def slashing_brake(state: Overlay, context: CallContext, call: types_pb2.SlashingBrake) -> None:
    """Record (engage) or delete (release) the sender's pull on the brake; the brake holds while the current set's
    validators pulling it have more than 2/3 of its voting power."""
    origin = context.origin
    if all(validator.public_key != origin for validator in read_validator_set(state).validators):
        raise NotValidator(
            f"account {origin.hex()} is not in the current epoch's validator set, so it may not pull or release the "
            f"brake on slashing; {brake.tally(state).describe()}"
        )
    pulled = brake_pulled(state, origin)
    if call.engage and pulled:
        raise AlreadyEngaged(f"validator {origin.hex()} already pulls the brake; {brake.tally(state).describe()}")
    if not call.engage and not pulled:
        raise NotEngaged(f"validator {origin.hex()} does not pull the brake, so there is nothing to release; "
                         f"{brake.tally(state).describe()}")
    write_brake_record(state, origin, call.engage)
    after = brake.tally(state)
    state.deposit_event(events.event(
        events.BRAKE_VOTED, validator=origin.hex(), engage=str(call.engage).lower(),
        engaged_power=after.engaged_power, total_power=after.total_power,
    ))
    brake.decide(state, after)
