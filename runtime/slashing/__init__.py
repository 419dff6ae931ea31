"""slashing: offences punished — stake cut, paid out and burned; accounts jailed, and unjailed on request.

Files, in the module's fixed order: params.py (the double-sign rules, kept in staking's
parameters), storage.py (offence keys, SlashRecords), errors.py, events.py, penalties.py (the
stake cut every offence takes, payouts, burn, jail, one punishment per offence: the API the
disputes and jobs modules call), double_sign.py (evidence carried in blocks and its hook),
calls.py (unjail), queries.py (slashes), weights.py, spec.py (the declaration).

This package re-exports what the node and the tests use as `slashing.X`.
"""

from runtime.slashing.double_sign import (
    admissible_double_sign,
    admissible_evidence,
    check_evidence,
    on_initialize,
    punish_double_sign,
)
from runtime.slashing.errors import ERRORS, InvalidEvidence, NotJailed, SlashingError, StillJailed
from runtime.slashing.events import EVENTS, EXECUTOR_JAILED, JAILED, SLASHED, STAKE_SLASHED, UNJAILED
from runtime.slashing.params import MODULE, Params, read_params
from runtime.slashing.penalties import OFFENCES, burn_bond, jail, jailed, slash, stake_cut
from runtime.slashing.queries import MAX_SLASHES, query_slashes
from runtime.slashing.spec import SPEC
from runtime.slashing.storage import (
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
    "ERRORS", "EVENTS", "EXECUTOR_JAILED", "InvalidEvidence", "JAILED", "MAX_SLASHES", "MODULE", "NotJailed",
    "OFFENCE_PREFIX", "OFFENCES", "PUNISHED_PREFIX", "Params", "RECENT_PREFIX", "SLASHED", "SLASH_PREFIX", "SPEC",
    "STAKE_SLASHED", "SlashingError", "StillJailed", "UNJAILED", "admissible_double_sign", "admissible_evidence",
    "already_punished", "burn_bond", "check_evidence", "hooks_weight", "jail", "jailed", "offence_key",
    "on_initialize", "punish_double_sign", "punished", "punished_key", "query_slashes", "read_params", "slash",
    "stake_cut",
]
