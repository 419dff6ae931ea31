"""The disputes module's declaration for the registry (runtime/registry.py)."""

from __future__ import annotations

from runtime.disputes.calls import CALLS
from runtime.disputes.errors import ERRORS
from runtime.disputes.events import EVENTS
from runtime.disputes.genesis import GenesisConfig, check_windows, export_genesis, genesis, parse_genesis
from runtime.disputes.hooks import on_finalize, on_initialize
from runtime.disputes.params import MODULE, PARAMS, Params
from runtime.disputes.queries import QUERIES
from runtime.disputes.weights import hooks_weight
from runtime.module import GenesisSpec, ModuleSpec

SPEC = ModuleSpec(
    name=MODULE,
    doc="Disputes over revealed results: audits, challenges, committee votes, verdicts and their consequences.",
    params=PARAMS,
    genesis=GenesisSpec(parse=parse_genesis, build=genesis, export=export_genesis,
                        default=lambda: GenesisConfig(Params()), check=check_windows),
    calls=CALLS,
    events=EVENTS,
    errors=ERRORS,
    queries=QUERIES,
    on_initialize=on_initialize,
    on_finalize=on_finalize,
    hooks_weight=hooks_weight,
)
