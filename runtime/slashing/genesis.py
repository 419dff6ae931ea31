"""slashing genesis: the parameters (slash records and the brake end with the old chain), and the rule across
modules that keeps a double-signer's stake slashable: evidence may land up to max_evidence_age_blocks after the
offence, so that must be below staking's unbonding_period_blocks, or a validator could double-sign, unbond at
once and withdraw before the evidence that would slash it is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from runtime import staking
from runtime.module import GenesisContext, GenesisInvalid, check_section_keys
from runtime.params import encode_params, params_from_json, params_to_json
from runtime.slashing.params import PARAMS, PARAMS_KEY, Params, read_params
from runtime.state import IterableState, Overlay, StateReader


@dataclass(frozen=True)
class GenesisConfig:
    params: Params


def parse_genesis(section: Mapping[str, Any], context: GenesisContext) -> GenesisConfig:
    """`app_state.slashing`: {"params": {...}}."""
    check_section_keys(section, ("params",), "app_state.slashing")
    return GenesisConfig(params_from_json(PARAMS, section.get("params", {}), "app_state.slashing.params"))


def genesis(state: Overlay, config: GenesisConfig) -> None:
    config.params.validate()
    state.set(PARAMS_KEY, encode_params(PARAMS, config.params))


def export_genesis(state: IterableState, encode_account=bytes.hex) -> dict:
    """Parameters only: slash records and brake records end with the old chain."""
    return {"params": params_to_json(PARAMS, read_params(state))}


def check_evidence_age(state: StateReader) -> None:
    """Refuse a genesis whose double-sign evidence may land after the offender's unbonded stake is released
    (GenesisInvalid)."""
    age = read_params(state).max_evidence_age_blocks
    unbonding = staking.read_params(state).unbonding_period_blocks
    if age >= unbonding:
        raise GenesisInvalid(
            f"slashing.params.max_evidence_age_blocks ({age}) must be below staking.params.unbonding_period_blocks "
            f"({unbonding}), so that stake unbonded after a double-sign is still there when its evidence lands"
        )
