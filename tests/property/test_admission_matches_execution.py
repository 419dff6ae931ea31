"""The pool's verdict and block execution agree, for random calls of every registered type on random states.

One home for admission rules (runtime/executive.py `validate_transaction`) means: what the pool admits, a
block can carry; what the pool refuses as invalid, a block carrying it is refused for; and a call whose dry
run passed at the account's next nonce does the same in the block. Before issue 23 a zero-fee transfer from
an account that never existed passed validation and raised AttributeError inside block execution.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proto import types_pb2
from runtime import system
from runtime.block import InvalidBlock
from runtime.executive import (
    CallWouldFail,
    CannotAfford,
    apply_block,
    check_transaction,
    transaction_rules,
    transaction_weight,
    validate_transaction,
)
from runtime.primitives import BlockContext, InvalidTransaction
from runtime.registry import RUNTIME
from tests.property.registry_calls import call_strategy
from tests.runtime.helpers import ACCOUNTS, AUTHOR, CHAIN_ID, GENESIS_HASH, sign
from tests.runtime.market import MODEL_ID, Market

KEYS = [account.public_key for account in ACCOUNTS]
CALL_NAMES = sorted(RUNTIME.calls)
# Refused by the pool, yet a block may carry them: the call fails there and keeps the fee.
CARRIED_BUT_FAILING = (CallWouldFail, CannotAfford)


@st.composite
def transactions(draw, state) -> bytes:
    """A signed transaction of a random call, sender (two of six accounts never existed), nonce and fee."""
    signer = draw(st.sampled_from(ACCOUNTS + [ACCOUNTS[0]] * 2))
    account = system.read_account(state, signer.public_key)
    next_nonce = account.nonce if account is not None else 0
    name = draw(st.sampled_from(CALL_NAMES))
    call = draw(call_strategy(RUNTIME.calls[name], KEYS, [MODEL_ID]))
    body = types_pb2.TransactionBody(
        chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH, sender=signer.public_key,
        nonce=draw(st.sampled_from([next_nonce, next_nonce, next_nonce + 1, max(0, next_nonce - 1)])),
    )
    getattr(body, name).CopyFrom(call)
    size = len(sign(body, signer)) + 10
    minimum = system.read_params(state).minimum_fee(size, transaction_weight(body, size))
    body.fee = draw(st.sampled_from([minimum, minimum, 10**8, 0, max(0, minimum - 1)]))
    return sign(body, signer)


def _block(state, checked):
    chain = system.read_chain(state)
    context = BlockContext(chain.height + 1, chain.time_ms + 1000, AUTHOR.public_key)
    return apply_block(state, context, checked)


@pytest.mark.parametrize("zero_fees", [False, True], ids=["fees", "zero fees"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_the_pool_admits_exactly_what_a_block_can_carry(zero_fees, data):
    params = system.Params(base_fee=0, fee_per_byte=0, fee_per_weight=0) if zero_fees else system.Params()
    market = Market.create(params=params)
    for _ in range(data.draw(st.integers(0, 3), label="earlier blocks")):  # a random state: earlier blocks applied
        raws = data.draw(st.lists(transactions(market.state), max_size=3), label="earlier")
        rules = transaction_rules(market.state)
        admitted = []
        for raw in raws:
            try:
                checked = check_transaction(raw, rules)
                validate_transaction(market.state, checked, rules)
            except InvalidTransaction:
                continue
            admitted.append(checked)
            break  # one per block: each is judged against the state it is applied to
        _, receipts = _block(market.state, admitted)
        market.block([checked.raw for checked in admitted])

    raw = data.draw(transactions(market.state), label="judged")
    rules = transaction_rules(market.state)
    try:
        checked = check_transaction(raw, rules)
    except InvalidTransaction:
        return  # stateless refusals are one function the pool and blocks share (tests/chain/test_block_validity.py)

    try:
        dry_run = validate_transaction(market.state, checked, rules)
        verdict = None
    except InvalidTransaction as error:
        verdict = error

    try:
        _, receipts = _block(market.state, [checked])
    except InvalidBlock as error:
        assert verdict is not None and not isinstance(verdict, CARRIED_BUT_FAILING), (
            f"the pool admitted what a block refuses: {error}"
        )
        return
    receipt = receipts.transactions[0]
    assert verdict is None or isinstance(verdict, CARRIED_BUT_FAILING), f"a block carries what the pool refused: {verdict}"
    if isinstance(verdict, CARRIED_BUT_FAILING):
        assert not receipt.success, f"the pool said the call fails ({verdict}), the block ran it"
    elif dry_run is not None:
        assert receipt.success, f"the dry run passed, the block's call failed: {receipt.error_message}"
        assert list(receipt.events) == list(dry_run.events)
