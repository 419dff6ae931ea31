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
from inference.calibration.cache import GenerationCache
from inference.calibration.fitting import fit_thresholds, save_measurements, with_true_logprobs
from inference.calibration.plan import (
    SAMPLINGS,
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
        """Run every selected row, fit thresholds, and return the report."""
        reference = self._reference_row()
        subset = reference.outcomes[: self.settings.row_jobs]
        for key, build in self._row_builders(subset):
            if self._wanted(key):
                self.rows.append(build())
        thresholds = fit_thresholds(self.model_id, [row for row in self.rows if row.honest], self.command)
        self.verifier.close()
        save_measurements(self.rows, self.work_dir / "calibration-measurements.jsonl")
        return CalibrationReport(
            self.model_id, engine_version(), self.settings, self.rows, thresholds,
            time.perf_counter() - self._started, self.command,
        )

    def _row_builders(self, subset: list[Outcome]):
        sampled = [outcome for outcome in subset if not outcome.result.job.sampling.greedy]
        return (
            ("threads_1", lambda: self._honest_row("threads_1", "threads 1 (reference 2)", subset, threads=1)),
            ("batch_8", lambda: self._honest_row("batch_8", "n_batch 8 (reference 512)", subset, batch=8)),
            ("context_512", lambda: self._honest_row("context_512", "context 512 (reference 4096)", subset, context=512)),
            ("prefix_cache", lambda: self._honest_row("prefix_cache", "prefix evaluated before, cache reused", subset, reuse_prefix=True)),
            ("second_process", lambda: self._second_process_row(subset)),
            *self._model_fraud_builders(subset),
            ("truncated", lambda: self._forged_row("truncated", "output truncated early (ends with EOS)", subset, self._truncate)),
            ("replaced_1", lambda: self._forged_row("replaced_1", "1 token replaced", subset, self._replacer(1))),
            ("replaced_5", lambda: self._forged_row("replaced_5", "5 tokens replaced", subset, self._replacer(5))),
            ("replaced_20", lambda: self._forged_row("replaced_20", "20 tokens replaced", subset, self._replacer(20))),
            ("other_prompt", lambda: self._forged_row("other_prompt", "answer to a different prompt", subset, self._other_prompt)),
            ("other_job", lambda: self._regenerated_row("other_job", "output of another job (same prompt and seed)", sampled, self._other_job)),
            ("altered_logprobs", lambda: self._altered_logprobs_row(subset)),
            ("greedy_for_sampled", lambda: self._forged_row("greedy_for_sampled", "sampled job answered greedily", sampled, self._greedy_answer)),
            ("other_seed", lambda: self._regenerated_row("other_seed", "sampled job answered with another seed", sampled, self._other_seed)),
        )

    def _model_fraud_builders(self, subset: list[Outcome]):
        q4_0 = {}

        def cheaper():
            q4_0["row"] = self._model_row("q4_0", "cheaper model: Q4_0 requantisation", subset,
                                          lambda path: frauds.requantise(self.model_path, path, "Q4_0"))
            return q4_0["row"]

        def cheaper_true_logprobs():
            source = q4_0.get("row") or cheaper()
            return self._true_logprob_row("q4_0_true_logprobs",
                                          "cheaper model (Q4_0) reporting the real model's log-probs", source)

        return (
            ("q4_0", cheaper),
            ("q4_0_true_logprobs", cheaper_true_logprobs),
            ("q8_0", lambda: self._model_row("q8_0", "Q8_0 requantisation (same weights, higher precision)", subset,
                                             lambda path: frauds.requantise(self.model_path, path, "Q8_0"), exempt=True)),
            ("perturbed_3", lambda: self._model_row("perturbed_3", "different model: weights perturbed 3%", subset,
                                                    lambda path: frauds.perturb_weights(self.model_path, path, 0.03))),
            ("perturbed_1", lambda: self._model_row("perturbed_1", "different model: weights perturbed 1%", subset,
                                                    lambda path: frauds.perturb_weights(self.model_path, path, 0.01))),
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
            for job, (result, seconds) in zip(jobs, generated):
                self.cache.put(row.key, job, result, seconds)
        for (result, seconds), honest in zip(generated, subset):
            outcome = self._verified(result, seconds)
            outcome.identical = result.tokens == honest.result.tokens
            row.outcomes.append(outcome)
        self._report_row(row)
        return row

    def _model_row(self, key: str, label: str, subset: list[Outcome], build_model, exempt: bool = False) -> Row:
        path = self.work_dir / f"{self.model_id[:16]}-{key}.gguf"
        if not path.exists():
            self.progress(f"{label}: writing {path.name}")
            build_model(path)
        row = Row(key, label, honest=False, exempt=exempt)
        # The fraudulent engine claims the real model's id: that is the lie under test.
        engine = Engine(path, self.model_id, self._config())
        try:
            row.outcomes = self._generate_and_verify(row, engine, [outcome.result.job for outcome in subset], subset)
        finally:
            engine.close()
        return row

    def _true_logprob_row(self, key: str, label: str, source: Row) -> Row:
        row = Row(key, label, honest=False)
        for outcome in source.outcomes:
            result, evaluation = with_true_logprobs(outcome.result, outcome.evaluation)
            row.outcomes.append(dataclasses.replace(outcome, result=result, evaluation=evaluation))
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
                other, generate_seconds = self._generate(row.key, engine, variant_job(job))
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

    def _greedy_answer(self, result: InferenceResult) -> InferenceResult:
        prompt_index, _ = self._job_keys[result.job.job_id]
        return frauds.claim_for(result, self._reference_by_job[(prompt_index, 0)])

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
            result, seconds = self._generate(row.key, engine, job)
            outcome = self._verified(result, seconds)
            if honest is not None:
                outcome.identical = result.tokens == honest[index].result.tokens
            outcomes.append(outcome)
            self._tick(row, index, len(jobs))
        row.outcomes = outcomes
        self._report_row(row)
        return outcomes

    def _generate(self, row_key: str, engine: Engine, job: InferenceJob) -> tuple[InferenceResult, float]:
        cached = self.cache.get(row_key, job)
        if cached is not None:
            return cached
        result, seconds = _timed(engine.generate, job)
        self.cache.put(row_key, job, result, seconds)
        return result, seconds

    def _verified(self, result: InferenceResult, generate_seconds: float) -> Outcome:
        evaluation, seconds = self._timed_evaluation(result)
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
