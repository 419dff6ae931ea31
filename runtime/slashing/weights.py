"""slashing weights: the double-sign hook, the unjail call, and a slash, for the hooks of other modules that slash
(runtime/weights.py holds the unit costs)."""

from __future__ import annotations

from proto import types_pb2
from runtime import staking, weights
from runtime.primitives import BlockContext
from runtime.staking.weights import MAX_UNBONDING_CHUNKS
from runtime.state import StateReader

# One slash: the offence key, the ledger with its chunks, the staking parameters and totals, the offender's
# account (burn and supply), the jail, the record under two keys and the cursor, and the event.
SLASH = 6 * weights.READ + 8 * weights.WRITE + MAX_UNBONDING_CHUNKS * weights.LIST_ENTRY
# Each payee of a slash: the offender's and the payee's accounts read and written.
PAYEE = 2 * weights.READ + 2 * weights.WRITE


def slash(payees: int) -> int:
    """The declared weight of one `penalties.slash` (or `burn_bond`) that pays at most `payees` accounts."""
    return SLASH + payees * PAYEE


def unjail(call: types_pb2.Unjail) -> int:
    """The chain height and the ledger read, the ledger written."""
    return 2 * weights.READ + weights.WRITE


def hooks_weight(state: StateReader, block: BlockContext) -> int:
    """on_initialize's declared weight: the offence record pruned; per piece of evidence, two signatures verified,
    the validator sets and the offence list read, the stake burned, the offender jailed, the record written."""
    validators = staking.read_params(state).max_validators
    per_piece = (2 * weights.SIGNATURE + 8 * weights.READ + 6 * weights.WRITE + 4 * validators * weights.LIST_ENTRY
                 + 3 * weights.WRITE)
    return 2 * weights.READ + weights.WRITE + len(block.evidence) * per_piece
