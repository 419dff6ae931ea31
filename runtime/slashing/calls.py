"""slashing calls: Unjail, which returns an account a dispute jailed to draws, committees and elections."""

from __future__ import annotations

from proto import types_pb2
from runtime import system
from runtime.primitives import CallContext
from runtime.slashing import events
from runtime.slashing.errors import NotJailed, StillJailed
from runtime.staking.storage import read_ledger, write_ledger
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
