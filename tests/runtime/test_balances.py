"""balances: transfers, the existential deposit, failures that keep the fee and change nothing else."""

from __future__ import annotations

import pytest

from runtime import balances
from runtime.executive import CallWouldFail, InvalidCall, check_transaction, transaction_rules, validate_transaction
from tests.runtime.helpers import ACCOUNTS, AUTHOR, ENDOWMENT, free, genesis_state, nonce, run_block, transfer

ALICE, BOB, CHARLIE = ACCOUNTS[1], ACCOUNTS[2], ACCOUNTS[3]
NEWCOMER = ACCOUNTS[5]


def test_transfer_moves_amount_and_pays_fee_to_author():
    state = genesis_state()
    receipts = run_block(state, [transfer(ALICE, BOB.public_key, 5_000_000, nonce=0, fee=12_345)])
    receipt = receipts.transactions[0]
    assert receipt.success
    assert free(state, ALICE) == ENDOWMENT - 5_000_000 - 12_345
    assert free(state, BOB) == ENDOWMENT + 5_000_000
    assert free(state, AUTHOR) == ENDOWMENT + 12_345
    assert nonce(state, ALICE) == 1
    assert [(event.module, event.name) for event in receipt.events] == [("balances", "Transfer")]
    assert [(event.module, event.name) for event in receipts.block_events] == [("system", "FeesPaid")]


def test_transfer_exceeding_balance_fails_but_keeps_fee_and_nonce():
    state = genesis_state()
    receipts = run_block(state, [transfer(ALICE, BOB.public_key, ENDOWMENT, nonce=0, fee=10_000)])
    receipt = receipts.transactions[0]
    assert not receipt.success
    assert (receipt.error_module, receipt.error_name) == ("balances", "InsufficientBalance")
    assert "exceeds the free balance" in receipt.error_message
    assert free(state, ALICE) == ENDOWMENT - 10_000
    assert free(state, BOB) == ENDOWMENT
    assert nonce(state, ALICE) == 1
    assert not receipt.events


def test_transfer_to_new_account_needs_existential_deposit():
    state = genesis_state()
    deposit = balances.Params().existential_deposit
    receipts = run_block(state, [transfer(ALICE, NEWCOMER.public_key, deposit - 1, nonce=0)])
    assert receipts.transactions[0].error_name == "ExistentialDeposit"
    assert free(state, NEWCOMER) == 0
    receipts = run_block(state, [transfer(ALICE, NEWCOMER.public_key, deposit, nonce=1)])
    assert receipts.transactions[0].success
    assert free(state, NEWCOMER) == deposit
    assert ("system", "NewAccount") in [(event.module, event.name) for event in receipts.transactions[0].events]


@pytest.mark.parametrize(
    "dest, amount, words",
    [(BOB.public_key, 0, "balances.ZeroAmount"), (b"\x01" * 5, 5, "balances.InvalidDestination: destination must be a 32-byte")],
)
def test_doomed_transfers_are_refused_by_stateless_checks_before_any_fee(dest, amount, words):
    # They used to be admitted and then charge a fee in the block (issue 13, item 7).
    state = genesis_state()
    with pytest.raises(InvalidCall, match=words):
        check_transaction(transfer(ALICE, dest, amount, nonce=0), transaction_rules(state))


def test_pool_refuses_a_transfer_below_the_existential_deposit_with_that_reason():
    state = genesis_state()
    deposit = balances.read_params(state).existential_deposit
    rules = transaction_rules(state)
    checked = check_transaction(transfer(ALICE, NEWCOMER.public_key, deposit - 1, nonce=0), rules)
    with pytest.raises(CallWouldFail, match="balances.ExistentialDeposit: .* below the existential deposit"):
        validate_transaction(state, checked, rules, allow_future=True)
    enough = check_transaction(transfer(ALICE, NEWCOMER.public_key, deposit, nonce=0), rules)
    validate_transaction(state, enough, rules, allow_future=True)


def test_pool_judges_a_queued_later_nonce_when_its_turn_comes():
    # nonce 1 may depend on nonce 0 (which could create the destination), so the pool does not dry-run it.
    state = genesis_state()
    rules = transaction_rules(state)
    later = check_transaction(transfer(ALICE, NEWCOMER.public_key, 1, nonce=1), rules)
    validate_transaction(state, later, rules, allow_future=True)


def test_transfer_to_self_changes_nothing_but_the_fee():
    state = genesis_state()
    run_block(state, [transfer(ALICE, ALICE.public_key, 1_000_000, nonce=0, fee=10_000)])
    assert free(state, ALICE) == ENDOWMENT - 10_000


def test_chain_of_transfers_in_one_block_sees_earlier_writes():
    state = genesis_state()
    raws = [
        transfer(ALICE, BOB.public_key, 3_000_000, nonce=0),
        transfer(BOB, CHARLIE.public_key, ENDOWMENT + 1_000_000, nonce=0),
    ]
    receipts = run_block(state, raws)
    assert all(receipt.success for receipt in receipts.transactions)
    assert free(state, CHARLIE) == 2 * ENDOWMENT + 1_000_000
