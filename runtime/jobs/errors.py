"""jobs errors: each names what a call got wrong, in receipts as `jobs.<Name>`."""

from __future__ import annotations

from runtime.jobs.params import MODULE
from runtime.primitives import DispatchError


class JobsError(DispatchError):
    module = MODULE


class InvalidJob(JobsError):
    """The job breaks a rule that holds whatever the state (sizes, formats, sampling ranges)."""


class JobTooLarge(JobsError):
    """The prompt, max_tokens or redundancy is above the chain's or the model's limit."""


class UnknownModel(JobsError):
    """The job names a model that is not registered."""


class NoExecutors(JobsError):
    """Too few executors serve the model at a price within the job's maximum."""


class InsufficientBalance(JobsError):
    """The free balance does not cover the job's escrow."""


class TooManyQueued(JobsError):
    """No executor is free and jobs.params.max_queued_per_poster of the poster's jobs already wait."""


class PriceTooLow(JobsError):
    """max_price_per_token is below staking.params.min_price_per_token (no offer may be cheaper)."""


class EscrowTooLow(JobsError):
    """The job's escrow is below jobs.params.min_job_escrow."""


class MalformedJobId(JobsError):
    """A job id is not 32 bytes."""


class MalformedCommitment(JobsError):
    """A commitment is not 32 bytes."""


class UnknownJob(JobsError):
    """No job has this id."""


class NotAssigned(JobsError):
    """The sender is not an active executor of the job."""


class WrongPhase(JobsError):
    """The job or the sender's assignment is not at the step this call is for."""


class DeadlinePassed(JobsError):
    """The assignment's deadline has passed."""


class CommitmentMismatch(JobsError):
    """The revealed result and salt do not hash to the commitment."""


class InvalidReveal(JobsError):
    """The revealed result breaks the job's token count or stop rule, or its own form."""


class NotPoster(JobsError):
    """Only the poster may cancel a job."""


class NotCancellable(JobsError):
    """A job is cancelled only before any executor is assigned."""


ERRORS = (
    InvalidJob, JobTooLarge, UnknownModel, NoExecutors, InsufficientBalance, MalformedJobId, MalformedCommitment, UnknownJob,
    NotAssigned, WrongPhase, DeadlinePassed, CommitmentMismatch, InvalidReveal, NotPoster, NotCancellable,
    TooManyQueued, PriceTooLow, EscrowTooLow,
)
