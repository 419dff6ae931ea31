"""From a completion request to a job on the chain and back: resolve the model, build and sign the PostJob,
follow the job to its end, cancel it when its client leaves.

Every function here blocks (gRPC); app.py runs them in worker threads. The node's refusals arrive as
ClientError with a gRPC code and the runtime's message ("jobs.InsufficientBalance: ..."): `refusal`
maps each to the HTTP status and OpenAI error type a client of OpenAI's API expects.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable

from chain.client import Client, ClientError, JobView
from chain.client.queries import ModuleQueries
from chain.client.jobs import DEFAULT_MAX_TOKENS, assignment_status_name, job_id_of, post_job_call, posted_job_id
from chain.crypto import Keypair
from chain.gateway.openai_shapes import CompletionRequest, RequestError, invalid
from chain.gateway.tracker import JobTracker, Watch
from proto import state_pb2, types_pb2
from runtime.models import class_names

log = logging.getLogger(__name__)

# Seconds a client is told to wait (Retry-After) when no executor can take the job or the queue is full.
RETRY_AFTER_S = 2
# How long the chain's cap on one poster's waiting jobs is used before it is read again.
POSTER_CAP_TTL_S = 60.0
# How long a cancellation waits for the PostJob's inclusion (a job drawn meanwhile cannot be cancelled anyway).
CANCEL_INCLUSION_WAIT_S = 10.0
# The node's refusals, by a marker of its message, and what each means to an OpenAI client. The
# runtime names its errors module.Name (runtime/executive.py _dry_run); the fee checks before it do not.
REFUSALS = (
    ("InsufficientBalance", 402, "insufficient_balance"),
    ("cannot pay the fee", 402, "insufficient_balance"),
    ("has no account on this chain", 402, "insufficient_balance"),
    ("TooManyQueued", 429, "queue_full"),
    ("NoExecutors", 503, "no_executor"),
    ("UnknownModel", 404, "model_not_found"),
    ("JobTooLarge", 400, "job_too_large"),
    ("InvalidJob", 400, "invalid_job"),
    ("PriceTooLow", 400, "price_too_low"),
    ("EscrowTooLow", 400, "escrow_too_low"),
)
ERROR_TYPES = {400: "invalid_request_error", 402: "insufficient_balance", 404: "invalid_request_error",
               429: "rate_limit_error", 503: "service_unavailable", 502: "api_error", 504: "timeout"}
# What a final job's status means to its poster (the `verdict` of the inferchain extension).
VERDICTS = {
    state_pb2.JOB_STATUS_SETTLED: "settled",
    state_pb2.JOB_STATUS_EXPIRED: "refunded",
    state_pb2.JOB_STATUS_CANCELLED: "refunded",
    state_pb2.JOB_STATUS_REJECTED: "rejected",
    state_pb2.JOB_STATUS_DISPUTED: "disputed",
}


@dataclass(frozen=True)
class Posted:
    """A job the chain accepted: its id, the PostJob's transaction hash, and the model it runs."""

    job_id: bytes
    transaction_hash: bytes
    model: types_pb2.ModelInfo


class ChainAccess:
    """The gateway's side of the node: one shared Client for short calls, one block subscription for every
    followed job (tracker.py)."""

    def __init__(self, target: str, timeout: float = 10.0):
        self.target = target
        self.timeout = timeout
        self.client = Client(target, timeout)
        # One submission at a time per poster key: each takes the next nonce, so none races another.
        self._submit_locks: dict[bytes, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._genesis: bytes | None = None
        self._poster_cap: tuple[int, float] | None = None
        self.tracker = JobTracker(target, timeout)

    def close(self) -> None:
        self.tracker.close()
        self.client.close()

    # --- models ------------------------------------------------------------------------------

    def models(self) -> list[tuple[types_pb2.ModelInfo, int]]:
        """The registered models, each with how many executors serve it now."""
        registry = self._call(self.client.list_models)
        return [(model, len(self._call(self.client.get_executors, model.id))) for model in registry.models]

    def model(self, reference: str) -> types_pb2.ModelInfo:
        """The registered model with this name (or hex id); RequestError 404 when none."""
        registry = self._call(self.client.list_models)
        for model in registry.models:
            if reference in (model.name, model.id.hex()):
                return model
        raise RequestError(404, f"the model {reference[:80]!r} does not exist: GET /v1/models lists the chain's "
                                "registered models", param="model", code="model_not_found")

    def serving(self, model: types_pb2.ModelInfo) -> int:
        return len(self._call(self.client.get_executors, model.id))

    def max_queued_per_poster(self) -> int:
        """The chain's cap on one poster's jobs waiting for executors (jobs.params), read again after POSTER_CAP_TTL_S."""
        now = time.monotonic()
        if self._poster_cap is None or now - self._poster_cap[1] > POSTER_CAP_TTL_S:
            answer = self._call(ModuleQueries(self.client).query, "jobs", "params", state_pb2.NoArguments())
            self._poster_cap = (answer.response.max_queued_per_poster, now)
        return self._poster_cap[0]

    # --- posting -----------------------------------------------------------------------------

    def post(self, poster: Keypair, request: CompletionRequest) -> Posted:
        """Build, sign and submit the PostJob; the node's admission dry run names the job."""
        model = self.model(request.model)
        call = self.post_job(request, model)
        lock = self._submit_lock(poster.public_key)
        with lock:
            try:
                submission = self.client.submit(poster, call)
            except ClientError as error:
                raise refusal(error) from None
        # The verdict names the job; one queued behind the poster's pending transactions has no dry run yet,
        # and its id follows from the nonce (chain/client/jobs.py job_id_of).
        job_id = posted_job_id(submission.dry_run) or job_id_of(self._genesis_hash(), poster.public_key,
                                                                 submission.nonce)
        return Posted(job_id, submission.hash, model)

    def post_job(self, request: CompletionRequest, model: types_pb2.ModelInfo) -> types_pb2.PostJob:
        """The PostJob for a request: max_tokens against the model's context, the price cap, the seed."""
        max_tokens = request.max_tokens
        field = "max_tokens"
        if max_tokens is None:
            max_tokens = min(DEFAULT_MAX_TOKENS, max(1, model.context_length - 1))
        elif model.context_length and max_tokens >= model.context_length:
            raise invalid(f"{field} {max_tokens} does not fit the model's {model.context_length}-token context "
                          f"(at most {model.context_length - 1})", field, "context_length_exceeded")
        unknown = [name for name in request.engine_classes if name not in class_names(model)]
        if unknown:
            raise invalid(f"model {model.name} has no engine class {unknown[0]!r} (its classes: "
                          f"{', '.join(class_names(model))})", "inferchain.engine_classes", "invalid_value")
        price = request.max_price_per_token
        if price is None:
            price = self._least_price(model, request.redundancy, request.engine_classes)
        seed = request.seed
        if seed is None:  # OpenAI's: no seed, a fresh draw; greedy decoding needs none
            seed = 0 if request.temperature_milli == 0 else secrets.randbits(64)
        # A seed the client chose reproduces its answer in any job (OpenAI's promise for `seed`): the noise is
        # keyed by it alone. A drawn one keeps the job id in the key.
        sampling = types_pb2.Sampling(temperature_milli=request.temperature_milli, top_k=request.top_k,
                                      top_p_ppm=request.top_p_ppm, seed=seed, seed_only=request.seed is not None)
        try:
            return post_job_call(request.prompt, model=model.id, max_price_per_token=price, max_tokens=max_tokens,
                                 sampling=sampling, redundancy=request.redundancy, region=request.region,
                                 prompt_format=request.prompt_format, engine_classes=request.engine_classes)
        except ClientError as error:
            raise invalid(error.message, None, "invalid_job") from None

    def _least_price(self, model: types_pb2.ModelInfo, redundancy: int, engine_classes=()) -> int:
        try:
            return self.client.least_price(model.id, redundancy, engine_classes)
        except ClientError as error:
            if error.code == "FAILED_PRECONDITION":
                raise RequestError(503, f"no executor can take the job now: {error.message}",
                                   error_type="service_unavailable", code="no_executor",
                                   retry_after=RETRY_AFTER_S) from None
            raise refusal(error) from None

    def _genesis_hash(self) -> bytes:
        if self._genesis is None:
            self._genesis = self._call(self.client.chain_info).genesis_hash
        return self._genesis

    def _submit_lock(self, public_key: bytes) -> threading.Lock:
        with self._locks_guard:
            return self._submit_locks.setdefault(public_key, threading.Lock())

    # --- following and cancelling -------------------------------------------------------------

    def follow(self, posted: Posted, watcher: Watch,
               on_view: Callable[[JobView], None] | None = None) -> JobView:
        """The job followed on `watcher` (closing it from another thread stops the follow) until final;
        `on_view` sees each change on the way."""
        view = None
        for view in watcher.follow(posted.job_id, posted.transaction_hash):
            if on_view is not None:
                on_view(view)
        return view

    def watcher(self) -> Watch:
        """A watch for one job on the gateway's one block subscription (tracker.py); closing it ends only it."""
        return self.tracker.watcher()

    def cancel(self, poster: Keypair, posted: Posted) -> bool:
        """Cancel the job if it can still be cancelled (no executor assigned yet); whether it was submitted."""
        job_id = posted.job_id
        try:
            # A client that leaves at once may leave before its PostJob is in a block: the job first.
            self.client.wait_for_inclusion(posted.transaction_hash, CANCEL_INCLUSION_WAIT_S)
            view = self.client.get_job(job_id)
            if view.job.status not in (state_pb2.JOB_STATUS_DRAWING, state_pb2.JOB_STATUS_QUEUED) or \
                    view.job.assignments:
                return False
            with self._submit_lock(poster.public_key):
                self.client.submit(poster, types_pb2.CancelJob(job_id=job_id))
        except ClientError as error:
            log.info("job %s not cancelled: %s", job_id.hex(), error.message)
            return False
        log.info("job %s cancelled: its client went away", job_id.hex())
        return True

    def _call(self, method, *args):
        try:
            return method(*args)
        except ClientError as error:
            raise refusal(error) from None


def refusal(error: ClientError) -> RequestError:
    """The OpenAI-shaped error for a node's refusal (or failure)."""
    message = error.message
    for marker, status, code in REFUSALS:
        if marker in message:
            retry = RETRY_AFTER_S if status in (429, 503) else None
            return RequestError(status, message, error_type=ERROR_TYPES[status], code=code, retry_after=retry)
    if error.code in ("UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"):
        return RequestError(503, f"the chain cannot take the request now: {message}", error_type="service_unavailable",
                            code="node_unavailable", retry_after=RETRY_AFTER_S)
    if error.code == "INVALID_ARGUMENT":
        return invalid(message, None, "invalid_job")
    return RequestError(502, f"the node refused the request: {message}", error_type="api_error", code=error.code.lower())


def verdict_of(view: JobView) -> str:
    """settled, disputed (settled after a dispute), refunded (expired or cancelled) or rejected; else the status."""
    if view.job.status == state_pb2.JOB_STATUS_SETTLED and view.dispute is not None:
        return "disputed"
    return VERDICTS.get(view.job.status, view.status)


def extension(view: JobView) -> dict:
    """The `inferchain` extension of a response: job id, status, verdict and the executors."""
    return {
        "job_id": view.id.hex(),
        "status": view.status,
        "verdict": verdict_of(view) if view.final else None,
        "height": view.height,
        "executors": [{"account": slot.executor.hex(), "status": assignment_status_name(slot.status),
                       "price_per_token": str(slot.price_per_token), "payment": str(slot.payment)}
                      for slot in view.job.assignments],
    }


def ended_without_answer(view: JobView) -> RequestError:
    """The error for a final job that gave no answer: 504 when it expired, 502 otherwise."""
    job = view.job
    reason = f": {job.reason}" if job.reason else ""
    message = f"job {view.id.hex()} ended {view.status} at height {job.final_height}{reason}; escrow refunded"
    if job.status == state_pb2.JOB_STATUS_EXPIRED:
        return RequestError(504, message, error_type="timeout", code="job_expired")
    return RequestError(502, message, error_type="api_error", code=f"job_{view.status}")
