"""staking weights: the declared worst case of each call and of the election hook (runtime/weights.py).

The lists a call rewrites are bounded by parameters whose ceilings runtime/weights.py declares
(executors per model, models per offer), or, for the validator candidates, by MAX_CANDIDATES.
"""

from __future__ import annotations

from proto import types_pb2
from runtime import weights
from runtime.primitives import BlockContext
from runtime.staking.params import read_params
from runtime.staking.storage import CANDIDATES_KEY, read_accounts
from runtime.state import StateReader

# Accounts that declared they validate: nothing caps the list, so a bond is declared as rewriting this many
# (MAX_GENESIS_STAKES); the election hook reads the real count from state.
MAX_CANDIDATES = 10_000
# An unbonding ledger holds at most max_unbonding_chunks chunks (default 32); declared at this ceiling.
MAX_UNBONDING_CHUNKS = 64
# One model's serving list (at most MAX_EXECUTORS_PER_MODEL accounts) read and written back.
SERVING_LIST = weights.READ + weights.WRITE + weights.MAX_EXECUTORS_PER_MODEL * weights.LIST_ENTRY


def bond(call: types_pb2.Bond) -> int:
    """Reserve (account), the ledger, the totals, and the candidate list when `validate` changes."""
    return 3 * weights.READ + 3 * weights.WRITE + weights.WRITE + MAX_CANDIDATES * weights.LIST_ENTRY


def unbond(call: types_pb2.Unbond) -> int:
    """The ledger with its unbonding chunks, and the totals."""
    return 2 * weights.READ + 2 * weights.WRITE + MAX_UNBONDING_CHUNKS * weights.LIST_ENTRY


def withdraw_unbonded(call: types_pb2.WithdrawUnbonded) -> int:
    """The ledger's released chunks returned to the free balance."""
    return 3 * weights.READ + 3 * weights.WRITE + MAX_UNBONDING_CHUNKS * weights.LIST_ENTRY


def set_offer(call: types_pb2.SetOffer) -> int:
    """Each model checked; the serving list of each model added, and of each model of the old offer dropped."""
    touched = len(call.models) + weights.MAX_OFFER_MODELS
    return 4 * weights.READ + 2 * weights.WRITE + len(call.models) * weights.READ + touched * SERVING_LIST


def clear_offer(call: types_pb2.ClearOffer) -> int:
    """The serving list of each model of the old offer."""
    return 2 * weights.READ + weights.WRITE + weights.MAX_OFFER_MODELS * SERVING_LIST


def hooks_weight(state: StateReader, block: BlockContext) -> int:
    """on_finalize: at an epoch boundary, every candidate's ledger read, ranked, and the sets written."""
    params = read_params(state)
    if block.height % params.epoch_blocks != 0:
        return weights.READ
    candidates = len(read_accounts(state, CANDIDATES_KEY))
    # A bond in this block may add candidates: each bond declares its list entry, and the election reads it too.
    return (4 * weights.READ + 3 * weights.WRITE + candidates * (weights.READ + 2 * weights.LIST_ENTRY)
            + 2 * params.max_validators * weights.LIST_ENTRY)
