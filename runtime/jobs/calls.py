"""jobs calls: PostJob, CommitResult, RevealResult, CancelJob; each checks first, then writes, then emits.

Each executor commits blake2b-256(domain || job id || executor || salt || output digest), then,
once every commitment is in, reveals the output; the runtime recomputes the digest
(proto/digest.py) and checks the stop rule. With redundancy 1 there is nothing to copy, so
the executor reveals directly.
"""

from __future__ import annotations

from proto import state_pb2, types_pb2
from proto.job_form import MAX_TEMPERATURE_MILLI, PROMPT_FORMATS, STOP_REASONS
from runtime import balances, models, system
from runtime.arithmetic import PPM, U64_MAX
import runtime.jobs.events as events
from runtime.jobs.assignment import check_executors, fill_or_queue
from runtime.jobs.errors import (
    CommitmentMismatch,
    DeadlinePassed,
    InsufficientBalance,
    InvalidJob,
    InvalidReveal,
    JobTooLarge,
    MalformedCommitment,
    MalformedJobId,
    NotAssigned,
    NotCancellable,
    NotPoster,
    QueueFull,
    UnknownJob,
    UnknownModel,
    WrongPhase,
)
from runtime.jobs.params import (
    SALT_BYTES,
    TEMPLATE_ALLOWANCE_TOKENS,
    Params,
    read_params,
)
from runtime.jobs.phases import (
    ASSIGNED,
    CANCELLED,
    QUEUED,
    REVEALING,
    SLOT_ASSIGNED,
    SLOT_COMMITTED,
    SLOT_REVEALED,
    job_status_name,
    slot_status_name,
)
from runtime.jobs.queue import queued, schedule
from runtime.jobs.recipes import commitment, job_id, output_digest
from runtime.jobs.settlement import end, open_reveal, settle
from runtime.jobs.storage import active_slots, add_load, index_posted, read_job, slot_of, write_job
from runtime.module import AMOUNT, BYTES, HASH, INTEGER, TEXT, CallSpec
from runtime.primitives import CallContext
from runtime.staking.offers import check_region
from runtime.state import Overlay, StateReader

# --- post_job ---------------------------------------------------------------------


def check_post(call: types_pb2.PostJob) -> None:
    """What makes a job invalid whatever the state."""
    if len(call.model) != 32:
        raise InvalidJob(f"a model id is 32 bytes, got {len(call.model)}")
    if not call.prompt:
        raise InvalidJob("the prompt is empty")
    if call.prompt_format not in PROMPT_FORMATS:
        raise InvalidJob(f"prompt_format must be one of {', '.join(PROMPT_FORMATS)}")
    if call.max_tokens == 0:
        raise InvalidJob("max_tokens must be at least 1")
    if call.redundancy == 0:
        raise InvalidJob("redundancy must be at least 1")
    sampling = call.sampling
    if sampling.temperature_milli > MAX_TEMPERATURE_MILLI:
        raise InvalidJob(f"temperature_milli must be at most {MAX_TEMPERATURE_MILLI}")
    if not 0 < sampling.top_p_ppm <= PPM:
        raise InvalidJob("top_p_ppm must be in (0, 1000000]")
    check_region(call.region, InvalidJob)


def escrow_of(call: types_pb2.PostJob) -> int:
    """The worst case a job can cost: max_tokens x max_price_per_token x redundancy."""
    return call.max_tokens * call.max_price_per_token * call.redundancy


def post_cost(state: StateReader, call: types_pb2.PostJob) -> int:
    """What a PostJob spends from the free balance: its escrow."""
    return escrow_of(call)


def check_post_limits(state: StateReader, call: types_pb2.PostJob) -> None:
    """The chain's and the model's limits on a job: prompt size, redundancy, tokens, context, escrow."""
    params = read_params(state)
    prompt_bytes = len(call.prompt.encode("utf-8"))
    if prompt_bytes > params.max_prompt_bytes:
        raise JobTooLarge(f"the prompt is {prompt_bytes} bytes, the limit is {params.max_prompt_bytes}")
    if call.redundancy > params.max_redundancy:
        raise JobTooLarge(f"redundancy {call.redundancy} is above the limit {params.max_redundancy}")
    model = models.read_model(state, call.model)
    if model is None:
        raise UnknownModel(f"model {call.model.hex()} is not registered")
    limit = min(params.max_tokens, model.context_length)
    if call.max_tokens > limit:
        raise JobTooLarge(
            f"max_tokens {call.max_tokens} is above the limit {limit} "
            f"(the chain's {params.max_tokens}, the model's context {model.context_length})"
        )
    # The runtime cannot tokenize, but a byte-level tokenizer never makes more tokens than bytes:
    # so a job that passes this always fits the context, and no executor is blamed for one that cannot.
    needed = prompt_bytes + TEMPLATE_ALLOWANCE_TOKENS + call.max_tokens
    if needed > model.context_length:
        raise JobTooLarge(
            f"the prompt ({prompt_bytes} bytes, at most as many tokens) plus {TEMPLATE_ALLOWANCE_TOKENS} tokens "
            f"for the chat template plus max_tokens {call.max_tokens} is {needed}, above the model's context "
            f"{model.context_length}"
        )
    if escrow_of(call) > U64_MAX:
        raise JobTooLarge("max_tokens x max_price_per_token x redundancy does not fit in 64 bits")


def post_job(state: Overlay, context: CallContext, call: types_pb2.PostJob) -> None:
    """Reserve the escrow, store the job, and assign its executors (or queue it)."""
    origin = context.origin
    check_post(call)
    check_post_limits(state, call)
    params = read_params(state)
    escrow = escrow_of(call)
    chain = system.read_chain(state)
    height = chain.height
    job = state_pb2.Job(
        id=job_id(chain.genesis_hash, origin, context.nonce),
        poster=origin,
        request=call,
        status=QUEUED,
        posted_height=height,
        timeout_height=height + params.job_timeout_blocks + params.commit_window(call.max_tokens),
        escrow=escrow,
    )
    if read_job(state, job.id) is not None:
        raise InvalidJob(f"job {job.id.hex()} exists already")
    check_executors(state, job, params)
    if len(queued(state)) >= params.max_queue:
        raise QueueFull(f"{params.max_queue} jobs already wait for executors; try later")
    balances.reserve(state, origin, escrow, InsufficientBalance)
    state.deposit_event(
        events.event(events.JOB_POSTED, job=job.id.hex(), poster=origin.hex(), model=call.model.hex(), escrow=escrow,
                     timeout_height=job.timeout_height)
    )
    fill_or_queue(state, job, params, height)
    if job.status == QUEUED:
        schedule(state, job.timeout_height, job.id)
    index_posted(state, job)
    write_job(state, job)


# --- commit_result and reveal_result ------------------------------------------------


def check_job_id(call) -> None:
    """A call naming a job carries a 32-byte id."""
    if len(call.job_id) != 32:
        raise MalformedJobId(f"a job id is 32 bytes, got {len(call.job_id)}")


def _job_for(state: StateReader, job_id_bytes: bytes) -> state_pb2.Job:
    """The job a call names (its size was checked by the call's stateless check)."""
    job = read_job(state, job_id_bytes)
    if job is None:
        raise UnknownJob(f"no job has id {job_id_bytes.hex()}")
    return job


def _assignment_of(state: StateReader, job_id_bytes: bytes, executor: bytes) -> tuple[state_pb2.Job, state_pb2.Assignment]:
    """The job and the executor's current assignment in it; NotAssigned when it has none."""
    job = _job_for(state, job_id_bytes)
    slot = slot_of(job, executor)
    if slot is None:
        raise NotAssigned(f"this account is not an executor of job {job.id.hex()}")
    return job, slot


def check_commit(call: types_pb2.CommitResult) -> None:
    check_job_id(call)
    if len(call.commitment) != 32:
        raise MalformedCommitment(f"a commitment is 32 bytes, got {len(call.commitment)}")


def commit_result(state: Overlay, context: CallContext, call: types_pb2.CommitResult) -> None:
    """Record an assigned executor's commitment; when all are in, open the reveal."""
    origin = context.origin
    check_commit(call)
    job, slot = _assignment_of(state, call.job_id, origin)
    if slot.status != SLOT_ASSIGNED or job.status not in (ASSIGNED, QUEUED):
        raise WrongPhase(
            f"this account's assignment is {slot_status_name(slot.status)}, the job is {job_status_name(job.status)}: "
            "nothing to commit"
        )
    height = system.read_chain(state).height
    if height > slot.deadline_height:
        raise DeadlinePassed(f"the commit deadline was height {slot.deadline_height}; this is {height}")
    slot.commitment = call.commitment
    slot.status = SLOT_COMMITTED
    state.deposit_event(events.event(events.RESULT_COMMITTED, job=job.id.hex(), executor=origin.hex()))
    active = active_slots(job)
    if len(active) == job.request.redundancy and all(s.status == SLOT_COMMITTED for s in active):
        open_reveal(state, job, read_params(state), height)
    write_job(state, job)


def check_reveal(call: types_pb2.RevealResult) -> None:
    check_job_id(call)
    if len(call.salt) != SALT_BYTES:
        raise InvalidReveal(f"the salt is {SALT_BYTES} bytes, got {len(call.salt)}")
    if not call.tokens:
        raise InvalidReveal("a result has at least one token")
    if len(call.logprobs_micronats) != len(call.tokens):
        raise InvalidReveal(f"{len(call.tokens)} tokens but {len(call.logprobs_micronats)} log-probabilities")
    if any(value > 0 for value in call.logprobs_micronats):
        raise InvalidReveal("a log-probability is at most 0")
    if call.stop_reason not in STOP_REASONS:
        raise InvalidReveal(f"stop_reason must be one of {', '.join(STOP_REASONS)}")


def reveal_result(state: Overlay, context: CallContext, call: types_pb2.RevealResult) -> None:
    """Check a revealed result against the commitment and the job; settle when every result is in."""
    origin = context.origin
    check_reveal(call)
    job, slot = _assignment_of(state, call.job_id, origin)
    height = system.read_chain(state).height
    direct = job.request.redundancy == 1 and slot.status == SLOT_ASSIGNED and job.status == ASSIGNED
    if not direct and (slot.status != SLOT_COMMITTED or job.status != REVEALING):
        raise WrongPhase(
            f"this account's assignment is {slot_status_name(slot.status)}, the job is {job_status_name(job.status)}: "
            "a result is revealed once every executor has committed"
        )
    if height > slot.deadline_height:
        raise DeadlinePassed(f"the deadline was height {slot.deadline_height}; this is {height}")
    _check_stop_rule(state, job, call)
    digest = output_digest(job, call.prompt_tokens, call.tokens, call.text, call.stop_reason)
    if not direct and commitment(job.id, origin, call.salt, digest) != slot.commitment:
        raise CommitmentMismatch("the revealed result and salt do not hash to the commitment")
    if direct:
        slot.commitment = commitment(job.id, origin, call.salt, digest)
    slot.reveal.CopyFrom(
        state_pb2.Reveal(
            salt=call.salt, prompt_tokens=call.prompt_tokens, tokens=call.tokens, text=call.text,
            logprobs_micronats=call.logprobs_micronats, stop_reason=call.stop_reason, output_digest=digest,
            height=height,
        )
    )
    slot.status = SLOT_REVEALED
    add_load(state, origin, -1)
    state.deposit_event(
        events.event(events.RESULT_REVEALED, job=job.id.hex(), executor=origin.hex(), output_digest=digest.hex(),
                     tokens=len(call.tokens))
    )
    if not active_slots(job):
        settle(state, job, read_params(state), height)
    write_job(state, job)


def _check_stop_rule(state: StateReader, job: state_pb2.Job, call: types_pb2.RevealResult) -> None:
    """At most max_tokens; "length" exactly max_tokens; "eos" ends with (and only the last is) an end token."""
    max_tokens = job.request.max_tokens
    count = len(call.tokens)
    if count > max_tokens:
        raise InvalidReveal(f"{count} tokens, above the job's max_tokens {max_tokens}")
    end_tokens = set(models.read_model(state, job.request.model).end_tokens)
    early = next((i for i, token in enumerate(call.tokens[:-1]) if token in end_tokens), None)
    if early is not None:
        raise InvalidReveal(f"token {early} ends generation, but the result goes on after it")
    if call.stop_reason == "length" and count != max_tokens:
        raise InvalidReveal(f"stop_reason length needs {max_tokens} tokens, the result has {count}")
    if call.stop_reason == "eos" and call.tokens[-1] not in end_tokens:
        raise InvalidReveal("stop_reason eos needs the last token to end generation")


# --- cancel_job -------------------------------------------------------------------


def cancel_job(state: Overlay, context: CallContext, call: types_pb2.CancelJob) -> None:
    """Withdraw a job no executor was ever assigned to; its escrow returns."""
    origin = context.origin
    check_job_id(call)
    job = _job_for(state, call.job_id)
    if job.poster != origin:
        raise NotPoster("only the poster may cancel a job")
    if job.status != QUEUED or job.assignments:
        raise NotCancellable(
            f"the job is {job_status_name(job.status)} with {len(job.assignments)} assignments: too late to cancel"
        )
    end(state, job, CANCELLED, "cancelled by the poster")
    write_job(state, job)


CALLS = (
    CallSpec(
        name="post_job",
        message=types_pb2.PostJob,
        doc="Post an inference job; its worst-case cost is held in escrow.",
        handler=post_job,
        cost=post_cost,
        check=check_post,
        check_state=check_post_limits,
        fields={"model": HASH, "prompt": TEXT, "prompt_format": TEXT, "max_tokens": INTEGER,
                "max_price_per_token": AMOUNT, "redundancy": INTEGER, "region": TEXT},
    ),
    CallSpec(
        name="commit_result",
        message=types_pb2.CommitResult,
        doc="Commit to a result of a job assigned to you.",
        handler=commit_result,
        check=check_commit,
        fields={"job_id": HASH, "commitment": HASH},
    ),
    CallSpec(
        name="reveal_result",
        message=types_pb2.RevealResult,
        doc="Reveal the result you committed to (with redundancy 1: commit and reveal at once).",
        handler=reveal_result,
        check=check_reveal,
        fields={"job_id": HASH, "salt": BYTES, "prompt_tokens": INTEGER, "tokens": INTEGER, "text": TEXT,
                "logprobs_micronats": INTEGER, "stop_reason": TEXT},
    ),
    CallSpec(
        name="cancel_job",
        message=types_pb2.CancelJob,
        doc="Cancel your job before any executor is assigned.",
        handler=cancel_job,
        check=check_job_id,
        fields={"job_id": HASH},
    ),
)
