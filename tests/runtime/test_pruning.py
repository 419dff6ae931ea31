"""Job records are pruned when the challenge window closes; the storage deposit returns (issue 24, item 5).

Measured from outside before this change: job records were never deleted, 45 KB per job stayed in
state forever for a one-time fee of about 10 base units per byte.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proto import state_pb2, types_pb2
from runtime import system
from runtime.jobs.storage import prunable, pruned_record
from tests.runtime.market import EXECUTORS, JOBS, POSTER, Market, commit_and_reveal, commitment_of, executor_stake, output

WINDOW = JOBS.challenge_window_blocks


def _reserved(market: Market, account) -> int:
    return system.read_account(market.state, account.public_key).reserved


def _settled(market: Market, prompt: str = "hello", redundancy: int = 2) -> bytes:
    job_id, receipt = market.post(prompt=prompt, redundancy=redundancy, max_tokens=8)
    assert receipt.success, receipt.error_message
    result = output(tokens=tuple(range(10, 17)) + (2,))
    result["text"] = "t" * 2_000  # a long revealed text, as a real output would be
    commit_and_reveal(market, job_id, result)
    assert market.job(job_id).status == state_pb2.JOB_STATUS_SETTLED
    return job_id


def test_a_settled_job_is_pruned_when_its_window_closes_and_its_deposit_returns():
    market = Market.create()
    job_id = _settled(market, prompt="p" * 400)  # the test model's context is 512 tokens
    job = market.job(job_id)
    deposit = job.storage_deposit
    assert deposit > 0 and _reserved(market, POSTER) == deposit
    full_size = job.ByteSize()

    market.advance_to(job.final_height + WINDOW - 1)
    assert not market.job(job_id).pruned_height  # still open to challenge: everything is kept
    events = market.advance(1)
    pruned = market.job(job_id)
    assert pruned.pruned_height == job.final_height + WINDOW
    assert [(e.name, dict((a.key, a.value) for a in e.attributes)["deposit"]) for e in events if e.name == "JobPruned"] == [
        ("JobPruned", str(deposit))
    ]
    assert _reserved(market, POSTER) == 0 and pruned.storage_deposit == 0
    # What a dispute or a reader needs is kept; the bulk is gone.
    assert pruned.request.prompt == "" and pruned.request.max_tokens == 8 and pruned.output_digest == job.output_digest
    for before, after in zip(job.assignments, pruned.assignments):
        assert (after.executor, after.commitment, after.payment, after.released) == (
            before.executor, before.commitment, before.payment, True)
        assert after.reveal.output_digest == before.reveal.output_digest
        assert after.reveal.prompt_tokens == before.reveal.prompt_tokens
        assert not (after.reveal.tokens or after.reveal.text or after.reveal.logprobs_micronats or after.reveal.salt)
    assert pruned.ByteSize() <= 250 + 170 * 2 and full_size > 8 * pruned.ByteSize()


def test_expired_and_cancelled_jobs_are_pruned_a_window_after_they_end():
    market = Market.create(executors=(executor_stake(EXECUTORS[0], 1_000, capacity=1),))
    running, _ = market.post()
    cancelled, _ = market.post()  # queued behind the first: its timeout stays scheduled after it ends
    market.ok(POSTER, cancel_job=types_pb2.CancelJob(job_id=cancelled))
    ended = market.job(cancelled).final_height
    market.advance_to(ended + WINDOW)
    assert market.job(cancelled).pruned_height == ended + WINDOW
    expiry = market.job(running).timeout_height
    market.advance_to(expiry)
    job = market.job(running)
    assert job.status == state_pb2.JOB_STATUS_EXPIRED and not job.pruned_height
    market.advance_to(job.final_height + WINDOW)
    assert market.job(running).pruned_height == job.final_height + WINDOW
    # The cancelled job's old timeout came and went without touching its pruned record.
    assert market.job(cancelled).pruned_height == ended + WINDOW
    assert _reserved(market, POSTER) == 0


def test_a_disputed_job_is_pruned_once_its_verdict_returned_the_escrow():
    market = Market.create()
    job_id, _ = market.post(redundancy=2)
    first, second = market.executors_of(job_id)
    job = market.job(job_id)
    results = {first.public_key: output(tokens=(5, 2)), second.public_key: output(tokens=(6, 2))}
    salts = {account.public_key: os.urandom(32) for account in (first, second)}
    for account in (first, second):
        market.ok(account, commit_result=types_pb2.CommitResult(
            job_id=job_id, commitment=commitment_of(job, account, salts[account.public_key], results[account.public_key])))
    for account in (first, second):
        market.ok(account, reveal_result=types_pb2.RevealResult(job_id=job_id, salt=salts[account.public_key],
                                                                **results[account.public_key]))
    job = market.job(job_id)
    assert job.status == state_pb2.JOB_STATUS_DISPUTED
    assert not prunable(job, JOBS, job.final_height + WINDOW)  # its escrow is still held
    market.advance_to(market.height + 3)
    # No committee could be drawn (no validator serves the model): rejected with every verdict NONE, refunded,
    # ended at the verdict.
    rejected = market.job(job_id)
    assert rejected.status == state_pb2.JOB_STATUS_REJECTED and rejected.final_height > job.final_height
    market.advance_to(rejected.final_height + WINDOW)
    pruned = market.job(job_id)
    assert pruned.status == state_pb2.JOB_STATUS_REJECTED
    assert pruned.pruned_height and pruned.escrow == 0
    assert {slot.reveal.output_digest for slot in pruned.assignments} == {slot.reveal.output_digest for slot in job.assignments}


def test_a_pruned_job_takes_no_more_calls_and_says_why():
    market = Market.create()
    job_id = _settled(market, redundancy=1)
    market.advance(WINDOW)
    (executor,) = [account for account in EXECUTORS if account.public_key == market.job(job_id).assignments[0].executor]
    before = market.job(job_id)
    receipt = market.call(executor, reveal_result=types_pb2.RevealResult(job_id=job_id, salt=bytes(32), **output()))
    assert not receipt.success and market.job(job_id) == before
    receipt = market.call(POSTER, cancel_job=types_pb2.CancelJob(job_id=job_id))
    assert receipt.error_name == "NotCancellable" and market.job(job_id) == before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompt=st.text(min_size=1, max_size=2_000), text=st.text(max_size=2_000), tokens=st.integers(1, 8),
       redundancy=st.integers(1, 3))
def test_a_pruned_record_is_small_whatever_the_job_held(prompt, text, tokens, redundancy):
    """45 KB per job once stayed forever: what stays after pruning does not grow with the prompt or the output."""
    job = state_pb2.Job(id=os.urandom(32), poster=os.urandom(32), status=state_pb2.JOB_STATUS_SETTLED,
                        request=types_pb2.PostJob(model=os.urandom(32), prompt=prompt, max_tokens=8, redundancy=redundancy,
                                                  max_price_per_token=2**63),
                        escrow=0, output_digest=os.urandom(32), final_height=2**40, storage_deposit=10**12,
                        protocol_fee=2**63, refunded=2**63, reason="r" * 80)
    for _ in range(redundancy):
        job.assignments.append(state_pb2.Assignment(
            executor=os.urandom(32), price_per_token=2**63, status=state_pb2.ASSIGNMENT_STATUS_REVEALED, commitment=os.urandom(32),
            payment=2**63, release_height=2**40, released=True, deadline_height=2**40, assigned_height=2**40,
            reveal=state_pb2.Reveal(salt=os.urandom(32), prompt_tokens=2**20, tokens=[2**31] * tokens, text=text,
                                    logprobs_micronats=[-(2**62)] * tokens, stop_reason="length",
                                    output_digest=os.urandom(32), height=2**40)))
    assert prunable(job, JOBS, 2**40 + WINDOW)
    record = pruned_record(job, 2**40 + WINDOW)
    assert record.ByteSize() <= 450 + 180 * redundancy
    assert record.storage_deposit == 0 and record.pruned_height == 2**40 + WINDOW
