"""slashing weights: the double-sign hook and the brake's, the unjail and slashing_brake calls, and a slash, for the
hooks of other modules that slash (runtime/weights.py holds the unit costs)."""

from __future__ import annotations

from proto import types_pb2
from runtime import staking, weights
from runtime.primitives import BlockContext
from runtime.slashing.storage import brake_records
from runtime.staking.weights import MAX_UNBONDING_CHUNKS
from runtime.state import StateReader

MAX_VALIDATORS = weights.MAX_VALIDATORS
# One slash: the offence key, the brake's flag, the ledger with its chunks, the slashing parameters, the staking totals, the
# offender's account (burn and supply), the jail, the record under two keys and the cursor, and the event.
SLASH = 7 * weights.READ + 8 * weights.WRITE + MAX_UNBONDING_CHUNKS * weights.LIST_ENTRY
# Each payee of a slash: the offender's and the payee's accounts read and written.
PAYEE = 2 * weights.READ + 2 * weights.WRITE


def slash(payees: int) -> int:
    """The declared weight of one `penalties.slash` (or `burn_bond`) that pays at most `payees` accounts."""
    return SLASH + payees * PAYEE


def unjail(call: types_pb2.Unjail) -> int:
    """The chain height and the ledger read, the ledger written."""
    return 2 * weights.READ + weights.WRITE


def brake_tally(validators: int) -> int:
    """The brake tallied over a set of `validators`: the set and the record count read, one record read each."""
    return 2 * weights.READ + validators * (weights.LIST_ENTRY + weights.READ)


# Deciding the brake: the flag read and written, and its event.
BRAKE_DECIDE = weights.READ + weights.WRITE


def slashing_brake(call: types_pb2.SlashingBrake) -> int:
    """The set read and searched, the sender's record and the count read and written, the brake tallied at the
    ceiling of validators and decided; a refusal tallies it once instead, for its message."""
    return (weights.READ + MAX_VALIDATORS * weights.LIST_ENTRY + 2 * weights.READ + 2 * weights.WRITE
            + brake_tally(MAX_VALIDATORS) + BRAKE_DECIDE)


def hooks_weight(state: StateReader, block: BlockContext) -> int:
    """on_initialize's declared weight: the brake's record count read, and while there are records the brake tallied
    over at most max_validators and decided; the offence record pruned; per piece of evidence, two
    signatures verified, the validator sets and the offence list read, the stake burned, the offender jailed, the
    record written."""
    validators = staking.read_params(state).max_validators
    brake = weights.READ
    if brake_records(state):
        brake += brake_tally(min(validators, MAX_VALIDATORS)) + BRAKE_DECIDE
    per_piece = (2 * weights.SIGNATURE + 8 * weights.READ + 6 * weights.WRITE + 4 * validators * weights.LIST_ENTRY
                 + 3 * weights.WRITE)
    return brake + 2 * weights.READ + weights.WRITE + len(block.evidence) * per_piece
