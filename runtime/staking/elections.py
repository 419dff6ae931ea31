"""Elections: the validator set, chosen at each epoch boundary from the bonded candidates.

The set signs the blocks of the next epoch; the previous epoch's set is kept so that evidence
from then is judged against the validators who signed (runtime/slashing/). Consensus never
changes its validators mid-epoch: a validator jailed now is left out of the next election.
"""

from __future__ import annotations

from proto import state_pb2, types_pb2
from runtime.primitives import BlockContext
import runtime.staking.events as events
from runtime.staking.params import Params, read_params
from runtime.staking.storage import (
    CANDIDATES_KEY,
    PREVIOUS_VALIDATOR_SET_KEY,
    TOTALS_KEY,
    VALIDATOR_SET_KEY,
    read_accounts,
    read_ledger,
    read_previous_validator_set,
    read_totals,
    read_validator_set,
)
from runtime.state import Overlay, StateReader


def epoch_of(height: int, params: Params) -> int:
    """The epoch whose validator set signs the block at `height` (elected at the end of block epoch × epoch_blocks)."""
    return (height - 1) // params.epoch_blocks


def epoch_starts(height: int, epoch_blocks: int) -> bool:
    """Whether the block at `height` is the first of an epoch after the first (epoch_of changes at it): where probes
    are posted (runtime/jobs/probes.py) and old sealed probes pruned (runtime/disputes/sealed.py)."""
    return height > 1 and (height - 1) % epoch_blocks == 0


def validator_set_at(state: StateReader, height: int, block_height: int, params: Params) -> types_pb2.ValidatorSet | None:
    """The set that signed at `height`, seen from the block at `block_height`: this epoch's or the last; else None."""
    epochs_back = epoch_of(block_height, params) - epoch_of(height, params)
    if epochs_back == 0:
        return read_validator_set(state)
    if epochs_back == 1:
        return read_previous_validator_set(state)
    return None


def jailed(ledger: state_pb2.StakeLedger | None, height: int) -> bool:
    """Whether the account is jailed at `height`: by a dispute until it unjails, or by a double-sign's term.

    Elections, executor draws and committees leave a jailed account out.
    """
    return ledger is not None and (ledger.jailed or height < ledger.jailed_until)


def elect_validators(state: StateReader, params: Params, height: int) -> types_pb2.ValidatorSet:
    """The top `max_validators` bonded, unjailed candidates by stake at `height` (ties: lower account id first)."""
    ranked = []
    for account in read_accounts(state, CANDIDATES_KEY):
        ledger = read_ledger(state, account)
        stake = 0 if ledger is None else ledger.bonded
        if stake >= params.min_bond and not jailed(ledger, height):
            ranked.append((-stake, account))
    ranked.sort()
    chosen = sorted((account, -negative) for negative, account in ranked[: params.max_validators])
    return types_pb2.ValidatorSet(
        validators=[types_pb2.Validator(public_key=account, voting_power=power) for account, power in chosen]
    )


def store_validator_set(state: Overlay, params: Params, height: int) -> types_pb2.ValidatorSet:
    """Elect the set at `height` and store it as the current one."""
    validator_set = elect_validators(state, params, height)
    state.set(VALIDATOR_SET_KEY, validator_set.SerializeToString(deterministic=True))
    return validator_set


def _rotate(state: Overlay, params: Params, height: int) -> None:
    # Evidence from the last epoch is judged against the set that signed then.
    state.set(PREVIOUS_VALIDATOR_SET_KEY, read_validator_set(state).SerializeToString(deterministic=True))
    validator_set = store_validator_set(state, params, height)
    epoch = height // params.epoch_blocks
    totals = read_totals(state)
    totals.epoch = epoch
    state.set(TOTALS_KEY, totals.SerializeToString(deterministic=True))
    total_power = sum(validator.voting_power for validator in validator_set.validators)
    state.deposit_event(
        events.event(events.VALIDATOR_SET_CHANGED, epoch=epoch, validators=len(validator_set.validators),
                     total_power=total_power)
    )


def on_finalize(state: Overlay, block: BlockContext, fees: int) -> None:
    """At each epoch boundary, choose the next epoch's validator set."""
    params = read_params(state)
    if block.height % params.epoch_blocks == 0:
        _rotate(state, params, block.height)
