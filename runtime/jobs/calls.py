"""jobs calls: PostJob, CommitResult, RevealResult, CancelJob; each checks first, then writes, then emits.

Each executor commits blake2b-256(domain || job id || executor || salt || output digest ||
log-probabilities digest), then,
once every commitment is in, reveals the output; the runtime recomputes the digest
(proto/digest.py) and checks the stop rule. With redundancy 1 there is nothing to copy, so
the executor reveals directly.
"""

from __future__ import annotations

from proto import state_pb2, types_pb2
from proto.digest import logprobs_digest
from proto.job_form import MAX_TEMPERATURE_MILLI, PROMPT_FORMATS, STOP_REASONS
from runtime import balances, models, staking, system
from runtime.arithmetic import PPM, U64_MAX
import runtime.jobs.events as events
from runtime.jobs.assignment import check_executors, schedule_draw
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
    EscrowTooLow,
    PriceTooLow,
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
    DRAWING,
    QUEUED,
    REVEALING,
    SLOT_ASSIGNED,
    SLOT_COMMITTED,
    SLOT_REVEALED,
    job_status_name,
    slot_status_name,
)
from runtime.jobs.probes import record_post
from runtime.jobs.queue import check_poster_room, schedule
from runtime.jobs.pricing import escrow_of, prompt_token_bound, storage_deposit
from runtime.jobs.recipes import commitment, job_id, output_digest
from runtime.jobs.settlement import end, open_reveal, settle
from runtime.jobs.storage import active_slots, add_load, index_posted, read_job, slot_of, write_job
import runtime.jobs.weights as job_weights
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
    if call.max_price_per_token == 0:
        raise InvalidJob("max_price_per_token must be at least 1: a zero price is refused (free jobs flooded the queue)")
    sampling = call.sampling
    if sampling.temperature_milli > MAX_TEMPERATURE_MILLI:
        raise InvalidJob(f"temperature_milli must be at most {MAX_TEMPERATURE_MILLI}")
    if not 0 < sampling.top_p_ppm <= PPM:
        raise InvalidJob("top_p_ppm must be in (0, 1000000]")
    check_region(call.region, InvalidJob)
    check_job_classes(call)


def check_job_classes(call: types_pb2.PostJob) -> None:
    """The accepted engine classes: at most MAX_ENGINE_CLASSES (empty: any class of the model), each a class name,
    none twice (InvalidJob)."""
    names = list(call.engine_classes)
    if len(names) > models.MAX_ENGINE_CLASSES:
        raise InvalidJob(f"a job accepts at most {models.MAX_ENGINE_CLASSES} engine classes, got {len(names)}")
    for name in names:
        problem = models.class_name_problem(name)
        if problem is not None:
            raise InvalidJob(problem)
    if len(set(names)) != len(names):
        raise InvalidJob("a job names each accepted engine class once")


def post_cost(state: StateReader, call: types_pb2.PostJob) -> int:
    """What a PostJob spends from the free balance: its escrow and its storage deposit."""
    params = read_params(state)
    return escrow_of(call, params) + params.queue_fee + storage_deposit(call, params)


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
    unknown = [name for name in call.engine_classes if models.class_engine(model, name) is None]
    if unknown:
        raise InvalidJob(f"model {call.model.hex()} has no engine class {unknown[0]!r} (its classes: "
                         f"{', '.join(models.class_names(model))})")
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
    check_post_price(state, call, params)
    if escrow_of(call, params) + params.queue_fee + storage_deposit(call, params) > U64_MAX:
        raise JobTooLarge("the escrow (prompt and output tokens at max_price_per_token x redundancy, plus the minimum "
                          "protocol fee and the queue fee) plus the storage deposit does not fit in 64 bits")


def check_post_price(state: StateReader, call: types_pb2.PostJob, params: Params) -> None:
    """Queues and lock-out: at least the least price an offer may ask, and at least min_job_escrow held."""
    least = staking.read_params(state).min_price_per_token
    if call.max_price_per_token < least:
        raise PriceTooLow(f"max_price_per_token {call.max_price_per_token} is below staking.params.min_price_per_token "
                          f"{least}: no executor may offer less")
    escrow = escrow_of(call, params)
    if escrow < params.min_job_escrow:
        raise EscrowTooLow(f"the job's escrow {escrow} is below jobs.params.min_job_escrow {params.min_job_escrow}: "
                           "raise max_tokens or max_price_per_token")


def post_job(state: Overlay, context: CallContext, call: types_pb2.PostJob) -> None:
    """Reserve the escrow, store the job, and assign its executors (or queue it)."""
    origin = context.origin
    check_post(call)
    check_post_limits(state, call)
    params = read_params(state)
    # The escrow also holds the queue fee, burned if the job has to wait (queue.enqueue), else returned.
    escrow = escrow_of(call, params) + params.queue_fee
    deposit = storage_deposit(call, params)
    chain = system.read_chain(state)
    height = chain.height
    job = state_pb2.Job(
        id=job_id(chain.genesis_hash, origin, context.nonce),
        poster=origin,
        request=call,
        status=DRAWING,
        posted_height=height,
        timeout_height=height + params.job_timeout_blocks + params.commit_window(call.max_tokens),
        escrow=escrow,
        storage_deposit=deposit,
        prompt_price_ppm=params.prompt_price_ppm,
    )
    if read_job(state, job.id) is not None:
        raise InvalidJob(f"job {job.id.hex()} exists already")
    check_executors(state, job, params)
    check_poster_room(state, origin, params)
    balances.reserve(state, origin, escrow + deposit, InsufficientBalance)
    job.timeout_height = schedule(state, job.timeout_height, job.id)
    state.deposit_event(
        events.event(events.JOB_POSTED, job=job.id.hex(), poster=origin.hex(), model=call.model.hex(), escrow=escrow,
                     timeout_height=job.timeout_height)
    )
    schedule_draw(state, job, params, height)
    index_posted(state, job)
    record_post(state, call, height)
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
    if call.prompt_tokens == 0:
        raise InvalidReveal("prompt_tokens is 0; every prompt is at least one token")


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
    _check_prompt_tokens(job, call)
    digest = output_digest(job, call.prompt_tokens, call.tokens, call.text, call.stop_reason)
    committed = commitment(job.id, origin, call.salt, digest, logprobs_digest(call.logprobs_micronats))
    if not direct and committed != slot.commitment:
        raise CommitmentMismatch(
            "the revealed result, log-probabilities and salt do not hash to the commitment (a reveal may not change "
            "any of them after committing)"
        )
    if direct:
        slot.commitment = committed
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
    end_tokens = set(models.model_for_job(state, job.request.model).end_tokens)
    early = next((i for i, token in enumerate(call.tokens[:-1]) if token in end_tokens), None)
    if early is not None:
        raise InvalidReveal(f"token {early} ends generation, but the result goes on after it")
    if call.stop_reason == "length" and count != max_tokens:
        raise InvalidReveal(f"stop_reason length needs {max_tokens} tokens, the result has {count}")
    if call.stop_reason == "eos" and call.tokens[-1] not in end_tokens:
        raise InvalidReveal("stop_reason eos needs the last token to end generation")


def _check_prompt_tokens(job: state_pb2.Job, call: types_pb2.RevealResult) -> None:
    """prompt_tokens is paid for, so it is bounded: at most one token per prompt byte plus the template's framing.

    The exact count is in the output digest: redundant executors disagree when one lies, and a
    verifier recomputes it with the model's tokenizer.
    """
    bound = prompt_token_bound(job.request.prompt)
    if call.prompt_tokens > bound:
        raise InvalidReveal(
            f"prompt_tokens {call.prompt_tokens} is impossible: the prompt is "
            f"{bound - TEMPLATE_ALLOWANCE_TOKENS} bytes, so at most {bound} tokens with the chat template's "
            f"{TEMPLATE_ALLOWANCE_TOKENS}"
        )


# --- cancel_job -------------------------------------------------------------------


def cancel_job(state: Overlay, context: CallContext, call: types_pb2.CancelJob) -> None:
    """Withdraw a job no executor was ever assigned to; its escrow returns."""
    origin = context.origin
    check_job_id(call)
    job = _job_for(state, call.job_id)
    if job.poster != origin:
        raise NotPoster("only the poster may cancel a job")
    if job.status not in (DRAWING, QUEUED) or job.assignments:
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
                "max_price_per_token": AMOUNT, "redundancy": INTEGER, "region": TEXT, "engine_classes": TEXT},
        weight=job_weights.post_job,
    ),
    CallSpec(
        name="commit_result",
        message=types_pb2.CommitResult,
        doc="Commit to a result of a job assigned to you.",
        handler=commit_result,
        check=check_commit,
        fields={"job_id": HASH, "commitment": HASH},
        weight=job_weights.commit_result,
    ),
    CallSpec(
        name="reveal_result",
        message=types_pb2.RevealResult,
        doc="Reveal the result you committed to (with redundancy 1: commit and reveal at once).",
        handler=reveal_result,
        check=check_reveal,
        fields={"job_id": HASH, "salt": BYTES, "prompt_tokens": INTEGER, "tokens": INTEGER, "text": TEXT,
                "logprobs_micronats": INTEGER, "stop_reason": TEXT},
        weight=job_weights.reveal_result,
    ),
    CallSpec(
        name="cancel_job",
        message=types_pb2.CancelJob,
        doc="Cancel your job before any executor is assigned.",
        handler=cancel_job,
        check=check_job_id,
        fields={"job_id": HASH},
        weight=job_weights.cancel_job,
    ),
)
