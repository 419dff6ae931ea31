"""The calibration run: the reference row, every honest variation and every fraud, judged by the verifier."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from inference import frauds
from inference.calibration.cache import Generation, GenerationCache
from inference.calibration.fitting import fit_thresholds, save_measurements, with_true_logprobs
from inference.calibration.plan import (
    GREEDY,
    SAMPLINGS,
    T_0_3,
    T_0_7,
    held_out_jobs,
    load_held_out_prompts,
    CalibrationReport,
    CalibrationSettings,
    Outcome,
    Progress,
    Row,
    _timed,
    calibration_job_id,
    load_prompts,
)
from inference.engine import Engine, EngineConfig, engine_version
from inference.result import InferenceJob, InferenceResult
from inference.verifier import Evaluation, evaluate


# The prefix-then-cheaper fraud runs the real model this long before switching.
PREFIX_TOKENS = 16


def spread(reference: list[Outcome], count: int, samplings: int) -> list[Outcome]:
    """`count` reference jobs over as many prompts as possible, the sampling turning with each one.

    The reference runs every prompt with every sampling in turn; job i of the subset takes the
    prompt at i / count of the way through and sampling i mod `samplings`.
    """
    prompts = len(reference) // samplings
    count = min(count, len(reference))
    return [reference[(index * prompts // count) * samplings + index % samplings] for index in range(count)]


class Calibration:
    """A calibration run for one model file."""

    def __init__(self, model_path: str | os.PathLike, model_id: str, settings: CalibrationSettings,
                 progress: Progress = lambda message: None, command: str = ""):
        self.model_path = Path(model_path)
        self.model_id = model_id
        self.settings = settings
        self.progress = progress
        self.command = command
        self.prompts = settings.prompts or load_prompts()
        self.work_dir = Path(settings.work_dir or tempfile.mkdtemp(prefix="inferchain-calibration-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._started = time.perf_counter()
        self.cache = GenerationCache(self.work_dir / "generations", self._cache_scope(), settings.reuse_generations)
        self.verifier = Engine(self.model_path, model_id, self._config())
        self._end_tokens = set(self.verifier.end_of_generation_tokens())
        self.rows: list[Row] = []

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> CalibrationReport:
        """Run every selected row, fit thresholds on the honest rows but the held-out one, and report."""
        reference = self._reference_row()
        for key, build in self._row_builders(reference.outcomes):
            if self._wanted(key):
                self.rows.append(build())
        fitted = [row for row in self.rows if row.honest and not row.held_out]
        thresholds = fit_thresholds(self.model_id, fitted, self.command)
        self.verifier.close()
        save_measurements(self.rows, self.work_dir / "calibration-measurements.jsonl")
        return CalibrationReport(
            self.model_id, engine_version(), self.settings, self.rows, thresholds,
            time.perf_counter() - self._started, self.command,
        )

    def _row_builders(self, reference: list[Outcome]):
        subset = spread(reference, self.settings.row_jobs, len(SAMPLINGS))
        sampled = [outcome for outcome in subset if not outcome.result.job.sampling.greedy]
        greedy = self._with_sampling(reference, (GREEDY,))
        moderate = self._with_sampling(reference, T_0_7)
        return (
            ("held_out", self._held_out_row),
            ("threads_1", lambda: self._honest_row("threads_1", "threads 1 (reference 2)", subset, threads=1)),
            ("batch_8", lambda: self._honest_row("batch_8", "n_batch 8 (reference 512)", subset, batch=8)),
            ("context_512", lambda: self._honest_row("context_512", "context 512 (reference 4096)", subset, context=512)),
            ("prefix_cache", lambda: self._honest_row("prefix_cache", "prefix evaluated before, cache reused", subset, reuse_prefix=True)),
            ("second_process", lambda: self._second_process_row(subset)),
            *self._model_fraud_builders(subset),
            ("temperature_narrowed", lambda: self._bent_row(
                "temperature_narrowed", "declared T 0.7, sampled at T 0.4", moderate,
                lambda job: frauds.sampler_for(job, temperature_milli=400))),
            ("top_k_narrowed", lambda: self._bent_row(
                "top_k_narrowed", "declared top-k 40, sampled with top-k 5", moderate,
                lambda job: frauds.sampler_for(job, top_k=5))),
            ("top_p_narrowed", lambda: self._bent_row(
                "top_p_narrowed", "declared top-p 0.95, sampled with top-p 0.8", moderate,
                lambda job: frauds.sampler_for(job, top_p_ppm=800_000))),
            ("greedy_for_sampled", lambda: self._forged_row("greedy_for_sampled", "sampled job answered greedily", sampled, self._answer_with(GREEDY))),
            ("sampled_for_greedy", lambda: self._forged_row("sampled_for_greedy", "greedy job answered at T 0.3", greedy, self._answer_with(T_0_3))),
            ("steered_greedy", lambda: self._steered_row("steered_greedy", "steered greedy job: runner-up within 0.3 logits", greedy, 0.3)),
            ("steered_top_k_1", lambda: self._steered_row("steered_top_k_1", "steered top-k 1 job: runner-up within 0.9 logits", greedy, 0.9, top_k=1)),
            ("steered_sampled", lambda: self._steered_row("steered_sampled", "steered T 0.7 job: runner-up within 0.3 logits", moderate, 0.3)),
            ("truncated", lambda: self._forged_row("truncated", "output truncated early (ends with EOS)", subset, self._truncate)),
            ("replaced_1", lambda: self._forged_row("replaced_1", "1 token replaced", subset, self._replacer(1))),
            ("replaced_5", lambda: self._forged_row("replaced_5", "5 tokens replaced", subset, self._replacer(5))),
            ("replaced_20", lambda: self._forged_row("replaced_20", "20 tokens replaced", subset, self._replacer(20))),
            ("other_prompt", lambda: self._forged_row("other_prompt", "answer to a different prompt", subset, self._other_prompt)),
            ("other_job", lambda: self._regenerated_row("other_job", "output of another job (same prompt and seed)", sampled, self._other_job)),
            ("altered_logprobs", lambda: self._altered_logprobs_row(subset)),
            ("other_seed", lambda: self._regenerated_row("other_seed", "sampled job answered with another seed", sampled, self._other_seed)),
        )

    def _with_sampling(self, reference: list[Outcome], indices: tuple[int, ...]) -> list[Outcome]:
        chosen = [o for o in reference if self._job_keys[o.result.job.job_id][1] in indices]
        return chosen[: self.settings.row_jobs]

    def _model_fraud_builders(self, subset: list[Outcome]):
        def requantised(key: str, label: str, quantisation: str, exempt: bool = False):
            return key, lambda: self._model_row(
                key, label, subset, lambda path: frauds.requantise(self.model_path, path, quantisation), exempt=exempt)

        def perturbed(key: str, label: str, scale: float):
            return key, lambda: self._model_row(
                key, label, subset, lambda path: frauds.perturb_weights(self.model_path, path, scale))

        return (
            requantised("q4_0", "cheaper model: Q4_0 requantisation", "Q4_0"),
            requantised("q3_k_m", "cheaper model: Q3_K_M requantisation", "Q3_K_M"),
            requantised("q2_k", "cheaper model: Q2_K requantisation", "Q2_K"),
            ("prefix_then_q4_0", lambda: self._prefix_row(subset)),
            requantised("q5_0", "Q5_0 requantisation (same weights, about the same precision)", "Q5_0", exempt=True),
            requantised("q5_1", "Q5_1 requantisation (same weights, higher precision)", "Q5_1", exempt=True),
            requantised("q8_0", "Q8_0 requantisation (same weights, higher precision)", "Q8_0", exempt=True),
            perturbed("perturbed_3", "different model: weights perturbed 3%", 0.03),
            perturbed("perturbed_1", "different model: weights perturbed 1%", 0.01),
        )

    def _wanted(self, key: str) -> bool:
        return self.settings.rows is None or key in self.settings.rows

    # -- rows --------------------------------------------------------------------------------

    def _reference_row(self) -> Row:
        jobs = self._reference_jobs()
        label = (f"reference: {self.settings.threads} threads, n_batch {self.settings.batch}, "
                 f"context {self.settings.context}, fresh cache")
        row = Row("reference", label, honest=True)
        engine = Engine(self.model_path, self.model_id, self._config())
        try:
            row.outcomes = self._generate_and_verify(row, engine, jobs)
        finally:
            engine.close()
        # The forgeries that borrow another job's answer take it from here.
        self._reference_by_job = {self._job_keys[o.result.job.job_id]: o.result for o in row.outcomes}
        self.rows.append(row)
        return row

    def _held_out_row(self) -> Row:
        """Honest jobs on prompts no threshold was fitted on: every sampling, lengths, two configurations."""
        prompts = self.settings.held_out_prompts or load_held_out_prompts()
        jobs = held_out_jobs(self.model_id, prompts, self.settings.max_tokens)
        label = (f"held out (not fitted): {len(prompts)} other prompts x {len(jobs) // max(1, len(prompts))}, "
                 "every sampling, lengths 16 to max, chat and raw; every other job on 1 thread with the "
                 "prompt cache reused")
        row = Row("held_out", label, honest=True, held_out=True)
        engines = (Engine(self.model_path, self.model_id, self._config()),
                   Engine(self.model_path, self.model_id,
                          dataclasses.replace(self._config(), threads=1, reuse_prefix=True)))
        try:
            for index, job in enumerate(jobs):
                result, seconds, _ = self._generate(row.key, engines[index % 2], job)
                row.outcomes.append(self._verified(result, seconds))
                self._tick(row, index, len(jobs))
        finally:
            for engine in engines:
                engine.close()
        self._report_row(row)
        return row

    def _honest_row(self, key: str, label: str, subset: list[Outcome], **changes) -> Row:
        row = Row(key, label, honest=True)
        engine = Engine(self.model_path, self.model_id, dataclasses.replace(self._config(), **changes))
        try:
            row.outcomes = self._generate_and_verify(row, engine, [outcome.result.job for outcome in subset], subset)
        finally:
            engine.close()
        return row

    def _second_process_row(self, subset: list[Outcome]) -> Row:
        row = Row("second_process", "second process, reference configuration", honest=True)
        jobs = [outcome.result.job for outcome in subset]
        generated = [self.cache.get(row.key, job) for job in jobs]
        if None in generated:
            self.progress(f"{row.label}: generating {len(jobs)} jobs in a child process")
            # Imported here, not with the package: the child runs `python -m inference.calibration.worker`,
            # and runpy warns when that module was already imported by its package.
            from inference.calibration.worker import generate_in_process

            generated = generate_in_process(self.model_path, self.model_id, self._config(), jobs)
            generated = [Generation(result, seconds) for result, seconds in generated]
            for job, generation in zip(jobs, generated):
                self.cache.put(row.key, job, generation)
        for (result, seconds, _), honest in zip(generated, subset):
            outcome = self._verified(result, seconds)
            outcome.identical = result.tokens == honest.result.tokens
            row.outcomes.append(outcome)
        self._report_row(row)
        return row

    def _model_row(self, key: str, label: str, subset: list[Outcome], build_model, exempt: bool = False,
                   chooser=None, model_key: str | None = None) -> Row:
        # The fraudulent engine claims the real model's id: that is the lie under test.
        path = self._fraud_model(model_key or key, label, build_model)
        row = Row(key, label + " (claims the real model's log-probs)", honest=False, exempt=exempt)
        return self._executor_row(row, subset, lambda index, honest: (
            honest.result.job, chooser(honest) if chooser else None), path)

    def _fraud_model(self, key: str, label: str, build_model) -> Path:
        path = self.work_dir / f"{self.model_id[:16]}-{key}.gguf"
        if not path.exists():
            self.progress(f"{label}: writing {path.name}")
            build_model(path)
        return path

    def _prefix_row(self, subset: list[Outcome]) -> Row:
        """The real model's first 16 tokens (its honest output), then a Q4_0 requantisation's."""
        def chooser(honest: Outcome):
            sampler = frauds.sampler_for(honest.result.job)
            return frauds.forced_prefix(honest.result.tokens[:PREFIX_TOKENS], sampler)

        return self._model_row("prefix_then_q4_0", f"real model for {PREFIX_TOKENS} tokens, then Q4_0", subset,
                               lambda path: frauds.requantise(self.model_path, path, "Q4_0"), chooser=chooser,
                               model_key="q4_0")

    def _bent_row(self, key: str, label: str, outcomes: list[Outcome], make_chooser) -> Row:
        """The real model, its output chosen by a sampler other than the job declares."""
        return self._executor_row(Row(key, label, honest=False), outcomes, lambda index, honest: (
            honest.result.job, make_chooser(honest.result.job)))

    def _steered_row(self, key: str, label: str, outcomes: list[Outcome], within: float, **declared) -> Row:
        """The real model and the declared sampler, the runner-up taken wherever it is `within` logits."""
        def plan(index: int, honest: Outcome):
            job = honest.result.job
            if declared:
                sampling = dataclasses.replace(SAMPLINGS[T_0_7[0]], **declared)
                job = dataclasses.replace(job, sampling=sampling, job_id=calibration_job_id(index, -1, key))
            return job, frauds.Steering(job, within)

        return self._executor_row(Row(key, label, honest=False), outcomes, plan)

    def _executor_row(self, row: Row, outcomes: list[Outcome], plan, model_path: Path | None = None) -> Row:
        """Each job regenerated by a dishonest executor: `plan(index, honest)` is the job and its chooser."""
        model_path = model_path or self.model_path
        engine = Engine(model_path, self.model_id, self._config())
        try:
            for index, honest in enumerate(outcomes):
                job, chooser = plan(index, honest)
                result, seconds, altered = self._generate(row.key, engine, job, chooser)
                # Another model claims the real model's log-probabilities (it scored its output
                # with the real model), so only its tokens can give it away.
                outcome = self._verified(result, seconds, true_logprobs=model_path != self.model_path)
                outcome.altered = altered
                outcome.identical = altered == 0 if altered is not None else result.tokens == honest.result.tokens
                row.outcomes.append(outcome)
                self._tick(row, index, len(outcomes))
        finally:
            engine.close()
        self._report_row(row)
        return row

    def _forged_row(self, key: str, label: str, outcomes: list[Outcome], forge) -> Row:
        row = Row(key, label, honest=False)
        for index, honest in enumerate(outcomes):
            forged = forge(honest.result)
            evaluation, seconds = self._timed_evaluation(forged)
            forged, evaluation = with_true_logprobs(forged, evaluation)
            row.outcomes.append(Outcome(forged, evaluation, honest.generate_seconds, seconds,
                                        identical=forged.tokens == honest.result.tokens))
            self._tick(row, index, len(outcomes))
        self._report_row(row)
        return row

    def _regenerated_row(self, key: str, label: str, outcomes: list[Outcome], variant_job) -> Row:
        row = Row(key, label, honest=False)
        engine = Engine(self.model_path, self.model_id, self._config())
        try:
            for index, honest in enumerate(outcomes):
                job = honest.result.job
                other, generate_seconds, _ = self._generate(row.key, engine, variant_job(job))
                forged = frauds.claim_for(honest.result, other)
                evaluation, verify_seconds = self._timed_evaluation(forged)
                row.outcomes.append(Outcome(forged, evaluation, generate_seconds, verify_seconds,
                                            identical=forged.tokens == honest.result.tokens))
                self._tick(row, index, len(outcomes))
        finally:
            engine.close()
        self._report_row(row)
        return row

    def _altered_logprobs_row(self, subset: list[Outcome]) -> Row:
        row = Row("altered_logprobs", "altered log-probabilities (tokens honest)", honest=False)
        for honest in subset:
            altered = frauds.alter_logprobs(honest.result)
            # Same tokens, same fresh evaluation: only the claimed log-probabilities differ.
            errors = np.abs(np.asarray(altered.logprobs_micronats) - honest.evaluation.recomputed_logprobs)
            evaluation = dataclasses.replace(honest.evaluation, logprob_errors=errors)
            row.outcomes.append(Outcome(altered, evaluation, honest.generate_seconds, honest.verify_seconds))
        self._report_row(row)
        return row

    # -- forgeries ---------------------------------------------------------------------------

    def _truncate(self, result: InferenceResult) -> InferenceResult:
        return frauds.truncate(result, self.verifier.end_of_sequence_token, self.verifier.detokenize)

    def _replacer(self, count: int):
        def replace(result: InferenceResult) -> InferenceResult:
            return frauds.replace_tokens(result, count, self.verifier.vocabulary_size, self._end_tokens,
                                         self.verifier.detokenize)
        return replace

    def _other_prompt(self, result: InferenceResult) -> InferenceResult:
        prompt_index, sampling_index = self._job_keys[result.job.job_id]
        donor_prompt = (prompt_index + 1) % len(self._prompt_indices)
        return frauds.claim_for(result, self._reference_by_job[(donor_prompt, sampling_index)])

    def _answer_with(self, sampling_index: int):
        """A forger that claims the same prompt's reference output under another sampling."""
        def answer(result: InferenceResult) -> InferenceResult:
            prompt_index, _ = self._job_keys[result.job.job_id]
            return frauds.claim_for(result, self._reference_by_job[(prompt_index, sampling_index)])
        return answer

    def _other_job(self, job: InferenceJob) -> InferenceJob:
        prompt_index, sampling_index = self._job_keys[job.job_id]
        return dataclasses.replace(job, job_id=calibration_job_id(prompt_index, sampling_index, "other job"))

    def _other_seed(self, job: InferenceJob) -> InferenceJob:
        sampling = dataclasses.replace(job.sampling, seed=(job.sampling.seed + 1) % (1 << 64))
        return dataclasses.replace(job, sampling=sampling)

    # -- shared steps ------------------------------------------------------------------------

    def _reference_jobs(self) -> list[InferenceJob]:
        count = self.settings.reference_prompts or len(self.prompts)
        jobs = []
        self._job_keys: dict[bytes, tuple[int, int]] = {}
        for prompt_index, prompt in enumerate(self.prompts[:count]):
            for sampling_index, sampling in enumerate(SAMPLINGS):
                job_id = calibration_job_id(prompt_index, sampling_index)
                self._job_keys[job_id] = (prompt_index, sampling_index)
                jobs.append(InferenceJob(self.model_id, job_id, prompt, self.settings.max_tokens, sampling))
        self._prompt_indices = list(range(min(count, len(self.prompts))))
        return jobs

    def _generate_and_verify(self, row: Row, engine: Engine, jobs: Sequence[InferenceJob],
                             honest: Sequence[Outcome] | None = None) -> list[Outcome]:
        outcomes = []
        for index, job in enumerate(jobs):
            result, seconds, _ = self._generate(row.key, engine, job)
            outcome = self._verified(result, seconds)
            if honest is not None:
                outcome.identical = result.tokens == honest[index].result.tokens
            outcomes.append(outcome)
            self._tick(row, index, len(jobs))
        row.outcomes = outcomes
        self._report_row(row)
        return outcomes

    def _generate(self, row_key: str, engine: Engine, job: InferenceJob, chooser=None) -> Generation:
        cached = self.cache.get(row_key, job)
        if cached is not None:
            return cached
        result, seconds = _timed(engine.generate, job, None, chooser)
        generation = Generation(result, seconds, getattr(chooser, "steered", None))
        self.cache.put(row_key, job, generation)
        return generation

    def _verified(self, result: InferenceResult, generate_seconds: float, true_logprobs: bool = False) -> Outcome:
        evaluation, seconds = self._timed_evaluation(result)
        if true_logprobs:
            result, evaluation = with_true_logprobs(result, evaluation)
        return Outcome(result, evaluation, generate_seconds, seconds)

    def _timed_evaluation(self, result: InferenceResult) -> tuple[Evaluation, float]:
        return _timed(evaluate, result, self.verifier)

    def _cache_scope(self) -> str:
        scope = [self.model_id, engine_version(), self.settings.threads, self.settings.context, self.settings.batch]
        return hashlib.blake2b(json.dumps(scope).encode(), digest_size=8).hexdigest()

    def _config(self) -> EngineConfig:
        return EngineConfig(threads=self.settings.threads, context=self.settings.context,
                            batch=self.settings.batch, gpu_layers=0, reuse_prefix=False)

    def _tick(self, row: Row, index: int, total: int) -> None:
        if (index + 1) % 25 == 0 and index + 1 < total:
            self.progress(f"{row.label}: {index + 1}/{total} jobs")

    def _report_row(self, row: Row) -> None:
        worst = min((float(o.evaluation.margins.min()) for o in row.outcomes if len(o.evaluation.margins)), default=0.0)
        self.progress(f"{row.label}: {len(row.outcomes)} jobs done, worst margin {worst:.3f} "
                      f"({self._elapsed()} elapsed)")

    def _elapsed(self) -> str:
        seconds = int(time.perf_counter() - self._started)
        return f"{seconds // 60}m{seconds % 60:02d}s"
