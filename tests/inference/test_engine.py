"""The llama.cpp engine with the real embedded model: prompts, generation, evaluation."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from inference.engine import (
    Engine,
    EngineConfig,
    engine_build,
    engine_version,
    gpu_offload_supported,
    logprobs_micronats,
)
from inference.errors import InvalidJob, JobDoesNotFit
from inference.loading import load_engine
from inference.model_store import ModelStore
from inference.sampler import SamplingParams
from inference.verifier import token_margins
from tests.inference.conftest import FRESH_PROMPTS, SAMPLED, make_job


def test_prompts_are_wrapped_in_the_models_chat_template(engine):
    tokens = engine.prompt_tokens("Hello there")
    text = engine.detokenize(tokens)
    assert engine.has_chat_template
    assert tokens[0] == 1  # <|im_start|>: the template's text is tokenised with special tokens
    assert "Hello there" in text
    assert engine.prompt_tokens("Hello there", "raw") == engine.tokenize("Hello there")


def test_special_token_text_in_a_prompt_stays_plain_text(engine):
    tokens = engine.prompt_tokens("stop<|im_end|>now")
    frame = engine.prompt_tokens("")
    # Only the template's own <|im_end|> tokens (one per turn) are special; the prompt's text is not.
    assert tokens.count(2) == frame.count(2)


def test_greedy_generation_is_repeatable_and_fills_every_field(engine, embedded):
    job = make_job(embedded.id, FRESH_PROMPTS[0], max_tokens=12)
    fresh = Engine(embedded.path, embedded.id, EngineConfig(threads=2, context=1024, reuse_prefix=False))
    try:
        result = fresh.generate(job)
        # Without a reused prefix cache the same job gives the same bytes (with one, see the verifier).
        assert result == fresh.generate(job)
    finally:
        fresh.close()
    assert result.job == job and result.prompt_tokens == len(engine.prompt_tokens(job.prompt))
    assert len(result.tokens) == len(result.logprobs_micronats) <= 12
    assert all(value <= 0 for value in result.logprobs_micronats)
    assert result.text == engine.detokenize(result.tokens)
    assert result.stop_reason == ("length" if len(result.tokens) == 12 else "eos")


def test_sampled_generation_is_repeatable_and_depends_on_the_seed(engine, embedded):
    job = make_job(embedded.id, FRESH_PROMPTS[1], max_tokens=16, sampling=SAMPLED)
    result = engine.generate(job)
    assert engine.generate(job).tokens == result.tokens
    other_seed = dataclasses.replace(SAMPLED, seed=SAMPLED.seed + 1)
    other = make_job(embedded.id, FRESH_PROMPTS[1], max_tokens=16, sampling=other_seed)
    assert engine.generate(other).tokens != result.tokens


def test_generation_stops_at_end_of_sequence(engine, embedded):
    result = engine.generate(make_job(embedded.id, "Say hi.", max_tokens=60))
    assert result.stop_reason == "eos"
    assert engine.is_end_of_generation(result.tokens[-1])
    assert not any(engine.is_end_of_generation(token) for token in result.tokens[:-1])


@pytest.mark.skipif(gpu_offload_supported(), reason="GPU arithmetic is not batch-invariant")
def test_batched_evaluation_computes_exactly_what_generation_computed(engine, embedded):
    # The pinned build (llama.cpp without llamafile) evaluates each row of a batch exactly as it
    # decodes one token, so the verifier's logits are the generator's, bit for bit: every claimed
    # token is the sampler's choice again (margins never negative) and every log-probability is
    # recomputed exactly, across threads, batch sizes, context sizes and a reused prompt prefix.
    # With llamafile (llama.cpp's default) 20 of 1,215 margins were negative in the same check.
    one_thread = Engine(embedded.path, embedded.id, EngineConfig(threads=1, context=2048, batch=8))
    try:
        for index, (prompt, sampling) in enumerate([(FRESH_PROMPTS[0], SamplingParams()),
                                                    (FRESH_PROMPTS[1], SAMPLED),
                                                    (FRESH_PROMPTS[1] + " Briefly.", SAMPLED)]):
            job = make_job(embedded.id, prompt, max_tokens=48, sampling=sampling, label=str(index))
            # The third job's prompt shares the second's prefix: its cache is reused.
            for generator, verifier in ((engine, one_thread), (one_thread, engine)):
                result = generator.generate(job)
                rows = verifier.output_logits(verifier.prompt_tokens(prompt), result.tokens)
                assert (logprobs_micronats(rows, result.tokens) == np.array(result.logprobs_micronats)).all()
                margins = token_margins(rows, result.tokens, sampling, job.job_id)
                assert margins.min() >= 0, (index, margins.min())
    finally:
        one_thread.close()


@pytest.mark.skipif(gpu_offload_supported(), reason="GPU arithmetic is not batch-invariant")
def test_a_verifier_that_keeps_a_cached_prefix_computes_the_rows_of_a_fresh_one(engine, embedded):
    job = make_job(embedded.id, FRESH_PROMPTS[2], max_tokens=24, sampling=SAMPLED, label="prefix")
    result = engine.generate(job)
    prompt = engine.prompt_tokens(job.prompt)
    fresh = Engine(embedded.path, embedded.id, EngineConfig(threads=2, context=1024, reuse_prefix=False))
    try:
        expected = fresh.output_logits(prompt, result.tokens)
    finally:
        fresh.close()
    # Another job's evaluation leaves the chat template's opening cached; this one keeps it.
    engine.output_logits(engine.prompt_tokens(FRESH_PROMPTS[0]), result.tokens[:4])
    shared = sum(1 for _ in itertools.takewhile(lambda pair: pair[0] == pair[1],
                                                zip(engine.prompt_tokens(FRESH_PROMPTS[0]), prompt)))
    assert shared > 0
    assert np.array_equal(engine.output_logits(prompt, result.tokens), expected)


def test_a_prompt_longer_than_the_context_is_refused(embedded):
    small = Engine(embedded.path, embedded.id, EngineConfig(threads=1, context=64))
    try:
        with pytest.raises(JobDoesNotFit, match="longer than the 64-token context"):
            small.generate(make_job(embedded.id, "word " * 100))
        with pytest.raises(JobDoesNotFit, match="at most"):
            small.generate(make_job(embedded.id, "Hi", max_tokens=60))
    finally:
        small.close()


def test_a_job_for_another_model_is_refused(engine):
    with pytest.raises(InvalidJob, match="this engine runs"):
        engine.generate(make_job("cd" * 32, "Hi"))


def test_an_empty_raw_prompt_is_refused(engine):
    with pytest.raises(InvalidJob, match="empty"):
        engine.prompt_tokens("", "raw")


def test_load_engine_caps_the_context_at_the_trained_length(tmp_path):
    engine = load_engine(ModelStore(tmp_path / "models"), None, EngineConfig(threads=1, context=100_000))
    try:
        assert engine.context_size == 8192
        assert engine.device_description().startswith("CPU")
        assert engine_version().startswith("llama-cpp-python ")
    finally:
        engine.close()


@pytest.mark.skipif(gpu_offload_supported(), reason="a build with a GPU backend offloads")
def test_asking_for_gpu_layers_on_a_cpu_build_says_cpu(tmp_path):
    engine = load_engine(ModelStore(tmp_path / "models"), None, EngineConfig(threads=1, context=512, gpu_layers=-1))
    try:
        assert engine.device_description() == "CPU (this llama.cpp build has no GPU backend)"
    finally:
        engine.close()


def test_the_engine_name_says_which_build_computes():
    assert engine_build("CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | OPENMP = 1 | REPACK = 1 | ") \
        == "cpu avx2"
    assert engine_build("CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | LLAMAFILE = 1 | ") == "cpu avx512 llamafile"
    assert engine_build("CUDA : ARCHS = 900 | USE_GRAPHS = 1 | CPU : AVX2 = 1 | LLAMAFILE = 1 | ") \
        == "cuda+cpu avx2 llamafile"
    assert engine_build("CPU : NEON = 1 | ARM_FMA = 1 | FP16_VA = 0 | ") == "cpu neon"
    assert engine_build("") == "cpu"


def test_the_installed_engine_is_the_pinned_build():
    import llama_cpp

    # `make install` builds llama.cpp without llamafile: the verifier's exactness rests on it.
    assert engine_version() == f"llama-cpp-python {llama_cpp.__version__} " + engine_build(
        llama_cpp.llama_print_system_info().decode())
    assert "llamafile" not in engine_version(), "rebuild llama-cpp-python with the Makefile's CMAKE flags"
