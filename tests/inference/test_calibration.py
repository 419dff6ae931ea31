"""Calibration: the committed prompt set, threshold fitting, and a small run of every kind of row."""

from __future__ import annotations

import numpy as np
import pytest

from inference.calibration import (
    DOCS_BEGIN,
    DOCS_END,
    Calibration,
    CalibrationSettings,
    Outcome,
    Row,
    fit_thresholds,
    load_prompts,
    render_table,
    row_summary,
    write_docs_table,
)
from inference.verifier import Evaluation

SMALL_ROWS = ("second_process", "q4_0", "q4_0_true_logprobs", "truncated", "replaced_1",
              "other_prompt", "altered_logprobs", "greedy_for_sampled")


def test_the_committed_prompt_set_has_at_least_50_distinct_prompts():
    prompts = load_prompts()
    assert len(prompts) >= 50 and len(set(prompts)) == len(prompts)


def _honest_row(*margin_lists) -> Row:
    outcomes = [
        Outcome(result=None, evaluation=Evaluation(np.array(margins), np.full(len(margins), 30_000),
                                                   np.zeros(len(margins)), ()),
                generate_seconds=1.0, verify_seconds=0.5)
        for margins in margin_lists
    ]
    return Row("reference", "reference", honest=True, outcomes=outcomes)


def test_thresholds_sit_a_safety_factor_beyond_the_honest_extremes():
    thresholds = fit_thresholds("ab" * 32, [_honest_row([0.5, -0.4, 0.2], [1.0, -0.3, -0.3])])
    assert thresholds.worst_margin_micro == -1_200_000  # three times the worst honest margin
    assert thresholds.soft_margin_micro == -266_666  # two thirds of it
    assert thresholds.soft_positions_per_block == 2 * 2 + 1  # twice the most positions beyond it, plus one
    assert thresholds.mean_logprob_error_micro == 100_000  # the floor: honest errors were tiny
    assert thresholds.max_logprob_error_micro == 1_000_000


def test_thresholds_are_never_tighter_than_the_floors():
    thresholds = fit_thresholds("ab" * 32, [_honest_row([0.5, 0.4])])
    assert thresholds.worst_margin_micro == -500_000
    assert thresholds.soft_margin_micro == -150_000


@pytest.fixture(scope="module")
def small_report(embedded, tmp_path_factory):
    # Two prompts: the "answer to a different prompt" row takes its answers from the second.
    settings = CalibrationSettings(reference_prompts=2, row_jobs=3, max_tokens=6, rows=SMALL_ROWS,
                                   work_dir=tmp_path_factory.mktemp("calibration"))
    messages = []
    report = Calibration(embedded.path, embedded.id, settings, progress=messages.append, command="test").run()
    report.messages = messages
    return report


def test_a_small_run_builds_every_requested_row(small_report):
    assert [row.key for row in small_report.rows] == ["reference", *SMALL_ROWS]
    assert len(small_report.rows[0].outcomes) == 10  # two prompts, five samplings each
    assert [len(row.outcomes) for row in small_report.rows[1:]] == [3, 3, 3, 3, 3, 3, 3, 2]
    assert any("worst margin" in message for message in small_report.messages)


def test_in_a_small_run_honest_rows_pass_and_forgeries_fail(small_report):
    summaries = {row.key: row_summary(row, small_report.thresholds, 6) for row in small_report.rows}
    for key in ("reference", "second_process"):
        assert summaries[key]["invalid"][6] == 0, key
    for key in ("truncated", "replaced_1", "other_prompt", "altered_logprobs"):
        assert summaries[key]["invalid"][6] == summaries[key]["judged"] > 0, key


def test_the_table_goes_between_the_markers_of_the_docs(small_report, tmp_path):
    docs = tmp_path / "verification.md"
    docs.write_text(f"# Title\n\n{DOCS_BEGIN}\nold table\n{DOCS_END}\n\nAfter.\n")
    write_docs_table(small_report, docs)
    write_docs_table(small_report, docs)
    text = docs.read_text()
    assert text.count(DOCS_BEGIN) == 1 and "old table" not in text and text.endswith("After.\n")
    assert "1 token replaced" in text and "Command: `test`" in text
    assert "| row | kind | jobs |" in render_table(small_report)
