"""The slashing module's calls, queries and declaration for the registry (runtime/registry.py)."""

from __future__ import annotations

from proto import state_pb2, types_pb2
from runtime.module import ACCOUNT, BOOLEAN, INTEGER, CallSpec, GenesisSpec, ModuleSpec, QuerySpec, params_query
from runtime.slashing.calls import check_slashing_brake, check_unjail, slashing_brake, unjail
from runtime.slashing.errors import ERRORS
from runtime.slashing.events import EVENTS
from runtime.slashing.genesis import GenesisConfig, check_evidence_age, export_genesis, genesis, parse_genesis
from runtime.slashing.hooks import on_initialize
from runtime.slashing.params import MODULE, PARAMS, Params
from runtime.slashing.queries import query_brake, query_slashes
import runtime.slashing.weights as slashing_weights

CALLS = (
    CallSpec(
        name="unjail",
        message=types_pb2.Unjail,
        doc="Return to executor draws, committees and validator elections once a dispute's jail has ended.",
        handler=unjail,
        check=check_unjail,
        weight=slashing_weights.unjail,
    ),
    CallSpec(
        name="slashing_brake",
        message=types_pb2.SlashingBrake,
        doc="A validator of the current set pulls (engage) or lets go of the brake on dispute slashing, which holds "
            "while validators with more than 2/3 of the set's voting power pull it.",
        handler=slashing_brake,
        check=check_slashing_brake,
        fields={"engage": BOOLEAN},
        weight=slashing_weights.slashing_brake,
    ),
)

QUERIES = (
    QuerySpec(name="slashes", doc="The slashes of an account (every account's when none is given), newest first.",
              request=state_pb2.SlashQuery, response=state_pb2.SlashList, handler=query_slashes,
              fields={"account": ACCOUNT, "limit": INTEGER}),
    QuerySpec(name="brake", doc="Whether the brake on dispute slashing holds, and the validators of the current set "
              "that pull it, with their voting power and the set's.",
              request=state_pb2.NoArguments, response=state_pb2.BrakeStatus, handler=query_brake,
              fields={"engaged": BOOLEAN, "engaged_power": INTEGER, "total_power": INTEGER, "validators": ACCOUNT}),
    params_query(PARAMS),
)

SPEC = ModuleSpec(
    name=MODULE,
    doc="Offences punished: stake cut, paid out and burned; accounts jailed and unjailed.",
    params=PARAMS,
    genesis=GenesisSpec(parse=parse_genesis, build=genesis, export=export_genesis,
                        default=lambda: GenesisConfig(Params()), check=check_evidence_age),
    calls=CALLS,
    events=EVENTS,
    errors=ERRORS,
    queries=QUERIES,
    on_initialize=on_initialize,
    hooks_weight=slashing_weights.hooks_weight,
)
