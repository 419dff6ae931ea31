"""slashing events (names declared once, here).

`Slashed` and `Jailed` are the double-sign's, as they were before dispute slashes existed;
`StakeSlashed`, `ExecutorJailed` and `Unjailed` belong to the offences judged by disputes and jobs;
`SlashBraked` takes StakeSlashed's place while the brake holds; `BrakeVoted`, `BrakeEngaged` and
`BrakeReleased` are the brake's own.
"""

from __future__ import annotations

from proto import types_pb2
from runtime.module import ACCOUNT, AMOUNT, BOOLEAN, BYTES, INTEGER, TEXT, EventSpec
from runtime.primitives import make_event
from runtime.slashing.params import MODULE

SLASHED = "Slashed"
JAILED = "Jailed"
STAKE_SLASHED = "StakeSlashed"
EXECUTOR_JAILED = "ExecutorJailed"
UNJAILED = "Unjailed"
SLASH_BRAKED = "SlashBraked"
BRAKE_VOTED = "BrakeVoted"
BRAKE_ENGAGED = "BrakeEngaged"
BRAKE_RELEASED = "BrakeReleased"

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
    EventSpec(
        SLASH_BRAKED,
        "An offence in `job` was proven while the brake was engaged: nothing was cut, paid, burned or jailed, and the "
        "offence stays punished.",
        {"account": ACCOUNT, "offence": TEXT, "job": BYTES},
    ),
    EventSpec(
        BRAKE_VOTED,
        "A validator pulled (`engage` true) or let go of the brake; the voting power of the current set's validators "
        "pulling it after this vote, and of the whole set.",
        {"validator": ACCOUNT, "engage": BOOLEAN, "engaged_power": INTEGER, "total_power": INTEGER},
    ),
    EventSpec(
        BRAKE_ENGAGED,
        "The validators pulling the brake now hold more than 2/3 of the set's voting power: dispute slashing stops.",
        {"engaged_power": INTEGER, "total_power": INTEGER},
    ),
    EventSpec(
        BRAKE_RELEASED,
        "The validators pulling the brake no longer hold more than 2/3 of the set's voting power: dispute slashing "
        "resumes.",
        {"engaged_power": INTEGER, "total_power": INTEGER},
    ),
)


def event(event_name: str, **attributes: object) -> types_pb2.Event:
    """One of the events above, attributes in declaration order."""
    return make_event(MODULE, event_name, **attributes)
