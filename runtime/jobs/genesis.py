"""jobs genesis: the market's parameters (jobs themselves never cross from one chain to another)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from runtime.jobs.params import PARAMS, PARAMS_KEY, Params, read_params
from runtime.module import GenesisContext, check_section_keys
from runtime.params import encode_params, params_from_json, params_to_json
from runtime.state import IterableState, Overlay


@dataclass(frozen=True)
class GenesisConfig:
    params: Params


def parse_genesis(section: Mapping[str, Any], context: GenesisContext) -> GenesisConfig:
    """`app_state.jobs`: {"params": {...}}."""
    check_section_keys(section, ("params",), "app_state.jobs")
    return GenesisConfig(params_from_json(PARAMS, section.get("params", {}), "app_state.jobs.params"))


def genesis(state: Overlay, config: GenesisConfig) -> None:
    config.params.validate()
    state.set(PARAMS_KEY, encode_params(PARAMS, config.params))


def export_genesis(state: IterableState, encode_account=bytes.hex) -> dict:
    """Parameters only: open jobs end with the old chain (their escrow is exported as free balance)."""
    return {"params": params_to_json(PARAMS, read_params(state))}
