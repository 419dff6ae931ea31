"""The count-and-depth test: its tail is exact, monotone, and cannot be diluted by a long honest tail."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from inference.statistics import (
    WINDOW_STRIDE,
    WINDOW_TOKENS,
    HonestModel,
    log_binomial_tail,
    log_compound_tail,
    miss_test,
    window_starts,
)

MODEL = HonestModel(miss_rate=0.01, mean_depth=0.1, slack=0.05)
BUDGET = 1e-6


def test_the_tail_matches_a_simulation_of_the_honest_model():
    rng = np.random.default_rng(7)
    draws, positions, rate, depth = 200_000, 64, 0.02, 0.1
    sums = ((rng.random((draws, positions)) < rate) * rng.exponential(depth, (draws, positions))).sum(axis=1)
    for threshold in (0.1, 0.3, 0.6):
        simulated = float(np.mean(sums >= threshold))
        exact = math.exp(log_compound_tail(positions, threshold, rate, depth))
        assert abs(simulated - exact) < 4 * math.sqrt(exact / draws) + 1e-4, (threshold, simulated, exact)


def test_with_every_position_a_miss_the_tail_is_a_gamma_tail():
    # Gamma(2, 1) >= z has the chance (1 + z) e^-z.
    assert math.isclose(math.exp(log_compound_tail(2, 3.0, 1.0, 1.0)), 4 * math.exp(-3.0))


def test_nothing_beyond_the_slack_is_no_evidence():
    assert log_compound_tail(256, 0.0, 0.01, 0.1) == 0.0
    test = miss_test(np.full(300, -0.05), MODEL)
    assert test.misses == 0 and test.log10_chance == 0.0 and not test.rejects(BUDGET)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 400), st.floats(0.001, 20), st.floats(0.001, 20))
def test_deeper_misses_are_never_more_likely(positions, depth, more):
    shallow = log_compound_tail(positions, depth, 0.01, 0.1)
    deep = log_compound_tail(positions, depth + more, 0.01, 0.1)
    assert deep <= shallow + 1e-9
    assert math.isfinite(deep) and deep <= 0.0


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 400), st.integers(1, 400), st.floats(0.001, 20))
def test_the_same_misses_are_likelier_in_a_longer_output(positions, extra, depth):
    assert log_compound_tail(positions + extra, depth, 0.01, 0.1) >= log_compound_tail(positions, depth, 0.01, 0.1) - 1e-9


def test_a_bad_stretch_is_not_diluted_by_a_long_honest_tail():
    # Eight positions that lost by 0.45 logits inside 64 tokens, then an honest tail (or a
    # repetition loop) that misses nowhere: the window still judges the stretch on its own.
    stretch = np.full(WINDOW_TOKENS, 0.5)
    stretch[::8] = -0.5
    tail = np.full(1000, 0.5)
    alone = miss_test(stretch, MODEL)
    diluted = miss_test(np.concatenate([tail, stretch, tail]), MODEL)
    assert alone.rejects(BUDGET) and diluted.rejects(BUDGET)
    assert abs(diluted.window_start - 1000) <= WINDOW_STRIDE  # the judged window holds most of the stretch
    # Count and depth, in every window and the whole output, share the budget.
    assert diluted.tests == 2 * (len(window_starts(2064)) + 1)


def test_windows_overlap_by_half_and_the_last_one_ends_at_the_last_token():
    assert list(window_starts(64)) == [0]
    assert list(window_starts(100)) == [0, 32, 36]
    assert list(window_starts(256)) == [0, 32, 64, 96, 128, 160, 192]


def test_the_budget_is_shared_among_the_tests_so_it_holds_per_job():
    # One position at 0.6 logits beyond the slack: in 64 tokens and in 4096 tokens the same
    # evidence, but the long output ran many more tests, so its chance is larger.
    short = np.full(WINDOW_TOKENS, 0.5)
    short[10] = -0.65
    long = np.concatenate([short, np.full(4032, 0.5)])
    assert miss_test(long, MODEL).log10_chance > miss_test(short, MODEL).log10_chance


def test_an_honest_looking_output_passes():
    rng = np.random.default_rng(3)
    margins = rng.uniform(0.0, 3.0, 256)
    margins[rng.choice(256, 2, replace=False)] = -0.12  # two shallow misses, as honest drift makes
    assert not miss_test(margins, MODEL).rejects(BUDGET)


def test_many_shallow_misses_are_judged_by_their_count():
    # Five positions that lost by a tenth of a logit: one deep honest miss would explain their depth
    # sum, but not their number when honest positions almost never miss (the pinned engine).
    rare = HonestModel(miss_rate=2e-4, mean_depth=0.1, slack=0.01)
    margins = np.full(64, 0.5)
    margins[[3, 10, 20, 30, 40]] = -0.11
    test = miss_test(margins, rare)
    assert test.decided_by_count and test.rejects(BUDGET)
    assert log_compound_tail(64, 0.5, 2e-4, 0.1) > math.log(BUDGET)  # depth alone would pass it


def test_one_honest_looking_miss_passes_on_the_pinned_engine():
    rare = HonestModel(miss_rate=2e-4, mean_depth=0.1, slack=0.01)
    margins = np.full(256, 0.5)
    margins[100] = -0.2
    assert not miss_test(margins, rare).rejects(BUDGET)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 400), st.integers(0, 400), st.floats(1e-6, 0.5))
def test_the_binomial_tail_is_a_probability_that_falls_with_more_misses(positions, misses, rate):
    tail = log_binomial_tail(positions, misses, rate)
    assert tail <= 0.0
    assert log_binomial_tail(positions, misses + 1, rate) <= tail + 1e-9
    if misses == 0:
        assert tail == 0.0


def test_the_binomial_tail_matches_a_direct_sum():
    exact = sum(math.comb(64, j) * 0.01 ** j * 0.99 ** (64 - j) for j in range(3, 65))
    assert math.isclose(math.exp(log_binomial_tail(64, 3, 0.01)), exact, rel_tol=1e-9)
