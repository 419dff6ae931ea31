"""Batched generation with the real embedded model: jobs decoded together give, bit for bit, what
each gives alone on a single-sequence engine, whoever joins or leaves the batch."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from inference.batched import BatchedEngine
from inference.engine import Engine, EngineConfig, job_chooser
from inference.errors import EngineError, InvalidJob, JobDoesNotFit
from inference.llama_context import ContextSettings, LlamaContext
from inference.sampler import SamplingParams
from tests.inference.conftest import FRESH_PROMPTS, SAMPLED, make_job

# One thread each: the pinned build computes the same bits with any number of threads, and a busy
# 2-core machine slows a spinning 2-thread team far more than one thread.
FAST_PATH = EngineConfig(threads=1, context=512, canonical_pass=False)
GREEDY = SamplingParams()


class Cancelled(Exception):
    """Raised by a caller's on_token: that job leaves the batch."""


@pytest.fixture(scope="module")
def single(embedded):
    loaded = Engine(embedded.path, embedded.id, FAST_PATH)
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def batched(embedded):
    """Three slots, the canonical pass off: what the batch itself computes."""
    loaded = BatchedEngine(embedded.path, embedded.id, FAST_PATH, slots=3)
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def canonical(embedded):
    """Two slots with the canonical pass on, as the worker runs it on a GPU (or with --canonical-pass)."""
    loaded = BatchedEngine(embedded.path, embedded.id, dataclasses.replace(FAST_PATH, canonical_pass=True), slots=2)
    yield loaded
    loaded.close()


def mixed_jobs(model_id: str) -> list:
    """Greedy and sampled jobs of several lengths; one ends by end-of-generation."""
    return [
        make_job(model_id, FRESH_PROMPTS[0], max_tokens=20, sampling=SAMPLED, label="b0"),
        make_job(model_id, FRESH_PROMPTS[1], max_tokens=32, sampling=SAMPLED, label="b1"),
        make_job(model_id, "Say hi.", max_tokens=60, sampling=GREEDY, label="b2"),
        make_job(model_id, FRESH_PROMPTS[2], max_tokens=6, sampling=SAMPLED, label="b3"),
        make_job(model_id, FRESH_PROMPTS[0], max_tokens=25, sampling=GREEDY, label="b4"),
    ]


def run_together(engine, jobs, delays=None, on_token=None) -> list:
    """Each job from its own thread, as the worker calls generate; a result or the exception raised."""
    outcomes: list = [None] * len(jobs)

    def run(index: int) -> None:
        time.sleep((delays or [0] * len(jobs))[index])
        callback = on_token(index) if on_token else None
        try:
            outcomes[index] = engine.generate(jobs[index], on_token=callback)
        except Exception as error:
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes


def test_jobs_in_one_batch_give_what_each_gives_alone(single, batched, embedded):
    jobs = mixed_jobs(embedded.id)
    expected = [single.generate(job) for job in jobs]
    assert {result.stop_reason for result in expected} == {"eos", "length"}
    steps_before = batched.stats().steps
    # Five jobs, three slots: two wait, and join as the shorter ones leave.
    outcomes = run_together(batched, jobs)
    assert outcomes == expected
    tokens = sum(len(result.tokens) for result in expected)
    assert batched.stats().steps - steps_before < tokens - 10  # several sequences shared each step


def test_a_job_joining_a_running_batch_and_one_cancelled_early_leave_the_others_exact(single, batched, embedded):
    jobs = mixed_jobs(embedded.id)[:4]
    expected = [single.generate(job) for job in jobs]
    seen: list[list[int]] = [[] for _ in jobs]

    def on_token(index):
        def record(token: int) -> None:
            seen[index].append(token)
            if index == 1 and len(seen[index]) == 4:
                raise Cancelled()
        return record

    # Job 3 arrives while the others are decoding; job 1 is cancelled by its caller after 4 tokens.
    outcomes = run_together(batched, jobs, delays=[0, 0, 0, 0.3], on_token=on_token)
    assert isinstance(outcomes[1], Cancelled)
    assert seen[1] == list(expected[1].tokens[:4])
    for index in (0, 2, 3):
        assert outcomes[index] == expected[index]
        assert seen[index] == list(expected[index].tokens)
    # The cancelled job's sequence was freed: the batch runs a new job exactly.
    assert batched.generate(jobs[1]) == expected[1]


def test_waiting_jobs_are_admitted_in_the_order_they_came(embedded):
    one_slot = BatchedEngine(embedded.path, embedded.id, FAST_PATH, slots=1)
    try:
        jobs = [make_job(embedded.id, "Hi", max_tokens=4, label=f"order {index}") for index in range(4)]
        first_tokens: list[int] = []
        lock = threading.Lock()

        def on_token(index):
            def record(_token: int) -> None:
                with lock:
                    if index not in first_tokens:
                        first_tokens.append(index)
            return record

        outcomes = run_together(one_slot, jobs, delays=[0, 0.05, 0.1, 0.15], on_token=on_token)
        assert all(result.stop_reason in ("length", "eos") for result in outcomes)
        assert first_tokens == [0, 1, 2, 3]
    finally:
        one_slot.close()


def test_a_job_waiting_for_a_slot_leaves_the_queue_when_its_on_wait_raises(embedded):
    one_slot = BatchedEngine(embedded.path, embedded.id, FAST_PATH, slots=1)
    try:
        long_job = make_job(embedded.id, FRESH_PROMPTS[0], max_tokens=40, label="holder")
        holder = threading.Thread(target=one_slot.generate, args=(long_job,))
        holder.start()
        time.sleep(0.1)
        calls = []

        def give_up() -> None:
            calls.append(1)
            raise Cancelled()

        with pytest.raises(Cancelled):
            one_slot.generate(make_job(embedded.id, "Hi", max_tokens=4, label="waiter"), on_wait=give_up)
        holder.join(60)
        assert calls == [1] and one_slot.stats().results == 1
    finally:
        one_slot.close()


def test_the_canonical_pass_on_batched_output_rolls_back_nothing_on_the_cpu(single, canonical, embedded):
    jobs = mixed_jobs(embedded.id)[:3]
    expected = [single.generate(job) for job in jobs]
    outcomes = run_together(canonical, jobs)
    assert outcomes == expected
    stats = canonical.stats()
    assert stats.results == 3 and stats.rolled_back == 0
    assert stats.canonical_s > 0 and stats.generating_s > 0


def test_a_chooser_that_fails_fails_only_its_own_job(single, batched, embedded):
    jobs = mixed_jobs(embedded.id)[:2]

    def broken(logits, position):
        if position == 3:
            raise ValueError("chooser broke")
        return job_chooser(jobs[1])(logits, position)

    outcomes: list = [None, None]

    def run_broken() -> None:
        try:
            batched.generate(jobs[1], choose=broken)
        except ValueError as error:
            outcomes[1] = error

    thread = threading.Thread(target=run_broken)
    thread.start()
    outcomes[0] = batched.generate(jobs[0])
    thread.join(60)
    assert outcomes[0] == single.generate(jobs[0])
    assert str(outcomes[1]) == "chooser broke"


def test_bad_jobs_are_refused_as_engine_refuses_them(batched, embedded):
    with pytest.raises(InvalidJob, match="this engine runs"):
        batched.generate(make_job("cd" * 32, "Hi"))
    with pytest.raises(JobDoesNotFit, match="at most"):
        batched.generate(make_job(embedded.id, "Hi", max_tokens=600))
    with pytest.raises(InvalidJob, match="at least one slot"):
        BatchedEngine(embedded.path, embedded.id, FAST_PATH, slots=0)
    with pytest.raises(InvalidJob, match="do not fit one 8-token batch"):
        BatchedEngine(embedded.path, embedded.id, dataclasses.replace(FAST_PATH, batch=8), slots=9)


def test_a_closed_engine_refuses_new_jobs_in_one_line(embedded):
    engine = BatchedEngine(embedded.path, embedded.id, FAST_PATH, slots=2)
    assert engine.context_size == 512
    engine.close()
    engine.close()  # twice is harmless
    with pytest.raises(EngineError, match="closed"):
        engine.generate(make_job(embedded.id, "Hi"))


def test_a_multi_sequence_context_keeps_one_record_per_sequence_and_refuses_bad_steps(embedded):
    context = LlamaContext(str(embedded.path), ContextSettings(threads=1, context=256, batch=64, gpu_layers=0,
                                                               sequences=2))
    try:
        assert (context.sequences, context.context_size) == (2, 256)
        tokens = context.tokenize(b"Rivers run to the sea", add_bos=False, special=False)
        context.extend(tokens, [len(tokens) - 1], sequence=1)
        assert context.shared_prefix(tokens, sequence=1) == len(tokens) and context.shared_prefix(tokens) == 0
        rows = context.decode_step([(0, tokens[0]), (1, tokens[0])])
        assert rows.shape == (2, context.vocabulary_size)
        assert context.shared_prefix(tokens[:1]) == 1
        with pytest.raises(EngineError, match="at most one token per sequence"):
            context.decode_step([(0, tokens[1]), (0, tokens[2])])
        with pytest.raises(EngineError, match="sequence 2 is not one of this context's 2"):
            context.decode_step([(2, tokens[1])])
        # A failed decode empties the sequences it touched and leaves the others alone.
        with pytest.raises(EngineError, match="llama_decode failed"):
            context.decode_step([(0, context.vocabulary_size + 5)])
        assert context.shared_prefix(tokens[:1]) == 0
        assert context.shared_prefix(tokens + [tokens[0]], sequence=1) == len(tokens) + 1
        assert context.keep(3, sequence=1) == 3 and context.shared_prefix(tokens, sequence=1) == 3
    finally:
        context.close()


def test_the_pass_follows_the_engine_configuration_off_on_the_cpu_by_default(embedded):
    loaded = BatchedEngine(embedded.path, embedded.id, dataclasses.replace(FAST_PATH, canonical_pass=None,
                                                                           gpu_layers=0), slots=2)
    try:
        assert loaded.canonical is False
    finally:
        loaded.close()


def test_a_context_on_the_same_model_shares_its_weights_and_outlives_the_first_context(embedded):
    """The batched engine's context uses its Engine's loaded model: loaded once, freed by the last to close."""
    settings = ContextSettings(threads=1, context=256, batch=64, gpu_layers=0)
    first = LlamaContext(str(embedded.path), settings)
    second = first.on_same_model(dataclasses.replace(settings, sequences=2))
    try:
        assert second._model is not None and second._loaded is first._loaded
        tokens = first.tokenize(b"Rivers run to the sea", add_bos=False, special=False)
        alone = first.extend(tokens, [len(tokens) - 1], rows=True)[-1]
        first.close()  # the model stays loaded while the second context uses it
        with pytest.raises(EngineError, match="is closed"):
            first.on_same_model(settings)
        assert second.extend(tokens, [len(tokens) - 1], rows=True, sequence=1)[-1].tolist() == alone.tolist()
    finally:
        first.close()
        second.close()
    third = LlamaContext(str(embedded.path), settings)
    try:
        with pytest.raises(EngineError, match="cannot share a model loaded with 0"):
            third.on_same_model(dataclasses.replace(settings, gpu_layers=-1))
    finally:
        third.close()


def test_a_batched_engine_loads_its_model_once(embedded):
    loaded = BatchedEngine(embedded.path, embedded.id, FAST_PATH, slots=2)
    try:
        assert loaded._context._loaded is loaded.single._context._loaded
    finally:
        loaded.close()
