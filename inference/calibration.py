"""Calibration: measure honest variation and fraud on a fixed prompt set, fit a model's thresholds.

One run generates the committed prompt set (greedy, and sampled at two temperatures with two
seeds) with a reference configuration, regenerates part of it under every honest variation
(threads, n_batch, context size, a reused prefix cache, a second process), and builds every
fraud: cheaper or different models, and forged results made from the reference outputs (so they
cost no new generations). The verifier judges all of them; thresholds come from the honest rows
with a safety factor; the table goes to docs/verification.md with the command that made it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from inference import frauds
from inference.engine import DEFAULT_BATCH, DEFAULT_CONTEXT, Engine, EngineConfig, engine_version
from inference.errors import InferenceError
from inference.result import InferenceJob, InferenceResult
from inference.sampler import SamplingParams
from inference.thresholds import MICRO, SOFT_BLOCK_TOKENS, Thresholds
from inference.verifier import Evaluation, evaluate, judge

PROMPTS_FILE = "calibration_prompts.json"
DETECTION_POINTS = (16, 32, 64)
DOCS_BEGIN = "<!-- calibration table: begin (written by `inferchain model calibrate`) -->"
DOCS_END = "<!-- calibration table: end -->"

# The samplings every prompt is run with: greedy, and two temperatures with two seeds each.
SAMPLINGS = (
    SamplingParams(temperature_milli=0, top_k=40, top_p_ppm=950_000, seed=0),
    SamplingParams(temperature_milli=800, top_k=40, top_p_ppm=950_000, seed=42),
    SamplingParams(temperature_milli=800, top_k=40, top_p_ppm=950_000, seed=(1 << 63) + 7),
    SamplingParams(temperature_milli=1200, top_k=100, top_p_ppm=1_000_000, seed=42),
    SamplingParams(temperature_milli=1200, top_k=100, top_p_ppm=1_000_000, seed=(1 << 63) + 7),
)

# Threshold fitting. A false accusation slashes an honest validator, so the worst-margin bound
# sits at three times the worst honest margin (other CPUs and GPUs drift more than the variations
# measured here: a Q8_0 copy of the same weights reached 2.4x the honest worst); the soft bound
# at two thirds of it, where honest jobs had at most one position, catches cheaper models by
# their many moderate misses. Floors keep a model with tiny honest drift from getting bounds
# tighter than llama.cpp's known drift.
WORST_MARGIN_SAFETY = 3.0
SOFT_MARGIN_SAFETY = 2 / 3
WORST_MARGIN_FLOOR = -0.5  # logits
SOFT_MARGIN_FLOOR = -0.15  # logits
LOGPROB_SAFETY = 2.0
MEAN_LOGPROB_FLOOR = 0.1  # nats
MAX_LOGPROB_FLOOR = 1.0  # nats

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CalibrationSettings:
    """How large a calibration run is, and where its scratch files (fraud models) go."""

    reference_prompts: int | None = None  # prompts in the reference row; None = the whole set
    row_jobs: int = 125  # jobs per variation and fraud row (the first ones of the reference)
    max_tokens: int = 64
    threads: int = 2
    context: int = DEFAULT_CONTEXT
    batch: int = DEFAULT_BATCH
    rows: tuple[str, ...] | None = None  # row keys to run; None = all
    work_dir: Path | None = None
    prompts: tuple[str, ...] | None = None  # None = the committed prompt set
    reuse_generations: bool = False  # take generations saved in work_dir by an earlier run


@dataclass
class Outcome:
    """One judged result of a row, with its costs."""

    result: InferenceResult
    evaluation: Evaluation
    generate_seconds: float
    verify_seconds: float
    identical: bool = False  # a forged output equal to the honest one cannot be told apart


@dataclass
class Row:
    """One line of the table: an honest variation or a fraud, over its jobs."""

    key: str
    label: str
    honest: bool
    outcomes: list[Outcome] = field(default_factory=list)
    exempt: bool = False  # same weights at higher precision: not a fraud the verifier must catch


@dataclass
class CalibrationReport:
    """Everything a run measured, and the thresholds fitted from it."""

    model_id: str
    engine: str
    settings: CalibrationSettings
    rows: list[Row]
    thresholds: Thresholds
    seconds: float
    command: str


def load_prompts() -> tuple[str, ...]:
    """The committed calibration prompt set."""
    text = resources.files("inference").joinpath("data", PROMPTS_FILE).read_text()
    return tuple(json.loads(text)["prompts"])


def calibration_job_id(prompt_index: int, sampling_index: int, variant: str = "") -> bytes:
    """The job id of one calibration job (a hash, as the chain's job ids will be)."""
    message = f"inferchain calibration job {prompt_index} {sampling_index} {variant}".encode()
    return hashlib.blake2b(message, digest_size=32).digest()


ROW_KEYS = (
    "reference", "threads_1", "batch_8", "context_512", "prefix_cache", "second_process",
    "q4_0", "q4_0_true_logprobs", "q8_0", "perturbed_3", "perturbed_1",
    "truncated", "replaced_1", "replaced_5", "replaced_20", "other_prompt", "other_job",
    "altered_logprobs", "greedy_for_sampled", "other_seed",
)


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


class GenerationCache:
    """Generations (result and seconds) saved per row, so a re-run can re-verify without regenerating."""

    def __init__(self, directory: Path, scope: str, reuse: bool):
        self.directory = directory
        self.scope = scope
        self.reuse = reuse
        self._loaded: dict[str, dict[str, tuple[InferenceResult, float]]] = {}
        directory.mkdir(parents=True, exist_ok=True)
        if not reuse:
            for path in directory.glob(f"*-{scope}.jsonl"):
                path.unlink()

    def get(self, row_key: str, job: InferenceJob) -> tuple[InferenceResult, float] | None:
        """A saved generation of this job in this row, when reuse is on."""
        if not self.reuse:
            return None
        return self._entries(row_key).get(_job_key(job))

    def put(self, row_key: str, job: InferenceJob, result: InferenceResult, seconds: float) -> None:
        """Save a generation."""
        with open(self._path(row_key), "a") as output:
            output.write(json.dumps({"job": _job_key(job), "result": result.to_json(), "seconds": seconds}) + "\n")

    def _entries(self, row_key: str) -> dict[str, tuple[InferenceResult, float]]:
        if row_key not in self._loaded:
            entries = {}
            path = self._path(row_key)
            for line in path.read_text().splitlines() if path.is_file() else ():
                document = json.loads(line)
                entries[document["job"]] = (InferenceResult.from_json(document["result"]), document["seconds"])
            self._loaded[row_key] = entries
        return self._loaded[row_key]

    def _path(self, row_key: str) -> Path:
        return self.directory / f"{row_key}-{self.scope}.jsonl"


def _job_key(job: InferenceJob) -> str:
    return hashlib.blake2b(json.dumps(job.to_json(), sort_keys=True).encode(), digest_size=16).hexdigest()


def _timed(function, *args):
    started = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - started


def save_measurements(rows: Sequence[Row], path: Path) -> None:
    """Every job's per-position statistics, one JSON line each, for analysis after the run."""
    with open(path, "w") as output:
        for row in rows:
            for outcome in row.outcomes:
                output.write(json.dumps({
                    "row": row.key,
                    "job_id": outcome.result.job.job_id_hex,
                    "temperature_milli": outcome.result.job.sampling.temperature_milli,
                    "tokens": len(outcome.result.tokens),
                    "identical": outcome.identical,
                    "margins": [round(float(value), 4) for value in outcome.evaluation.margins],
                    "logprob_errors": [int(value) for value in outcome.evaluation.logprob_errors],
                    "problems": list(outcome.evaluation.problems),
                    "generate_seconds": round(outcome.generate_seconds, 4),
                    "verify_seconds": round(outcome.verify_seconds, 4),
                }) + "\n")


def with_true_logprobs(result: InferenceResult, evaluation: Evaluation) -> tuple[InferenceResult, Evaluation]:
    """The forger's best move: claim the real model's log-probabilities (it scored its output with it)."""
    if len(evaluation.recomputed_logprobs) != len(result.tokens):
        return result, evaluation
    logprobs = tuple(int(value) for value in evaluation.recomputed_logprobs)
    errors = np.zeros(len(logprobs), dtype=np.int64)
    return result.replace(logprobs_micronats=logprobs), dataclasses.replace(evaluation, logprob_errors=errors)


# -- thresholds ------------------------------------------------------------------------------


def fit_thresholds(model_id: str, honest_rows: Sequence[Row], command: str = "") -> Thresholds:
    """Bounds at a safety factor beyond the most extreme honest statistics."""
    evaluations = [o.evaluation for row in honest_rows for o in row.outcomes if len(o.evaluation.margins)]
    if not evaluations:
        raise InferenceError("calibration produced no honest evaluations to fit thresholds from")
    worst = min(float(evaluation.margins.min()) for evaluation in evaluations)
    worst_bound = min(WORST_MARGIN_SAFETY * worst, WORST_MARGIN_FLOOR)
    soft_bound = min(SOFT_MARGIN_SAFETY * worst, SOFT_MARGIN_FLOOR)
    soft_most = max(_most_soft_positions_per_block(evaluation.margins, soft_bound) for evaluation in evaluations)
    mean_error = max(float(evaluation.logprob_errors.mean()) for evaluation in evaluations) / MICRO
    max_error = max(float(evaluation.logprob_errors.max()) for evaluation in evaluations) / MICRO
    return Thresholds(
        model=model_id,
        engine=engine_version(),
        worst_margin_micro=int(worst_bound * MICRO),
        soft_margin_micro=int(soft_bound * MICRO),
        soft_positions_per_block=2 * soft_most + 1,
        mean_logprob_error_micro=int(max(LOGPROB_SAFETY * mean_error, MEAN_LOGPROB_FLOOR) * MICRO),
        max_logprob_error_micro=int(max(LOGPROB_SAFETY * max_error, MAX_LOGPROB_FLOOR) * MICRO),
        calibration=command,
    )


def _most_soft_positions_per_block(margins: np.ndarray, soft_bound: float) -> int:
    crossed = margins < soft_bound
    blocks = range(0, max(1, len(margins)), SOFT_BLOCK_TOKENS)
    return max(int(np.count_nonzero(crossed[start:start + SOFT_BLOCK_TOKENS])) for start in blocks)


# -- the second process ----------------------------------------------------------------------


def generate_in_process(model_path: Path, model_id: str, config: EngineConfig,
                        jobs: Sequence[InferenceJob]) -> list[tuple[InferenceResult, float]]:
    """Generate jobs in a fresh Python process (an honest variation: another process, same config)."""
    with tempfile.TemporaryDirectory(prefix="inferchain-worker-") as scratch:
        jobs_file = Path(scratch) / "jobs.json"
        results_file = Path(scratch) / "results.jsonl"
        jobs_file.write_text(json.dumps([job.to_json() for job in jobs]))
        command = [
            sys.executable, "-m", "inference.calibration", os.fspath(model_path), model_id,
            os.fspath(jobs_file), os.fspath(results_file),
            str(config.threads), str(config.context), str(config.batch),
        ]
        subprocess.run(command, check=True, env=_child_environment())
        return [_read_worker_line(line) for line in results_file.read_text().splitlines()]


def _child_environment() -> dict:
    # The child must import this very package, installed or not.
    root = os.fspath(Path(__file__).resolve().parents[1])
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, (root, environment.get("PYTHONPATH"))))
    return environment


def _read_worker_line(line: str) -> tuple[InferenceResult, float]:
    document = json.loads(line)
    return InferenceResult.from_json(document["result"]), float(document["seconds"])


def _worker_main(arguments: Sequence[str]) -> int:
    model_path, model_id, jobs_file, results_file, threads, context, batch = arguments
    config = EngineConfig(threads=int(threads), context=int(context), batch=int(batch), gpu_layers=0,
                          reuse_prefix=False)
    engine = Engine(model_path, model_id, config)
    jobs = [InferenceJob.from_json(document) for document in json.loads(Path(jobs_file).read_text())]
    with open(results_file, "w") as output:
        for job in jobs:
            result, seconds = _timed(engine.generate, job)
            output.write(json.dumps({"result": result.to_json(), "seconds": seconds}) + "\n")
    return 0


# -- the table -------------------------------------------------------------------------------


def detection_points(max_tokens: int) -> tuple[int, ...]:
    """The prefix lengths the table reports detection at."""
    points = tuple(point for point in DETECTION_POINTS if point < max_tokens)
    return points + (max_tokens,)


def row_summary(row: Row, thresholds: Thresholds, max_tokens: int) -> dict:
    """A row's counts: jobs, identical outputs, invalid verdicts at each prefix length, costs."""
    # A forged output identical to the honest one is no fraud; an honest row judges every job.
    judged = [o for o in row.outcomes if row.honest or not o.identical]
    invalid = {
        point: sum(1 for o in judged if not judge(o.result, o.evaluation, thresholds, positions=point).valid)
        for point in detection_points(max_tokens)
    }
    worst_margins = [float(o.evaluation.margins.min()) for o in row.outcomes if len(o.evaluation.margins)]
    generate = sum(o.generate_seconds for o in row.outcomes)
    verify = sum(o.verify_seconds for o in row.outcomes)
    return {
        "key": row.key,
        "label": row.label,
        "honest": row.honest,
        "exempt": row.exempt,
        "jobs": len(row.outcomes),
        "identical": sum(1 for o in row.outcomes if o.identical),
        "judged": len(judged),
        "invalid": invalid,
        "worst_margin_min": min(worst_margins, default=0.0),
        "worst_margin_median": statistics.median(worst_margins) if worst_margins else 0.0,
        "worst_margin_max": max(worst_margins, default=0.0),
        "verify_over_generate": verify / generate if generate else 0.0,
    }


def render_table(report: CalibrationReport) -> str:
    """The calibration table as Markdown, with the thresholds and the command that made them."""
    points = detection_points(report.settings.max_tokens)
    summaries = [row_summary(row, report.thresholds, report.settings.max_tokens) for row in report.rows]
    header = ["row", "kind", "jobs", "output identical to reference", *[f"invalid at {p}" for p in points],
              "worst margin min / median / max", "verify / generate"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for summary in summaries:
        lines.append("| " + " | ".join(_table_cells(summary, points)) + " |")
    return "\n".join([*_table_preamble(report), "", *lines, "", *_thresholds_lines(report.thresholds)]) + "\n"


def _table_cells(summary: dict, points: tuple[int, ...]) -> list[str]:
    kind = "honest" if summary["honest"] else ("fraud (same weights)" if summary["exempt"] else "fraud")
    identical = str(summary["identical"]) if summary["key"] != "reference" else "-"
    cells = [summary["label"], kind, str(summary["jobs"]), identical]
    for point in points:
        invalid, judged = summary["invalid"][point], summary["judged"]
        share = f" ({100 * invalid / judged:.1f}%)" if judged else ""
        cells.append(f"{invalid}/{judged}{share}")
    cells.append(f"{summary['worst_margin_min']:.2f} / {summary['worst_margin_median']:.2f} / "
                 f"{summary['worst_margin_max']:.2f}")
    cells.append(f"{summary['verify_over_generate']:.2f}")
    return cells


def _table_preamble(report: CalibrationReport) -> list[str]:
    settings = report.settings
    minutes = report.seconds / 60
    return [
        f"Model `{report.model_id}`, engine {report.engine}, numpy {np.__version__}, "
        f"Python {platform.python_version()}, {_cpu_name()} ({os.cpu_count()} cores), "
        f"no GPU in this run.",
        "",
        f"Command: `{report.command}` ({minutes:.0f} minutes).",
        "",
        f"Reference row: {settings.reference_prompts or 'all'} prompts x {len(SAMPLINGS)} samplings "
        f"(greedy; T 0.8 top-k 40 top-p 0.95; T 1.2 top-k 100 top-p 1; two seeds each), "
        f"max_tokens {settings.max_tokens}. Other rows: the first {settings.row_jobs} of those jobs "
        "(sampled-only frauds: the sampled ones among them). Verification is always one fresh batched "
        f"evaluation with the reference configuration.",
    ]


def _thresholds_lines(thresholds: Thresholds) -> list[str]:
    return [
        "Thresholds fitted from the honest rows (written to the model's thresholds file):",
        "",
        f"- worst margin bound: {thresholds.worst_margin_micro / MICRO:.3f} logits",
        f"- soft bound: {thresholds.soft_margin_micro / MICRO:.3f} logits, at most "
        f"{thresholds.soft_positions_per_block} positions per {SOFT_BLOCK_TOKENS} tokens beyond it",
        f"- mean log-probability error: at most {thresholds.mean_logprob_error_micro / MICRO:.3f} nats",
        f"- largest log-probability error: at most {thresholds.max_logprob_error_micro / MICRO:.3f} nats",
    ]


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_docs_table(report: CalibrationReport, docs_path: str | os.PathLike) -> None:
    """Put the table between the calibration markers of a Markdown file (appended if absent)."""
    path = Path(docs_path)
    block = f"{DOCS_BEGIN}\n{render_table(report)}{DOCS_END}"
    text = path.read_text() if path.is_file() else ""
    if DOCS_BEGIN in text and DOCS_END in text:
        before, rest = text.split(DOCS_BEGIN, 1)
        after = rest.split(DOCS_END, 1)[1]
        text = before + block + after
    else:
        text = text + ("\n" if text and not text.endswith("\n") else "") + block + "\n"
    path.write_text(text)


def report_json(report: CalibrationReport) -> dict:
    """The report's summaries and thresholds as a JSON document."""
    return {
        "model": report.model_id,
        "engine": report.engine,
        "seconds": round(report.seconds, 1),
        "command": report.command,
        "thresholds": report.thresholds.to_json(),
        "rows": [_json_summary(row_summary(row, report.thresholds, report.settings.max_tokens)) for row in report.rows],
    }


def _json_summary(summary: dict) -> dict:
    summary = dict(summary)
    summary["invalid"] = {str(point): count for point, count in summary["invalid"].items()}
    return summary


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
