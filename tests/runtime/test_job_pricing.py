"""runtime/jobs/pricing.py and its use: prompt tokens are escrowed and paid, prompt_tokens is bounded, the fee rounds up.

Issue 24, item 6, measured from outside: a 2-byte and an 8,127-byte prompt paid the same; a reveal
claiming prompt_tokens = 2^63 for "hello" was accepted; the 1% protocol fee rounded down to 0 below
100 base units. Each attack is a property test below that fails on the code before this change.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proto import state_pb2, types_pb2
from runtime import jobs, system
from runtime.arithmetic import PPM
from runtime.jobs.pricing import charge, escrow_of, prompt_token_bound, protocol_fee, storage_deposit
from tests.runtime.market import BOND, EXECUTORS, JOBS, MODEL_ID, POSTER, Market, executor_stake, output

U64 = 2**64 - 1
SETTLED = state_pb2.JOB_STATUS_SETTLED
BOND_RESERVED = BOND  # an executor's reserved balance is its bond until it is paid


def _reveal(market: Market, job_id: bytes, **result) -> types_pb2.Receipt:
    (executor,) = market.executors_of(job_id)
    return market.call(executor, reveal_result=types_pb2.RevealResult(job_id=job_id, salt=os.urandom(32), **result))


def _post(**fields) -> types_pb2.PostJob:
    request = dict(model=MODEL_ID, prompt="hello", prompt_format="chat", max_tokens=8,
                   sampling=types_pb2.Sampling(top_k=40, top_p_ppm=950_000), max_price_per_token=5_000, redundancy=1)
    request.update(fields)
    return types_pb2.PostJob(**request)


# --- the arithmetic: what is paid never exceeds what was escrowed ------------------------


@given(
    prompt=st.text(min_size=1, max_size=300),
    max_tokens=st.integers(1, 4_096),
    max_price=st.integers(0, 10**12),
    redundancy=st.integers(1, 5),
    prompt_price_ppm=st.integers(1, PPM),
    min_fee=st.integers(1, 10**9),
    fee_ppm=st.integers(0, PPM),
    data=st.data(),
)
def test_any_accepted_result_is_paid_within_the_escrow(prompt, max_tokens, max_price, redundancy, prompt_price_ppm,
                                                       min_fee, fee_ppm, data):
    params = jobs.Params(prompt_price_ppm=prompt_price_ppm, min_protocol_fee=min_fee, protocol_fee_ppm=fee_ppm)
    call = _post(prompt=prompt, max_tokens=max_tokens, max_price_per_token=max_price, redundancy=redundancy)
    escrow = escrow_of(call, params)
    paid = 0
    fees = 0
    for _ in range(redundancy):
        # Whatever the reveal may claim and the runtime accepts: prompt tokens within the bound,
        # output tokens within max_tokens, each executor's price within the job's maximum.
        price = data.draw(st.integers(0, max_price))
        gross = charge(price, data.draw(st.integers(1, prompt_token_bound(prompt))), data.draw(st.integers(1, max_tokens)),
                       prompt_price_ppm)
        fee = protocol_fee(gross, fee_ppm)
        assert 0 <= fee <= gross
        paid += gross
        fees += fee
    assert paid + max(0, min_fee - fees) <= escrow


@given(gross=st.integers(1, 10**20), fee_ppm=st.integers(1, PPM))
def test_the_protocol_fee_rounds_up_so_no_payment_escapes_it(gross, fee_ppm):
    fee = protocol_fee(gross, fee_ppm)
    assert fee >= 1
    assert fee * PPM >= gross * fee_ppm > (fee - 1) * PPM


@given(short=st.text(min_size=1, max_size=50), extra=st.text(min_size=1, max_size=200))
def test_a_longer_prompt_escrows_more_and_holds_a_larger_storage_deposit(short, extra):
    shorter, longer = _post(prompt=short), _post(prompt=short + extra)
    assert escrow_of(longer, JOBS) > escrow_of(shorter, JOBS)
    assert storage_deposit(longer, JOBS) > storage_deposit(shorter, JOBS)


# --- attack: the prompt was unpaid ----------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(short_bytes=st.integers(1, 20), extra_bytes=st.integers(50, 400))
def test_an_executor_is_paid_for_the_prompt_tokens_it_evaluated(short_bytes, extra_bytes):
    """A 2-byte and an 8,127-byte prompt once paid the same: now each revealed prompt token is paid."""
    paid = []
    for prompt_bytes in (short_bytes, short_bytes + extra_bytes):
        market = Market.create(executors=(executor_stake(EXECUTORS[0], 1_000),))
        job_id, receipt = market.post(prompt="p" * prompt_bytes, max_tokens=4)
        assert receipt.success, receipt.error_message
        # An honest count for these prompts: one token per byte plus a 30-token template.
        result = output(tokens=(9, 9, 9, 9), stop_reason="length", prompt_tokens=prompt_bytes + 30)
        assert _reveal(market, job_id, **result).success
        job = market.job(job_id)
        assert job.status == SETTLED
        slot = job.assignments[0]
        gross = slot.payment + protocol_fee(1_000 * (4 * PPM + (prompt_bytes + 30) * JOBS.prompt_price_ppm) // PPM,
                                            JOBS.protocol_fee_ppm)
        assert gross == 1_000 * 4 + 1_000 * (prompt_bytes + 30) * JOBS.prompt_price_ppm // PPM
        paid.append(gross)
    assert paid[1] - paid[0] >= 1_000 * extra_bytes * JOBS.prompt_price_ppm // PPM - 1


# --- attack: an impossible prompt_tokens --------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claimed=st.one_of(st.integers(5 + 64 + 1, U64), st.just(2**63)))
def test_a_reveal_claiming_more_prompt_tokens_than_the_prompt_can_make_is_refused(claimed):
    """prompt_tokens = 2^63 for "hello" was once accepted (and would now be paid for)."""
    market = Market.create()
    job_id, _ = market.post(prompt="hello", max_tokens=4)
    (executor,) = market.executors_of(job_id)
    job_before = market.job(job_id)
    load_before = jobs.read_load(market.state, executor.public_key)
    receipt = _reveal(market, job_id, **output(tokens=(9, 9, 9, 9), stop_reason="length", prompt_tokens=claimed))
    assert (receipt.success, receipt.error_module, receipt.error_name) == (False, "jobs", "InvalidReveal")
    assert f"prompt_tokens {claimed} is impossible" in receipt.error_message
    assert "at most 69 tokens" in receipt.error_message
    # Only the fee was taken: the job, its escrow and the executor's load are as they were.
    assert market.job(job_id) == job_before
    assert jobs.read_load(market.state, executor.public_key) == load_before
    assert system.read_account(market.state, executor.public_key).reserved == BOND_RESERVED


def test_the_largest_possible_prompt_tokens_is_accepted_and_zero_is_refused_before_the_fee():
    market = Market.create()
    job_id, _ = market.post(prompt="hello", max_tokens=4)
    from runtime.executive import InvalidCall, check_transaction, transaction_rules

    (executor,) = market.executors_of(job_id)
    zero = market.transaction(executor, reveal_result=types_pb2.RevealResult(
        job_id=job_id, salt=bytes(32), **output(tokens=(9, 9, 9, 9), stop_reason="length", prompt_tokens=0)))
    try:
        check_transaction(zero, transaction_rules(market.state))
        raise AssertionError("a reveal with prompt_tokens 0 passed the stateless check")
    except InvalidCall as refusal:
        assert "prompt_tokens is 0" in str(refusal)
    assert _reveal(market, job_id, **output(tokens=(9, 9, 9, 9), stop_reason="length", prompt_tokens=69)).success


# --- attack: the protocol fee rounded down to nothing ---------------------------------------


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(price=st.integers(1, 99), tokens=st.integers(1, 4))
def test_a_cheap_job_still_burns_the_minimum_protocol_fee(price, tokens):
    """Below 100 base units the 1% fee once rounded to 0: now each payment's fee rounds up and a job burns at least the minimum."""
    market = Market.create(executors=(executor_stake(EXECUTORS[0], price),))
    supply_before = system.read_supply(market.state).burned
    job_id, receipt = market.post(max_tokens=tokens, max_price_per_token=price)
    assert receipt.success, receipt.error_message
    escrow = market.job(job_id).escrow
    assert escrow >= escrow_of(market.job(job_id).request, JOBS)
    result = output(tokens=(9,) * tokens, stop_reason="length", prompt_tokens=31)
    assert _reveal(market, job_id, **result).success
    job = market.job(job_id)
    assert job.status == SETTLED
    gross = charge(price, 31, tokens, JOBS.prompt_price_ppm)
    assert gross - job.assignments[0].payment == protocol_fee(gross, JOBS.protocol_fee_ppm) >= 1
    assert job.protocol_fee == JOBS.min_protocol_fee
    # Every fee burned is in the supply's burned total (transaction fees go to the block author).
    assert system.read_supply(market.state).burned - supply_before == job.protocol_fee
    assert job.refunded == escrow - gross - (JOBS.min_protocol_fee - protocol_fee(gross, JOBS.protocol_fee_ppm))


def test_the_storage_deposit_is_reserved_at_post_and_counted_in_the_cost():
    market = Market.create()
    free_before = system.read_account(market.state, POSTER.public_key).free
    job_id, receipt = market.post(prompt="x" * 300)
    job = market.job(job_id)
    assert job.storage_deposit == JOBS.storage_deposit_per_byte * (job.request.ByteSize() + 256)
    info = system.read_account(market.state, POSTER.public_key)
    assert info.reserved == job.escrow + job.storage_deposit
    assert free_before - info.free == job.escrow + job.storage_deposit + receipt.fee_paid
