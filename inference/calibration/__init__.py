"""Calibration: measure honest variation and fraud on a fixed prompt set, fit a model's thresholds.

One run generates the committed prompt set (greedy, and sampled at several temperatures, top-k
and top-p) with a reference configuration, regenerates part of it under every honest variation
(threads, n_batch, context size, a reused prefix cache, a second process), runs a held-out prompt
set that no threshold is fitted on, and builds every fraud: cheaper or different models, the real
model with a bent sampler (narrowed parameters, steering), and forged results made from the
reference outputs. The verifier judges all of them; thresholds come from the fitted honest rows
with a safety factor; the table goes to docs/verification.md with the command that made it.

One job per module: `plan` (settings, samplings, row keys, job ids, prompts, the records),
`cache` (saved generations), `worker` (the second process), `fitting` (thresholds),
`table` (the Markdown and JSON table), `run` (the `Calibration` run itself).
"""

from inference.calibration.fitting import fit_thresholds, save_measurements, with_true_logprobs
from inference.calibration.plan import (
    ROW_KEYS,
    SAMPLINGS,
    CalibrationReport,
    CalibrationSettings,
    Outcome,
    Row,
    calibration_job_id,
    load_held_out_prompts,
    load_prompts,
)
from inference.calibration.run import Calibration
from inference.calibration.table import (
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
    "DOCS_BEGIN", "DOCS_END", "ROW_KEYS", "SAMPLINGS", "Calibration", "CalibrationReport", "CalibrationSettings",
    "Outcome", "Row", "calibration_job_id", "detection_points", "fit_thresholds", "load_held_out_prompts",
    "load_prompts", "render_table", "report_json", "row_summary", "save_measurements", "with_true_logprobs",
    "write_docs_table",
]
