"""disputes errors: each names what a call got wrong, in receipts as `disputes.<Name>`."""

from __future__ import annotations

from runtime.disputes.params import MODULE
from runtime.primitives import DispatchError


class DisputesError(DispatchError):
    module = MODULE


class UnknownDispute(DisputesError):
    """No dispute has this id (or the id is not 32 bytes)."""


class UnknownJob(DisputesError):
    """No job has this id (or the id is not 32 bytes)."""


class NotMember(DisputesError):
    """The sender is not on the dispute's committee."""


class AlreadyVoted(DisputesError):
    """The member has committed (or revealed) already."""


class VotingClosed(DisputesError):
    """The phase's deadline has passed."""


class WrongPhase(DisputesError):
    """The dispute is not in the phase this call is for (committing, revealing), or is decided."""


class VoteMismatch(DisputesError):
    """The revealed votes and salt do not hash to the member's commitment."""


class InvalidVote(DisputesError):
    """A malformed vote: a commitment or salt not 32 bytes, or not one vote per candidate in candidate order."""


class ChallengeWindowClosed(DisputesError):
    """The job is not settled, or its challenge window has closed."""


class BondTooLow(DisputesError):
    """A challenge's bond is below disputes.params.min_challenge_bond."""


class UnknownCandidate(DisputesError):
    """The challenged index is not a revealed result of the job."""


class AlreadyDisputed(DisputesError):
    """The job has (or had) a dispute: a job is judged once."""


class TooManyDisputes(DisputesError):
    """disputes.params.max_open_disputes disputes are open."""


class InsufficientBalance(DisputesError):
    """The free balance does not cover the challenge's bond."""


class SealRefused(DisputesError):
    """A probe's seal that may not be made: a commitment not 32 bytes, a sender not bonded min_bond or jailed, the
    epoch's seals taken, the sender's seal of the epoch made, or the commitment sealed already."""


class ProbeNotSealed(DisputesError):
    """An opening that no seal of the sender matches (a salt not 32 bytes, another's seal, a job posted before
    its seal, a protocol probe)."""


ERRORS = (
    UnknownDispute, UnknownJob, NotMember, AlreadyVoted, VotingClosed, WrongPhase, VoteMismatch, InvalidVote,
    ChallengeWindowClosed, BondTooLow, UnknownCandidate, AlreadyDisputed, TooManyDisputes, InsufficientBalance,
    SealRefused, ProbeNotSealed,
)
