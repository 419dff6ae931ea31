"""slashing parameters: the double-sign rules (the fraction burned, the jail, the evidence age), from genesis.

They were kept in staking's parameters while slashing was part of staking; since spec version 4
the slashing module owns them (issue 23, one owner per piece of state). The fractions of dispute
offences are the disputes module's (DisputesParams): the caller of `penalties.slash` passes them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from proto import state_pb2
from runtime.arithmetic import PPM
from runtime.module import ParamsSpec
from runtime.params import decode_params
from runtime.state import StateReader

MODULE = "slashing"


@dataclass(frozen=True)
class Params:
    """Slashing rules, set at genesis (proto SlashingParams documents each field)."""

    slash_fraction_double_sign_ppm: int = 50_000
    jail_blocks: int = 1_000
    max_evidence_age_blocks: int = 100

    def validate(self) -> None:
        for name, value in asdict(self).items():
            if value < 1:
                raise ValueError(f"slashing.params.{name} must be at least 1")
        if self.slash_fraction_double_sign_ppm > PPM:
            raise ValueError(f"slashing.params.slash_fraction_double_sign_ppm must be at most {PPM} (all of the stake)")


PARAMS_KEY = b"slashing/params"
PARAMS = ParamsSpec(Params, state_pb2.SlashingParams, PARAMS_KEY)


def read_params(state: StateReader) -> Params:
    """The slashing rules as stored in `state`."""
    return decode_params(PARAMS, state.get(PARAMS_KEY))
