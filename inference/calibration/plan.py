"""The plan of a calibration run: its settings, samplings, row keys, job ids and prompts, and the
records (rows, outcomes, the report) the other steps fill in."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

from inference.engine import DEFAULT_BATCH, DEFAULT_CONTEXT
from inference.result import InferenceJob, InferenceResult
from inference.sampler import SamplingParams
from inference.thresholds import Thresholds
from inference.verifier import Evaluation

PROMPTS_FILE = "calibration_prompts.json"
HELD_OUT_PROMPTS_FILE = "heldout_prompts.json"
SEEDS = (42, (1 << 63) + 7)

# The samplings every reference prompt is run with; thresholds are fitted on these jobs.
SAMPLINGS = (
    SamplingParams(temperature_milli=0, top_k=40, top_p_ppm=950_000, seed=0),
    SamplingParams(temperature_milli=300, top_k=40, top_p_ppm=950_000, seed=SEEDS[0]),
    SamplingParams(temperature_milli=700, top_k=40, top_p_ppm=950_000, seed=SEEDS[0]),
    SamplingParams(temperature_milli=700, top_k=40, top_p_ppm=950_000, seed=SEEDS[1]),
    SamplingParams(temperature_milli=1200, top_k=100, top_p_ppm=1_000_000, seed=SEEDS[0]),
    SamplingParams(temperature_milli=1500, top_k=0, top_p_ppm=1_000_000, seed=SEEDS[1]),
)
GREEDY, T_0_3, T_0_7 = 0, 1, (2, 3)  # indices into SAMPLINGS the frauds start from

# The held-out row cycles through these (every sampling the chain offers, top-k 1 included) and
# through these lengths; no threshold is fitted on it.
HELD_OUT_SAMPLINGS = (
    SamplingParams(temperature_milli=0, top_k=40, top_p_ppm=950_000, seed=0),
    SamplingParams(temperature_milli=300, top_k=40, top_p_ppm=950_000, seed=11),
    SamplingParams(temperature_milli=700, top_k=40, top_p_ppm=950_000, seed=12),
    SamplingParams(temperature_milli=1000, top_k=0, top_p_ppm=1_000_000, seed=13),
    SamplingParams(temperature_milli=1500, top_k=100, top_p_ppm=1_000_000, seed=14),
    SamplingParams(temperature_milli=800, top_k=1, top_p_ppm=950_000, seed=15),
    SamplingParams(temperature_milli=800, top_k=5, top_p_ppm=950_000, seed=16),
    SamplingParams(temperature_milli=800, top_k=40, top_p_ppm=500_000, seed=17),
    SamplingParams(temperature_milli=1200, top_k=40, top_p_ppm=800_000, seed=18),
    SamplingParams(temperature_milli=500, top_k=100, top_p_ppm=900_000, seed=19),
)
HELD_OUT_LENGTHS = (16, 32, 64, 128, 256)
HELD_OUT_JOBS_PER_PROMPT = 5

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CalibrationSettings:
    """How large a calibration run is, and where its scratch files (fraud models) go."""

    reference_prompts: int | None = 30  # prompts in the reference row; None = the whole set
    row_jobs: int = 24  # jobs per variation and fraud row (the first ones of the reference that fit it)
    max_tokens: int = 256
    threads: int = 2
    context: int = DEFAULT_CONTEXT
    batch: int = DEFAULT_BATCH
    rows: tuple[str, ...] | None = None  # row keys to run; None = all
    work_dir: Path | None = None
    prompts: tuple[str, ...] | None = None  # None = the committed prompt set
    held_out_prompts: tuple[HeldOutPrompt, ...] | None = None  # None = the committed held-out set
    reuse_generations: bool = False  # take generations saved in work_dir by an earlier run
    judge_with: Thresholds | None = None  # judge the rows by these (e.g. the shipped ones), not the fitted ones


@dataclass
class Outcome:
    """One judged result of a row, with its costs."""

    result: InferenceResult
    evaluation: Evaluation
    generate_seconds: float
    verify_seconds: float
    identical: bool = False  # a forged output equal to the honest one cannot be told apart
    altered: int | None = None  # positions a steering executor changed (None: not a steering row)


@dataclass
class Row:
    """One line of the table: an honest variation or a fraud, over its jobs."""

    key: str
    label: str
    honest: bool
    outcomes: list[Outcome] = field(default_factory=list)
    exempt: bool = False  # same weights at higher precision: not a fraud the verifier must catch
    held_out: bool = False  # honest, but no threshold is fitted on it (the out-of-sample check)


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

    @property
    def judged_by(self) -> Thresholds:
        """The thresholds the table's verdicts use: the fitted ones unless the run was given others."""
        return self.settings.judge_with or self.thresholds


@dataclass(frozen=True)
class HeldOutPrompt:
    """A prompt of the held-out set and its format (chat or raw)."""

    prompt: str
    format: str = "chat"


def load_prompts() -> tuple[str, ...]:
    """The committed calibration prompt set."""
    text = resources.files("inference").joinpath("data", PROMPTS_FILE).read_text()
    return tuple(json.loads(text)["prompts"])


def load_held_out_prompts() -> tuple[HeldOutPrompt, ...]:
    """The committed held-out prompt set (never used to fit thresholds)."""
    text = resources.files("inference").joinpath("data", HELD_OUT_PROMPTS_FILE).read_text()
    return tuple(HeldOutPrompt(entry["prompt"], entry["format"]) for entry in json.loads(text)["prompts"])


def held_out_jobs(model_id: str, prompts: tuple[HeldOutPrompt, ...], max_tokens: int) -> list[InferenceJob]:
    """Each held-out prompt with HELD_OUT_JOBS_PER_PROMPT settings, cycling samplings and lengths."""
    jobs = []
    lengths = [length for length in HELD_OUT_LENGTHS if length < max_tokens] + [max_tokens]
    for prompt_index, entry in enumerate(prompts):
        for variant in range(HELD_OUT_JOBS_PER_PROMPT):
            number = prompt_index * HELD_OUT_JOBS_PER_PROMPT + variant
            sampling = HELD_OUT_SAMPLINGS[number % len(HELD_OUT_SAMPLINGS)]
            length = lengths[(number // len(HELD_OUT_SAMPLINGS) + variant) % len(lengths)]
            job_id = calibration_job_id(prompt_index, number, "held out")
            jobs.append(InferenceJob(model_id, job_id, entry.prompt, length, sampling, entry.format))
    return jobs


def calibration_job_id(prompt_index: int, sampling_index: int, variant: str = "") -> bytes:
    """The job id of one calibration job (a hash, as the chain's job ids will be)."""
    message = f"inferchain calibration job {prompt_index} {sampling_index} {variant}".encode()
    return hashlib.blake2b(message, digest_size=32).digest()


ROW_KEYS = (
    "reference", "held_out", "threads_1", "batch_8", "context_512", "prefix_cache", "second_process",
    "q4_0", "q3_k_m", "q2_k", "prefix_then_q4_0", "q5_0", "q5_1", "q8_0", "perturbed_3", "perturbed_1",
    "temperature_narrowed", "top_k_narrowed", "top_p_narrowed", "greedy_for_sampled", "sampled_for_greedy",
    "steered_greedy", "steered_top_k_1", "steered_sampled",
    "truncated", "replaced_1", "replaced_5", "replaced_20", "other_prompt", "other_job",
    "altered_logprobs", "other_seed",
)


def _timed(function, *args):
    started = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - started
