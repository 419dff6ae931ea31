"""The inference market in the client: read jobs, models and executors; post a job and wait for its result.

    with Client("127.0.0.1:9944") as client:
        view = client.post_job(dev_keypair("bob"), "Name three colours.", model=model_id, max_tokens=32)
        print(view.status, view.result.text, view.paid)

`post_job` makes four requests end to end: GetExecutors (the default price cap), GetChainInfo
with the poster (signing context and nonce, once per client), SubmitTransaction (the node's
admission verdict: the dry run's JobPosted event names the job) and one WatchJob stream, opened
with the PostJob's hash, which waits for the inclusion and then sends every change of the job
until it is final. The node's answers about jobs carry no proofs yet; what the client can check it
does: the job sent is the one asked for (the one the verdict's JobPosted named), a listing holds
only jobs that match its filters, newest first.

A disputed job is not final: its watch goes on until the committee's verdict (chain/client/disputes.py),
and a job's answer (`JobView.result`, `answer_of`) is only ever a result judged valid, or, where no
committee judged it, the reveals the job settled on: never a result judged invalid or still disputed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import grpc

from chain.client.calls import AccountLike, account_public_key, checked_call
from chain.client.disputes import is_open
from chain.client.errors import ClientError, InclusionTimeout, ProofError, translate_rpc_error
from chain.client.results import Receipt
from chain.crypto import Keypair
from chain.ss58 import encode_address
from chain.text import quote_input
from proto import node_pb2, state_pb2, types_pb2
from runtime import jobs
from runtime.jobs.events import JOB_POSTED
from runtime.jobs.phases import job_status_name, slot_status_name

# The chain's sampler defaults (inference/sampler.py SamplingParams): greedy, top-k 40, top-p 0.95.
GREEDY = types_pb2.Sampling(temperature_milli=0, top_k=40, top_p_ppm=950_000, seed=0)
DEFAULT_MAX_TOKENS = 128
# How often a watch that has no stream (the node had none to spare) asks for the job again.
POLL_SECONDS = 1.0
# How long post() waits for its PostJob's inclusion before the job's own timeout starts.
INCLUSION_WAIT_S = 30.0


def status_name(status: int) -> str:
    """'settled' for JOB_STATUS_SETTLED; the number for a value this client does not know."""
    try:
        return job_status_name(status)
    except ValueError:
        return str(status)


def assignment_status_name(status: int) -> str:
    """'committed' for ASSIGNMENT_STATUS_COMMITTED."""
    try:
        return slot_status_name(status)
    except ValueError:
        return str(status)


def job_id_of(genesis_hash: bytes, poster: bytes, nonce: int) -> bytes:
    """The id a PostJob gets: blake2b-256(b"inferchain/job/v1" || genesis hash || poster || nonce, 8 bytes LE)."""
    return jobs.job_id(genesis_hash, poster, nonce)


def posted_job_id(receipt: Receipt | None) -> bytes | None:
    """The job a receipt's (or an admission dry run's) JobPosted event names; None when it has none."""
    if receipt is None:
        return None
    for event in receipt.events:
        if event.module == jobs.MODULE and event.name == JOB_POSTED:
            text = event.attribute("job") or ""
            try:
                return _checked_id(bytes.fromhex(text))
            except (ValueError, ClientError):
                raise ProofError(f"the node's JobPosted event names no job id: {text[:80]!r}") from None
    return None


def answer_of(job: state_pb2.Job, dispute: state_pb2.Dispute | None = None) -> state_pb2.Reveal | None:
    """The job's answer: the first result a committee judged valid, else the first reveal the job settled on
    (its digest is the job's output digest) that no committee judged invalid; None unless the job is settled
    with no dispute open."""
    if job.status != state_pb2.JOB_STATUS_SETTLED or is_open(dispute):
        return None
    settled_on = [
        slot for slot in job.assignments
        if slot.status == state_pb2.ASSIGNMENT_STATUS_REVEALED and slot.verdict != state_pb2.CANDIDATE_VERDICT_INVALID
        and slot.reveal.output_digest == job.output_digest
    ]
    valid = [slot for slot in settled_on if slot.verdict == state_pb2.CANDIDATE_VERDICT_VALID]
    chosen = valid or settled_on
    return chosen[0].reveal if chosen else None


@dataclass(frozen=True)
class JobView:
    """A job as it stood after block `height`, with its dispute when it has one."""

    job: state_pb2.Job
    height: int
    block_hash: bytes
    dispute: state_pb2.Dispute | None = None

    @property
    def id(self) -> bytes:
        return self.job.id

    @property
    def status(self) -> str:
        return status_name(self.job.status)

    @property
    def final(self) -> bool:
        """Nothing more will happen: a final status (a disputed job is not) and no dispute waiting for its verdict."""
        return self.job.status in jobs.FINAL_STATUSES and not is_open(self.dispute)

    @property
    def settled(self) -> bool:
        return self.job.status == state_pb2.JOB_STATUS_SETTLED

    @property
    def result(self) -> state_pb2.Reveal | None:
        """The job's answer (answer_of): a result judged valid or settled on; None before, or when there is none."""
        return answer_of(self.job, self.dispute)

    @property
    def paid(self) -> int:
        """What the executors earn (held, then released), in base units."""
        return sum(slot.payment for slot in self.job.assignments)


@dataclass(frozen=True)
class JobPage:
    """One page of a job listing, newest first; pass `next_page_token` for the next (empty: no more)."""

    jobs: tuple[state_pb2.Job, ...]
    next_page_token: bytes
    height: int


@dataclass(frozen=True)
class Executor:
    """An account with an offer: what it serves at what price, its stake, reputation and current load."""

    account: bytes
    address: str
    offer: state_pb2.Offer
    bonded: int
    reputation: int
    load: int


@dataclass(frozen=True)
class ModelRegistry:
    """The chain's registered models and the proposals being voted on, at `height`."""

    models: tuple[types_pb2.ModelInfo, ...]
    proposals: tuple[state_pb2.ModelProposal, ...]
    height: int


class JobTimeout(ClientError):
    """A job was not final within the time given; `view` is how it stood last."""

    def __init__(self, view: JobView, timeout: float):
        super().__init__(
            "DEADLINE_EXCEEDED",
            f"job {view.id.hex()} was not final within {timeout:g} s (status: {view.status} at height {view.height})",
        )
        self.view = view


class JobCalls:
    """The market's requests; mixed into Client, which provides the connection and signing."""

    target: str
    _stub: object

    # --- reading ----------------------------------------------------------------

    def get_job(self, job_id: bytes) -> JobView:
        """The job now; ClientError NOT_FOUND when the chain has no such job."""
        reply = self._call(self._stub.GetJob, node_pb2.GetJobRequest(job_id=_checked_id(job_id)))
        return _view_of(job_id, reply)

    def list_jobs(
        self,
        *,
        poster: AccountLike | None = None,
        executor: AccountLike | None = None,
        status: int | str | None = None,
        limit: int = 0,
        page_token: bytes = b"",
    ) -> JobPage:
        """One page of jobs, newest first, by poster or by executor (not both) and status; limit 1-100 (0: 20)."""
        request = node_pb2.ListJobsRequest(
            poster=account_public_key(poster) if poster is not None else b"",
            executor=account_public_key(executor) if executor is not None else b"",
            status=job_status(status) if status is not None else 0,
            limit=limit,
            page_token=page_token,
        )
        reply = self._call(self._stub.ListJobs, request)
        _check_listing(request, reply)
        return JobPage(tuple(reply.jobs), reply.next_page_token, reply.height)

    def watch_job(
        self, job_id: bytes | None, timeout: float | None = None, *, posted_by: bytes | None = None,
        inclusion_timeout: float = INCLUSION_WAIT_S,
    ) -> Iterator[JobView]:
        """The job now and after every change, ending with its final status; JobTimeout after `timeout` s.

        With `posted_by` (the PostJob's transaction hash) the job need not exist yet: the node waits for
        that transaction's inclusion (InclusionTimeout after `inclusion_timeout` s) and the first view
        is the job as its inclusion left it; `timeout` then counts from that view, and `job_id` may be
        None (the node reads it from the transaction's JobPosted event). A stream the node ends at its
        lifetime is opened again; where the node has no stream to spare, the job is asked for once a
        second instead.
        """
        if posted_by is None or job_id is not None:
            _checked_id(job_id)
        watch = _Deadlines(time.monotonic(), timeout, inclusion_timeout if posted_by is not None else None)
        last: JobView | None = None
        while last is None or not last.final:
            for view in self._watch_stream(job_id, posted_by if last is None else None, last, watch):
                if last is None or (view.job, view.dispute) != (last.job, last.dispute):
                    last = view
                    job_id = view.id
                    yield view
            if last is not None and last.final:
                return
            now = time.monotonic()
            if last is None and watch.inclusion is not None and now >= watch.inclusion:
                raise InclusionTimeout(posted_by, inclusion_timeout, "pending")
            if watch.job is not None and now >= watch.job:
                raise JobTimeout(last or self.get_job(job_id), timeout)

    def _watch_stream(
        self, job_id: bytes | None, posted_by: bytes | None, last: JobView | None, watch: "_Deadlines"
    ) -> Iterator[JobView]:
        """Views from one WatchJob stream, cut off at the watch's deadline, or from polling when the node
        refuses the stream."""
        request = node_pb2.WatchJobRequest(job_id=job_id or b"", transaction_hash=posted_by or b"")
        stream = self._stub.WatchJob(request)
        cutoff = _Cutoff(stream)
        cutoff.arm(watch.after(last))
        try:
            for reply in stream:
                view = _view_of(job_id or _checked_id(reply.job.id), reply)
                if last is not None and view.height < last.height:
                    raise ProofError(f"the node sent job {view.id.hex()} at height {view.height} after {last.height}")
                job_id, last = view.id, view
                yield view
                cutoff.arm(watch.after(last))
        except grpc.RpcError as error:
            code = error.code()
            if cutoff.fired:
                return
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                yield from self._poll(job_id, posted_by, last, watch)
            elif code != grpc.StatusCode.DEADLINE_EXCEEDED:  # the stream's lifetime: open it again
                raise translate_rpc_error(error, self.target, None) from None
        finally:
            cutoff.disarm()
            stream.cancel()

    def _poll(self, job_id: bytes | None, posted_by: bytes | None, last: JobView | None,
              watch: "_Deadlines") -> Iterator[JobView]:
        if posted_by is not None and last is None:  # the job may not exist yet: its PostJob's inclusion first
            posted = self._posted_job(posted_by, max(0.001, watch.after(None) - time.monotonic()))
            if job_id is not None and posted != job_id:
                raise ProofError(f"the node's verdict named job {job_id.hex()}, its block job {posted.hex()}")
            job_id = posted
        while True:
            deadline = watch.after(last)
            if deadline is not None and time.monotonic() >= deadline:
                return
            last = self.get_job(job_id)
            yield last
            if last.final:
                return
            deadline = watch.after(last)
            time.sleep(POLL_SECONDS if deadline is None else min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def _posted_job(self, posted_by: bytes, timeout: float) -> bytes:
        """The job a PostJob created, read from its receipt once included (without a stream)."""
        status = self.wait_for_inclusion(posted_by, timeout)
        if not status.receipt.success:
            raise ClientError("FAILED_PRECONDITION", f"post_job included at height {status.height} but failed: "
                                                     f"{status.receipt.error}")
        job_id = posted_job_id(status.receipt)
        if job_id is None:
            raise ClientError("INVALID_ARGUMENT", f"transaction {posted_by.hex()} posted no job")
        return job_id

    def list_models(self) -> ModelRegistry:
        """The registered models and the open proposals."""
        reply = self._call(self._stub.ListModels, node_pb2.ListModelsRequest())
        return ModelRegistry(tuple(reply.models), tuple(reply.proposals), reply.height)

    def get_executors(self, model: bytes | None = None) -> list[Executor]:
        """Accounts with an offer, only those serving `model` when given; by account id."""
        reply = self._call(self._stub.GetExecutors, node_pb2.GetExecutorsRequest(model=model or b""))
        executors = []
        for view in reply.executors:
            if model and model not in view.offer.models:
                raise ProofError(f"the node listed {encode_address(view.account)} as serving a model its offer lacks")
            executors.append(
                Executor(view.account, encode_address(view.account), view.offer, view.bonded, view.reputation, view.load)
            )
        return executors

    # --- posting ----------------------------------------------------------------

    def post_job(
        self,
        keypair: Keypair,
        prompt: str,
        *,
        model: bytes,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        sampling: types_pb2.Sampling = GREEDY,
        redundancy: int = 1,
        max_price_per_token: int | None = None,
        region: str = "",
        prompt_format: str = "chat",
        engine_classes: Sequence[str] = (),
        wait: bool = True,
        timeout: float | None = None,
        on_update: Callable[[JobView], None] | None = None,
    ) -> JobView:
        """Post a job and, with `wait`, follow it until final; the job as it stood last.

        The price cap defaults to the least at which `redundancy` executors serving the model in one
        accepted engine class take it; `engine_classes` are the classes accepted (empty: any class of the
        model). `post` says the rest.
        """
        if max_price_per_token is None:
            max_price_per_token = self.least_price(model, redundancy, engine_classes)
        call = post_job_call(
            prompt, model=model, max_tokens=max_tokens, sampling=sampling, redundancy=redundancy,
            max_price_per_token=max_price_per_token, region=region, prompt_format=prompt_format,
            engine_classes=engine_classes,
        )
        return self.post(keypair, call, wait=wait, timeout=timeout, on_update=on_update)

    def post(
        self,
        keypair: Keypair,
        call: types_pb2.PostJob,
        *,
        wait: bool = True,
        timeout: float | None = None,
        on_update: Callable[[JobView], None] | None = None,
    ) -> JobView:
        """Submit a PostJob and wait for its inclusion; with `wait`, follow the job until final.

        The node dry-runs the call when it admits it, and refuses one that would fail, so a job the
        chain would refuse costs no fee (ClientError with the reason). The verdict's JobPosted event
        names the job; one WatchJob stream then follows it from its inclusion. `on_update` sees the
        job at inclusion and after every change; `timeout` (seconds, from inclusion) raises
        JobTimeout. A disputed job is followed to its verdict; one that expires, is cancelled or is rejected
        is returned, not raised.
        """
        checked_call(call)
        submission = self.submit(keypair, call)
        # None when the PostJob waits behind the poster's pending transactions (no dry run yet):
        # the node then reads the id from the included transaction's JobPosted event.
        job_id = posted_job_id(submission.dry_run)
        updates = self.watch_job(job_id, timeout, posted_by=submission.hash)
        try:
            view = next(updates)
            if on_update is not None:
                on_update(view)
            if not wait:
                return view
            for view in updates:
                if on_update is not None:
                    on_update(view)
        finally:
            updates.close()
        return view

    def least_price(self, model: bytes, redundancy: int = 1, engine_classes: Sequence[str] = ()) -> int:
        """The least price per token at which `redundancy` executors serving `model` in one engine class (one of
        `engine_classes` when named) can take a job: a job's executors all come from one class."""
        needed = max(1, redundancy)
        by_class: dict[str, list[int]] = {}
        for executor in self.get_executors(model):
            engine_class = executor.offer.engine_class or "cpu"
            if not engine_classes or engine_class in engine_classes:
                by_class.setdefault(engine_class, []).append(executor.offer.price_per_token)
        prices = [sorted(class_prices)[needed - 1] for class_prices in by_class.values() if len(class_prices) >= needed]
        if not prices:
            most = max((len(class_prices) for class_prices in by_class.values()), default=0)
            where = f" in engine class(es) {', '.join(engine_classes)}" if engine_classes else " in one engine class"
            raise ClientError(
                "FAILED_PRECONDITION",
                f"{most} executors serve model {model.hex()}{where}; redundancy {redundancy} needs {redundancy}",
            )
        return min(prices)


def post_job_call(
    prompt: str,
    *,
    model: bytes,
    max_price_per_token: int,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    sampling: types_pb2.Sampling = GREEDY,
    redundancy: int = 1,
    region: str = "",
    prompt_format: str = "chat",
    engine_classes: Sequence[str] = (),
) -> types_pb2.PostJob:
    """A PostJob, after the jobs module's stateless checks; ClientError(INVALID_ARGUMENT) naming the problem."""
    if isinstance(engine_classes, (str, bytes)):
        raise ClientError("INVALID_ARGUMENT", f"engine_classes is a list of class names, got the text "
                                              f"{quote_input(engine_classes)}")
    try:
        call = types_pb2.PostJob(
            model=model, prompt=prompt, prompt_format=prompt_format, max_tokens=max_tokens, sampling=sampling,
            max_price_per_token=max_price_per_token, redundancy=redundancy, region=region,
            engine_classes=list(engine_classes),
        )
    except (TypeError, ValueError) as error:  # a value outside its field's type or range
        raise ClientError("INVALID_ARGUMENT", f"post_job refused: {error}") from None
    checked_call(call)
    return call


# --- checking what the node sends ----------------------------------------------------


def job_status(status: int | str) -> int:
    """A JobStatus value from its number or its name ('settled', 'JOB_STATUS_SETTLED', any case)."""
    if isinstance(status, int) and not isinstance(status, bool):
        if status not in state_pb2.JobStatus.values():
            raise ClientError("INVALID_ARGUMENT", f"{status} is not a job status")
        return status
    name = str(status).strip().upper()
    for candidate in (name, "JOB_STATUS_" + name):
        if candidate in state_pb2.JobStatus.keys() and candidate != "JOB_STATUS_UNSPECIFIED":
            return state_pb2.JobStatus.Value(candidate)
    names = ", ".join(status_name(value) for value in state_pb2.JobStatus.values() if value)
    raise ClientError("INVALID_ARGUMENT", f"{str(status)[:40]!r} is not a job status (one of {names})")


def _checked_id(job_id: bytes) -> bytes:
    if not isinstance(job_id, bytes) or len(job_id) != 32:
        raise ClientError("INVALID_ARGUMENT", "a job id is 32 bytes (64 hex digits)")
    return job_id


def _view_of(job_id: bytes, reply: node_pb2.JobView) -> JobView:
    if reply.job.id != job_id:
        raise ProofError(f"asked for job {job_id.hex()}, the node sent job {reply.job.id.hex()}")
    dispute = reply.dispute if reply.HasField("dispute") else None
    if dispute is not None and dispute.id != job_id:
        raise ProofError(f"the node sent job {job_id.hex()} with the dispute of job {dispute.id.hex()}")
    return JobView(reply.job, reply.height, reply.block_hash, dispute)


def _check_listing(request: node_pb2.ListJobsRequest, reply: node_pb2.ListJobsResponse) -> None:
    """Every job listed matches the filters, newest first; ProofError otherwise."""
    if len(reply.jobs) > (request.limit or 20):
        raise ProofError(f"the node listed {len(reply.jobs)} jobs for a page of {request.limit or 20}")
    previous = None
    for job in reply.jobs:
        position = (job.posted_height, job.id)
        if (request.poster and job.poster != request.poster) or (request.status and job.status != request.status) or (
            request.executor and all(slot.executor != request.executor for slot in job.assignments)
        ):
            raise ProofError(f"the node listed job {job.id.hex()}, which does not match the filters")
        if previous is not None and position >= previous:
            raise ProofError("the node's listing is not newest first")
        previous = position



# --- deadlines of a watch -----------------------------------------------------------


class _Deadlines:
    """When a watch gives up (monotonic seconds): waiting for the PostJob's inclusion, and for the job
    to be final (from the start, or from the first view when the watch began at the PostJob)."""

    def __init__(self, started: float, timeout: float | None, inclusion_timeout: float | None):
        self.timeout = timeout
        self.inclusion = None if inclusion_timeout is None else started + inclusion_timeout
        self.job = None if timeout is None or inclusion_timeout is not None else started + timeout

    def after(self, last: JobView | None) -> float | None:
        """The deadline in force once `last` (None: nothing yet) was seen."""
        if last is None and self.inclusion is not None:
            return self.inclusion
        if self.job is None and self.timeout is not None:
            self.job = time.monotonic() + self.timeout
        return self.job


class _Cutoff:
    """Cancels a stream at a deadline (a gRPC deadline is fixed when the stream opens; a watch's moves)."""

    def __init__(self, stream):
        self._stream = stream
        self._timer: threading.Timer | None = None
        self.fired = False

    def arm(self, deadline: float | None) -> None:
        self.disarm()
        if deadline is None:
            return
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self.fired = True
        self._stream.cancel()
