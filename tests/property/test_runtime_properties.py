"""Property tests of the runtime: arbitrary bytes and arbitrary call sequences."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proto import types_pb2
from runtime import system
from runtime.executive import BlockExecution, InvalidCall, check_transaction, transaction_rules
from runtime.invariants import supply_is_conserved
from runtime.primitives import BlockContext, InvalidTransaction
from tests.runtime.helpers import ACCOUNTS, genesis_state, transfer

STATE = genesis_state()
RULES = transaction_rules(STATE)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_are_refused_cleanly(raw):
    # Random bytes never carry a valid signature: the check must refuse them, with a reason.
    with pytest.raises(InvalidTransaction) as refused:
        check_transaction(raw, RULES)
    assert str(refused.value)


@settings(max_examples=200, deadline=None)
@given(
    chain_id=st.text(max_size=20),
    genesis_hash=st.binary(max_size=40),
    sender=st.binary(min_size=0, max_size=40),
    nonce=st.integers(0, 2**64 - 1),
    fee=st.integers(0, 2**64 - 1),
    dest=st.binary(max_size=40),
    amount=st.integers(0, 2**64 - 1),
    signature=st.binary(max_size=70),
)
def test_arbitrary_signed_fields_are_refused_cleanly(chain_id, genesis_hash, sender, nonce, fee, dest, amount, signature):
    body = types_pb2.TransactionBody(
        chain_id=chain_id, genesis_hash=genesis_hash, sender=sender, nonce=nonce, fee=fee,
        transfer=types_pb2.Transfer(dest=dest, amount=amount),
    )
    raw = types_pb2.Transaction(body=body.SerializeToString(), signature=signature).SerializeToString()
    try:
        check_transaction(raw, RULES)
    except InvalidTransaction as error:
        assert str(error)
    else:
        raise AssertionError("a random signature verified")


operation = st.tuples(
    st.integers(0, len(ACCOUNTS) - 1),  # sender
    st.integers(0, len(ACCOUNTS) - 1),  # destination
    st.one_of(st.integers(0, 10**7), st.integers(0, 2 * 10**15), st.integers(0, 2**64 - 1)),  # amount
    st.integers(-1, 2),  # nonce offset from the sender's next
    st.sampled_from([0, 3_000, 10_000, 10**14]),  # fee
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(operation, max_size=12), min_size=1, max_size=5), st.integers(0, len(ACCOUNTS) - 1))
def test_supply_is_conserved_and_refused_transactions_change_nothing(blocks, author_index):
    state = genesis_state(endowed=4)
    rules = transaction_rules(state)
    author = ACCOUNTS[author_index].public_key
    for operations in blocks:
        chain = system.read_chain(state)
        execution = BlockExecution(state, BlockContext(chain.height + 1, chain.time_ms + 1000, author), rules)
        included: dict[bytes, int] = {}
        for sender_index, dest_index, amount, offset, fee in operations:
            sender = ACCOUNTS[sender_index]
            account = system.read_account(execution.state, sender.public_key)
            next_nonce = (account.nonce if account else 0) + offset
            if next_nonce < 0:
                continue
            raw = transfer(sender, ACCOUNTS[dest_index].public_key, amount, nonce=next_nonce, fee=fee)
            if amount == 0:
                with pytest.raises(InvalidCall):  # can never succeed: refused before it costs a fee
                    check_transaction(raw, rules)
                continue
            checked = check_transaction(raw, rules)
            before = dict(execution.state.writes)
            try:
                execution.try_apply(checked)
            except InvalidTransaction:
                assert execution.state.writes == before
            else:
                included[sender.public_key] = included.get(sender.public_key, 0) + 1
        writes, receipts = execution.finish()
        assert len(receipts.transactions) == sum(included.values())
        state.apply(writes.changes())
        assert supply_is_conserved(state, state.items.items())
