"""The staking module's calls and its declaration for the registry (runtime/registry.py)."""

from __future__ import annotations

from proto import types_pb2
from runtime.module import AMOUNT, BOOLEAN, HASH, INTEGER, TEXT, CallSpec, GenesisSpec, ModuleSpec
from runtime.staking.bonds import bond, bond_cost, check_amount, unbond, withdraw_unbonded
from runtime.staking.elections import on_finalize
from runtime.staking.errors import ERRORS
from runtime.staking.events import EVENTS
from runtime.staking.genesis import GenesisConfig, export_genesis, genesis, parse_genesis
from runtime.staking.offers import check_offer, check_offer_limits, clear_offer, set_offer
from runtime.staking.params import MODULE, PARAMS, Params
from runtime.staking.queries import QUERIES
import runtime.staking.weights as staking_weights

CALLS = (
    CallSpec(
        name="bond",
        message=types_pb2.Bond,
        doc="Bond free balance as stake (and declare whether to validate).",
        handler=bond,
        cost=bond_cost,
        fields={"amount": AMOUNT, "validate": BOOLEAN},
        weight=staking_weights.bond,
    ),
    CallSpec(
        name="unbond",
        message=types_pb2.Unbond,
        doc="Start unbonding stake; withdraw it after the unbonding period.",
        handler=unbond,
        check=check_amount,
        fields={"amount": AMOUNT},
        weight=staking_weights.unbond,
    ),
    CallSpec(
        name="withdraw_unbonded",
        message=types_pb2.WithdrawUnbonded,
        doc="Return released unbonding stake to free balance.",
        handler=withdraw_unbonded,
        weight=staking_weights.withdraw_unbonded,
    ),
    CallSpec(
        name="set_offer",
        message=types_pb2.SetOffer,
        doc="Offer to execute jobs: models, price per token, region, capacity, and the endpoint streaming its tokens.",
        handler=set_offer,
        check=check_offer,
        check_state=check_offer_limits,
        fields={"models": HASH, "price_per_token": AMOUNT, "region": TEXT, "capacity": INTEGER, "endpoint": TEXT,
                "engine_class": TEXT},
        weight=staking_weights.set_offer,
    ),
    CallSpec(
        name="clear_offer",
        message=types_pb2.ClearOffer,
        doc="Stop taking new jobs.",
        handler=clear_offer,
        weight=staking_weights.clear_offer,
    ),
)

SPEC = ModuleSpec(
    name=MODULE,
    doc="Bonded and unbonding stake, executor offers, the validator set per epoch.",
    params=PARAMS,
    genesis=GenesisSpec(parse=parse_genesis, build=genesis, export=export_genesis,
                        default=lambda: GenesisConfig(Params(), ())),
    calls=CALLS,
    events=EVENTS,
    errors=ERRORS,
    queries=QUERIES,
    on_finalize=on_finalize,
    hooks_weight=staking_weights.hooks_weight,
)
