"""The node's pace (chain/consensus/pace.py): when a height with work may start, and what that keeps for windows
counted in blocks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from chain.consensus.pace import Pace, PaceRule

BLOCK_S = 1.0


def starts_of(gaps_wanted: list[float], block_time_s: float = BLOCK_S) -> list[float]:
    """Start heights as a node would: each wanted gap, but never before the pace lets a height with work start."""
    pace = Pace(block_time_s)
    now, starts = 0.0, []
    for gap in gaps_wanted:
        if starts:
            now = max(now + gap, pace.earliest_with_work())
        pace.began(now)
        starts.append(now)
    return starts


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=3.0), min_size=2, max_size=60),
       st.sampled_from([0.01, 0.2, 1.0, 6.0]))
def test_any_run_of_consecutive_heights_spans_at_least_the_floor_less_one_burst(gaps, block_time_s):
    rule = PaceRule(block_time_s)
    starts = starts_of([gap * block_time_s for gap in gaps], block_time_s)
    for first in range(len(starts)):
        for last in range(first + 1, len(starts)):
            assert starts[last] - starts[first] >= rule.shortest(last - first) - 1e-9


@pytest.mark.parametrize("arrives_after_s", [0.05, 0.3, 0.6, 0.95])
def test_after_three_idle_heights_the_inclusion_and_both_draw_heights_start_at_once(arrives_after_s):
    """Wherever in the idle tick the job arrives: with one block time of credit, one arriving less than half a
    block time after the last start spent some on its inclusion and its second draw height waited for the floor."""
    pace = Pace(BLOCK_S)
    for tick in range(4):  # an idle chain: a height every block time
        pace.began(tick * BLOCK_S)
    assert pace.credit_s == pytest.approx(1.5 * BLOCK_S)
    included = 3 * BLOCK_S + arrives_after_s
    assert pace.earliest_with_work() <= included
    pace.began(included)
    for _draw_height in range(2):  # each decided in 20 ms; the credit covers both
        assert pace.earliest_with_work() <= pace.started_at + 0.02
        pace.began(pace.started_at + 0.02)


def test_a_chain_that_stays_busy_runs_at_half_a_block_time():
    starts = starts_of([0.0] * 12)
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:])]
    assert all(gap == pytest.approx(0.5 * BLOCK_S) for gap in gaps)


def test_credit_is_capped_at_one_and_a_half_block_times_however_long_the_chain_idled():
    pace = Pace(BLOCK_S)
    pace.began(0.0)
    pace.began(3_600.0)
    assert pace.credit_s == 1.5 * BLOCK_S
    assert PaceRule(BLOCK_S).shortest(3) == 0.0 and PaceRule(BLOCK_S).shortest(10) == pytest.approx(3.5)


def test_transactions_that_came_to_an_idle_node_are_gathered_and_those_that_waited_through_a_decision_are_not():
    pace = Pace(BLOCK_S)
    pace.began(0.0)
    pace.decided(transactions_waiting=False)
    assert not pace.gathered(0.70)  # first seen now
    assert not pace.gathered(0.74)
    assert pace.gathered(0.75)  # a twentieth of the block time later
    pace.began(0.76)
    pace.decided(transactions_waiting=True)  # they came while the height was decided
    assert pace.gathered(0.80)
    pace.began(1.30)
    assert not pace.gathered(1.31)  # a new height forgets: what waits now came after it began
