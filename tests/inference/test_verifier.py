"""The verifier with the real embedded model: honest results pass, every kind of forgery fails."""

from __future__ import annotations

import dataclasses

import pytest

from inference import frauds
from inference.calibration import calibration_job_id, load_prompts, with_true_logprobs
from inference.engine import Engine, EngineConfig, engine_version
from inference.errors import InvalidJob
from inference.registration import embedded_model_info, registered_thresholds
from inference.result import InferenceJob, InferenceResult
from inference.sampler import SamplingParams
from inference.thresholds import Thresholds, shipped_thresholds
from inference.verifier import NO_RIVAL_MARGIN, Verdict, evaluate, greedy_margins, judge, rescore_and_judge
from runtime.models import model_from_json
from tests.inference.conftest import FRESH_PROMPTS, SAMPLED, make_job

MAX_TOKENS = 24


@pytest.fixture(scope="module")
def thresholds(embedded) -> Thresholds:
    """The thresholds every genesis registers for the embedded model: what validators judge by."""
    return registered_thresholds(model_from_json(embedded_model_info(), "genesis"))


@pytest.fixture(scope="module")
def greedy_result(engine, embedded) -> InferenceResult:
    return engine.generate(make_job(embedded.id, FRESH_PROMPTS[0], MAX_TOKENS))


@pytest.fixture(scope="module")
def sampled_result(engine, embedded) -> InferenceResult:
    return engine.generate(make_job(embedded.id, FRESH_PROMPTS[1], MAX_TOKENS, SAMPLED))


def test_shipped_thresholds_cover_the_embedded_model_and_this_engine(embedded):
    shipped = shipped_thresholds()[embedded.id]
    assert shipped.engine == engine_version()
    assert shipped.worst_margin_micro < -shipped.miss_slack_micro < 0
    assert shipped.false_positive_budget == 1e-6
    assert "inferchain model calibrate" in shipped.calibration


def test_honest_results_are_valid(engine, thresholds, greedy_result, sampled_result):
    for result in (greedy_result, sampled_result):
        verdict = rescore_and_judge(result, engine, thresholds)
        assert verdict.valid, verdict.reasons
        assert verdict.positions == len(result.tokens)


def test_honest_results_from_another_configuration_are_valid(embedded, engine, thresholds):
    # n_batch 8 with one thread and a reused prefix: the same jobs, other numerics.
    other = Engine(embedded.path, embedded.id, EngineConfig(threads=1, context=512, batch=8))
    try:
        for prompt, sampling in ((FRESH_PROMPTS[2], SAMPLED), (FRESH_PROMPTS[0], SamplingParams())):
            verdict = rescore_and_judge(other.generate(make_job(embedded.id, prompt, MAX_TOKENS, sampling)), engine, thresholds)
            assert verdict.valid, verdict.reasons
    finally:
        other.close()


def test_a_result_judged_by_prefix_uses_only_those_positions(engine, thresholds, sampled_result):
    evaluation = evaluate(sampled_result, engine)
    assert judge(sampled_result, evaluation, thresholds, positions=5).positions == 5


def test_replaced_tokens_are_caught(engine, thresholds, sampled_result):
    ends = set(engine.end_of_generation_tokens())
    forged = frauds.replace_tokens(sampled_result, 1, engine.vocabulary_size, ends, engine.detokenize)
    verdict = _verify_with_true_logprobs(forged, engine, thresholds)
    assert not verdict.valid
    assert "margin" in " ".join(verdict.reasons)


def test_an_answer_sampled_with_another_seed_is_caught(engine, embedded, thresholds, sampled_result):
    other_seed = dataclasses.replace(SAMPLED, seed=SAMPLED.seed + 1)
    other = engine.generate(dataclasses.replace(sampled_result.job, sampling=other_seed))
    verdict = _verify_with_true_logprobs(frauds.claim_for(sampled_result, other), engine, thresholds)
    assert not verdict.valid


def test_an_early_stop_is_caught_by_the_stop_rule_and_the_margins(engine, thresholds, greedy_result):
    cut = greedy_result.replace(tokens=greedy_result.tokens[:5], text=engine.detokenize(greedy_result.tokens[:5]),
                                logprobs_micronats=greedy_result.logprobs_micronats[:5])
    verdict = rescore_and_judge(cut, engine, thresholds)
    assert not verdict.valid and any("without end-of-sequence" in reason for reason in verdict.reasons)
    truncated = frauds.truncate(greedy_result, 2, engine.detokenize)
    assert not _verify_with_true_logprobs(truncated, engine, thresholds).valid


def test_text_that_is_not_the_tokens_is_caught(engine, thresholds, greedy_result):
    verdict = rescore_and_judge(greedy_result.replace(text=greedy_result.text + " (paid advertisement)"), engine, thresholds)
    assert not verdict.valid and "detokenised" in " ".join(verdict.reasons)


def test_a_wrong_prompt_token_count_is_caught(engine, thresholds, greedy_result):
    verdict = rescore_and_judge(greedy_result.replace(prompt_tokens=greedy_result.prompt_tokens + 1), engine, thresholds)
    assert not verdict.valid and "prompt_tokens" in " ".join(verdict.reasons)


def test_altered_log_probabilities_are_caught(engine, thresholds, sampled_result):
    verdict = rescore_and_judge(frauds.alter_logprobs(sampled_result), engine, thresholds)
    assert not verdict.valid and "log-probabilities differ" in " ".join(verdict.reasons)


def test_tokens_outside_the_vocabulary_are_invalid_not_a_crash(engine, thresholds, greedy_result):
    forged = greedy_result.replace(tokens=(10**9,) + greedy_result.tokens[1:])
    verdict = rescore_and_judge(forged, engine, thresholds)
    assert not verdict.valid and "vocabulary" in verdict.reasons[0]


def test_a_result_for_another_model_is_refused(engine, thresholds, greedy_result):
    job = dataclasses.replace(greedy_result.job, model="cd" * 32)
    with pytest.raises(InvalidJob, match="verifier loaded"):
        rescore_and_judge(greedy_result.replace(job=job), engine, thresholds)


def test_a_cheaper_requantised_model_is_caught_even_with_real_log_probabilities(
        embedded, engine, thresholds, tmp_path_factory):
    cheap_path = frauds.requantise(embedded.path, tmp_path_factory.mktemp("fraud") / "q4_0.gguf", "Q4_0")
    cheap = Engine(cheap_path, embedded.id, EngineConfig(threads=2, context=512))
    try:
        caught = 0
        for prompt in FRESH_PROMPTS:
            result = cheap.generate(make_job(embedded.id, prompt, 48, SAMPLED))
            caught += not _verify_with_true_logprobs(result, engine, thresholds).valid
    finally:
        cheap.close()
    assert caught == len(FRESH_PROMPTS)


def test_a_verdict_survives_its_json_round_trip(engine, thresholds, greedy_result):
    verdict = rescore_and_judge(greedy_result, engine, thresholds)
    assert Verdict.from_json(verdict.to_json()) == verdict


def _verify_with_true_logprobs(result: InferenceResult, engine: Engine, thresholds: Thresholds) -> Verdict:
    """A forger's best move: score its forged output with the real model and report those log-probs."""
    return judge(*with_true_logprobs(result, evaluate(result, engine)), thresholds)


def test_a_token_the_cached_generator_kept_at_the_top_p_boundary_is_not_an_accusation(embedded, thresholds):
    # Found by bench/inference.py: after a greedy job of the same prompt, the prefix-cached
    # generator kept ' lifetime' at rank 22 (mass before it 0.947 < 0.95); the batched evaluation
    # put it at rank 31 (0.981). A candidate test without tolerance called it impossible.
    generator = Engine(embedded.path, embedded.id, EngineConfig(threads=2))
    try:
        prompt = load_prompts()[1]
        job_id = calibration_job_id(1, 0, "bench")
        generator.generate(InferenceJob(embedded.id, job_id, prompt, 64))
        sampled = SamplingParams(temperature_milli=800, top_k=40, top_p_ppm=950_000, seed=42)
        result = generator.generate(InferenceJob(embedded.id, job_id, prompt, 64, sampled))
        verdict = rescore_and_judge(result, generator, thresholds)
        assert verdict.valid, verdict.reasons
    finally:
        generator.close()


# -- sampling cheats and steering ----------------------------------------------------------------

TOP_K_1 = SamplingParams.from_decimal("0.8", 1, "0.95", seed=99)


def test_a_top_k_1_job_is_judged_as_greedy(engine, embedded, thresholds):
    # One candidate whatever the noise: the runner-up is a rival, as in a greedy job, never "no rival".
    result = engine.generate(make_job(embedded.id, FRESH_PROMPTS[0], MAX_TOKENS, TOP_K_1))
    evaluation = evaluate(result, engine)
    rows = engine.output_logits(engine.prompt_tokens(result.job.prompt), result.tokens)
    assert list(evaluation.margins) == list(greedy_margins(rows, result.tokens))
    assert NO_RIVAL_MARGIN not in evaluation.margins
    assert judge(result, evaluation, thresholds).valid


def test_steering_a_top_k_1_job_is_caught(engine, embedded, thresholds):
    job = make_job(embedded.id, FRESH_PROMPTS[1], 64, TOP_K_1)
    steering = frauds.Steering(job, within_logits=0.9)
    verdict = rescore_and_judge(engine.generate(job, choose=steering), engine, thresholds)
    assert steering.steered >= 8
    assert not verdict.valid and "honest executor does that with a chance" in " ".join(verdict.reasons)


def test_steering_a_greedy_job_is_caught_within_64_tokens(engine, embedded, thresholds):
    # The runner-up taken wherever it is within 0.3 logits: each steered position lost by less than
    # honest drift on a llamafile build; on the pinned engine honest margins are never negative, so
    # a few such positions are evidence enough (docs/verification.md, section 7).
    job = make_job(embedded.id, FRESH_PROMPTS[2], 64)
    honest = rescore_and_judge(engine.generate(job), engine, thresholds)
    steering = frauds.Steering(job, within_logits=0.3)
    verdict = rescore_and_judge(engine.generate(job, choose=steering), engine, thresholds)
    assert honest.valid and honest.misses == 0
    assert steering.steered >= 3
    assert not verdict.valid, verdict


def test_a_lower_temperature_than_declared_is_caught(engine, embedded, thresholds):
    declared = SamplingParams.from_decimal("0.7", 40, "0.95", seed=7)
    job = make_job(embedded.id, FRESH_PROMPTS[0], 128, declared)
    result = engine.generate(job, choose=frauds.sampler_for(job, temperature_milli=400))
    assert result.tokens != engine.generate(job).tokens
    assert not rescore_and_judge(result, engine, thresholds).valid


@pytest.mark.parametrize("narrowed", [{"top_k": 5}, {"top_p_ppm": 800_000}, {"temperature_milli": 0}],
                         ids=["top-k 40 to 5", "top-p 0.95 to 0.8", "greedy"])
def test_a_narrower_sampler_than_declared_is_caught(engine, embedded, thresholds, narrowed):
    declared = SamplingParams.from_decimal("0.8", 40, "0.95", seed=21)
    job = make_job(embedded.id, FRESH_PROMPTS[1], 128, declared, label=str(narrowed))
    result = engine.generate(job, choose=frauds.sampler_for(job, **narrowed))
    assert result.tokens != engine.generate(job).tokens
    verdict = rescore_and_judge(result, engine, thresholds)
    assert not verdict.valid, verdict


def test_a_sampled_answer_to_a_greedy_job_is_caught(engine, embedded, thresholds):
    job = make_job(embedded.id, FRESH_PROMPTS[1], 128)
    result = engine.generate(job, choose=frauds.sampler_for(job, temperature_milli=300, seed=5))
    assert not rescore_and_judge(result, engine, thresholds).valid


def test_the_real_model_for_a_prefix_then_a_cheaper_one_is_caught(embedded, engine, thresholds, tmp_path_factory):
    cheap_path = frauds.requantise(embedded.path, tmp_path_factory.mktemp("fraud") / "q4_0.gguf", "Q4_0")
    cheap = Engine(cheap_path, embedded.id, EngineConfig(threads=2, context=512))
    try:
        job = make_job(embedded.id, FRESH_PROMPTS[2], 64, SAMPLED)
        prefix = engine.generate(dataclasses.replace(job, max_tokens=16)).tokens
        result = cheap.generate(job, choose=frauds.forced_prefix(prefix, frauds.sampler_for(job)))
    finally:
        cheap.close()
    assert result.tokens[:16] == prefix
    assert not _verify_with_true_logprobs(result, engine, thresholds).valid
