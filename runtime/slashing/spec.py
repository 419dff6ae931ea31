"""The slashing module's call, query and declaration for the registry (runtime/registry.py)."""

from __future__ import annotations

from proto import state_pb2, types_pb2
from runtime.module import ACCOUNT, INTEGER, CallSpec, ModuleSpec, QuerySpec
from runtime.slashing.calls import check_unjail, unjail
from runtime.slashing.double_sign import on_initialize
from runtime.slashing.errors import ERRORS
from runtime.slashing.events import EVENTS
from runtime.slashing.params import MODULE
from runtime.slashing.queries import query_slashes
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
)

QUERIES = (
    QuerySpec(name="slashes", doc="The slashes of an account (every account's when none is given), newest first.",
              request=state_pb2.SlashQuery, response=state_pb2.SlashList, handler=query_slashes,
              fields={"account": ACCOUNT, "limit": INTEGER}),
)

SPEC = ModuleSpec(
    name=MODULE,
    doc="Offences punished: stake cut, paid out and burned; accounts jailed and unjailed.",
    params=None,
    genesis=None,
    calls=CALLS,
    events=EVENTS,
    errors=ERRORS,
    queries=QUERIES,
    on_initialize=on_initialize,
    hooks_weight=slashing_weights.hooks_weight,
)
