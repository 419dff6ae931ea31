"""The adversarial executors of bench/adversaries.py on the real embedded model: every forging
behaviour's result is judged invalid by the verifier with the chain's thresholds, at the lengths
docs/verification.md names (64 tokens covers every one of them), while honest results from another
thread count, batch size and a reused engine are valid; the behaviours that reveal nothing reveal
nothing, and steering inside the per-job tolerance passes each job but not the evidence summed over jobs.
"""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest

from bench import adversaries
from bench.adversaries import BEHAVIOURS, BY_DEADLINE, BY_VERIFIER, Forger, NearRivalSteering, forge
from inference.engine import Engine, EngineConfig
from inference.model_store import ModelStore
from inference.registration import embedded_model_info, registered_thresholds
from inference.result import InferenceJob
from inference.sampler import SamplingParams
from inference.verifier import rescore_and_judge
from runtime.models import model_from_json

# docs/verification.md sections 7 and 9: every model fraud, sampling cheat and forgery is caught in
# every job at 64 tokens (truncation and edited tokens at full length, which is what a committee judges).
JOB_TOKENS = 64
# Outside the calibration prompts, so the shipped thresholds are tested out of sample.
PROMPTS = (
    "Describe what a lighthouse keeper does all day.",
    "Explain how a compass points north.",
)
SAMPLED = SamplingParams.from_decimal("0.7", 40, "0.95", seed=2025)
GREEDY = SamplingParams()


def make_job(model_id: str, prompt: str, sampling: SamplingParams, max_tokens: int = JOB_TOKENS) -> InferenceJob:
    job_id = hashlib.blake2b(f"security test {prompt} {sampling}".encode(), digest_size=32).digest()
    return InferenceJob(model_id, job_id, prompt, max_tokens, sampling)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    return ModelStore(tmp_path_factory.mktemp("store") / "models").embedded()


@pytest.fixture(scope="module")
def thresholds():
    """What every genesis registers for the embedded model: what a committee judges by."""
    return registered_thresholds(model_from_json(embedded_model_info(), "genesis"))


# One thread per engine: llama.cpp's threads spin, and on 2 cores shared with other work two threads
# made this module 4 times slower.
@pytest.fixture(scope="module")
def verifier(embedded):
    """The committee member's engine: 1 thread, n_batch 512, reused for every verdict of the module."""
    engine = Engine(embedded.path, embedded.id, EngineConfig(threads=1, context=1024))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def forger(embedded, tmp_path_factory):
    """The cheating executor's engine (1 thread, a context of its own) and scratch directory."""
    engine = Engine(embedded.path, embedded.id, EngineConfig(threads=1, context=1024))
    made = Forger(engine, tmp_path_factory.mktemp("adversary"))
    yield made
    made.close()
    engine.close()


def jobs_for(behaviour, model_id: str) -> list[InferenceJob]:
    """A few jobs the behaviour can cheat on: a greedy and a sampled one, or two sampled ones."""
    if behaviour.sampled_only:
        return [make_job(model_id, prompt, SAMPLED) for prompt in PROMPTS]
    return [make_job(model_id, PROMPTS[0], GREEDY), make_job(model_id, PROMPTS[1], SAMPLED)]


@pytest.mark.parametrize("name", [entry.name for entry in adversaries.forging_behaviours()])
def test_every_forged_result_is_judged_invalid(name, embedded, forger, verifier, thresholds):
    for job in jobs_for(BEHAVIOURS[name], embedded.id):
        honest = forger.honest(job)
        forged = forge(name, job, forger)
        assert forged.job == job
        assert forged.tokens != honest.tokens, f"{name} revealed the honest output of {job.prompt!r}"
        verdict = rescore_and_judge(forged, verifier, thresholds)
        assert not verdict.valid, f"{name}: {job.prompt!r} judged valid ({verdict.to_json()})"


def test_the_cheaper_model_is_a_requantised_copy_not_the_model(forger):
    cheap = forger.cheap()
    assert cheap.model_id == forger.engine.model_id  # claimed as the real model
    assert cheap.model_path != forger.engine.model_path
    assert cheap.model_path.startswith(str(forger.scratch))


def test_log_probabilities_claimed_by_the_real_logprob_forger_are_the_real_models(embedded, forger, verifier,
                                                                                     thresholds):
    job = make_job(embedded.id, PROMPTS[1], SAMPLED)
    verdict = rescore_and_judge(forge("cheaper-model-real-logprobs", job, forger), verifier, thresholds)
    # Only its tokens betray it: the log-probabilities agree with the verifier's.
    assert verdict.max_logprob_error_micro == 0
    assert not verdict.valid and "lost to another token" in " ".join(verdict.reasons)


def test_a_copied_reveal_is_another_jobs_output(embedded, forger):
    job = make_job(embedded.id, PROMPTS[1], GREEDY)
    copied = forge("copy-reveal", job, forger)
    donor = forger.donor(job)
    assert donor.job.job_id != job.job_id and donor.job.prompt != job.prompt
    assert copied.job == job and copied.tokens == donor.tokens and copied.logprobs_micronats == donor.logprobs_micronats
    assert copied.tokens != forger.honest(job).tokens


@pytest.mark.parametrize("sampling", [GREEDY, SAMPLED], ids=["greedy", "sampled"])
def test_honest_results_are_valid_across_threads_batches_and_a_reused_engine(embedded, forger, verifier,
                                                                                thresholds, sampling):
    job = make_job(embedded.id, PROMPTS[0], sampling)
    other = Engine(embedded.path, embedded.id, EngineConfig(threads=2, context=512, batch=8, reuse_prefix=False))
    try:
        two_threads = other.generate(job)
    finally:
        other.close()
    # The forger's engine (1 thread, n_batch 512) has run other jobs before: a reused engine and prompt cache.
    reused = forger.engine.generate(job)
    assert two_threads.tokens == reused.tokens
    for result in (two_threads, reused, forge("honest", job, forger)):
        verdict = rescore_and_judge(result, verifier, thresholds)
        assert verdict.valid and verdict.misses == 0, verdict.reasons


@pytest.mark.parametrize("name", [entry.name for entry in BEHAVIOURS.values() if entry.caught_by == BY_DEADLINE])
def test_withholding_behaviours_reveal_nothing(name, embedded, forger):
    assert forge(name, make_job(embedded.id, PROMPTS[0], GREEDY), forger) is None


def test_steering_two_positions_passes_each_job_but_not_the_evidence_across_jobs(embedded, forger, verifier,
                                                                                  thresholds):
    positions = misses = 0
    for job in jobs_for(BEHAVIOURS["steer-2-positions"], embedded.id):
        steering = NearRivalSteering(job)
        result = forger.engine.generate(job, choose=steering)
        verdict = rescore_and_judge(result, verifier, thresholds)
        # Inside the per-job tolerance (docs/verification.md section 9) ...
        assert verdict.valid, verdict.reasons
        # ... but every steered position is a miss a committee reports, and nothing else is.
        assert 1 <= len(steering.steered) <= 2 and verdict.misses == len(steering.steered)
        assert verdict.worst_margin_micro >= -200_000
        assert forge("steer-2-positions", job, forger).tokens == result.tokens
        positions, misses = positions + verdict.positions, misses + verdict.misses
    conviction = pytest.importorskip("runtime.disputes.conviction")
    rate, budget = thresholds.miss_rate_ppm, thresholds.false_positive_budget_ppb
    assert conviction.convicted(positions, misses, rate, budget)
    assert not conviction.convicted(JOB_TOKENS, 2, rate, budget)  # one job's evidence is not enough
    assert not conviction.convicted(positions, 0, rate, budget)  # an honest executor's never is


def test_a_byzantine_juror_votes_a_forgery_valid_an_honest_one_does_not(embedded, forger, thresholds):
    forged = forge("other-prompt", make_job(embedded.id, PROMPTS[0], GREEDY), forger)
    byzantine = adversaries.juror_rescorer(BEHAVIOURS["byzantine-juror"], forger)
    honest = adversaries.juror_rescorer(BEHAVIOURS["honest"], forger)
    assert byzantine(forged, thresholds, lambda: False).valid
    assert not honest(forged, thresholds, lambda: False).valid


def test_a_withholding_worker_never_sends_the_reveal_but_sends_the_commitment(tmp_path):
    from chain.crypto import dev_keypair
    from chain.worker.journal import Journal
    from chain.worker.worker import COMMIT, REVEAL, TrackedJob

    sent = []
    worker_class = adversaries.adversarial_worker_class(BEHAVIOURS["withhold-reveal"])
    worker = worker_class("127.0.0.1:9", dev_keypair("eve"), lambda job, cancelled: None, Journal(tmp_path))
    try:
        worker.submitter = SimpleNamespace(
            commit=lambda entry: sent.append(COMMIT) or SimpleNamespace(hash=b"c" * 32),
            reveal=lambda entry: sent.append(REVEAL) or SimpleNamespace(hash=b"r" * 32),
        )
        tracked = TrackedJob(b"j" * 32, assigned_height=1, deadline_height=100, entry=object())
        worker.send(tracked, REVEAL)
        worker.send(tracked, COMMIT)
        worker.send(tracked, REVEAL)
    finally:
        worker.reader.close()
        worker.client.close()
    assert sent == [COMMIT]


def test_a_lazy_worker_never_runs_a_job(tmp_path):
    from chain.crypto import dev_keypair
    from chain.worker.journal import Journal
    from chain.worker.worker import TrackedJob

    runs = []
    worker_class = adversaries.adversarial_worker_class(BEHAVIOURS["lazy-probe"])
    worker = worker_class("127.0.0.1:9", dev_keypair("eve"), lambda job, cancelled: runs.append(job),
                          Journal(tmp_path))
    try:
        tracked = TrackedJob(b"j" * 32, assigned_height=1, deadline_height=100)
        worker.start_run(SimpleNamespace(id=b"j" * 32), tracked)
    finally:
        worker.reader.close()
        worker.client.close()
    assert runs == [] and not tracked.running and "lazy-probe" in tracked.error


def test_every_behaviour_of_item_8_is_named():
    assert set(BEHAVIOURS) == {
        "honest", "cheaper-model", "cheaper-model-real-logprobs", "truncate", "edit-tokens", "other-prompt",
        "copy-reveal", "withhold-reveal", "greedy-for-sampled", "wrong-seed", "steer-2-positions", "lazy-probe",
        "byzantine-juror",
    }
    assert {entry.name for entry in adversaries.forging_behaviours()} == {
        name for name, entry in BEHAVIOURS.items() if entry.caught_by == BY_VERIFIER
    }
