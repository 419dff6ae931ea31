"""staking events (names declared once, here)."""

from __future__ import annotations

from proto import types_pb2
from runtime.module import ACCOUNT, AMOUNT, INTEGER, TEXT, EventSpec
from runtime.primitives import make_event
from runtime.staking.params import MODULE

BONDED = "Bonded"
UNBONDED = "Unbonded"
WITHDRAWN = "Withdrawn"
OFFER_SET = "OfferSet"
OFFER_CLEARED = "OfferCleared"
VALIDATOR_SET_CHANGED = "ValidatorSetChanged"

EVENTS = (
    EventSpec(BONDED, "Free balance became bonded stake.", {"account": ACCOUNT, "amount": AMOUNT, "bonded": AMOUNT}),
    EventSpec(
        UNBONDED,
        "Bonded stake started unbonding; it is released at release_height.",
        {"account": ACCOUNT, "amount": AMOUNT, "release_height": INTEGER},
    ),
    EventSpec(WITHDRAWN, "Released unbonding stake returned to free balance.", {"account": ACCOUNT, "amount": AMOUNT}),
    EventSpec(
        OFFER_SET,
        "An account offers to execute jobs for the listed models (endpoint: where its tokens stream; empty for none; "
        "engine_class: the engine class it runs, cpu when the call left it empty).",
        {
            "account": ACCOUNT,
            "models": TEXT,
            "price_per_token": AMOUNT,
            "region": TEXT,
            "capacity": INTEGER,
            "endpoint": TEXT,
            "engine_class": TEXT,
        },
    ),
    EventSpec(OFFER_CLEARED, "An account no longer takes new jobs.", {"account": ACCOUNT}),
    EventSpec(
        VALIDATOR_SET_CHANGED,
        "The validator set of a new epoch (top bonded accounts that declared to validate).",
        {"epoch": INTEGER, "validators": INTEGER, "total_power": AMOUNT},
    ),
)


def event(event_name: str, **attributes: object) -> types_pb2.Event:
    """One of the events above, attributes in declaration order."""
    return make_event(MODULE, event_name, **attributes)
