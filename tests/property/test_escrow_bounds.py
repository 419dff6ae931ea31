"""The escrow product, max_tokens x max_price_per_token x redundancy, never overflows a u64 silently (issue 24).

Amounts are u64 base units at 9 decimals (docs/economics.md, "Token and supply"). Every balance, stake and
payment is a share of the total issuance, which genesis bounds by 2^64-1, and nothing mints after genesis.
The one amount a sender can make larger than anything held is the escrow a PostJob asks for: the product of
three fields it chooses. With maximal inputs it must be refused by the runtime's check (JobTooLarge, before
any write), never reach a uint64 field as a larger number.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from runtime import system
from runtime.arithmetic import U64_MAX
from runtime.executive import InvalidCall
from runtime.jobs.params import TEMPLATE_ALLOWANCE_TOKENS
from tests.runtime.market import JOBS, MODEL, Market

MAX_REDUNDANCY = JOBS.max_redundancy
# The most tokens a job may ask of the test model: its context less the chat template's allowance
# and Market.post's prompt ("hello", 5 bytes).
MAX_TOKENS = min(JOBS.max_tokens, MODEL.context_length - TEMPLATE_ALLOWANCE_TOKENS - len("hello"))

prices = st.one_of(st.integers(1, U64_MAX), st.integers(U64_MAX - 2**20, U64_MAX), st.integers(2**40, 2**50))


@settings(max_examples=40, deadline=None)
@given(max_tokens=st.integers(1, MAX_TOKENS), price=prices, redundancy=st.integers(1, MAX_REDUNDANCY))
@example(max_tokens=MAX_TOKENS, price=U64_MAX, redundancy=MAX_REDUNDANCY)
@example(max_tokens=1, price=U64_MAX, redundancy=1)
@example(max_tokens=1, price=U64_MAX, redundancy=2)
@example(max_tokens=2, price=U64_MAX // 2 + 1, redundancy=1)
def test_an_escrow_past_a_u64_is_refused_before_any_write(max_tokens, price, redundancy):
    market = Market.create()
    before = dict(market.state.items)
    try:
        job_id, receipt = market.post(max_tokens=max_tokens, max_price_per_token=price, redundancy=redundancy)
    except InvalidCall:  # refused by the stateless check, before the fee: nothing written at all
        assert dict(market.state.items) == before
        return
    # The escrow holds at least the output tokens at the most the poster will pay, for each executor.
    least_escrow = max_tokens * price * redundancy
    if least_escrow > U64_MAX:
        assert (receipt.success, receipt.error_name) == (False, "JobTooLarge"), receipt
        assert "64 bits" in receipt.error_message
    if receipt.success:
        assert least_escrow <= market.job(job_id).escrow <= U64_MAX
        return
    changed = {key for key in set(before) | set(market.state.items) if before.get(key) != market.state.items.get(key)}
    # Only the fee, the nonce, the author's share, the clock and the block's bookkeeping moved.
    assert all(key.startswith((system.ACCOUNT_PREFIX, system.CHAIN_KEY, system.SUPPLY_KEY)) for key in changed)
