"""runtime/disputes/conviction.py: the binomial test over evidence across jobs never convicts beyond its budget."""

from __future__ import annotations

import ast
import inspect
import math
from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.disputes import conviction
from runtime.disputes.conviction import PPB, PPM, convicted, jobs_to_convict, ln_lower, ln_upper

RATES = st.one_of(st.integers(min_value=1, max_value=2_000), st.integers(min_value=1, max_value=PPM - 1))
BUDGETS = st.one_of(st.integers(min_value=1, max_value=10_000), st.integers(min_value=1, max_value=PPB))


def exact_tail_above(n: int, k: int, m: int, budget_ppb: int) -> bool:
    """Whether P(K >= k) for K ~ Binomial(n, m / 10^6) exceeds budget_ppb / 10^9, in exact integers."""
    scaled_tail = sum(math.comb(n, i) * m**i * (PPM - m) ** (n - i) for i in range(k, n + 1))  # tail * PPM^n
    return scaled_tail * PPB > budget_ppb * PPM**n


def log_tail(n: int, k: int, m: int) -> float:
    """ln P(K >= k) in floating point, summing terms until they no longer count (for n too large to sum exactly)."""
    p = m / PPM
    log_p, log_q = math.log(p), math.log1p(-p)

    def term(i: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q

    first = term(k)
    total = 0.0
    for i in range(k, n + 1):
        relative = term(i) - first
        if relative < -60:
            break
        total += math.exp(relative)
    return first + math.log(total)


def smallest_convicting(n: int, m: int, budget_ppb: int) -> int | None:
    """The fewest misses among n positions that convict, or None."""
    return next((k for k in range(n + 1) if convicted(n, k, m, budget_ppb)), None)


# --- the fixed-point logarithm -------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(numerator=st.integers(min_value=1, max_value=2**90), denominator=st.integers(min_value=1, max_value=2**90))
def test_the_logarithm_bounds_hold_and_are_within_three_units_of_2_to_the_minus_64(numerator, denominator):
    with localcontext() as context:
        context.prec = 80
        true = (Decimal(numerator) / Decimal(denominator)).ln() * Decimal(2) ** 64
    low, high = ln_lower(numerator, denominator), ln_upper(numerator, denominator)
    assert low <= true <= high
    assert high - low <= 3


def test_the_module_computes_with_integers_only():
    tree = ast.parse(inspect.getsource(conviction))
    floats = [node for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, float)]
    divisions = [node for node in ast.walk(tree) if isinstance(node, (ast.BinOp, ast.AugAssign))
                 and isinstance(node.op, ast.Div)]
    imports = [alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
               for alias in node.names]
    calls = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert (floats, divisions, imports) == ([], [], ["annotations"])
    assert "float" not in calls


# --- never beyond the budget ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(n=st.integers(min_value=1, max_value=300), m=RATES, budget=BUDGETS)
def test_no_conviction_where_the_exact_binomial_tail_is_above_the_budget(n, m, budget):
    k = smallest_convicting(n, m, budget)
    if k is None:
        return
    # The tail falls as k grows, so the boundary is the case to prove; more misses convict too.
    assert not exact_tail_above(n, k, m, budget)
    assert all(convicted(n, more, m, budget) for more in range(k, n + 1))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(min_value=300, max_value=200_000), m=st.integers(min_value=1, max_value=5_000),
       budget=st.integers(min_value=1, max_value=10_000))
def test_no_conviction_where_the_binomial_tail_is_above_the_budget_for_long_records(n, m, budget):
    # The boundary by bisection: conviction is monotone in the misses (checked above for small n).
    if not convicted(n, n, m, budget):
        return
    low, high = 0, n
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if convicted(n, middle, m, budget) else (middle, high)
    assert log_tail(n, high, m) <= math.log(budget / PPB) + 1e-9


@pytest.mark.parametrize("n, k, m, budget", [(64, 2, 152, 1_000), (128, 4, 152, 1_000), (640, 10, 152, 1_000),
                                              (64 * 4, 4, 152, 1_000), (64 * 2, 4, 152, 1_000)])
def test_the_boundaries_of_the_documented_cases_are_within_the_budget_exactly(n, k, m, budget):
    if convicted(n, k, m, budget):
        assert not exact_tail_above(n, k, m, budget)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(min_value=1, max_value=10**6), k=st.integers(min_value=0, max_value=10**6), m=RATES,
       budget=BUDGETS, extra=st.integers(min_value=0, max_value=10**6))
def test_more_misses_or_a_larger_budget_never_acquit_and_a_higher_miss_rate_never_convicts_more(n, k, m, budget, extra):
    k = min(k, n)
    if convicted(n, k, m, budget):
        assert convicted(n, min(n, k + extra), m, budget)
        assert convicted(n, k, m, min(PPB, budget + extra))
        assert convicted(n, k, max(1, m - extra), budget)
    else:
        assert not convicted(n, k, min(PPM, m + extra), budget)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(min_value=0, max_value=2**63), m=st.integers(min_value=0, max_value=PPM), budget=BUDGETS)
def test_an_executor_without_misses_is_never_convicted(n, m, budget):
    assert not convicted(n, 0, m, budget)


@pytest.mark.parametrize("n, k, m, budget, expected", [
    (10, 1, 0, 1_000, True),  # a miss where none can happen by chance
    (10, 10, PPM, 1_000, False),  # every position may miss
    (10, 10, 152, 0, False),  # no error allowed
    (0, 0, 152, 1_000, False),
    (10, 1, 100_000, PPB, False),  # no more misses than chance gives
    (5, 9, 152, 1_000, True),  # misses beyond the positions count as all of them
])
def test_edge_cases(n, k, m, budget, expected):
    assert convicted(n, k, m, budget) is expected


def test_negative_counts_are_a_caller_mistake():
    with pytest.raises(ValueError):
        convicted(-1, 0, 152, 1_000)


# --- jobs to convict -----------------------------------------------------------------------------


@pytest.mark.parametrize("steered, jobs", [(1, 4), (2, 2)])
def test_steering_one_or_two_positions_per_64_token_job_is_convicted_after_the_documented_jobs(steered, jobs):
    assert jobs_to_convict(steered, 64, 152, 1_000) == jobs
    assert convicted(jobs * 64, jobs * steered, 152, 1_000)
    assert not convicted((jobs - 1) * 64, (jobs - 1) * steered, 152, 1_000)


def test_steering_no_more_than_chance_is_never_convicted():
    assert jobs_to_convict(1, 64, 20_000, 1_000) == 0


@settings(max_examples=100, deadline=None)
@given(steered=st.integers(min_value=1, max_value=64), tokens=st.integers(min_value=64, max_value=4_096), m=RATES,
       budget=BUDGETS)
def test_jobs_to_convict_is_the_fewest_jobs_that_convict(steered, tokens, m, budget):
    jobs = jobs_to_convict(steered, tokens, m, budget)
    if jobs:
        assert convicted(jobs * tokens, jobs * steered, m, budget)
        assert not convicted((jobs - 1) * tokens, (jobs - 1) * steered, m, budget)
    else:
        most = ((1 << 64) - 1) // tokens
        assert steered * PPM <= tokens * m or not convicted(most * tokens, most * steered, m, budget)
