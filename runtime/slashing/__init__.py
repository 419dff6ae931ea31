"""slashing: offences punished — stake cut, paid out and burned; accounts jailed, and unjailed on request.

Files, in the module's fixed order: params.py (the double-sign rules), storage.py (offence keys,
SlashRecords), errors.py, events.py, penalties.py (the stake cut every offence takes, payouts, burn,
jail, one punishment per offence: the API the disputes and jobs modules call), double_sign.py
(evidence carried in blocks and its hook), brake.py (the brake on dispute slashing the validators'
supermajority may pull), calls.py (unjail, slashing_brake), hooks.py, queries.py (slashes, brake),
weights.py, genesis.py (the parameters), spec.py (the declaration).

This package re-exports what the node and the tests use as `slashing.X`.
"""

from runtime.slashing.brake import braked, engaged
from runtime.slashing.double_sign import admissible_double_sign, admissible_evidence, check_evidence, punish_double_sign
from runtime.slashing.errors import (
    ERRORS,
    AlreadyEngaged,
    InvalidEvidence,
    NotEngaged,
    NotJailed,
    NotValidator,
    SlashingError,
    StillJailed,
)
from runtime.slashing.events import EVENTS, EXECUTOR_JAILED, JAILED, SLASH_BRAKED, SLASHED, STAKE_SLASHED, UNJAILED
from runtime.slashing.genesis import GenesisConfig
from runtime.slashing.hooks import on_initialize
from runtime.slashing.params import MODULE, PARAMS, PARAMS_KEY, Params, read_params
from runtime.slashing.penalties import OFFENCES, burn_bond, jail, jailed, slash, stake_cut
from runtime.slashing.queries import MAX_SLASHES, query_brake, query_slashes
from runtime.slashing.spec import SPEC
from runtime.slashing.storage import (
    BRAKE_PREFIX,
    OFFENCE_PREFIX,
    PUNISHED_PREFIX,
    RECENT_PREFIX,
    SLASH_PREFIX,
    already_punished,
    offence_key,
    punished,
    punished_key,
)
from runtime.slashing.weights import hooks_weight

__all__ = [
    "AlreadyEngaged", "BRAKE_PREFIX", "ERRORS", "EVENTS", "EXECUTOR_JAILED", "GenesisConfig", "InvalidEvidence",
    "JAILED", "MAX_SLASHES", "MODULE", "NotEngaged", "NotJailed", "NotValidator", "OFFENCE_PREFIX", "OFFENCES",
    "PARAMS", "PARAMS_KEY", "PUNISHED_PREFIX", "Params", "RECENT_PREFIX", "SLASHED", "SLASH_BRAKED", "SLASH_PREFIX",
    "SPEC", "STAKE_SLASHED", "SlashingError", "StillJailed", "UNJAILED", "admissible_double_sign",
    "admissible_evidence", "already_punished", "braked", "burn_bond", "check_evidence", "engaged", "hooks_weight",
    "jail", "jailed", "offence_key", "on_initialize", "punish_double_sign", "punished", "punished_key",
    "query_brake", "query_slashes", "read_params", "slash", "stake_cut",
]
