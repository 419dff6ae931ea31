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
from inference.result import InferenceResult
from inference.sampler import SamplingParams
from inference.thresholds import Thresholds
from inference.verifier import Evaluation

PROMPTS_FILE = "calibration_prompts.json"

# The samplings every prompt is run with: greedy, and two temperatures with two seeds each.
SAMPLINGS = (
    SamplingParams(temperature_milli=0, top_k=40, top_p_ppm=950_000, seed=0),
    SamplingParams(temperature_milli=800, top_k=40, top_p_ppm=950_000, seed=42),
    SamplingParams(temperature_milli=800, top_k=40, top_p_ppm=950_000, seed=(1 << 63) + 7),
    SamplingParams(temperature_milli=1200, top_k=100, top_p_ppm=1_000_000, seed=42),
    SamplingParams(temperature_milli=1200, top_k=100, top_p_ppm=1_000_000, seed=(1 << 63) + 7),
)

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


def _timed(function, *args):
    started = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - started
