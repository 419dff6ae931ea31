"""How likely an honest executor is to produce a result's misses: the verifier's count-and-depth test.

A position "misses" when its claimed token loses to a rival by more than a small slack
(margin < -slack); its depth is how far beyond the slack it lost. Honest executors miss rarely and
shallowly: never on the pinned build, where a batched evaluation reproduces decoding exactly; other
builds, GPUs and K-quantised models drift. Cheaper models, sampling cheats and steering miss more
often, deeper, or both.

The honest model, fitted by calibration: each position misses independently with probability p,
and a miss's depth is exponential with mean mu. The depth sum S of n positions is then a compound
binomial-exponential variable, and its tail is exact:

    P(S >= t) = sum over k = 1..n of  Binomial(k; n, p) x P(Gamma(k, mu) >= t)
    P(Gamma(k, mu) >= t) = sum over j = 0..k-1 of  exp(-z) z^j / j!,   z = t / mu

This generalises a binomial test on the number of misses: many shallow misses and a few deep
ones both make S large. But when few misses are expected and every one is shallow, one deep honest
miss explains S better than many shallow ones, so the number of misses K is judged as well, by its
own binomial tail:

    P(K >= k) = sum over j = k..n of  Binomial(j; n, p)

On the pinned engine, where honest executors never miss, the count is what catches steering and
narrowed samplers: their misses are many and shallow. Every 64-token window is judged as well as
the whole output, by both statistics, so a bad stretch cannot be diluted by a long honest tail or
a repetition loop; the false-positive budget is divided among all those tests (Bonferroni), so it
holds per job whatever the length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# A margin below -slack is a miss. On the pinned build honest margins are never negative, so the
# slack only keeps near-ties (and the last digits of other builds' arithmetic) out.
DEFAULT_MISS_SLACK = 0.01  # logits
WINDOW_TOKENS = 64
# Windows start every WINDOW_STRIDE tokens (and one ends at the last token): a stretch of up to
# 32 tokens always lies whole inside one window, and the budget is shared among ~n/32 tests
# rather than n - 63 overlapping ones.
WINDOW_STRIDE = 32


@dataclass(frozen=True)
class HonestModel:
    """Per-position miss probability, mean miss depth (logits) and the slack that defines a miss."""

    miss_rate: float
    mean_depth: float
    slack: float

    def depths(self, margins: np.ndarray) -> np.ndarray:
        """Per position: how far below -slack the margin fell (0 when it did not miss)."""
        return miss_depths(margins, self.slack)

    def log_tail(self, positions: int, depth_sum: float) -> float:
        """ln P(an honest job's depth sum over `positions` positions is at least depth_sum)."""
        return log_compound_tail(positions, depth_sum, self.miss_rate, self.mean_depth)


@dataclass(frozen=True)
class MissTest:
    """The count-and-depth test of one output: its strongest evidence against honesty."""

    misses: int  # positions whose margin is below -slack, in the whole output
    depth_sum: float  # their depths summed over the whole output, logits
    window_start: int  # the 64-token window that decided, else the deepest (-1: 64 tokens or fewer)
    window_misses: int  # that window's misses and depth sum
    window_depth_sum: float
    tests: int  # how many tests the budget is shared among: count and depth, in each window and the whole output
    decided_by_window: bool  # whether a window, not the whole output, gave the strongest evidence
    decided_by_count: bool  # whether the number of misses, not their depth, gave the strongest evidence
    log10_chance: float  # log10 of the chance an honest job shows evidence this strong (Bonferroni)

    def rejects(self, budget: float) -> bool:
        """Whether the chance is below the false-positive budget per job."""
        return self.log10_chance < math.log10(budget)


def miss_test(margins: np.ndarray, model: HonestModel) -> MissTest:
    """Judge the count and the depth of misses in every 64-token window and the whole output."""
    depths = model.depths(margins)
    count = len(depths)
    missed = (depths > 0).astype(np.float64)
    starts = window_starts(count) if count > WINDOW_TOKENS else np.zeros(0, dtype=int)
    depth_sums = _window_sums(depths, starts)
    miss_counts = np.rint(_window_sums(missed, starts)).astype(int)
    # (ln chance, window index or -1 for the whole output, whether the count decided)
    candidates = [(model.log_tail(count, float(depths.sum())), -1, False),
                  (log_binomial_tail(count, int(missed.sum()), model.miss_rate), -1, True)]
    if len(starts):
        deepest, most = int(np.argmax(depth_sums)), int(np.argmax(miss_counts))
        candidates.append((model.log_tail(WINDOW_TOKENS, float(depth_sums[deepest])), deepest, False))
        candidates.append((log_binomial_tail(WINDOW_TOKENS, int(miss_counts[most]), model.miss_rate), most, True))
    log_tail, decisive, by_count = min(candidates)
    tests = 2 * (len(starts) + 1)
    # The window reported: the one that decided, else the deepest.
    shown = decisive if decisive >= 0 else (int(np.argmax(depth_sums)) if len(starts) else -1)
    return MissTest(
        misses=int(missed.sum()),
        depth_sum=float(depths.sum()),
        window_start=int(starts[shown]) if shown >= 0 else -1,
        window_misses=int(miss_counts[shown]) if shown >= 0 else 0,
        window_depth_sum=float(depth_sums[shown]) if shown >= 0 else 0.0,
        tests=tests,
        decided_by_window=decisive >= 0,
        decided_by_count=by_count,
        log10_chance=min(0.0, (log_tail + math.log(tests)) / math.log(10)),
    )


def _window_sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The sum of values over the 64-token window at each start."""
    if not len(starts):
        return np.zeros(0)
    return np.convolve(values, np.ones(WINDOW_TOKENS), mode="valid")[starts]


def miss_depths(margins: np.ndarray, slack: float) -> np.ndarray:
    """Per position: how far below -slack the margin fell (0 when it did not miss), logits."""
    return np.maximum(0.0, -np.asarray(margins, dtype=np.float64) - slack)


def window_starts(positions: int) -> np.ndarray:
    """Where the judged 64-token windows of an output of this length start."""
    last = positions - WINDOW_TOKENS
    return np.unique(np.append(np.arange(0, last + 1, WINDOW_STRIDE), last))


def log_binomial_tail(positions: int, misses: int, miss_rate: float) -> float:
    """ln P(K >= misses) for K ~ Binomial(positions, miss_rate)."""
    if misses <= 0 or positions <= 0:
        return 0.0
    if misses > positions or miss_rate <= 0:
        return -math.inf
    if miss_rate >= 1:
        return 0.0
    j = np.arange(misses, positions + 1)
    log_factorials = _log_factorials(positions)
    terms = (log_factorials[positions] - log_factorials[j] - log_factorials[positions - j]
             + j * math.log(miss_rate) + (positions - j) * math.log1p(-miss_rate))
    return float(min(0.0, np.logaddexp.reduce(terms)))


def log_compound_tail(positions: int, depth_sum: float, miss_rate: float, mean_depth: float) -> float:
    """ln P(S >= depth_sum) for S the sum of `positions` Bernoulli(miss_rate) x Exponential(mean_depth)."""
    if depth_sum <= 0 or positions <= 0:
        return 0.0
    if miss_rate <= 0:
        return -math.inf
    if miss_rate >= 1:
        return _log_gamma_tail(positions, depth_sum / mean_depth)
    k = np.arange(1, positions + 1)
    log_factorials = _log_factorials(positions)
    log_binomial = (log_factorials[positions] - log_factorials[k] - log_factorials[positions - k]
                    + k * math.log(miss_rate) + (positions - k) * math.log1p(-miss_rate))
    log_gamma_tails = _log_gamma_tails(positions, depth_sum / mean_depth, log_factorials)
    return float(np.logaddexp.reduce(log_binomial + log_gamma_tails))


def _log_gamma_tails(shapes: int, z: float, log_factorials: np.ndarray) -> np.ndarray:
    # ln P(Gamma(k, 1) >= z) for k = 1..shapes: the Poisson(z) chance of fewer than k events.
    j = np.arange(shapes)
    terms = -z + j * math.log(z) - log_factorials[j]
    return np.logaddexp.accumulate(terms)


def _log_gamma_tail(shape: int, z: float) -> float:
    return float(_log_gamma_tails(shape, z, _log_factorials(shape))[-1])


def _log_factorials(n: int) -> np.ndarray:
    return np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64)))))
