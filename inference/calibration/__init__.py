"""Calibration: measure honest variation and fraud on a fixed prompt set, fit a model's thresholds.

One run generates the committed prompt set (greedy, and sampled at two temperatures with two
seeds) with a reference configuration, regenerates part of it under every honest variation
(threads, n_batch, context size, a reused prefix cache, a second process), and builds every
fraud: cheaper or different models, and forged results made from the reference outputs (so they
cost no new generations). The verifier judges all of them; thresholds come from the honest rows
with a safety factor; the table goes to docs/verification.md with the command that made it.

One job per module: `plan` (settings, samplings, row keys, job ids, prompts, the records),
`cache` (saved generations), `worker` (the second process), `fitting` (thresholds),
`table` (the Markdown and JSON table), `run` (the `Calibration` run itself).
"""

from inference.calibration.cache import GenerationCache
from inference.calibration.fitting import (
    LOGPROB_SAFETY,
    MAX_LOGPROB_FLOOR,
    MEAN_LOGPROB_FLOOR,
    SOFT_MARGIN_FLOOR,
    SOFT_MARGIN_SAFETY,
    WORST_MARGIN_FLOOR,
    WORST_MARGIN_SAFETY,
    fit_thresholds,
    save_measurements,
    with_true_logprobs,
)
from inference.calibration.plan import (
    PROMPTS_FILE,
    ROW_KEYS,
    SAMPLINGS,
    CalibrationReport,
    CalibrationSettings,
    Outcome,
    Progress,
    Row,
    calibration_job_id,
    load_prompts,
)
from inference.calibration.run import Calibration
from inference.calibration.table import (
    DETECTION_POINTS,
    DOCS_BEGIN,
    DOCS_END,
    detection_points,
    render_table,
    report_json,
    row_summary,
    write_docs_table,
)

# The worker module is left out on purpose: `python -m inference.calibration.worker` must find it
# not yet imported (runpy warns otherwise); import it as `inference.calibration.worker`.
__all__ = [
    "DETECTION_POINTS", "DOCS_BEGIN", "DOCS_END", "LOGPROB_SAFETY", "MAX_LOGPROB_FLOOR", "MEAN_LOGPROB_FLOOR",
    "PROMPTS_FILE", "ROW_KEYS", "SAMPLINGS", "SOFT_MARGIN_FLOOR", "SOFT_MARGIN_SAFETY", "WORST_MARGIN_FLOOR",
    "WORST_MARGIN_SAFETY", "Calibration", "CalibrationReport", "CalibrationSettings", "GenerationCache", "Outcome",
    "Progress", "Row", "calibration_job_id", "detection_points", "fit_thresholds", "load_prompts", "render_table",
    "report_json", "row_summary", "save_measurements", "with_true_logprobs", "write_docs_table",
]
