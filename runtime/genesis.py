"""The genesis state: each registered module parses its `app_state` section and builds its state.

A module may be left out of genesis: its section is then {} (its declared parameter defaults, no
records), and a RuntimeGenesis built in code may leave it out too (GenesisSpec.default). Unknown
sections and unknown fields are refused, naming them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from runtime.module import GenesisContext, GenesisInvalid, ModuleSpec, check_section_keys
from runtime.params import params_to_json
from runtime.registry import RUNTIME
from runtime.state import IterableState, MemoryState, Overlay


@dataclass(frozen=True)
class RuntimeGenesis:
    """The modules' genesis configurations, parsed and typed, by module name (absent: the module's default)."""

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
    unknown = sorted(set(config.modules) - {module.name for module in RUNTIME.modules})
    if unknown:
        raise GenesisInvalid(f"genesis configuration for an unknown module {unknown[0]!r}")
    for module in RUNTIME.modules:
        if module.genesis is not None:
            module.genesis.build(state, _module_config(module, config))
    for module in RUNTIME.modules:  # the rules across modules, on the whole genesis state
        if module.genesis is not None and module.genesis.check is not None:
            module.genesis.check(state)
    return {key: value for key, value in state.writes.items() if value is not None}


def _module_config(module: ModuleSpec, config: RuntimeGenesis) -> Any:
    if module.name in config.modules:
        return config.modules[module.name]
    if module.genesis.default is None:
        raise GenesisInvalid(f"app_state.{module.name}: the {module.name} module has no defaults; its configuration is required")
    return module.genesis.default()


def default_app_state(records: Mapping[str, Mapping[str, Any]] | None = None) -> dict:
    """An `app_state` holding every module's declared parameter defaults, in registry order, plus `records`.

    `records` adds fields per module beside "params" (a dev chain's balances, models, stakes);
    a module or field the registry does not know is refused when the document is parsed.
    """
    records = dict(records or {})
    unknown = sorted(set(records) - {module.name for module in RUNTIME.modules})
    if unknown:
        raise GenesisInvalid(f"app_state: unknown module {unknown[0]!r}")
    document: dict[str, dict] = {}
    for module in RUNTIME.modules:
        if module.genesis is None:
            continue
        section = {"params": params_to_json(module.params, module.params.type())} if module.params else {}
        section.update(records.get(module.name, {}))
        document[module.name] = section
    return document


def export_app_state(state: IterableState, encode_account: Callable[[bytes], str]) -> dict:
    """The `app_state` that rebuilds `state`'s module parameters and balances (a new chain from this one)."""
    return {
        module.name: module.genesis.export(state, encode_account) for module in RUNTIME.modules if module.genesis is not None
    }
