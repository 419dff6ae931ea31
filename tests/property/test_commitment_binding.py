"""The commitment binds the revealed log-probabilities (issue 24, item 6; docs/protocol.md, "Commitment").

Measured from outside before this change: the last revealer replaced its own log-probabilities after
seeing another executor's reveal, and both were paid. Now the commitment hashes a digest of the
log-probabilities (proto/digest.py), so a reveal whose log-probabilities differ from the committed
ones is a failed CommitmentMismatch with no state change.
"""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proto import state_pb2, types_pb2
from proto.digest import LOGPROBS_DIGEST_DOMAIN, logprobs_digest, logprobs_digest_message
from runtime import jobs
from tests.runtime.market import Market, commitment_of, output

I64 = st.integers(-(2**63), 2**63 - 1)
LOGPROBS = st.lists(st.integers(-(2**63), 0), min_size=4, max_size=4)


@given(st.lists(I64, max_size=40))
def test_the_log_probabilities_message_is_the_domain_the_count_and_each_value_as_i64le(values):
    message = logprobs_digest_message(values)
    assert message == LOGPROBS_DIGEST_DOMAIN + struct.pack("<Q", len(values)) + b"".join(struct.pack("<q", v) for v in values)
    assert len(logprobs_digest(values)) == 32


@given(st.lists(I64, max_size=12), st.lists(I64, max_size=12))
def test_different_log_probabilities_have_different_digests(first, second):
    assert (logprobs_digest(first) == logprobs_digest(second)) == (first == second)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1])
def test_a_value_outside_64_bits_has_no_digest(value):
    with pytest.raises(ValueError, match="signed 64-bit"):
        logprobs_digest([value])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(committed=LOGPROBS, revealed=LOGPROBS)
def test_the_last_revealer_cannot_replace_its_log_probabilities_after_seeing_anothers(committed, revealed):
    market = Market.create()
    job_id, _ = market.post(redundancy=2, max_tokens=4)
    first, second = market.executors_of(job_id)
    job = market.job(job_id)
    honest = output(tokens=(5, 6, 7, 2))
    mine = dict(honest, logprobs_micronats=committed)
    salts = {first.public_key: os.urandom(32), second.public_key: os.urandom(32)}
    market.ok(first, commit_result=types_pb2.CommitResult(job_id=job_id, commitment=commitment_of(job, first, salts[first.public_key], honest)))
    market.ok(second, commit_result=types_pb2.CommitResult(job_id=job_id, commitment=commitment_of(job, second, salts[second.public_key], mine)))
    market.ok(first, reveal_result=types_pb2.RevealResult(job_id=job_id, salt=salts[first.public_key], **honest))

    # The second executor has seen the first's log-probabilities and reveals others than it committed to.
    before = market.job(job_id)
    swapped = dict(mine, logprobs_micronats=revealed)
    receipt = market.call(second, reveal_result=types_pb2.RevealResult(job_id=job_id, salt=salts[second.public_key], **swapped))
    if revealed == committed:
        assert receipt.success
        assert market.job(job_id).status == state_pb2.JOB_STATUS_SETTLED
        return
    assert (receipt.success, receipt.error_name) == (False, "CommitmentMismatch")
    assert "log-probabilities" in receipt.error_message
    assert market.job(job_id) == before
    # The one it committed to is still accepted within the deadline.
    market.ok(second, reveal_result=types_pb2.RevealResult(job_id=job_id, salt=salts[second.public_key], **mine))
    assert list(market.job(job_id).assignments[1].reveal.logprobs_micronats) == committed


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logprobs=LOGPROBS)
def test_a_direct_reveal_stores_the_commitment_to_its_log_probabilities(logprobs):
    market = Market.create()
    job_id, _ = market.post(redundancy=1, max_tokens=4)
    (executor,) = market.executors_of(job_id)
    result = output(tokens=(9, 9, 9, 9), stop_reason="length")
    result["logprobs_micronats"] = logprobs
    salt = os.urandom(32)
    market.ok(executor, reveal_result=types_pb2.RevealResult(job_id=job_id, salt=salt, **result))
    job = market.job(job_id)
    assert job.assignments[0].commitment == commitment_of(job, executor, salt, result)
    assert jobs.commitment(job_id, executor.public_key, salt, job.output_digest, logprobs_digest(logprobs)) == job.assignments[0].commitment
