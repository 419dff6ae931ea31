"""Calibration: the committed prompt set, threshold fitting, and a small run of every kind of row."""

from __future__ import annotations

import math

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
    load_held_out_prompts,
    load_prompts,
    render_table,
    row_summary,
    write_docs_table,
)
from inference.calibration.run import spread
from inference.verifier import Evaluation

SMALL_ROWS = ("held_out", "second_process", "q4_0", "prefix_then_q4_0", "truncated", "replaced_1",
              "other_prompt", "altered_logprobs", "greedy_for_sampled", "sampled_for_greedy",
              "temperature_narrowed", "steered_top_k_1")


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


def test_thresholds_sit_a_safety_factor_beyond_the_honest_statistics():
    # 1000 positions, 4 of them misses (margin below -0.01) that went 0.09, 0.19, 0.29 and 0.39 beyond.
    margins = np.full(1000, 0.5)
    margins[:4] = [-0.1, -0.2, -0.3, -0.4]
    thresholds = fit_thresholds("ab" * 32, [_honest_row(margins[:500], margins[500:])])
    assert thresholds.worst_margin_micro == -1_200_000  # three times the worst honest margin
    assert thresholds.miss_slack_micro == 10_000
    # 1.25 times the bound (4 + 3 sqrt(5)) / 1000 on the measured 0.4%
    assert thresholds.miss_rate_ppm == math.ceil(1.25 * (4 + 3 * math.sqrt(5)) / 1000 * 1e6)
    assert thresholds.miss_depth_micro == pytest.approx(240_000, abs=1)  # the mean depth of 0.24 logits
    assert thresholds.false_positive_budget_ppb == 1_000  # 1e-6 per job
    assert thresholds.mean_logprob_error_micro == 100_000  # the floor: honest errors were tiny
    assert thresholds.max_logprob_error_micro == 1_000_000


def test_thresholds_are_never_tighter_than_the_floors():
    # A million honest positions and not one miss: the rule of three gives 3.75 per million,
    # below the floor of 10.
    thresholds = fit_thresholds("ab" * 32, [_honest_row(np.full(1_000_000, 0.5))])
    assert thresholds.worst_margin_micro == -1_000_000
    assert thresholds.miss_rate_ppm == 10
    assert thresholds.miss_depth_micro == 100_000


def test_no_misses_in_a_run_bound_the_rate_by_the_rule_of_three():
    thresholds = fit_thresholds("ab" * 32, [_honest_row(np.full(60_000, 0.5))])
    assert thresholds.miss_rate_ppm == math.ceil(1.25 * 3 / 60_000 * 1e6)


def test_a_run_too_small_to_bound_the_rate_gets_the_ceiling():
    assert fit_thresholds("ab" * 32, [_honest_row([0.5, 0.4])]).miss_rate_ppm == 500_000


def test_rows_take_jobs_spread_over_the_prompts_and_every_sampling():
    reference = [(prompt, sampling) for prompt in range(20) for sampling in range(6)]
    subset = spread(reference, 20, 6)
    assert len(set(subset)) == 20 and len({prompt for prompt, _ in subset}) == 20
    assert {sampling for _, sampling in subset} == set(range(6))
    assert spread(reference[:12], 20, 6) == reference[:12]  # fewer jobs than asked: all of them


def test_the_held_out_set_shares_no_prompt_with_the_fitted_one():
    assert not {entry.prompt for entry in load_held_out_prompts()} & set(load_prompts())


@pytest.fixture(scope="module")
def small_report(embedded, tmp_path_factory):
    # Two prompts: the "answer to a different prompt" row takes its answers from the second.
    settings = CalibrationSettings(reference_prompts=2, row_jobs=3, max_tokens=20, rows=SMALL_ROWS,
                                   work_dir=tmp_path_factory.mktemp("calibration"),
                                   held_out_prompts=load_held_out_prompts()[:2])
    messages = []
    report = Calibration(embedded.path, embedded.id, settings, progress=messages.append, command="test").run()
    report.messages = messages
    return report


def test_a_small_run_builds_every_requested_row(small_report):
    jobs = {row.key: len(row.outcomes) for row in small_report.rows}
    assert small_report.rows[0].key == "reference" and set(jobs) == {"reference", *SMALL_ROWS}
    assert jobs["reference"] == 12  # two prompts, six samplings each
    assert jobs["held_out"] == 10  # two held-out prompts, five settings each
    # Three jobs spread over the reference, or those that fit the row: two greedy jobs, four at T 0.7.
    assert {key: count for key, count in jobs.items() if count != 3} == {
        "reference": 12, "held_out": 10, "greedy_for_sampled": 2, "sampled_for_greedy": 2, "steered_top_k_1": 2}
    assert any("worst margin" in message for message in small_report.messages)


def test_in_a_small_run_honest_rows_pass_and_forgeries_fail(small_report):
    summaries = {row.key: row_summary(row, small_report.thresholds, 20) for row in small_report.rows}
    for key in ("reference", "held_out", "second_process"):
        assert summaries[key]["invalid"][20] == 0, key
    for key in ("truncated", "replaced_1", "other_prompt", "altered_logprobs", "steered_top_k_1"):
        assert summaries[key]["invalid"][20] == summaries[key]["judged"] > 0, key
    rows = {row.key: row for row in small_report.rows}
    assert all(outcome.altered is not None for outcome in rows["steered_top_k_1"].outcomes)
    # Every model fraud claims the real model's log-probabilities: only its tokens can betray it.
    cheaper = rows["q4_0"]
    assert all(not outcome.evaluation.logprob_errors.any() for outcome in cheaper.outcomes)


def test_the_table_goes_between_the_markers_of_the_docs(small_report, tmp_path):
    docs = tmp_path / "verification.md"
    docs.write_text(f"# Title\n\n{DOCS_BEGIN}\nold table\n{DOCS_END}\n\nAfter.\n")
    write_docs_table(small_report, docs)
    write_docs_table(small_report, docs)
    text = docs.read_text()
    assert text.count(DOCS_BEGIN) == 1 and "old table" not in text and text.endswith("After.\n")
    assert "1 token replaced" in text and "Command: `test`" in text
    assert "| row | kind | jobs |" in render_table(small_report)
