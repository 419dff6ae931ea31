"""Which verifier thresholds can judge a result: the one rule the runtime and the verifier share.

Hand-written, like proto/digest.py, because two layers that may not import each other
need it: the runtime refuses a model registration whose thresholds the verifier could not
use, and the verifier refuses the same thresholds from a file or from the chain. Before,
the runtime accepted a miss rate or depth of 0, a false-positive budget of 10^9 and a worst
margin above -miss_slack, which stake could register and no verifier could judge by.
docs/verification.md, "Thresholds", says what each one means.
"""

from __future__ import annotations

MICRO = 1_000_000
PPM = 1_000_000
PPB = 1_000_000_000
# The slack is also the verifier's rival tolerance: more than one logit would leave it no rivals.
MAX_MISS_SLACK_MICRO = MICRO


def threshold_problem(
    *,
    worst_margin_micro: int,
    miss_slack_micro: int,
    miss_rate_ppm: int,
    miss_depth_micro: int,
    false_positive_budget_ppb: int,
    mean_logprob_error_micro: int,
    max_logprob_error_micro: int,
) -> str | None:
    """What makes these thresholds unusable, in words naming the field; None when the verifier can use them."""
    if worst_margin_micro >= 0:
        return "worst_margin_micro must be negative"
    if worst_margin_micro > -miss_slack_micro:
        return "thresholds need worst_margin_micro <= -miss_slack_micro"
    if miss_slack_micro > MAX_MISS_SLACK_MICRO:
        return f"miss_slack_micro must be at most {MAX_MISS_SLACK_MICRO:,} (one logit)"
    if not 0 < miss_rate_ppm < PPM:
        return f"miss_rate_ppm must be between 0 and {PPM:,} (exclusive)"
    if miss_depth_micro <= 0:
        return "miss_depth_micro must be positive"
    if not 0 < false_positive_budget_ppb < PPB:
        return f"false_positive_budget_ppb must be between 0 and {PPB:,} (exclusive)"
    if mean_logprob_error_micro < 0 or max_logprob_error_micro < 0:
        return "log-probability bounds must not be negative"
    return None
