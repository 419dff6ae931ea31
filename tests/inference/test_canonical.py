"""The canonical scoring pass with the real embedded model: a wrong fast path is rolled back to the
single-sequence result, an honest CPU one passes untouched."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference.canonical import CanonicalOutcome, canonical_pass
from inference.engine import Engine, EngineConfig, job_chooser
from inference.errors import InvalidResult
from inference.sampler import SamplingParams
from tests.inference.conftest import FRESH_PROMPTS, SAMPLED, make_job

# One thread: the other tests on a 2-core machine are not slowed, and the pinned build computes
# the same bits with any number of threads.
CONFIG = EngineConfig(threads=1, context=512, canonical_pass=False)


@pytest.fixture(scope="module")
def single(embedded):
    loaded = Engine(embedded.path, embedded.id, CONFIG)
    yield loaded
    loaded.close()


def wrong_at(job, position: int):
    """The job's chooser, except at `position`, where it takes the best token the chooser did not."""
    honest = job_chooser(job)

    def choose(logits: np.ndarray, at: int) -> int:
        choice = honest(logits, at)
        if at != position:
            return choice
        ranked = np.argsort(-logits, kind="stable")
        return int(ranked[1] if ranked[0] == choice else ranked[0])

    return choose


def run_pass(engine: Engine, job, tokens) -> CanonicalOutcome:
    return canonical_pass(engine, job, engine.prompt_tokens(job.prompt), tokens, job_chooser(job))


@pytest.mark.parametrize("sampling", [SamplingParams(), SAMPLED], ids=["greedy", "sampled"])
def test_a_fast_path_wrong_at_one_position_is_rolled_back_to_the_single_sequence_result(single, embedded, sampling):
    job = make_job(embedded.id, FRESH_PROMPTS[0], max_tokens=20, sampling=sampling, label="wrong")
    honest = single.generate(job)
    fast = single.generate(job, choose=wrong_at(job, 5))
    assert fast.tokens[:5] == honest.tokens[:5] and fast.tokens[5] != honest.tokens[5]
    outcome = run_pass(single, job, fast.tokens)
    assert outcome.result == honest
    assert outcome.rolled_back == len(fast.tokens) - 5
    assert outcome.evaluations == 2


def test_honest_cpu_output_rolls_back_nothing_and_keeps_every_byte(single, embedded):
    for index, (prompt, sampling, max_tokens) in enumerate([(FRESH_PROMPTS[1], SAMPLED, 24),
                                                           ("Say hi.", SamplingParams(), 60)]):
        job = make_job(embedded.id, prompt, max_tokens=max_tokens, sampling=sampling, label=f"honest {index}")
        honest = single.generate(job)
        outcome = run_pass(single, job, honest.tokens)
        assert (outcome.result, outcome.rolled_back, outcome.evaluations) == (honest, 0, 1)
    assert honest.stop_reason == "eos"  # one job ended by end-of-generation, one by length


def test_a_wrong_last_position_is_replaced_without_regenerating(single, embedded):
    job = make_job(embedded.id, FRESH_PROMPTS[2], max_tokens=10, label="last")
    honest = single.generate(job)
    assert honest.stop_reason == "length"
    fast = single.generate(job, choose=wrong_at(job, 9))
    outcome = run_pass(single, job, fast.tokens)
    assert (outcome.result, outcome.rolled_back) == (honest, 1)


def test_tokens_after_an_end_of_generation_token_are_dropped(single, embedded):
    job = make_job(embedded.id, "Say hi.", max_tokens=60, label="after eos")
    honest = single.generate(job)
    assert honest.stop_reason == "eos"
    outcome = run_pass(single, job, honest.tokens + (honest.tokens[0], honest.tokens[1]))
    assert (outcome.result, outcome.rolled_back) == (honest, 2)


def test_an_empty_or_overlong_fast_output_is_refused(single, embedded):
    job = make_job(embedded.id, "Hi", max_tokens=3, label="bad")
    with pytest.raises(InvalidResult, match="1 to 3 tokens, not 0"):
        run_pass(single, job, [])
    with pytest.raises(InvalidResult, match="not 4"):
        run_pass(single, job, [5, 6, 7, 8])


def test_a_fresh_evaluation_computes_the_rows_of_a_reused_one_on_the_cpu(single, embedded):
    job = make_job(embedded.id, FRESH_PROMPTS[0], max_tokens=8, label="fresh")
    result = single.generate(job)
    prompt = single.prompt_tokens(job.prompt)
    reused = single.output_logits(prompt, result.tokens)
    assert np.array_equal(single.output_logits(prompt, result.tokens, fresh=True), reused)


def test_the_pass_is_on_for_a_gpu_and_off_on_the_cpu_unless_asked():
    assert EngineConfig(gpu_layers=0).resolved().canonical_pass is False
    assert EngineConfig(gpu_layers=-1).resolved().canonical_pass is True
    assert EngineConfig(gpu_layers=0, canonical_pass=True).resolved().canonical_pass is True
    assert EngineConfig(gpu_layers=-1, canonical_pass=False).resolved().canonical_pass is False


def test_an_engine_with_the_pass_on_gives_what_one_without_gives_on_the_cpu(single, embedded):
    job = make_job(embedded.id, FRESH_PROMPTS[1], max_tokens=16, sampling=SAMPLED, label="engine pass")
    passing = Engine(embedded.path, embedded.id, dataclasses.replace(CONFIG, canonical_pass=True))
    try:
        assert passing.config.canonical_pass
        assert passing.generate(job) == single.generate(job)
    finally:
        passing.close()


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0, max_value=11), sampled=st.booleans())
def test_any_one_wrong_token_is_rolled_back_to_the_honest_result(single, embedded, position, sampled):
    job = make_job(embedded.id, FRESH_PROMPTS[2], max_tokens=12, sampling=SAMPLED if sampled else SamplingParams(),
                   label="moves")
    honest = single.generate(job)
    fast = single.generate(job, choose=wrong_at(job, position))
    outcome = run_pass(single, job, fast.tokens)
    assert outcome.result == honest
    assert outcome.rolled_back == len(fast.tokens) - position


def test_a_fast_output_that_stopped_short_is_generated_on_to_its_end(single, embedded):
    job = make_job(embedded.id, FRESH_PROMPTS[1], max_tokens=14, sampling=SAMPLED, label="short")
    honest = single.generate(job)
    outcome = run_pass(single, job, honest.tokens[:5])
    assert (outcome.result, outcome.rolled_back, outcome.evaluations) == (honest, 0, 2)
