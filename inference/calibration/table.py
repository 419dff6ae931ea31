"""The calibration table: each row's detection counts and costs, as Markdown for the docs and as JSON."""

from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path

import numpy as np

from inference.calibration.plan import SAMPLINGS, CalibrationReport, Row
from inference.statistics import WINDOW_TOKENS
from inference.thresholds import MICRO, Thresholds
from inference.verifier import judge

DETECTION_POINTS = (16, 32, 64, 128)
# Steering goals are stated for jobs steered at this many positions or more.
STEERED_AT_LEAST = 8
DOCS_BEGIN = "<!-- calibration table: begin (written by `inferchain model calibrate`) -->"
DOCS_END = "<!-- calibration table: end -->"


def detection_points(max_tokens: int) -> tuple[int, ...]:
    """The prefix lengths the table reports detection at."""
    points = tuple(point for point in DETECTION_POINTS if point < max_tokens)
    return points + (max_tokens,)


def row_summary(row: Row, thresholds: Thresholds, max_tokens: int) -> dict:
    """A row's counts: jobs, identical outputs, invalid verdicts at each prefix length, costs."""
    # A forged output identical to the honest one is no fraud; an honest row judges every job.
    judged = [o for o in row.outcomes if row.honest or not o.identical]
    points = detection_points(max_tokens)
    verdicts = [{point: judge(o.result, o.evaluation, thresholds, positions=point) for point in points}
                for o in judged]
    invalid = {point: sum(1 for v in verdicts if not v[point].valid) for point in points}
    chances = [v[max_tokens].honest_chance_log10 for v in verdicts]
    steered = [v[max_tokens] for o, v in zip(judged, verdicts) if (o.altered or 0) >= STEERED_AT_LEAST]
    worst_margins = [float(o.evaluation.margins.min()) for o in row.outcomes if len(o.evaluation.margins)]
    generate = sum(o.generate_seconds for o in row.outcomes)
    verify = sum(o.verify_seconds for o in row.outcomes)
    return {
        "key": row.key,
        "label": row.label,
        "honest": row.honest,
        "held_out": row.held_out,
        "exempt": row.exempt,
        "jobs": len(row.outcomes),
        "identical": sum(1 for o in row.outcomes if o.identical),
        "judged": len(judged),
        "invalid": invalid,
        "steered_jobs": len(steered) if any(o.altered is not None for o in row.outcomes) else None,
        "steered_caught": sum(1 for verdict in steered if not verdict.valid),
        "honest_chance_log10_min": min(chances, default=0.0),
        "honest_chance_log10_median": statistics.median(chances) if chances else 0.0,
        "worst_margin_min": min(worst_margins, default=0.0),
        "worst_margin_median": statistics.median(worst_margins) if worst_margins else 0.0,
        "worst_margin_max": max(worst_margins, default=0.0),
        "verify_over_generate": verify / generate if generate else 0.0,
    }


def render_table(report: CalibrationReport) -> str:
    """The calibration table as Markdown, with the thresholds and the command that made them."""
    points = detection_points(report.settings.max_tokens)
    summaries = [row_summary(row, report.judged_by, report.settings.max_tokens) for row in report.rows]
    header = ["row", "kind", "jobs", "output identical to reference", *[f"invalid at {p}" for p in points],
              "honest chance (log10) min / median", "worst margin min / median / max", "verify / generate"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for summary in summaries:
        lines.append("| " + " | ".join(_table_cells(summary, points)) + " |")
    honest_jobs = sum(s["jobs"] for s in summaries if s["honest"])
    return "\n".join([*_table_preamble(report), "", *lines, "",
                      *_thresholds_lines(report, honest_jobs)]) + "\n"


def _table_cells(summary: dict, points: tuple[int, ...]) -> list[str]:
    if summary["honest"]:
        kind = "honest, held out" if summary["held_out"] else "honest"
    else:
        kind = "fraud (same weights)" if summary["exempt"] else "fraud"
    identical = str(summary["identical"]) if summary["key"] not in ("reference", "held_out") else "-"
    label = summary["label"]
    if summary["steered_jobs"] is not None:
        label += (f"; steered at {STEERED_AT_LEAST}+ positions: {summary['steered_caught']}/"
                  f"{summary['steered_jobs']} caught")
    cells = [label, kind, str(summary["jobs"]), identical]
    for point in points:
        invalid, judged = summary["invalid"][point], summary["judged"]
        share = f" ({100 * invalid / judged:.1f}%)" if judged else ""
        cells.append(f"{invalid}/{judged}{share}")
    cells.append(f"{summary['honest_chance_log10_min']:.1f} / {summary['honest_chance_log10_median']:.1f}")
    cells.append(f"{summary['worst_margin_min']:.2f} / {summary['worst_margin_median']:.2f} / "
                 f"{summary['worst_margin_max']:.2f}")
    cells.append(f"{summary['verify_over_generate']:.2f}")
    return cells


def _table_preamble(report: CalibrationReport) -> list[str]:
    settings = report.settings
    minutes = report.seconds / 60
    samplings = "; ".join(_describe(sampling) for sampling in SAMPLINGS)
    return [
        f"Model `{report.model_id}`, engine {report.engine}, numpy {np.__version__}, "
        f"Python {platform.python_version()}, {_cpu_name()} ({os.cpu_count()} cores), "
        f"no GPU in this run.",
        "",
        f"Command: `{report.command}` ({minutes:.0f} minutes).",
        "",
        f"Reference row: {settings.reference_prompts or 'all'} prompts x {len(SAMPLINGS)} samplings "
        f"({samplings}), max_tokens {settings.max_tokens}. Other rows: the first {settings.row_jobs} "
        "of those jobs that fit the row (the sampling frauds start from the T 0.7 jobs, the greedy ones "
        "from the greedy jobs). Model frauds claim the real model's log-probabilities. Verification "
        "is always one fresh batched evaluation with the reference configuration. Thresholds are "
        "fitted on the honest rows except the held-out one.",
    ]


def _describe(sampling) -> str:
    if sampling.greedy:
        return "greedy"
    top_k = sampling.top_k or "off"
    return f"T {sampling.temperature:g} top-k {top_k} top-p {sampling.top_p:g}"


def _thresholds_lines(report: CalibrationReport, honest_jobs: int) -> list[str]:
    thresholds = report.judged_by
    budget = thresholds.false_positive_budget
    title = ("Thresholds fitted from the honest rows (written to the model's thresholds file):"
             if report.settings.judge_with is None else
             f"Thresholds the verdicts above were judged with (given to this run; calibrated with "
             f"{thresholds.engine}; the run's own fit was not written):")
    return [
        title,
        "",
        f"- worst margin bound: {thresholds.worst_margin_micro / MICRO:.3f} logits",
        f"- a miss: a margin below -{thresholds.miss_slack_micro / MICRO:.2f} logits; honest model: "
        f"a miss at {thresholds.miss_rate_ppm / 1e4:.4f}% of positions, "
        f"{thresholds.miss_depth_micro / MICRO:.3f} logits deep on average (exponential)",
        f"- false-positive budget: {budget:g} per job, shared among the count and the depth of misses in the "
        f"half-overlapping {WINDOW_TOKENS}-token windows and the whole output; over the {honest_jobs} honest "
        f"jobs above that is {honest_jobs * budget:.4f} expected invalid verdicts",
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
        "judged_by": report.judged_by.to_json(),
        "rows": [_json_summary(row_summary(row, report.judged_by, report.settings.max_tokens)) for row in report.rows],
    }


def _json_summary(summary: dict) -> dict:
    summary = dict(summary)
    summary["invalid"] = {str(point): count for point, count in summary["invalid"].items()}
    return summary
