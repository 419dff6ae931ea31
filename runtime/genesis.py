"""The genesis state: each module's genesis builder, run in a fixed order."""

from __future__ import annotations

from dataclasses import dataclass

from runtime import balances, system
from runtime.state import MemoryState, Overlay


@dataclass(frozen=True)
class RuntimeGenesis:
    """Every module's genesis configuration, already parsed and typed."""

    system: system.GenesisConfig
    balances: balances.GenesisConfig


def build_genesis_state(config: RuntimeGenesis) -> dict[bytes, bytes]:
    """The key-value state the chain starts from. Raises ValueError on an invalid configuration."""
    state = Overlay(MemoryState())
    balances.genesis(state, config.balances)
    system.genesis(state, config.system, config.balances.total_issuance)
    return {key: value for key, value in state.writes.items() if value is not None}
