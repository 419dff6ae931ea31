"""runtime/slashing/calls.py: Unjail, and the jail it ends (elections leave jailed accounts out)."""

from __future__ import annotations

import pytest

from proto import state_pb2, types_pb2
from runtime import slashing, staking, system, weights
from runtime.executive import CallWouldFail, check_transaction, transaction_rules, validate_transaction
from runtime.slashing.penalties import jail, slash
from runtime.staking.genesis import GenesisStake
from runtime.state import Overlay
from tests.runtime.market import BOND, EXECUTORS, MODEL_ID, STAKING, Market

JAIL_BLOCKS = 15
# STAKING's epochs are of 10 blocks; evidence may land for 40 blocks, within its 50-block unbonding period.
PARAMS = slashing.Params(jail_blocks=JAIL_BLOCKS, max_evidence_age_blocks=40)
JAILED, OTHER, THIRD = EXECUTORS
UNJAIL = {"unjail": types_pb2.Unjail()}


def validating_market() -> Market:
    """Three executors that also validate."""
    offer = state_pb2.Offer(models=[MODEL_ID], price_per_token=1_000, capacity=1)
    stakes = tuple(GenesisStake(account.public_key, BOND, True, offer) for account in EXECUTORS)
    return Market.create(executors=stakes, staking_params=STAKING, slashing_params=PARAMS)


def jail_now(market: Market, account=JAILED) -> int:
    """Jail `account` as a dispute's verdict does, in the next block's state; the height it may unjail from."""
    overlay = Overlay(market.state)
    until = jail(overlay, account.public_key, market.height)
    market.state.apply(overlay.changes())
    market.check_invariants()
    return until


def ledger(market: Market, account=JAILED) -> state_pb2.StakeLedger:
    return staking.read_ledger(market.state, account.public_key)


def validators(market: Market) -> set[bytes]:
    return {validator.public_key for validator in staking.read_validator_set(market.state).validators}


def attributes(receipt, name: str) -> list[dict]:
    return [{a.key: a.value for a in e.attributes} for e in receipt.events if (e.module, e.name) == ("slashing", name)]


def test_an_unjail_before_the_jail_ends_is_refused_naming_the_heights_and_changes_nothing():
    market = validating_market()
    until = jail_now(market)
    before = ledger(market)
    receipt = market.call(JAILED, **UNJAIL)
    assert (receipt.success, receipt.error_module, receipt.error_name) == (False, "slashing", "StillJailed")
    assert f"jailed until height {until}" in receipt.error_message
    assert f"this is height {market.height}" in receipt.error_message
    assert ledger(market) == before


def test_the_pool_refuses_an_early_unjail_before_it_costs_a_fee():
    market = validating_market()
    jail_now(market)
    rules = transaction_rules(market.state)
    checked = check_transaction(market.transaction(JAILED, **UNJAIL), rules)
    with pytest.raises(CallWouldFail, match="slashing.StillJailed"):
        validate_transaction(market.state, checked, rules)


def test_an_unjail_from_an_account_that_is_not_jailed_is_refused():
    market = validating_market()
    receipt = market.call(OTHER, **UNJAIL)
    assert (receipt.error_name, receipt.success) == ("NotJailed", False)
    assert "not jailed by a dispute" in receipt.error_message


def test_a_double_sign_term_needs_no_unjail_and_the_refusal_says_when_it_ends():
    market = validating_market()
    overlay = Overlay(market.state)
    recorded = staking.read_ledger(overlay, OTHER.public_key)
    recorded.jailed_until = market.height + 30
    staking.storage.write_ledger(overlay, OTHER.public_key, recorded)
    market.state.apply(overlay.changes())
    receipt = market.call(OTHER, **UNJAIL)
    assert receipt.error_name == "NotJailed"
    assert f"below height {recorded.jailed_until} and ends by itself" in receipt.error_message


def test_a_jailed_account_stays_out_of_elections_until_it_unjails_then_returns():
    market = validating_market()
    market.advance_to(3)
    until = jail_now(market)  # jailed at 3, may unjail from 18
    assert JAILED.public_key in validators(market)  # the epoch's set does not change mid-epoch
    market.advance_to(10)
    assert JAILED.public_key not in validators(market)
    market.advance_to(20)  # past `until`, but the flag holds until an unjail
    assert until == 3 + JAIL_BLOCKS < market.height
    assert JAILED.public_key not in validators(market)
    assert slashing.jailed(market.state, JAILED.public_key, market.height)
    receipt = market.ok(JAILED, **UNJAIL)
    assert attributes(receipt, "Unjailed") == [{"account": JAILED.public_key.hex()}]
    assert not ledger(market).jailed and not slashing.jailed(market.state, JAILED.public_key, market.height)
    market.advance_to(30)
    assert JAILED.public_key in validators(market)
    # A second unjail has nothing left to clear.
    assert market.call(JAILED, **UNJAIL).error_name == "NotJailed"


def test_an_unjail_keeps_the_stake_that_was_left_after_the_slash():
    market = validating_market()
    overlay = Overlay(market.state)
    record = slash(overlay, JAILED.public_key, 500_000, "invalid_result", b"\x0c" * 32, market.height, jail=True)
    market.state.apply(overlay.changes())
    market.check_invariants()
    market.advance_to(record.jailed_until)
    market.ok(JAILED, **UNJAIL)
    assert ledger(market).bonded == BOND - record.amount
    assert system.read_account(market.state, JAILED.public_key).reserved == BOND - record.amount


def test_the_unjail_call_is_declared_with_its_weight():
    spec = next(call for call in slashing.SPEC.calls if call.name == "unjail")
    assert spec.message is types_pb2.Unjail
    assert 0 < spec.weight(types_pb2.Unjail()) < weights.UNDECLARED_CALL
    spec.check(types_pb2.Unjail())  # nothing stateless can fail
