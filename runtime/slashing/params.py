"""slashing parameters: the double-sign rules, stored in staking's parameters.

The double-sign fraction, the jail length and the evidence age stay in StakingParams so that the
stored parameters and `app_state.staking.params` keep the form they had when slashing was part of
staking. The fractions of dispute offences are the disputes module's (DisputesParams): the caller
of `penalties.slash` passes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime import staking
from runtime.state import StateReader

MODULE = "slashing"


@dataclass(frozen=True)
class Params:
    """The slashing rules (stored in staking's parameters; proto StakingParams documents each field)."""

    slash_fraction_double_sign_ppm: int
    jail_blocks: int
    max_evidence_age_blocks: int


def read_params(state: StateReader) -> Params:
    """The slashing rules in force in `state`."""
    stake_params = staking.read_params(state)
    return Params(
        stake_params.slash_fraction_double_sign_ppm, stake_params.jail_blocks, stake_params.max_evidence_age_blocks
    )
