"""Batched generation: several jobs of one model decoded together, one llama_decode per step.

A BatchedEngine holds one llama.cpp context with `slots` sequences (inference/llama_context.py, a
KV stream per sequence). Callers block in generate(), one thread per job as the worker runs them;
a scheduler thread admits waiting jobs into free sequences in the order they came (prefilling each
prompt on its own), then decodes one new token for every active sequence in one llama_decode per
step, chooses each sequence's token from its row with the chain's sampler, and ends a sequence at
end-of-generation or max_tokens, clearing its cells. Jobs join and leave between steps.

With the canonical scoring pass on (EngineConfig.canonical_pass, as Engine's: None means on for a
GPU, off on the CPU), every result then goes through it (inference/canonical.py) on a
single-sequence Engine this engine owns (the same model file and configuration): what is committed
is what a validator's fresh evaluation computes, whatever the batch did. On the pinned CPU build a
sequence decoded in a batch computes exactly what it computes alone (tests/inference/test_batched.py,
on every test run), so the pass would roll back nothing there and is off unless asked (it costs
about half the engine's time on the CPU, bench/worker.py). The
scheduler runs the passes itself, between steps: the batch pauses for them, but two llama.cpp
thread teams never compete for the same cores (their spin-waits slow each other down). Both
contexts use the one model the Engine loaded (LlamaContext.on_same_model): its weights are in memory,
or on the GPU, once.

on_token runs in the caller's thread, fed from a queue: a slow or failing callback never holds up
the other jobs. When it raises, the exception propagates to that caller and the job's sequence
leaves the batch at the next step.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from inference.canonical import canonical_pass
from inference.engine import Chooser, Engine, EngineConfig, job_chooser, logprob_micronats
from inference.errors import EngineError, InvalidJob
from inference.llama_context import ContextSettings
from inference.result import InferenceJob, InferenceResult

log = logging.getLogger(__name__)

# How often a caller with nothing new from the scheduler calls its on_wait (a cancellation check).
WAIT_POLL_S = 0.2


@dataclass(frozen=True)
class BatchedStats:
    """Cumulative work of a BatchedEngine since it started.

    generating_s: the scheduler's time in prefills, decode steps and choices; canonical_s: its time
    making finished outputs into results (the canonical passes, when on), between steps.
    """

    generating_s: float
    canonical_s: float
    tokens: int
    results: int
    rolled_back: int
    steps: int


class _Request:
    """One job in the scheduler's hands: its sequence, its output so far, and the caller's queue."""

    def __init__(self, job: InferenceJob, prompt: list[int], choose: Chooser):
        self.job = job
        self.prompt = prompt
        self.choose = choose
        self.sequence = -1
        self.tokens: list[int] = []
        self.logprobs: list[int] = []
        self.logits: np.ndarray | None = None
        # ("token", id) per token, then ("done", result) or ("error", exception).
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        # Set by the caller whose on_token raised: the sequence leaves the batch at the next step.
        self.abandoned = False


class BatchedEngine:
    """One model generating up to `slots` jobs at once in one llama.cpp batch; generate() is Engine's."""

    def __init__(self, model_path: str | os.PathLike, model_id: str, config: EngineConfig = EngineConfig(),
                 slots: int = 4):
        if not isinstance(slots, int) or slots < 1:
            raise InvalidJob(f"a batched engine needs at least one slot, not {slots!r}")
        # As Engine's: on for a GPU, off on the CPU, where a sequence in the batch computes exactly what it
        # computes alone (tests/inference/test_batched.py) and the pass would cost ~45% for nothing.
        self.canonical = bool(config.resolved().canonical_pass)
        self.single = Engine(model_path, model_id, dataclasses.replace(config, canonical_pass=False))
        self.config = self.single.config
        if slots > self.config.batch:
            self.single.close()
            raise InvalidJob(f"{slots} slots do not fit one {self.config.batch}-token batch")
        self.slots = slots
        try:
            # On the engine's loaded model: the weights are in memory (or on the GPU) once.
            self._context = self.single.context_on_model(ContextSettings(
                threads=self.config.threads, context=self.config.context, batch=self.config.batch,
                gpu_layers=self.config.gpu_layers, sequences=slots,
            ))
        except BaseException:
            self.single.close()
            raise
        if self._context.context_size < self.single.context_size:
            self._context.close()
            self.single.close()
            raise EngineError(f"llama.cpp gave each sequence {self._context.context_size} tokens, "
                              f"fewer than the {self.single.context_size} the engine promises")
        self._changed = threading.Condition()
        self._waiting: collections.deque[_Request] = collections.deque()
        self._closed = False
        self._callers = 0  # threads inside generate()
        # The scheduler thread's own: sequences in use and free (lowest first), outputs to complete.
        self._active: dict[int, _Request] = {}
        self._free = list(range(slots))
        self._completed: list[tuple[_Request, str]] = []
        self._stats_lock = threading.Lock()
        self._stats = BatchedStats(0.0, 0.0, 0, 0, 0, 0)
        self._thread = threading.Thread(target=self._schedule, name=f"batched-{model_id[:8]}", daemon=True)
        self._thread.start()
        log.info("batched engine: %s, %d slots, %s", model_id[:12], slots, self.single.device_description())

    # -- the model's facts the worker reads (the rest: `single`, the Engine this one owns) ------

    @property
    def model_id(self) -> str:
        return self.single.model_id

    @property
    def context_size(self) -> int:
        return self.single.context_size

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self.single.detokenize(tokens)

    def device_description(self) -> str:
        return self.single.device_description()

    # -- generation ----------------------------------------------------------------------------

    def generate(self, job: InferenceJob, on_token: Callable[[int], None] | None = None,
                 choose: Chooser | None = None, on_wait: Callable[[], None] | None = None) -> InferenceResult:
        """Run a job in the batch once a slot is free (callers wait in order), then make it canonical.

        on_wait() is called every WAIT_POLL_S while no token comes (waiting for a slot, or for the
        canonical pass); like on_token it may raise to cancel, and the job leaves the queue or batch.
        """
        with self._changed:
            if self._closed:
                raise EngineError("the batched engine is closed")
            self._callers += 1  # close() frees the model only once every caller has left
        try:
            prompt = self.single.check_job(job)
            request = _Request(job, prompt, choose or job_chooser(job))
            with self._changed:
                if self._closed:
                    raise EngineError("the batched engine is closed")
                self._waiting.append(request)
                self._changed.notify_all()
            try:
                return self._follow(request, on_token, on_wait)
            except BaseException:
                self._abandon(request)
                raise
        finally:
            with self._changed:
                self._callers -= 1
                self._changed.notify_all()

    def _follow(self, request: _Request, on_token: Callable[[int], None] | None,
                on_wait: Callable[[], None] | None) -> InferenceResult:
        """Hand each token to on_token as the scheduler makes it; the result at the end."""
        while True:
            try:
                kind, value = request.events.get(timeout=WAIT_POLL_S if on_wait else None)
            except queue.Empty:
                on_wait()
                continue
            if kind == "token":
                if on_token is not None:
                    on_token(value)
            elif kind == "done":
                return value
            else:
                raise value

    def _abandon(self, request: _Request) -> None:
        with self._changed:
            request.abandoned = True
            if request in self._waiting:
                self._waiting.remove(request)
            self._changed.notify_all()

    # -- the scheduler thread ------------------------------------------------------------------

    def _schedule(self) -> None:
        while True:
            admitted = self._admit()
            if admitted is None:
                return
            started = time.perf_counter()
            try:
                self._step(admitted)
            except Exception as error:  # a bug, not a job: fail the batch rather than lose the thread
                log.exception("batched engine: a step failed")
                for request in list(self._active.values()):
                    self._finish(request, error=EngineError(f"the batch failed: {type(error).__name__}: {error}"))
            self._count(generating_s=time.perf_counter() - started)
            self._complete_all()

    def _admit(self) -> list[_Request] | None:
        """Wait for work; the waiting jobs that get a free sequence now, in order (None: closed)."""
        with self._changed:
            while not self._closed and not self._active and not self._waiting:
                self._changed.wait()
            if self._closed:
                self._fail_all(EngineError("the batched engine was closed"))
                return None
            admitted = []
            while self._waiting and self._free:
                request = self._waiting.popleft()
                request.sequence = self._free.pop(0)
                admitted.append(request)
            return admitted

    def _step(self, admitted: list[_Request]) -> None:
        for request in admitted:
            self._active[request.sequence] = request
            self._prefill(request)
        for request in list(self._active.values()):
            if request.abandoned:
                self._finish(request)
            else:
                self._choose(request)
        steps = [(sequence, request.tokens[-1]) for sequence, request in self._active.items()]
        if not steps:
            return
        try:
            rows = self._context.decode_step(steps)
        except EngineError as error:
            for sequence, _ in steps:
                self._finish(self._active[sequence], error=error)
            return
        for (sequence, _), row in zip(steps, rows):
            self._active[sequence].logits = row
        self._count(steps=1)

    def _prefill(self, request: _Request) -> None:
        try:
            self._context.keep(0, request.sequence)
            self._context.extend(request.prompt, [len(request.prompt) - 1], sequence=request.sequence)
            request.logits = self._context.last_logits()
        except EngineError as error:
            self._finish(request, error=error)

    def _choose(self, request: _Request) -> None:
        """Choose the request's next token from its latest row; end it at end-of-generation or max_tokens."""
        try:
            token = int(request.choose(request.logits, len(request.tokens)))
        except Exception as error:  # the caller's chooser: its error is the caller's
            self._finish(request, error=error)
            return
        request.tokens.append(token)
        if not self.canonical:  # else the canonical rows give the log-probabilities
            request.logprobs.append(logprob_micronats(request.logits, token))
        request.events.put(("token", token))
        self._count(tokens=1)
        if self.single.is_end_of_generation(token):
            self._finish(request, stop_reason="eos")
        elif len(request.tokens) >= request.job.max_tokens:
            self._finish(request, stop_reason="length")

    def _finish(self, request: _Request, stop_reason: str | None = None, error: BaseException | None = None) -> None:
        """Take a request out of the batch, clear its sequence's cells, and tell its caller."""
        self._active.pop(request.sequence, None)
        try:
            self._context.keep(0, request.sequence)
        except EngineError as cleared:
            log.error("batched engine: clearing sequence %d: %s", request.sequence, cleared)
        self._free.append(request.sequence)
        self._free.sort()
        if error is not None:
            request.events.put(("error", error))
        elif stop_reason is not None:
            self._completed.append((request, stop_reason))

    def _complete_all(self) -> None:
        """Make each finished output canonical (when the pass is on) and hand its caller the result."""
        completed, self._completed = self._completed, []
        for request, stop_reason in completed:
            started = time.perf_counter()
            try:
                result, rolled_back = self._result(request, stop_reason)
            except Exception as error:  # an engine error or the caller's chooser failing: the caller's
                request.events.put(("error", error))
                continue
            # Counted before the caller has its result: stats() read after generate() returns includes it.
            self._count(results=1, rolled_back=rolled_back, canonical_s=time.perf_counter() - started)
            request.events.put(("done", result))

    def _result(self, request: _Request, stop_reason: str) -> tuple[InferenceResult, int]:
        job, prompt = request.job, request.prompt
        if not self.canonical:
            return self.single.result(job, prompt, request.tokens, request.logprobs, stop_reason), 0
        outcome = canonical_pass(self.single, job, prompt, request.tokens, request.choose)
        return outcome.result, outcome.rolled_back

    def _fail_all(self, error: EngineError) -> None:
        for request in list(self._active.values()):
            self._finish(request, error=error)
        while self._waiting:
            self._waiting.popleft().events.put(("error", error))

    # -- statistics and the end ----------------------------------------------------------------

    def _count(self, **amounts) -> None:
        with self._stats_lock:
            self._stats = dataclasses.replace(self._stats, **{
                name: getattr(self._stats, name) + amount for name, amount in amounts.items()
            })

    def stats(self) -> BatchedStats:
        """Cumulative seconds generating and in the canonical pass, tokens, results, rollbacks, steps."""
        with self._stats_lock:
            return self._stats

    def close(self) -> None:
        """Stop the scheduler (waiting and running jobs get an EngineError), then free both contexts."""
        with self._changed:
            if self._closed:
                return
            self._closed = True
            self._changed.notify_all()
        self._thread.join()
        with self._changed:
            while self._callers:
                self._changed.wait()
        self._context.close()
        self.single.close()
