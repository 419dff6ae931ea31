"""The runtime and the verifier accept exactly the same thresholds (one rule: proto/thresholds.py).

Before, the runtime accepted thresholds the verifier refused (a miss rate or depth of 0, a false-positive
budget of 10^9, a worst margin above -miss_slack): stake could register a model no verifier could judge.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from inference.errors import InferenceError
from inference.thresholds import Thresholds
from proto import types_pb2
from runtime.models import InvalidModel, check_model

FIELDS = ("worst_margin_micro", "miss_slack_micro", "miss_rate_ppm", "miss_depth_micro",
          "false_positive_budget_ppb", "max_logprob_error_micro", "mean_logprob_error_micro")
EDGES = [0, 1, 999_999, 1_000_000, 1_000_001, 999_999_999, 1_000_000_000, 2**40]


def _unsigned():
    return st.one_of(st.sampled_from(EDGES), st.integers(0, 2**64 - 1))


@settings(max_examples=400, deadline=None)
@given(
    worst=st.one_of(st.sampled_from([-(2**40), -1_000_001, -1_000_000, -1, 0, 1]), st.integers(-(2**63), 2**63 - 1)),
    values=st.fixed_dictionaries({name: _unsigned() for name in FIELDS[1:]}),
)
def test_the_runtime_registers_exactly_the_thresholds_the_verifier_can_use(worst, values):
    numbers = {"worst_margin_micro": worst, **values}
    model = types_pb2.ModelInfo(id=bytes(32), name="m", context_length=512, end_tokens=[2], engine="e",
                                thresholds=types_pb2.ModelThresholds(**numbers))
    try:
        check_model(model)
        runtime_accepts = True
    except InvalidModel:
        runtime_accepts = False
    try:
        Thresholds(model="00" * 32, engine="e", calibration="test", **numbers)
        verifier_accepts = True
    except InferenceError:
        verifier_accepts = False
    assert runtime_accepts == verifier_accepts, numbers
