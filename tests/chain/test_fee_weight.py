"""The client's fee (chain/transactions.py FeeRule) is the runtime's minimum for the transaction's size and weight."""

from __future__ import annotations

import pytest

from chain.crypto import dev_keypair
from chain.genesis import dev_genesis_document, parse_genesis
from chain.transactions import FeeRule, sign_transaction, transfer_call
from proto import types_pb2
from runtime import system
from runtime.executive import FeeTooLow, check_transaction, transaction_rules, transaction_weight, validate_transaction
from runtime.state import MemoryState

GENESIS = parse_genesis(dev_genesis_document())
STATE = MemoryState(GENESIS.state())
PARAMS = system.read_params(STATE)
RULE = FeeRule(PARAMS.base_fee, PARAMS.fee_per_byte, PARAMS.fee_per_weight)
ALICE, BOB = dev_keypair("alice"), dev_keypair("bob")

CALLS = [
    transfer_call(BOB.public_key, 10**12),
    types_pb2.PostJob(model=b"\x01" * 32, prompt="hello " * 200, prompt_format="chat", max_tokens=64,
                      max_price_per_token=10**9, redundancy=3,
                      sampling=types_pb2.Sampling(top_k=40, top_p_ppm=10**6)),
    types_pb2.VoteModel(model=b"\x02" * 32, proposal=b"\x03" * 32, approve=True),
]


@pytest.mark.parametrize("call", CALLS, ids=lambda call: type(call).__name__)
def test_the_signed_fee_is_exactly_the_pools_minimum_for_size_and_weight(call):
    signed = sign_transaction(ALICE, chain_id=GENESIS.chain_id, genesis_hash=GENESIS.hash, nonce=0, call=call,
                              fee_rule=RULE)
    rules = transaction_rules(STATE)
    checked = check_transaction(signed.raw, rules)
    weight = transaction_weight(checked.body, checked.size)
    assert signed.fee == PARAMS.minimum_fee(checked.size, weight) == RULE.minimum(checked.size, weight)
    validate_transaction(STATE, checked, rules, for_pool=False)
    short = sign_transaction(ALICE, chain_id=GENESIS.chain_id, genesis_hash=GENESIS.hash, nonce=0, call=call,
                             fee=signed.fee - 1)
    with pytest.raises(FeeTooLow, match=f"and weight {weight}"):
        validate_transaction(STATE, check_transaction(short.raw, rules), rules, for_pool=False)


def test_a_rule_without_the_weight_part_underpays_every_call():
    size_only = FeeRule(PARAMS.base_fee, PARAMS.fee_per_byte)
    signed = sign_transaction(ALICE, chain_id=GENESIS.chain_id, genesis_hash=GENESIS.hash, nonce=0, call=CALLS[0],
                              fee_rule=size_only)
    rules = transaction_rules(STATE)
    with pytest.raises(FeeTooLow):
        validate_transaction(STATE, check_transaction(signed.raw, rules), rules, for_pool=False)
