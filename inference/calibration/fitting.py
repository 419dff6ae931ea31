"""Threshold fitting: bounds from the honest rows' statistics, and the measurements saved for analysis."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from inference.calibration.plan import Row
from inference.engine import engine_version
from inference.errors import InferenceError
from inference.result import InferenceResult
from inference.statistics import DEFAULT_MISS_SLACK, miss_depths
from inference.thresholds import MICRO, PPB, PPM, Thresholds
from inference.verifier import Evaluation

# Threshold fitting. A false accusation slashes an honest validator, so the worst-margin bound
# sits at three times the worst honest margin, and never closer than WORST_MARGIN_FLOOR: on the
# pinned build honest margins are never negative (a batched evaluation reproduces decoding bit for
# bit), and the bound stays generous for the rare honest outlier this run did not see.
WORST_MARGIN_SAFETY = 3.0
WORST_MARGIN_FLOOR = -1.0  # logits
# The count-and-depth test (inference/statistics.py): a miss is a margin below -MISS_SLACK. The
# honest miss rate is an upper bound on what the fitted rows showed (with none there, the "rule
# of three": 3 / positions), widened by a safety factor and never below the floor; the mean
# depth is what they showed, never below its floor (the drift of a build with llamafile, 0.09
# logits, so a model whose honest misses were never seen is not judged on a guess of zero); the
# budget is the chance per job of judging an honest result invalid.
MISS_SLACK = DEFAULT_MISS_SLACK
MISS_RATE_SAFETY = 1.25
MISS_RATE_FLOOR = 1e-5
MISS_RATE_CEILING = 0.5  # a run too small to bound the rate gets thresholds that judge by depth
MISS_DEPTH_SAFETY = 1.0
MISS_DEPTH_FLOOR = 0.1  # logits
FALSE_POSITIVE_BUDGET = 1e-6
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
                    "altered": outcome.altered,
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
    """Bounds at a safety factor beyond the honest statistics of the rows given (the fitted ones)."""
    evaluations = [o.evaluation for row in honest_rows for o in row.outcomes if len(o.evaluation.margins)]
    if not evaluations:
        raise InferenceError("calibration produced no honest evaluations to fit thresholds from")
    margins = np.concatenate([evaluation.margins for evaluation in evaluations])
    worst_bound = min(WORST_MARGIN_SAFETY * float(margins.min()), WORST_MARGIN_FLOOR)
    depths = miss_depths(margins, MISS_SLACK)
    mean_depth = honest_mean_depth(depths)
    mean_error = max(float(evaluation.logprob_errors.mean()) for evaluation in evaluations) / MICRO
    max_error = max(float(evaluation.logprob_errors.max()) for evaluation in evaluations) / MICRO
    return Thresholds(
        model=model_id,
        engine=engine_version(),
        worst_margin_micro=int(worst_bound * MICRO),
        miss_slack_micro=int(MISS_SLACK * MICRO),
        miss_rate_ppm=math.ceil(min(max(MISS_RATE_SAFETY * miss_rate_bound(depths), MISS_RATE_FLOOR),
                                    MISS_RATE_CEILING) * PPM),
        miss_depth_micro=math.ceil(max(MISS_DEPTH_SAFETY * mean_depth, MISS_DEPTH_FLOOR) * MICRO),
        false_positive_budget_ppb=round(FALSE_POSITIVE_BUDGET * PPB),
        mean_logprob_error_micro=int(max(LOGPROB_SAFETY * mean_error, MEAN_LOGPROB_FLOOR) * MICRO),
        max_logprob_error_micro=int(max(LOGPROB_SAFETY * max_error, MAX_LOGPROB_FLOOR) * MICRO),
        calibration=command,
    )


def miss_rate_bound(depths: np.ndarray) -> float:
    """An upper bound on the honest miss rate per position: (k + 3 sqrt(k + 1)) / n for k misses in n.

    At k = 0 this is the rule of three (the 95% bound when nothing was seen); for larger k it stays
    above the one-sided 95% Poisson bound (k = 1: 5.2 against 4.7; k = 100: 130 against 117).
    depths: miss_depths of the honest margins.
    """
    misses = int(np.count_nonzero(depths))
    return (misses + 3 * math.sqrt(misses + 1)) / len(depths)


def honest_mean_depth(depths: np.ndarray) -> float:
    """The mean depth (logits) of the honest positions that missed; 0 when none did."""
    missed = depths[depths > 0]
    return float(missed.mean()) if len(missed) else 0.0
