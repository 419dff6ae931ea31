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


ERRORS = (InvalidEvidence, NotJailed, StillJailed)
