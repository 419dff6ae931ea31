"""The brake on dispute slashing: the validators with more than 2/3 of the current set's voting power may stop it.

Every live slashing system keeps a brake (EigenLayer's resolution delay and pause flag, Arbitrum
BoLD's grace period) because bugs have slashed honest operators (Pocket). Here a validator of the
current set pulls the brake with SlashingBrake{engage: true} and lets go with engage false; the brake
holds while 3 x (the voting power of the current set's validators that pull it) > 2 x (the set's
voting power): the supermajority that finalizes blocks, which could halt the chain anyway, so the
brake gives it no new power. A record of an account that left the set counts nothing (it counts
again if the account returns). While the brake holds, `penalties.slash` and `burn_bond` record a
dispute offence as punished, taking nothing; a double-sign is punished as ever (consensus safety).

Whether it holds is decided at the start of each block (the set changes at epoch boundaries, in
staking's on_finalize) and after each SlashingBrake, and stored (storage.BRAKE_ENGAGED_KEY), so a
slash reads one key rather than the whole set.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.primitives import BlockContext
from runtime.slashing import events
from runtime.slashing.storage import brake_engaged, brake_pulled, brake_records, write_brake_engaged
from runtime.staking.storage import read_validator_set
from runtime.state import Overlay, StateReader


@dataclass(frozen=True)
class BrakeTally:
    """The current set's validators that pull the brake (sorted), their voting power, and the set's."""

    validators: tuple[bytes, ...]
    engaged_power: int
    total_power: int

    @property
    def engaged(self) -> bool:
        return 3 * self.engaged_power > 2 * self.total_power

    @property
    def threshold(self) -> int:
        """The least voting power that holds the brake: more than 2/3 of the set's."""
        return 2 * self.total_power // 3 + 1

    def describe(self) -> str:
        """The engaged power against the threshold, for a refusal's message."""
        state = "engaged" if self.engaged else "not engaged"
        return (f"validators with {self.engaged_power} of {self.total_power} voting power pull the brake, which holds "
                f"from {self.threshold} (more than 2/3): it is {state}")


def tally(state: StateReader) -> BrakeTally:
    """Who of the current set pulls the brake, and with how much voting power (one read per validator)."""
    validator_set = read_validator_set(state).validators
    if not validator_set or not brake_records(state):
        return BrakeTally((), 0, sum(validator.voting_power for validator in validator_set))
    pulling = [validator for validator in validator_set if brake_pulled(state, validator.public_key)]
    return BrakeTally(
        tuple(sorted(validator.public_key for validator in pulling)),
        sum(validator.voting_power for validator in pulling),
        sum(validator.voting_power for validator in validator_set),
    )


def engaged(state: StateReader) -> bool:
    """Whether the validators pulling the brake hold more than 2/3 of the current set's voting power."""
    return tally(state).engaged


def braked(state: StateReader) -> bool:
    """Whether dispute slashing is stopped now: the brake as decided at the start of this block or since."""
    return brake_engaged(state)


def decide(state: Overlay, now: BrakeTally) -> None:
    """Store whether the brake holds; BrakeEngaged or BrakeReleased when that changed."""
    if now.engaged == brake_engaged(state):
        return
    write_brake_engaged(state, now.engaged)
    name = events.BRAKE_ENGAGED if now.engaged else events.BRAKE_RELEASED
    state.deposit_event(events.event(name, engaged_power=now.engaged_power, total_power=now.total_power))


def on_initialize(state: Overlay, block: BlockContext) -> None:
    """Decide the brake against the current set, which may have changed at the epoch boundary just passed (with no
    record it is released already: the release that removed the last one decided it)."""
    if brake_records(state):
        decide(state, tally(state))
