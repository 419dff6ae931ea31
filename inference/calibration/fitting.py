"""Threshold fitting: bounds from the honest rows' statistics, and the measurements saved for analysis."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from inference.calibration.plan import Row
from inference.engine import engine_version
from inference.errors import InferenceError
from inference.result import InferenceResult
from inference.thresholds import MICRO, SOFT_BLOCK_TOKENS, Thresholds
from inference.verifier import Evaluation

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
