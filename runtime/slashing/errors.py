"""slashing errors, in receipts as `slashing.<Name>`."""

from __future__ import annotations

from runtime.primitives import DispatchError
from runtime.slashing.params import MODULE


class SlashingError(DispatchError):
    module = MODULE


class InvalidEvidence(SlashingError):
    """A block carries evidence that is malformed, inadmissible or already punished: the block is invalid."""


class NotJailed(SlashingError):
    """An unjail from an account that no dispute jailed (or that already unjailed)."""


class StillJailed(SlashingError):
    """An unjail before the jail ends: the message names the height from which it is accepted."""


class NotValidator(SlashingError):
    """A SlashingBrake from an account outside the current epoch's validator set."""


class AlreadyEngaged(SlashingError):
    """A SlashingBrake engage from a validator that already pulls the brake."""


class NotEngaged(SlashingError):
    """A SlashingBrake release from a validator that does not pull the brake."""


ERRORS = (InvalidEvidence, NotJailed, StillJailed, NotValidator, AlreadyEngaged, NotEngaged)
