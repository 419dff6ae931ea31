"""The binomial test of evidence across jobs: whether an executor's misses are too many to be chance.

An honest executor misses a judged position with probability at most p = miss_rate_ppm / 10^6
(the model's registered slack; on the pinned engine it misses none). Over n judged positions its
misses K are then at most Binomial(n, p), and the Chernoff bound gives, for k / n > p,

    P(K >= k) <= exp(-n * KL(k/n || p)),  n * KL = k ln(k / (n p)) + (n - k) ln((n - k) / (n (1 - p))).

`convicted` convicts when n * KL >= ln(10^9 / budget_ppb), so an honest executor is convicted with
probability at most the budget. Consensus code must answer the same on every machine, so the
logarithms are fixed-point numbers built from Python integers (no float anywhere): each is bounded
below (the left side) or above (the threshold) to 2^-64, so rounding never convicts more.
"""

from __future__ import annotations

PPM = 1_000_000
PPB = 1_000_000_000

# Bits of the fixed-point results, and the extra bits the series is computed with: the series' rounding
# errors (at most a few thousand units of 2^-(FRACTION_BITS + GUARD_BITS), see _ln_scaled) stay far
# below one unit of 2^-FRACTION_BITS, so widening the rounded result by one unit bounds the true value.
FRACTION_BITS = 64
GUARD_BITS = 64
_WORK_BITS = FRACTION_BITS + GUARD_BITS
_ONE = 1 << _WORK_BITS


def _atanh_scaled(numerator: int, denominator: int) -> int:
    """atanh(numerator / denominator) * 2^_WORK_BITS, for 0 <= numerator / denominator <= 1/3, within 2^12 units.

    atanh(z) = z + z^3/3 + z^5/5 + ...; each term is at most a ninth of the one before, so about 41
    terms reach 2^-128, each adding at most 2 units of truncation, and the tail left out is below 2 units.
    """
    z = (numerator << _WORK_BITS) // denominator
    z_squared = (z * z) >> _WORK_BITS
    total, power, odd = 0, z, 1
    while power:
        total += power // odd
        power = (power * z_squared) >> _WORK_BITS
        odd += 2
    return total


# ln 2 = 2 atanh(1/3), within 2^13 units of 2^-128.
_LN2_SCALED = 2 * _atanh_scaled(1, 3)


def _ln_scaled(numerator: int, denominator: int) -> int:
    """ln(numerator / denominator) * 2^_WORK_BITS, both positive, within 2^24 units for inputs below 2^200.

    x = 2^e * y with y in [1, 2): ln x = e ln 2 + 2 atanh((y - 1) / (y + 1)), and (y - 1) / (y + 1) is in
    [0, 1/3). |e| < 2^8 for such inputs, so e ln 2 adds at most 2^21 units; the series at most 2^13.
    """
    exponent = numerator.bit_length() - denominator.bit_length()
    if exponent >= 0:
        top, bottom = numerator, denominator << exponent
    else:
        top, bottom = numerator << -exponent, denominator
    if top < bottom:  # y below 1: one power of two fewer
        exponent -= 1
        top <<= 1
    return exponent * _LN2_SCALED + 2 * _atanh_scaled(top - bottom, top + bottom)


def ln_lower(numerator: int, denominator: int) -> int:
    """A lower bound of ln(numerator / denominator) * 2^64, within 2 units."""
    return (_ln_scaled(numerator, denominator) >> GUARD_BITS) - 1


def ln_upper(numerator: int, denominator: int) -> int:
    """An upper bound of ln(numerator / denominator) * 2^64, within 2 units."""
    return (_ln_scaled(numerator, denominator) >> GUARD_BITS) + 2


def _check_counts(positions: int, misses: int, miss_rate_ppm: int, budget_ppb: int) -> None:
    if min(positions, misses, miss_rate_ppm, budget_ppb) < 0:
        raise ValueError(f"counts and rates are non-negative, got {positions}, {misses}, {miss_rate_ppm}, {budget_ppb}")
    if max(positions, misses) >= 1 << 64:
        raise ValueError("positions and misses are 64-bit counts")


def convicted(positions: int, misses: int, miss_rate_ppm: int, budget_ppb: int) -> bool:
    """Whether `misses` among `positions` judged positions prove, within `budget_ppb` of error, a miss rate above
    `miss_rate_ppm`: never where the exact binomial tail P(K >= misses) is above the budget."""
    _check_counts(positions, misses, miss_rate_ppm, budget_ppb)
    # Misses beyond the positions judged cannot happen; a record holding them counts them as all positions.
    n, k, m = positions, min(misses, positions), miss_rate_ppm
    if k == 0 or budget_ppb == 0 or m >= PPM:
        return False  # no miss; no error allowed; every position may miss
    if m == 0:
        return True  # a miss where none can happen by chance: the tail is 0
    if k * PPM <= n * m:
        return False  # no more misses than chance gives: the bound says nothing
    threshold = ln_upper(PPB, budget_ppb)
    # Both coefficients are non-negative, so lower bounds of the logarithms bound the sum from below.
    divergence = k * ln_lower(k * PPM, n * m)
    if n > k:
        divergence += (n - k) * ln_lower((n - k) * PPM, n * (PPM - m))
    return divergence >= threshold


def jobs_to_convict(steered_per_job: int, tokens_per_job: int, miss_rate_ppm: int, budget_ppb: int) -> int:
    """How many fully judged jobs convict an executor that steers `steered_per_job` of each job's `tokens_per_job`
    positions (each a miss); 0 when no number of jobs with fewer than 2^64 positions does (it steers no more, or
    barely more, than chance misses)."""
    if not 0 < steered_per_job <= tokens_per_job:
        raise ValueError(f"steered positions must be 1 to tokens_per_job ({tokens_per_job}), got {steered_per_job}")

    def convicts(jobs: int) -> bool:
        return convicted(jobs * tokens_per_job, jobs * steered_per_job, miss_rate_ppm, budget_ppb)

    # n * KL grows in proportion to the jobs at a fixed miss fraction, so the answer is found by bisection.
    high = 1
    while not convicts(high):
        high *= 2
        if high * tokens_per_job >= 1 << 64:
            return 0
    low = high // 2  # does not convict (or is 0)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if convicts(middle) else (middle, high)
    return high
