"""The calibration table: each row's detection counts and costs, as Markdown for the docs and as JSON."""

from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path

import numpy as np

from inference.calibration.plan import SAMPLINGS, CalibrationReport, Row
from inference.thresholds import MICRO, SOFT_BLOCK_TOKENS, Thresholds
from inference.verifier import judge

DETECTION_POINTS = (16, 32, 64)
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
