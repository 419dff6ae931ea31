"""The genesis state: each registered module parses its `app_state` section and builds its state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from runtime.module import GenesisContext, GenesisInvalid, check_section_keys
from runtime.registry import RUNTIME
from runtime.state import IterableState, MemoryState, Overlay


@dataclass(frozen=True)
class RuntimeGenesis:
    """Every module's genesis configuration, parsed and typed, by module name."""

    modules: Mapping[str, Any]


def parse_app_state(app_state: Any, context: GenesisContext) -> RuntimeGenesis:
    """Hand each module its `app_state.<module>` section (absent: {}); unknown sections are refused."""
    if not isinstance(app_state, Mapping):
        raise GenesisInvalid("app_state must be an object")
    known = [module.name for module in RUNTIME.modules]
    unknown = sorted(set(app_state) - set(known))
    if unknown:
        raise GenesisInvalid(f"app_state: unknown module {str(unknown[0])[:40]!r} (known: {', '.join(known)})")
    parsed = {}
    for module in RUNTIME.modules:
        section = app_state.get(module.name, {})
        if module.genesis is None:
            check_section_keys(section, (), f"app_state.{module.name}")
            continue
        parsed[module.name] = module.genesis.parse(section, context)
    return RuntimeGenesis(parsed)


def build_genesis_state(config: RuntimeGenesis) -> dict[bytes, bytes]:
    """The key-value state the chain starts from, modules in registry order. Raises ValueError."""
    state = Overlay(MemoryState())
    for module in RUNTIME.modules:
        if module.genesis is not None:
            module.genesis.build(state, config.modules[module.name])
    return {key: value for key, value in state.writes.items() if value is not None}


def export_app_state(state: IterableState, encode_account: Callable[[bytes], str]) -> dict:
    """The `app_state` that rebuilds `state`'s module parameters and balances (a new chain from this one)."""
    return {
        module.name: module.genesis.export(state, encode_account) for module in RUNTIME.modules if module.genesis is not None
    }
