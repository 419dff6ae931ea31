"""executive: stateless checks, stateful validity, whole-block application."""

from __future__ import annotations

import pytest

from proto import types_pb2
from runtime import system
from runtime.executive import (
    BadSignature,
    CannotAfford,
    CannotPayFee,
    UnknownSender,
    FeeTooLow,
    FutureNonce,
    InvalidBlock,
    MalformedTransaction,
    Oversized,
    StaleNonce,
    UnknownCall,
    WrongChain,
    apply_block,
    check_transaction,
    transaction_rules,
    validate_transaction,
)
from runtime.primitives import BlockContext
from tests.runtime.helpers import (
    ACCOUNTS,
    CHAIN_ID,
    ENDOWMENT,
    GENESIS_HASH,
    genesis_state,
    run_block,
    sign,
    transfer,
)

ALICE, BOB, POOR = ACCOUNTS[1], ACCOUNTS[2], ACCOUNTS[5]


def check(raw: bytes, state=None):
    state = state or genesis_state()
    return check_transaction(raw, transaction_rules(state))


def test_well_formed_transaction_passes_checks():
    raw = transfer(ALICE, BOB.public_key, 5, nonce=0)
    checked = check(raw)
    assert checked.sender == ALICE.public_key
    assert checked.size == len(raw)
    assert len(checked.hash) == 32


@pytest.mark.parametrize(
    "raw, error, words",
    [
        (b"\xff\x00garbage", MalformedTransaction, "do not decode"),
        (b"", MalformedTransaction, "empty body"),
        (transfer(ALICE, BOB.public_key, 5, nonce=0, chain_id="other"), WrongChain, "chain id 'other'"),
        (transfer(ALICE, BOB.public_key, 5, nonce=0, genesis_hash=b"\x07" * 32), WrongChain, "genesis"),
    ],
)
def test_bad_transactions_are_refused_with_a_reason(raw, error, words):
    with pytest.raises(error, match=words):
        check(raw)


def test_signature_by_another_key_is_refused():
    body = types_pb2.TransactionBody(
        chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH, sender=ALICE.public_key, nonce=0, fee=10_000,
        transfer=types_pb2.Transfer(dest=BOB.public_key, amount=5),
    )
    with pytest.raises(BadSignature, match="does not verify"):
        check(sign(body, BOB))


def test_tampered_body_is_refused():
    transaction = types_pb2.Transaction.FromString(transfer(ALICE, BOB.public_key, 5, nonce=0))
    body = types_pb2.TransactionBody.FromString(transaction.body)
    body.transfer.amount = 5_000
    transaction.body = body.SerializeToString()
    with pytest.raises(BadSignature):
        check(transaction.SerializeToString())


def test_body_without_call_is_refused():
    body = types_pb2.TransactionBody(chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH, sender=ALICE.public_key, fee=10_000)
    with pytest.raises(UnknownCall, match="no call"):
        check(sign(body, ALICE))


def test_oversized_transaction_is_refused_before_decoding():
    state = genesis_state(params=system.Params(max_transaction_bytes=200))
    raw = transfer(ALICE, BOB.public_key, 5, nonce=0, chain_id="x" * 300)
    with pytest.raises(Oversized, match="limit is 200"):
        check(raw, state)


def test_stateful_validation_reasons():
    state = genesis_state()
    rules = transaction_rules(state)
    cases = [
        (transfer(ALICE, BOB.public_key, 5, nonce=0, fee=1), FeeTooLow),
        (transfer(ALICE, BOB.public_key, 5, nonce=3), FutureNonce),
        (transfer(POOR, BOB.public_key, 5, nonce=0), UnknownSender),
        (transfer(ALICE, BOB.public_key, ENDOWMENT, nonce=0), CannotAfford),
    ]
    for raw, error in cases:
        with pytest.raises(error):
            validate_transaction(state, check_transaction(raw, rules), rules)


def test_replayed_transaction_is_stale_after_inclusion():
    state = genesis_state()
    raw = transfer(ALICE, BOB.public_key, 5_000_000, nonce=0)
    run_block(state, [raw])
    rules = transaction_rules(state)
    with pytest.raises(StaleNonce, match="already used"):
        validate_transaction(state, check_transaction(raw, rules), rules)


def test_future_nonce_is_admissible_for_the_pool():
    state = genesis_state()
    rules = transaction_rules(state)
    checked = check_transaction(transfer(ALICE, BOB.public_key, 5, nonce=4), rules)
    validate_transaction(state, checked, rules, allow_future=True)


def test_block_with_an_invalid_transaction_is_refused_whole():
    state = genesis_state()
    before = dict(state.items)
    rules = transaction_rules(state)
    good = check_transaction(transfer(ALICE, BOB.public_key, 5_000_000, nonce=0), rules)
    gap = check_transaction(transfer(ALICE, BOB.public_key, 5_000_000, nonce=2), rules)
    with pytest.raises(InvalidBlock, match="transaction 1"):
        apply_block(state, BlockContext(1, 1_700_000_001_000, ALICE.public_key), [good, gap], rules)
    assert state.items == before


@pytest.mark.parametrize("height, time_delta, words", [(2, 1000, "does not follow"), (1, 0, "not after")])
def test_block_header_must_follow_the_chain(height, time_delta, words):
    state = genesis_state()
    chain = system.read_chain(state)
    with pytest.raises(InvalidBlock, match=words):
        apply_block(state, BlockContext(height, chain.time_ms + time_delta, ALICE.public_key), [])


def test_apply_block_is_deterministic():
    raws = [transfer(ALICE, BOB.public_key, 1_000_000 + index, nonce=index) for index in range(20)]
    results = []
    for _ in range(2):
        state = genesis_state()
        rules = transaction_rules(state)
        checked = [check_transaction(raw, rules) for raw in raws]
        writes, receipts = apply_block(state, BlockContext(1, 1_700_000_001_000, ALICE.public_key), checked, rules)
        results.append((writes.changes(), receipts.SerializeToString()))
    assert results[0] == results[1]


def test_a_long_chain_id_or_genesis_hash_is_quoted_by_a_short_prefix_only():
    long_chain = transfer(ALICE, BOB.public_key, 5, nonce=0, chain_id="x" * 20_000)
    with pytest.raises(WrongChain) as refused:
        check(long_chain)
    assert len(str(refused.value)) < 300 and "20000 characters" in str(refused.value)
    long_genesis = transfer(ALICE, BOB.public_key, 5, nonce=0, genesis_hash=b"\x07" * 20_000)
    with pytest.raises(WrongChain) as refused:
        check(long_genesis)
    assert len(str(refused.value)) < 300 and "20000 bytes" in str(refused.value)
