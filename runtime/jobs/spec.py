"""The jobs module's declaration for the registry (runtime/registry.py)."""

from __future__ import annotations

from runtime.jobs.calls import CALLS
from runtime.jobs.errors import ERRORS
from runtime.jobs.events import EVENTS
from runtime.jobs.genesis import GenesisConfig, export_genesis, genesis, parse_genesis
from runtime.jobs.hooks import on_finalize, on_initialize
from runtime.jobs.weights import hooks_weight
from runtime.jobs.params import MODULE, PARAMS, Params
from runtime.jobs.queries import QUERIES
from runtime.module import GenesisSpec, ModuleSpec

SPEC = ModuleSpec(
    name=MODULE,
    doc="The inference market: post, assign, commit, reveal, settle.",
    params=PARAMS,
    genesis=GenesisSpec(parse=parse_genesis, build=genesis, export=export_genesis,
                        default=lambda: GenesisConfig(Params())),
    calls=CALLS,
    events=EVENTS,
    errors=ERRORS,
    queries=QUERIES,
    on_initialize=on_initialize,
    on_finalize=on_finalize,
    hooks_weight=hooks_weight,
)
