"""Property tests of the runtime: arbitrary bytes, arbitrary transfer sequences, and arbitrary fields of every registered call."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from proto import types_pb2
from runtime import system
from runtime.executive import BlockExecution, InvalidCall, check_transaction, transaction_rules
from runtime.invariants import supply_is_conserved
from runtime.primitives import BlockContext, InvalidTransaction
from runtime.registry import RUNTIME
from tests.property.registry_calls import any_call, call_strategies
from tests.runtime.helpers import ACCOUNTS, assert_events_declared, genesis_state, transfer
from tests.runtime.market import MODEL_ID, Market

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
        assert_events_declared(receipts)
        state.apply(writes.changes())
        assert supply_is_conserved(state, state.items.items())


# --- every registered call, its fields drawn from the registry ----------------------------------

# Generated from each call's descriptor and declared kinds (tests/property/registry_calls.py): a
# module's new call is fuzzed here with no edit.
FUZZED_CALLS = call_strategies(RUNTIME)
REGISTERED_MODULES = {module.name for module in RUNTIME.modules}


def test_every_registered_call_is_fuzzed():
    assert set(FUZZED_CALLS) == set(RUNTIME.calls)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_call(RUNTIME, [account.public_key for account in ACCOUNTS], [MODEL_ID]), st.integers(1, 5))
def test_arbitrary_fields_of_every_registered_call_are_refused_or_applied_cleanly(named_call, who):
    name, call = named_call
    market = Market.create()
    raw = market.transaction(ACCOUNTS[who], **{name: call})
    try:
        check_transaction(raw, transaction_rules(market.state))
    except InvalidTransaction as refused:
        assert str(refused)
        event(f"{name}: refused before its block")
        return
    receipt = market.block([raw]).transactions[0]  # the supply and reserve invariants are checked after the block
    event(f"{name}: {'applied' if receipt.success else 'failed in its block'}")
    if not receipt.success:
        assert receipt.error_module in REGISTERED_MODULES and receipt.error_name and receipt.error_message
