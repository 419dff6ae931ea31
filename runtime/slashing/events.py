"""slashing events (names declared once, here).

`Slashed` and `Jailed` are the double-sign's, as they were before dispute slashes existed;
`StakeSlashed`, `ExecutorJailed` and `Unjailed` belong to the offences judged by disputes and jobs.
"""

from __future__ import annotations

from proto import types_pb2
from runtime.module import ACCOUNT, AMOUNT, BYTES, INTEGER, TEXT, EventSpec
from runtime.primitives import make_event
from runtime.slashing.params import MODULE

SLASHED = "Slashed"
JAILED = "Jailed"
STAKE_SLASHED = "StakeSlashed"
EXECUTOR_JAILED = "ExecutorJailed"
UNJAILED = "Unjailed"

EVENTS = (
    EventSpec(
        SLASHED,
        "A validator's stake was burned for signing two conflicting votes at `height`.",
        {"validator": ACCOUNT, "amount": AMOUNT, "height": INTEGER},
    ),
    EventSpec(
        JAILED,
        "A validator is left out of validator elections held below height `until`.",
        {"validator": ACCOUNT, "until": INTEGER},
    ),
    EventSpec(
        STAKE_SLASHED,
        "An account's stake (or a challenger's bond) was cut for `offence` in `job`: `paid` of it went to the "
        "poster, challenger or committee, `burned` was destroyed.",
        {"account": ACCOUNT, "offence": TEXT, "job": BYTES, "amount": AMOUNT, "burned": AMOUNT, "paid": AMOUNT},
    ),
    EventSpec(
        EXECUTOR_JAILED,
        "An account is left out of executor draws, committees and validator elections until it unjails, "
        "which it may do from height `until`.",
        {"account": ACCOUNT, "until": INTEGER},
    ),
    EventSpec(UNJAILED, "A jailed account returned to draws, committees and elections.", {"account": ACCOUNT}),
)


def event(event_name: str, **attributes: object) -> types_pb2.Event:
    """One of the events above, attributes in declaration order."""
    return make_event(MODULE, event_name, **attributes)
