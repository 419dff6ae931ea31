"""jobs: the inference market — post, assign, commit, reveal, settle (DESIGN.md section 5).

A poster's `PostJob` reserves the worst case (max_tokens x max_price_per_token x redundancy) and,
in the same block, gets `redundancy` distinct executors: accounts serving the model at a price
within the maximum, with free capacity, drawn with weight stake x reputation from a seed hashed
from the job id and height (the requested region is preferred). Without enough free executors the
job waits in a queue that every block retries, until its timeout refunds it.

Each executor commits blake2b-256(domain || job id || executor || salt || output digest), then,
once every commitment is in, reveals the output; the runtime recomputes the digest (the recipe of
inference/result.py, docs/verification.md "The output digest") and checks the stop rule. Identical
digests settle: each executor earns its output tokens x its own price, less the protocol's share
(burned), held in its reserved balance until the challenge window closes; the rest of the escrow
returns to the poster. Differing digests are held as DISPUTED until disputes land (after the
multi-validator network); until then the escrow returns when the challenge window closes.
A missed deadline costs reputation and frees the slot for another executor while the job's
timeout allows. Every step emits an event, and every stored job keeps its reveals for re-scoring.

Per-block work is bounded: the queue is retried `assign_per_block` jobs at a time, and deadlines
and releases are kept in a schedule keyed by height, so no hook walks state.

Shape: params, storage keys, errors, events, recipes, storage access, calls, hooks, genesis,
declaration.
"""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass
from hashlib import blake2b
from typing import Any, Mapping

from proto import state_pb2, types_pb2
from runtime import balances, models, reputation, staking, system
from runtime.arithmetic import PPM, U64_MAX, apply_ppm
from runtime.module import (
    ACCOUNT,
    AMOUNT,
    HASH,
    INTEGER,
    TEXT,
    CallSpec,
    EventSpec,
    GenesisContext,
    GenesisSpec,
    ModuleSpec,
    ParamsSpec,
    check_section_keys,
)
from runtime.params import decode_params, encode_params, params_from_json, params_to_json
from runtime.primitives import BlockContext, DispatchError, make_event
from runtime.state import IterableState, Overlay, StateReader

MODULE = "jobs"
PROMPT_FORMATS = ("chat", "raw")
STOP_REASONS = ("eos", "length")
MAX_TEMPERATURE_MILLI = 100_000  # inference/sampler.py's bound
SALT_BYTES = 32
# Tokens set aside for a chat template's framing when checking that a job fits the model's context.
TEMPLATE_ALLOWANCE_TOKENS = 64
JOB_DOMAIN = b"inferchain/job/v1"
COMMIT_DOMAIN = b"inferchain/commit/v1"
ASSIGN_DOMAIN = b"inferchain/assign/v1"
OUTPUT_DIGEST_DOMAIN = b"inferchain.output.v1"

QUEUED = state_pb2.JOB_STATUS_QUEUED
ASSIGNED = state_pb2.JOB_STATUS_ASSIGNED
REVEALING = state_pb2.JOB_STATUS_REVEALING
SETTLED = state_pb2.JOB_STATUS_SETTLED
DISPUTED = state_pb2.JOB_STATUS_DISPUTED
EXPIRED = state_pb2.JOB_STATUS_EXPIRED
CANCELLED = state_pb2.JOB_STATUS_CANCELLED
FINAL_STATUSES = frozenset({SETTLED, DISPUTED, EXPIRED, CANCELLED})

SLOT_ASSIGNED = state_pb2.ASSIGNMENT_STATUS_ASSIGNED
SLOT_COMMITTED = state_pb2.ASSIGNMENT_STATUS_COMMITTED
SLOT_REVEALED = state_pb2.ASSIGNMENT_STATUS_REVEALED
SLOT_MISSED = state_pb2.ASSIGNMENT_STATUS_MISSED
ACTIVE_SLOTS = (SLOT_ASSIGNED, SLOT_COMMITTED)

# --- params -------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """Market rules, set at genesis (proto JobsParams documents each field)."""

    max_prompt_bytes: int = 16_384
    max_tokens: int = 4_096
    max_redundancy: int = 5
    commit_blocks: int = 20
    reveal_blocks: int = 10
    job_timeout_blocks: int = 300
    challenge_window_blocks: int = 100
    protocol_fee_ppm: int = 10_000
    max_queue: int = 1_000
    assign_per_block: int = 50
    reputation_initial: int = 100
    reputation_max: int = 1_000
    reputation_gain: int = 1
    reputation_loss: int = 10
    min_tokens_per_block: int = 10

    def validate(self) -> None:
        for name, value in asdict(self).items():
            if value < 1 and name != "protocol_fee_ppm":
                raise ValueError(f"jobs.params.{name} must be at least 1")
        if self.protocol_fee_ppm > PPM:
            raise ValueError("jobs.params.protocol_fee_ppm must be at most 1000000")
        if not 1 <= self.reputation_initial <= self.reputation_max:
            raise ValueError("jobs.params.reputation_initial must be in [1, reputation_max]")

    def commit_window(self, max_tokens: int) -> int:
        """Blocks an executor has to commit: a fixed part plus one block per min_tokens_per_block tokens."""
        return self.commit_blocks + -(-max_tokens // self.min_tokens_per_block)


PARAMS_KEY = b"jobs/params"
PARAMS = ParamsSpec(Params, state_pb2.JobsParams, PARAMS_KEY)

# --- storage keys ---------------------------------------------------------------

JOB_PREFIX = b"jobs/job/"  # + job id -> Job
LOAD_PREFIX = b"jobs/load/"  # + executor -> 4-byte big-endian count of active assignments
QUEUE_KEY = b"jobs/queue"  # JobIdList, oldest first
SCHEDULE_PREFIX = b"jobs/schedule/"  # + u64 big-endian height -> JobIdList due then
# Listing indexes (value b""), walked by the node's API: newest last in key order.
JOBS_BY_HEIGHT = b"jobs/by_height/"  # + u64 BE posted height + job id
JOBS_BY_POSTER = b"jobs/by_poster/"  # + poster + u64 BE posted height + job id
JOBS_BY_EXECUTOR = b"jobs/by_executor/"  # + executor + u64 BE posted height + job id


def read_params(state: StateReader) -> Params:
    return decode_params(PARAMS, state.get(PARAMS_KEY))


# --- errors ---------------------------------------------------------------------


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


class QueueFull(JobsError):
    """jobs.params.max_queue jobs already wait for executors."""


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
    InvalidJob, JobTooLarge, UnknownModel, NoExecutors, InsufficientBalance, QueueFull, UnknownJob, NotAssigned,
    WrongPhase, DeadlinePassed, CommitmentMismatch, InvalidReveal, NotPoster, NotCancellable,
)

# --- events ---------------------------------------------------------------------

EVENTS = (
    EventSpec(
        "JobPosted",
        "A job was posted and its escrow reserved.",
        {"job": HASH, "poster": ACCOUNT, "model": HASH, "escrow": AMOUNT, "timeout_height": INTEGER},
    ),
    EventSpec("JobQueued", "Too few executors are free: the job waits (every block retries).", {"job": HASH, "missing": INTEGER}),
    EventSpec(
        "JobAssigned",
        "An executor was assigned; it commits by deadline_height.",
        {"job": HASH, "executor": ACCOUNT, "price_per_token": AMOUNT, "deadline_height": INTEGER},
    ),
    EventSpec("ResultCommitted", "An executor committed to its result.", {"job": HASH, "executor": ACCOUNT}),
    EventSpec("RevealOpened", "Every commitment is in; executors reveal by deadline_height.", {"job": HASH, "deadline_height": INTEGER}),
    EventSpec("ResultRevealed", "An executor revealed its result.", {"job": HASH, "executor": ACCOUNT, "output_digest": HASH, "tokens": INTEGER}),
    EventSpec("JobSettled", "The revealed results agreed.", {"job": HASH, "output_digest": HASH, "paid": AMOUNT}),
    EventSpec(
        "PaymentHeld",
        "An executor's payment, held until the challenge window closes.",
        {"job": HASH, "executor": ACCOUNT, "amount": AMOUNT, "release_height": INTEGER},
    ),
    EventSpec("PaymentReleased", "A held payment became the executor's free balance.", {"job": HASH, "executor": ACCOUNT, "amount": AMOUNT}),
    EventSpec("ProtocolFee", "The protocol's share of a payment, burned.", {"job": HASH, "amount": AMOUNT}),
    EventSpec("JobRefunded", "Escrow returned to the poster.", {"job": HASH, "poster": ACCOUNT, "amount": AMOUNT}),
    EventSpec("DeadlineMissed", "An executor missed its commit or reveal deadline.", {"job": HASH, "executor": ACCOUNT, "phase": TEXT}),
    EventSpec("JobExpired", "The job found no (agreeing) result before its timeout.", {"job": HASH, "reason": TEXT}),
    EventSpec("JobCancelled", "The poster withdrew the job before assignment.", {"job": HASH}),
    EventSpec("JobDisputed", "Revealed results differ; the escrow is held.", {"job": HASH, "results": INTEGER}),
)


def _event(event_name: str, **attributes: object) -> types_pb2.Event:
    return make_event(MODULE, event_name, **attributes)


# --- recipes (docs/protocol.md, "Jobs") -----------------------------------------


def _hash(*parts: bytes) -> bytes:
    return blake2b(b"".join(parts), digest_size=32).digest()


def job_id(genesis_hash: bytes, poster: bytes, nonce: int) -> bytes:
    """A job's id, known to its poster before submission: hash of the chain, poster and PostJob's nonce."""
    return _hash(JOB_DOMAIN, genesis_hash, poster, struct.pack("<Q", nonce))


def commitment(job: bytes, executor: bytes, salt: bytes, output_digest: bytes) -> bytes:
    """What CommitResult carries: it binds the executor to its output without showing it."""
    return _hash(COMMIT_DOMAIN, job, executor, salt, output_digest)


def _text(text: str) -> bytes:
    encoded = text.encode("utf-8")
    return struct.pack("<Q", len(encoded)) + encoded


def output_digest(job: state_pb2.Job, prompt_tokens: int, tokens, text: str, stop_reason: str) -> bytes:
    """The output digest of docs/verification.md, the same bytes inference/result.py hashes."""
    request, sampling = job.request, job.request.sampling
    return _hash(
        OUTPUT_DIGEST_DOMAIN,
        job.id,
        request.model,
        _text(request.prompt_format),
        _text(request.prompt),
        struct.pack("<6Q", request.max_tokens, sampling.temperature_milli, sampling.top_k, sampling.top_p_ppm,
                    sampling.seed, prompt_tokens),
        struct.pack(f"<Q{len(tokens)}Q", len(tokens), *tokens),
        _text(text),
        _text(stop_reason),
    )


def assignment_seed(job: bytes, height: int, round_index: int) -> bytes:
    """The seed of one assignment round: the job id, the block height, and how many slots came before."""
    return _hash(ASSIGN_DOMAIN, job, struct.pack("<QQ", height, round_index))


# --- storage access -------------------------------------------------------------


def read_job(state: StateReader, job: bytes) -> state_pb2.Job | None:
    raw = state.get(JOB_PREFIX + job)
    return None if raw is None else state_pb2.Job.FromString(raw)


def _write_job(state: Overlay, job: state_pb2.Job) -> None:
    state.set(JOB_PREFIX + job.id, job.SerializeToString(deterministic=True))


def read_load(state: StateReader, account: bytes) -> int:
    raw = state.get(LOAD_PREFIX + account)
    return 0 if raw is None else int.from_bytes(raw, "big")


def _add_load(state: Overlay, account: bytes, delta: int) -> None:
    load = read_load(state, account) + delta
    if load:
        state.set(LOAD_PREFIX + account, load.to_bytes(4, "big"))
    else:
        state.delete(LOAD_PREFIX + account)


def _read_ids(state: StateReader, key: bytes) -> list[bytes]:
    raw = state.get(key)
    return [] if raw is None else list(state_pb2.JobIdList.FromString(raw).job_ids)


def _write_ids(state: Overlay, key: bytes, ids: list[bytes]) -> None:
    if ids:
        state.set(key, state_pb2.JobIdList(job_ids=ids).SerializeToString(deterministic=True))
    else:
        state.delete(key)


def _schedule(state: Overlay, height: int, job: bytes) -> None:
    key = SCHEDULE_PREFIX + struct.pack(">Q", height)
    ids = _read_ids(state, key)
    if job not in ids:
        _write_ids(state, key, ids + [job])


def _enqueue(state: Overlay, job: bytes) -> bool:
    """Put a job at the end of the queue; False when it waits there already."""
    ids = _read_ids(state, QUEUE_KEY)
    if job in ids:
        return False
    _write_ids(state, QUEUE_KEY, ids + [job])
    return True


def _dequeue(state: Overlay, job: bytes) -> None:
    ids = _read_ids(state, QUEUE_KEY)
    if job in ids:
        ids.remove(job)
        _write_ids(state, QUEUE_KEY, ids)


def _height(state: StateReader) -> int:
    return system.read_chain(state).height


def _active(job: state_pb2.Job) -> list[state_pb2.Assignment]:
    return [slot for slot in job.assignments if slot.status in ACTIVE_SLOTS]


def _slot_of(job: state_pb2.Job, executor: bytes) -> state_pb2.Assignment | None:
    """The executor's current (not missed) assignment in the job."""
    return next((slot for slot in job.assignments if slot.executor == executor and slot.status != SLOT_MISSED), None)


# --- assignment -----------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    account: bytes
    price: int
    region: str
    weight: int


def _candidates(state: StateReader, job: state_pb2.Job, params: Params, *, free_only: bool) -> list[_Candidate]:
    """Executors serving the job's model within its price, never assigned to it before, sorted by account."""
    request = job.request
    stake_params = staking.read_params(state)
    taken = {slot.executor for slot in job.assignments}
    found = []
    for account in staking.serving(state, request.model):
        if account in taken:
            continue
        offer = staking.read_offer(state, account)
        stake = staking.bonded(state, account)
        if offer is None or offer.price_per_token > request.max_price_per_token or stake < stake_params.min_bond:
            continue
        if free_only and read_load(state, account) >= offer.capacity:
            continue
        score = reputation.read_reputation(state, account, params.reputation_initial)
        found.append(_Candidate(account, offer.price_per_token, offer.region, stake * score))
    if request.region:
        # The region is a preference: its executors alone when there are enough of them.
        local = [candidate for candidate in found if candidate.region == request.region]
        if len(local) >= _missing(job):
            return local
    return found


def _missing(job: state_pb2.Job) -> int:
    return job.request.redundancy - len(_active(job))


def _draw(candidates: list[_Candidate], count: int, seed: bytes) -> list[_Candidate]:
    """`count` distinct candidates, each draw weighted by stake x reputation, from a chain-derived seed."""
    pool = list(candidates)
    chosen = []
    for index in range(count):
        total = sum(candidate.weight for candidate in pool)
        point = int.from_bytes(_hash(seed, struct.pack("<Q", index)), "big") % total
        for position, candidate in enumerate(pool):
            if point < candidate.weight:
                chosen.append(pool.pop(position))
                break
            point -= candidate.weight
    return chosen


def _try_fill(state: Overlay, job: state_pb2.Job, params: Params, height: int) -> bool:
    """Assign executors to every empty slot at once; False (nothing written) when too few are free."""
    missing = _missing(job)
    if missing <= 0:
        return True
    candidates = _candidates(state, job, params, free_only=True)
    if len(candidates) < missing:
        return False
    deadline = height + params.commit_window(job.request.max_tokens)
    seed = assignment_seed(job.id, height, len(job.assignments))
    for candidate in _draw(candidates, missing, seed):
        job.assignments.append(
            state_pb2.Assignment(
                executor=candidate.account,
                price_per_token=candidate.price,
                status=SLOT_ASSIGNED,
                assigned_height=height,
                deadline_height=deadline,
            )
        )
        _add_load(state, candidate.account, 1)
        state.set(JOBS_BY_EXECUTOR + candidate.account + struct.pack(">Q", job.posted_height) + job.id, b"")
        state.deposit_event(
            _event("JobAssigned", job=job.id.hex(), executor=candidate.account.hex(),
                   price_per_token=candidate.price, deadline_height=deadline)
        )
    _schedule(state, deadline, job.id)
    job.status = ASSIGNED
    return True


def _fill_or_queue(state: Overlay, job: state_pb2.Job, params: Params, height: int) -> None:
    """Fill the job's empty slots now, or queue it (a queued job waits on silently), or expire it at its timeout."""
    if _try_fill(state, job, params, height):
        _dequeue(state, job.id)
        return
    if height >= job.timeout_height:
        _end(state, job, EXPIRED, "no executor was free before the job's timeout")
        return
    job.status = QUEUED
    if _enqueue(state, job.id):
        state.deposit_event(_event("JobQueued", job=job.id.hex(), missing=_missing(job)))


# --- ending a job -----------------------------------------------------------------


def _release_slots(state: Overlay, job: state_pb2.Job) -> None:
    """Free the capacity of every still-active assignment (the job ends without their result)."""
    for slot in _active(job):
        _add_load(state, slot.executor, -1)
        slot.status = SLOT_MISSED if slot.status == SLOT_ASSIGNED else slot.status


def _refund(state: Overlay, job: state_pb2.Job) -> None:
    if job.escrow:
        balances.unreserve(state, job.poster, job.escrow)
        state.deposit_event(_event("JobRefunded", job=job.id.hex(), poster=job.poster.hex(), amount=job.escrow))
        job.refunded += job.escrow
        job.escrow = 0


def _end(state: Overlay, job: state_pb2.Job, status: int, reason: str) -> None:
    """End a job without payment: expired or cancelled; the escrow returns."""
    _release_slots(state, job)
    _dequeue(state, job.id)
    _refund(state, job)
    job.status = status
    job.reason = reason
    job.final_height = _height(state)
    if status == CANCELLED:
        state.deposit_event(_event("JobCancelled", job=job.id.hex()))
    else:
        state.deposit_event(_event("JobExpired", job=job.id.hex(), reason=reason))


def _settle(state: Overlay, job: state_pb2.Job, params: Params, height: int) -> None:
    """Every remaining result is revealed: pay (held) if they agree, else hold the escrow as disputed."""
    revealed = [slot for slot in job.assignments if slot.status == SLOT_REVEALED]
    _release_slots(state, job)
    digests = {slot.reveal.output_digest for slot in revealed}
    release = height + params.challenge_window_blocks
    job.final_height = height
    if len(digests) != 1:
        job.status = DISPUTED
        job.reason = f"{len(digests)} different results were revealed; held until height {release}"
        _schedule(state, release, job.id)
        state.deposit_event(_event("JobDisputed", job=job.id.hex(), results=len(digests)))
        return
    paid = 0
    for slot in revealed:
        gross = len(slot.reveal.tokens) * slot.price_per_token
        fee = apply_ppm(gross, params.protocol_fee_ppm)
        net = gross - fee
        balances.repatriate_reserved(state, job.poster, slot.executor, net)
        if fee:
            balances.burn_reserved(state, job.poster, fee)
            state.deposit_event(_event("ProtocolFee", job=job.id.hex(), amount=fee))
        job.escrow -= gross
        job.protocol_fee += fee
        paid += gross
        slot.payment = net
        slot.release_height = release
        reputation.adjust(state, slot.executor, params.reputation_gain, params.reputation_initial, params.reputation_max)
        state.deposit_event(
            _event("PaymentHeld", job=job.id.hex(), executor=slot.executor.hex(), amount=net, release_height=release)
        )
    job.status = SETTLED
    job.output_digest = digests.pop()
    _schedule(state, release, job.id)
    state.deposit_event(_event("JobSettled", job=job.id.hex(), output_digest=job.output_digest.hex(), paid=paid))
    _refund(state, job)


def _miss(state: Overlay, job: state_pb2.Job, slot: state_pb2.Assignment, phase: str, params: Params) -> None:
    slot.status = SLOT_MISSED
    _add_load(state, slot.executor, -1)
    reputation.adjust(state, slot.executor, -params.reputation_loss, params.reputation_initial, params.reputation_max)
    state.deposit_event(_event("DeadlineMissed", job=job.id.hex(), executor=slot.executor.hex(), phase=phase))


def _open_reveal(state: Overlay, job: state_pb2.Job, params: Params, height: int) -> None:
    deadline = height + params.reveal_blocks
    for slot in _active(job):
        slot.deadline_height = deadline
    job.status = REVEALING
    _schedule(state, deadline, job.id)
    state.deposit_event(_event("RevealOpened", job=job.id.hex(), deadline_height=deadline))


# --- calls ----------------------------------------------------------------------


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
    staking.check_region(call.region, InvalidJob)


def escrow_of(call: types_pb2.PostJob) -> int:
    """The worst case a job can cost: max_tokens x max_price_per_token x redundancy."""
    return call.max_tokens * call.max_price_per_token * call.redundancy


def post_job(state: Overlay, origin: bytes, call: types_pb2.PostJob) -> None:
    """Reserve the escrow, store the job, and assign its executors (or queue it)."""
    check_post(call)
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
    escrow = escrow_of(call)
    if escrow > U64_MAX:
        raise JobTooLarge("max_tokens x max_price_per_token x redundancy does not fit in 64 bits")
    chain = system.read_chain(state)
    height = chain.height
    account = system.read_account(state, origin)
    job = state_pb2.Job(
        id=job_id(chain.genesis_hash, origin, account.nonce - 1),
        poster=origin,
        request=call,
        status=QUEUED,
        posted_height=height,
        timeout_height=height + params.job_timeout_blocks + params.commit_window(call.max_tokens),
        escrow=escrow,
    )
    if read_job(state, job.id) is not None:
        raise InvalidJob(f"job {job.id.hex()} exists already")
    _check_executors(state, job, params)
    if len(_read_ids(state, QUEUE_KEY)) >= params.max_queue:
        raise QueueFull(f"{params.max_queue} jobs already wait for executors; try later")
    balances.reserve(state, origin, escrow, InsufficientBalance)
    state.deposit_event(
        _event("JobPosted", job=job.id.hex(), poster=origin.hex(), model=call.model.hex(), escrow=escrow,
               timeout_height=job.timeout_height)
    )
    _fill_or_queue(state, job, params, height)
    if job.status == QUEUED:
        _schedule(state, job.timeout_height, job.id)
    position = struct.pack(">Q", height) + job.id
    state.set(JOBS_BY_HEIGHT + position, b"")
    state.set(JOBS_BY_POSTER + origin + position, b"")
    _write_job(state, job)


def _check_executors(state: StateReader, job: state_pb2.Job, params: Params) -> None:
    """Refuse a job that no set of executors could ever take: too few serve the model within its price."""
    request = job.request
    serving = staking.serving(state, request.model)
    if len(serving) < request.redundancy:
        raise NoExecutors(
            f"redundancy {request.redundancy} is above the {len(serving)} executors serving model {request.model.hex()}"
        )
    within = _candidates(state, job, params, free_only=False)
    if len(within) < request.redundancy:
        prices = sorted(offer.price_per_token for offer in (staking.read_offer(state, a) for a in serving) if offer)
        raise NoExecutors(
            f"only {len(within)} executors serve the model at max_price_per_token {request.max_price_per_token} "
            f"or less (the lowest prices are {', '.join(map(str, prices[:request.redundancy]))}); "
            f"redundancy {request.redundancy} needs {request.redundancy}"
        )


def _job_for(state: StateReader, job_id_bytes: bytes) -> state_pb2.Job:
    """The job a call names (its size was checked by the call's stateless check)."""
    job = read_job(state, job_id_bytes)
    if job is None:
        raise UnknownJob(f"no job has id {job_id_bytes.hex()}")
    return job


def _assignment_of(state: StateReader, job_id_bytes: bytes, executor: bytes) -> tuple[state_pb2.Job, state_pb2.Assignment]:
    """The job and the executor's current assignment in it; NotAssigned when it has none."""
    job = _job_for(state, job_id_bytes)
    slot = _slot_of(job, executor)
    if slot is None:
        raise NotAssigned(f"this account is not an executor of job {job.id.hex()}")
    return job, slot


def _check_job_id(call) -> None:
    if len(call.job_id) != 32:
        raise UnknownJob(f"a job id is 32 bytes, got {len(call.job_id)}")


def _check_commit(call: types_pb2.CommitResult) -> None:
    _check_job_id(call)
    if len(call.commitment) != 32:
        raise InvalidJob(f"a commitment is 32 bytes, got {len(call.commitment)}")


def commit_result(state: Overlay, origin: bytes, call: types_pb2.CommitResult) -> None:
    """Record an assigned executor's commitment; when all are in, open the reveal."""
    _check_commit(call)
    job, slot = _assignment_of(state, call.job_id, origin)
    if slot.status != SLOT_ASSIGNED or job.status not in (ASSIGNED, QUEUED):
        raise WrongPhase(f"this account's assignment is {_slot_name(slot)}, the job is {_job_name(job)}: nothing to commit")
    height = _height(state)
    if height > slot.deadline_height:
        raise DeadlinePassed(f"the commit deadline was height {slot.deadline_height}; this is {height}")
    slot.commitment = call.commitment
    slot.status = SLOT_COMMITTED
    state.deposit_event(_event("ResultCommitted", job=job.id.hex(), executor=origin.hex()))
    active = _active(job)
    if len(active) == job.request.redundancy and all(s.status == SLOT_COMMITTED for s in active):
        _open_reveal(state, job, read_params(state), height)
    _write_job(state, job)


def _check_reveal(call: types_pb2.RevealResult) -> None:
    _check_job_id(call)
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


def reveal_result(state: Overlay, origin: bytes, call: types_pb2.RevealResult) -> None:
    """Check a revealed result against the commitment and the job; settle when every result is in."""
    _check_reveal(call)
    job, slot = _assignment_of(state, call.job_id, origin)
    height = _height(state)
    direct = job.request.redundancy == 1 and slot.status == SLOT_ASSIGNED and job.status == ASSIGNED
    if not direct and (slot.status != SLOT_COMMITTED or job.status != REVEALING):
        raise WrongPhase(
            f"this account's assignment is {_slot_name(slot)}, the job is {_job_name(job)}: "
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
    _add_load(state, origin, -1)
    state.deposit_event(
        _event("ResultRevealed", job=job.id.hex(), executor=origin.hex(), output_digest=digest.hex(), tokens=len(call.tokens))
    )
    if not _active(job):
        _settle(state, job, read_params(state), height)
    _write_job(state, job)


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


def cancel_job(state: Overlay, origin: bytes, call: types_pb2.CancelJob) -> None:
    """Withdraw a job no executor was ever assigned to; its escrow returns."""
    _check_job_id(call)
    job = _job_for(state, call.job_id)
    if job.poster != origin:
        raise NotPoster("only the poster may cancel a job")
    if job.status != QUEUED or job.assignments:
        raise NotCancellable(f"the job is {_job_name(job)} with {len(job.assignments)} assignments: too late to cancel")
    _end(state, job, CANCELLED, "cancelled by the poster")
    _write_job(state, job)


def _slot_name(slot: state_pb2.Assignment) -> str:
    return state_pb2.AssignmentStatus.Name(slot.status).removeprefix("ASSIGNMENT_STATUS_").lower()


def _job_name(job: state_pb2.Job) -> str:
    return state_pb2.JobStatus.Name(job.status).removeprefix("JOB_STATUS_").lower()


CALLS = (
    CallSpec(
        name="post_job",
        message=types_pb2.PostJob,
        doc="Post an inference job; its worst-case cost is held in escrow.",
        handler=post_job,
        cost=escrow_of,
        check=check_post,
    ),
    CallSpec(
        name="commit_result",
        message=types_pb2.CommitResult,
        doc="Commit to a result of a job assigned to you.",
        handler=commit_result,
        check=_check_commit,
        fields={"job_id": HASH, "commitment": HASH},
    ),
    CallSpec(
        name="reveal_result",
        message=types_pb2.RevealResult,
        doc="Reveal the result you committed to (with redundancy 1: commit and reveal at once).",
        handler=reveal_result,
        check=_check_reveal,
    ),
    CallSpec(
        name="cancel_job",
        message=types_pb2.CancelJob,
        doc="Cancel your job before any executor is assigned.",
        handler=cancel_job,
        check=_check_job_id,
        fields={"job_id": HASH},
    ),
)

# --- hooks ----------------------------------------------------------------------


def on_finalize(state: Overlay, block: BlockContext, fees: int) -> None:
    """Retry queued jobs (oldest first, a bounded number), then handle what is due at this height."""
    height = block.height
    params = read_params(state)
    for job_id_bytes in _read_ids(state, QUEUE_KEY)[: params.assign_per_block]:
        job = read_job(state, job_id_bytes)
        _fill_or_queue(state, job, params, height)
        _write_job(state, job)
    key = SCHEDULE_PREFIX + struct.pack(">Q", height)
    due = _read_ids(state, key)
    state.delete(key)
    for job_id_bytes in due:
        job = read_job(state, job_id_bytes)
        _on_due(state, job, params, height)
        _write_job(state, job)


def _on_due(state: Overlay, job: state_pb2.Job, params: Params, height: int) -> None:
    if job.status in (SETTLED, DISPUTED):
        _release_held(state, job, params, height)
        return
    if job.status in (EXPIRED, CANCELLED):
        return
    if job.status == REVEALING:
        for slot in _active(job):
            if slot.deadline_height <= height:
                _miss(state, job, slot, "reveal", params)
        if _active(job):
            return
        if any(slot.status == SLOT_REVEALED for slot in job.assignments):
            _settle(state, job, params, height)
            return
        # Nothing was revealed, so nothing can be copied: the job starts over with new executors.
    else:
        for slot in _active(job):
            if slot.status == SLOT_ASSIGNED and slot.deadline_height <= height:
                _miss(state, job, slot, "commit", params)
    if height >= job.timeout_height and _missing(job) > 0:
        _end(state, job, EXPIRED, "executors missed their deadlines and the job's timeout has come")
        return
    if _missing(job) > 0:
        _fill_or_queue(state, job, params, height)
    if job.status == QUEUED:
        _schedule(state, max(job.timeout_height, height + 1), job.id)


def _release_held(state: Overlay, job: state_pb2.Job, params: Params, height: int) -> None:
    """At the end of the challenge window: release held payments (or refund a disputed job)."""
    if job.status == DISPUTED:
        if height >= job.final_height + params.challenge_window_blocks:
            _refund(state, job)
        return
    for slot in job.assignments:
        if slot.payment and not slot.released and slot.release_height <= height:
            balances.unreserve(state, slot.executor, slot.payment)
            slot.released = True
            state.deposit_event(
                _event("PaymentReleased", job=job.id.hex(), executor=slot.executor.hex(), amount=slot.payment)
            )


# --- genesis --------------------------------------------------------------------


@dataclass(frozen=True)
class GenesisConfig:
    params: Params


def parse_genesis(section: Mapping[str, Any], context: GenesisContext) -> GenesisConfig:
    """`app_state.jobs`: {"params": {...}}."""
    check_section_keys(section, ("params",), "app_state.jobs")
    return GenesisConfig(params_from_json(PARAMS, section.get("params", {}), "app_state.jobs.params"))


def genesis(state: Overlay, config: GenesisConfig) -> None:
    config.params.validate()
    state.set(PARAMS_KEY, encode_params(PARAMS, config.params))


def export_genesis(state: IterableState, encode_account=bytes.hex) -> dict:
    """Parameters only: open jobs end with the old chain (their escrow is exported as free balance)."""
    return {"params": params_to_json(PARAMS, read_params(state))}


# --- declaration ----------------------------------------------------------------

SPEC = ModuleSpec(
    name=MODULE,
    doc="The inference market: post, assign, commit, reveal, settle.",
    params=PARAMS,
    genesis=GenesisSpec(parse=parse_genesis, build=genesis, export=export_genesis),
    calls=CALLS,
    events=EVENTS,
    errors=ERRORS,
    on_finalize=on_finalize,
)
