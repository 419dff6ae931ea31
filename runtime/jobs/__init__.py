"""jobs: the inference market — post, assign, commit, reveal, settle (DESIGN.md section 5).

A poster's `PostJob` reserves the worst case (its prompt's and max_tokens' tokens at
max_price_per_token x redundancy, plus the minimum protocol fee; pricing.py) and a storage
deposit, and,
assignment_delay_blocks later, gets `redundancy` distinct executors drawn from the RANDAO mix
(assignment.py); executors commit, then
reveal (calls.py); a quorum of agreeing results is paid and held through the challenge window (and
may be audited or challenged), differing ones or too few go to a committee's verdict (settlement.py,
runtime/disputes); draws skip jailed executors and those whose stake does not cover the job (collateral.py); each block retries the queue and handles deadlines
(hooks.py, with the queue and schedule of queue.py). Every step emits an event (events.py).

Files, in the shape of every module: params.py, phases.py (job and assignment statuses),
storage.py (with pruning), errors.py, events.py, recipes.py (job id, commitment, output digest,
assignment seed), pricing.py (escrow, charge, protocol fee, storage deposit), assignment.py,
tables.py (the executors frozen per epoch for the draw), collateral.py (jail and collateral in the draw),
settlement.py, queue.py, probes.py (challenge-response probes from the probe fund, posted at each epoch's
first block), calls.py, hooks.py, queries.py, genesis.py, spec.py (the declaration). This package re-exports what other modules and the edges read.
"""

from runtime.jobs.calls import check_post, check_post_limits, escrow_of
from runtime.jobs.errors import (
    CommitmentMismatch,
    DeadlinePassed,
    InsufficientBalance,
    InvalidJob,
    InvalidReveal,
    JobsError,
    JobTooLarge,
    MalformedCommitment,
    MalformedJobId,
    NoExecutors,
    NotAssigned,
    NotCancellable,
    NotPoster,
    TooManyQueued,
    UnknownJob,
    UnknownModel,
    WrongPhase,
)
from runtime.jobs.events import EVENTS
from runtime.jobs.genesis import GenesisConfig
from runtime.jobs.params import MODULE, PARAMS, PARAMS_KEY, Params, read_params
from runtime.jobs.phases import (
    ACTIVE_SLOTS,
    ASSIGNED,
    CANCELLED,
    DISPUTED,
    DRAWING,
    EXPIRED,
    FINAL_STATUSES,
    QUEUED,
    REJECTED,
    REVEALING,
    SETTLED,
    SLOT_ASSIGNED,
    SLOT_COMMITTED,
    SLOT_MISSED,
    SLOT_REVEALED,
    job_status_name,
    slot_status_name,
)
from runtime.jobs.recipes import PROBE_FUND, assignment_seed, commitment, job_id, output_digest
from runtime.jobs.storage import (
    JOB_PREFIX,
    JOBS_BY_EXECUTOR,
    JOBS_BY_HEIGHT,
    JOBS_BY_POSTER,
    LOAD_PREFIX,
    QUEUE_PREFIX,
    SCHEDULE_PREFIX,
    read_job,
    read_load,
)
from runtime.id_list import read_ids
