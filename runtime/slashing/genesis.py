"""slashing genesis: the parameters (slash records and the brake end with the old chain)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from runtime.module import GenesisContext, check_section_keys
from runtime.params import encode_params, params_from_json, params_to_json
from runtime.slashing.params import PARAMS, PARAMS_KEY, Params, read_params
from runtime.state import IterableState, Overlay


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
