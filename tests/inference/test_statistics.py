"""The count-and-depth test: its tail is exact, monotone, and cannot be diluted by a long honest tail."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from inference.statistics import WINDOW_STRIDE, WINDOW_TOKENS, HonestModel, log_compound_tail, miss_test, window_starts

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
    assert diluted.tests == len(window_starts(2064)) + 1  # every window and the whole output share the budget


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
