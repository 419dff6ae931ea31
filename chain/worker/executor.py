"""Running assigned jobs with the engine, off the worker's event loop: one thread per running job.

The chain assigns an executor at most its offer's capacity of jobs at once, so a thread per job is
bounded by that. llama.cpp releases the GIL while it evaluates, so jobs on different engines run
in parallel; each engine runs one job at a time, and the pool loads another engine of the same
model only when every loaded one is busy. With `batch_slots` (inferchain worker --batch-jobs),
jobs of one model are instead decoded together in one BatchedEngine (inference/batched.py), whose
canonical scoring pass keeps every result what a validator recomputes. Given a publisher factory,
a run also publishes its tokens as they come (token_publisher.py).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

from chain.worker.token_publisher import PublisherFactory, TokenPublisher
from inference.batched import BatchedEngine
from inference.engine import Engine, EngineConfig
from inference.errors import InferenceError
from inference.loading import load_record
from inference.model_store import ModelRecord, ModelStore
from inference.result import InferenceJob, InferenceResult
from inference.sampler import SamplingParams
from proto import state_pb2

log = logging.getLogger("inferchain.worker")


class JobCancelled(Exception):
    """The job no longer needs this executor's result (final, missed or reassigned)."""


# Runs one job; polls `cancelled()` between tokens and raises JobCancelled when it turns true. A worker
# that streams tokens also passes `publish=` (a PublisherFactory), as EnginePool.run takes it.
Runner = Callable[..., InferenceResult]


def inference_job(job: state_pb2.Job) -> InferenceJob:
    """The engine's job for an on-chain job: same model, id, prompt, format, limit and sampling."""
    request, sampling = job.request, job.request.sampling
    return InferenceJob(
        model=request.model.hex(),
        job_id=job.id,
        prompt=request.prompt,
        max_tokens=request.max_tokens,
        sampling=SamplingParams.from_message(sampling),
        prompt_format=request.prompt_format,
    )


# How often a job waiting for a generation slot checks whether it was cancelled.
SLOT_POLL_S = 0.2


class EnginePool:
    """Loaded engines per model, grown only when every loaded one is busy.

    `contexts` gives a model's context size (the registry's context_length, so every max_tokens
    the chain accepts fits); others get `config.context`. load_record caps it at the trained one.
    With `batch_slots` of 2 or more, run() generates in one BatchedEngine per model with that many
    sequences (jobs beyond them wait in order inside it); engine() still lends single engines (the
    juror's re-scoring).
    """

    def __init__(self, store: ModelStore, config: EngineConfig, contexts: Mapping[str, int] | None = None,
                 load: Callable[[ModelStore, ModelRecord, EngineConfig], Engine] = load_record, parallel: int = 0,
                 batch_slots: int = 0):
        self.store = store
        self.config = config
        self.contexts = dict(contexts or {})
        self._load = load
        self.batch_slots = batch_slots if batch_slots >= 2 else 0
        self._batched: dict[str, BatchedEngine] = {}
        # At most `parallel` generations at once (0: no limit); the other jobs wait here, in order,
        # so an offer's capacity can exceed the cores: a waiting job starts the moment one finishes
        # instead of a block later, when the chain would have assigned it.
        self._slots = _FifoSlots(parallel) if parallel else None
        self._lock = threading.Lock()
        self._idle: dict[str, list[Engine]] = {}
        self._all: list[Engine] = []

    def load(self, model_id: str) -> Engine | BatchedEngine:
        """Load a model now (ModelNotFound, EngineError, ... when it cannot be): its batched engine when
        jobs are batched, else one engine."""
        if self.batch_slots:
            return self._batched_engine(model_id)
        engine = self._new_engine(model_id)
        with self._lock:
            self._idle.setdefault(model_id, []).append(engine)
        return engine

    @contextmanager
    def engine(self, model_id: str, cancelled: Callable[[], bool]) -> Iterator[Engine]:
        """A free engine of the model, once a generation slot is free (in order with the jobs waiting for one);
        JobCancelled when `cancelled` says so first. The engine returns to the pool at the end of the block."""
        if self._slots is not None:
            self._slots.acquire(cancelled)
        try:
            _stop_if(cancelled)
            engine = self._acquire(model_id)
            try:
                yield engine
            finally:
                with self._lock:
                    self._idle[model_id].append(engine)
        finally:
            if self._slots is not None:
                self._slots.release()

    def run(self, job: InferenceJob, cancelled: Callable[[], bool],
            publish: PublisherFactory | None = None) -> InferenceResult:
        """Generate the job's result on a free engine of its model (a Runner), once a slot is free; with
        `publish`, each token also goes to a TokenPublisher made for the run."""
        if self.batch_slots:
            return self._run_batched(job, cancelled, publish)
        with self.engine(job.model, cancelled) as engine:
            if publish is None:
                return engine.generate(job, on_token=lambda _token: _stop_if(cancelled))
            return _generate_published(engine, job, cancelled, publish(job.job_id, engine.detokenize))

    def _run_batched(self, job: InferenceJob, cancelled: Callable[[], bool],
                     publish: PublisherFactory | None) -> InferenceResult:
        _stop_if(cancelled)
        engine = self._batched_engine(job.model)
        stop = lambda: _stop_if(cancelled)  # noqa: E731
        if publish is None:
            return engine.generate(job, on_token=lambda _token: stop(), on_wait=stop)
        return _generate_published(engine, job, cancelled, publish(job.job_id, engine.detokenize), on_wait=stop)

    def _batched_engine(self, model_id: str) -> BatchedEngine:
        with self._lock:
            engine = self._batched.get(model_id)
            if engine is not None:
                return engine
            # Loaded under the lock: two jobs of a model arriving together must not load it twice.
            record = self.store.resolve(model_id)
            if record.id != model_id:
                raise InferenceError(f"the model store resolved {model_id[:12]}... to another model, {record.short_id}...")
            config = dataclasses.replace(self.config, context=self.contexts.get(model_id, self.config.context))
            engine = self._batched[model_id] = BatchedEngine(record.path, model_id, config, slots=self.batch_slots)
            return engine

    def close(self) -> None:
        with self._lock:
            engines, self._all, self._idle = self._all, [], {}
            batched, self._batched = list(self._batched.values()), {}
        for engine in [*engines, *batched]:
            engine.close()

    def _acquire(self, model_id: str) -> Engine:
        with self._lock:
            idle = self._idle.setdefault(model_id, [])
            if idle:
                return idle.pop()
        # Every engine of the model is busy (or none is loaded, e.g. a model added to the offer later).
        log.info("loading another engine for model %s...", model_id[:12])
        return self._new_engine(model_id)

    def _new_engine(self, model_id: str) -> Engine:
        record = self.store.resolve(model_id)
        if record.id != model_id:
            raise InferenceError(f"the model store resolved {model_id[:12]}... to another model, {record.short_id}...")
        config = dataclasses.replace(self.config, context=self.contexts.get(model_id, self.config.context))
        engine = self._load(self.store, record, config)
        with self._lock:
            self._all.append(engine)
        return engine


class _FifoSlots:
    """At most `count` holders at once, granted in the order they asked (a semaphore wakes any waiter,
    which let a job wait past its commit deadline while later ones ran)."""

    def __init__(self, count: int):
        self._free = count
        self._waiting: collections.deque[object] = collections.deque()
        self._changed = threading.Condition()

    def acquire(self, cancelled: Callable[[], bool]) -> None:
        """Wait for a slot in turn; JobCancelled (and no slot) when `cancelled()` becomes true first."""
        ticket = object()
        with self._changed:
            self._waiting.append(ticket)
            try:
                while not (self._free and self._waiting[0] is ticket):
                    _stop_if(cancelled)
                    self._changed.wait(SLOT_POLL_S)
            except JobCancelled:
                self._waiting.remove(ticket)
                self._changed.notify_all()
                raise
            self._waiting.popleft()
            self._free -= 1
            self._changed.notify_all()

    def release(self) -> None:
        with self._changed:
            self._free += 1
            self._changed.notify_all()


def _generate_published(engine: Engine | BatchedEngine, job: InferenceJob, cancelled: Callable[[], bool],
                        publisher: TokenPublisher, **waiting) -> InferenceResult:
    """Generate with each token handed to the publisher; its stream ends with the result, or unfinished."""
    def on_token(token: int) -> None:
        _stop_if(cancelled)
        publisher.add(token)

    try:
        result = engine.generate(job, on_token=on_token, **waiting)
    except BaseException:
        publisher.abandon()
        raise
    publisher.finish(result)
    return result


def _stop_if(cancelled: Callable[[], bool]) -> None:
    if cancelled():
        raise JobCancelled()


@dataclass(frozen=True)
class Outcome:
    """A finished run: the result, or why there is none."""

    job_id: bytes
    assigned_height: int
    result: InferenceResult | None
    error: str = ""
    cancelled: bool = False
    elapsed_s: float = 0.0


class Executor:
    """Starts each job in its own thread and hands its Outcome to `report` (from that thread)."""

    def __init__(self, runner: Runner, report: Callable[[Outcome], None]):
        self._runner = runner
        self._report = report
        self._lock = threading.Lock()
        self._running: dict[tuple[bytes, int], tuple[threading.Thread, threading.Event]] = {}

    def start(self, job_id: bytes, assigned_height: int, job: InferenceJob) -> None:
        """Run the job for this assignment unless it runs already."""
        key = (job_id, assigned_height)
        with self._lock:
            if key in self._running:
                return
            cancel = threading.Event()
            thread = threading.Thread(
                target=self._run, args=(key, job, cancel), name=f"job-{job_id.hex()[:8]}", daemon=True
            )
            self._running[key] = (thread, cancel)
        thread.start()

    def cancel(self, job_id: bytes) -> None:
        """Ask every run of the job to stop at its next token."""
        with self._lock:
            for (running_id, _), (_, cancel) in self._running.items():
                if running_id == job_id:
                    cancel.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel every run and wait (up to `timeout` s in all) for their threads."""
        with self._lock:
            runs = list(self._running.values())
        for _, cancel in runs:
            cancel.set()
        deadline = time.monotonic() + timeout
        for thread, _ in runs:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self, key: tuple[bytes, int], job: InferenceJob, cancel: threading.Event) -> None:
        started = time.perf_counter()
        try:
            result = self._runner(job, cancel.is_set)
            outcome = Outcome(*key, result=result)
        except JobCancelled:
            outcome = Outcome(*key, result=None, error="cancelled", cancelled=True)
        except InferenceError as error:
            outcome = Outcome(*key, result=None, error=str(error))
        except Exception as error:  # a bug, not the job: report it rather than lose the thread silently
            log.exception("job %s failed in the engine", key[0].hex())
            outcome = Outcome(*key, result=None, error=f"{type(error).__name__}: {error}")
        finally:
            with self._lock:
                self._running.pop(key, None)
        self._report(dataclasses.replace(outcome, elapsed_s=time.perf_counter() - started))
