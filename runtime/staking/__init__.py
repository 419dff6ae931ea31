"""staking: bonded and unbonding stake, executor offers, and the validator set chosen per epoch.

Files: params.py, storage.py, errors.py, events.py, bonds.py (bond, unbond, withdraw),
offers.py (executor offers; reads the model registry), elections.py (the validator set per
epoch), genesis.py, spec.py (the calls and the declaration). Slashing is its own module
(runtime/slashing/).

This package re-exports the read API that other modules and the edges use. It imports no
module that reads staking (offers.py, genesis.py and spec.py are imported from their files),
so `models` can weigh votes by stake without an import cycle.
"""

from runtime.staking.bonds import bond_cost, check_amount, lock_stake
from runtime.staking.elections import elect_validators, epoch_of, epoch_starts, jailed, validator_set_at
from runtime.staking.errors import (
    BelowMinimumBond,
    InsufficientBalance,
    InvalidOffer,
    NoOffer,
    NotBonded,
    NothingToWithdraw,
    OfferActive,
    StakingError,
    TooManyExecutors,
    TooManyUnbondingChunks,
    UnknownModel,
    ZeroAmount,
)
from runtime.staking.events import EVENTS
from runtime.staking.params import MAX_REGION_BYTES, MODULE, PARAMS, PARAMS_KEY, Params, read_params
from runtime.staking.storage import (
    CANDIDATES_KEY,
    LEDGER_PREFIX,
    OFFER_PREFIX,
    PREVIOUS_VALIDATOR_SET_KEY,
    SERVING_PREFIX,
    TOTALS_KEY,
    VALIDATOR_SET_KEY,
    bonded,
    read_ledger,
    read_offer,
    read_previous_validator_set,
    read_totals,
    read_validator_set,
    serving,
)
