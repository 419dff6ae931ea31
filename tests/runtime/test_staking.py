"""runtime/staking/ and runtime/models.py: bonds, unbonding, offers, the validator set, model votes."""

from __future__ import annotations

import pytest

from proto import state_pb2, types_pb2
from runtime import models, staking, system
from runtime.executive import InvalidCall
from runtime.staking.storage import write_ledger
from runtime.state import Overlay
from tests.runtime.market import BOND, EXECUTORS, MIN_BOND, MODEL, MODEL_ID, POSTER, STAKING, Market

NEW_MODEL = types_pb2.ModelInfo()
NEW_MODEL.CopyFrom(MODEL)
NEW_MODEL.id = bytes(range(1, 33))
NEW_MODEL.name = "another"
NEW_MODEL.source = "pypi:llm-example==1.0/llm_example/example.gguf"
NEW_MODEL.size_bytes = 1_000_000
PROPOSAL = models.proposal_hash(models.ADD, NEW_MODEL)
# Proposals come from bonded accounts (the executors); tests/runtime/test_model_governance.py has the rest.
PROPOSER = EXECUTORS[0]


def vote(approve: bool) -> types_pb2.VoteModel:
    return types_pb2.VoteModel(model=NEW_MODEL.id, proposal=PROPOSAL, approve=approve)


def governance(**params) -> models.Params:
    return models.Params(**{"quorum_ppm": 500_000, "proposal_deposit": 10**9, "min_proposer_bond": MIN_BOND, **params})


def reserved(market: Market, account) -> int:
    return system.read_account(market.state, account.public_key).reserved


def test_bond_unbond_and_withdraw_after_the_unbonding_period():
    market = Market.create()
    free_before = system.read_account(market.state, POSTER.public_key).free
    market.ok(POSTER, bond=types_pb2.Bond(amount=2 * MIN_BOND, validate=True))
    assert staking.read_ledger(market.state, POSTER.public_key).bonded == 2 * MIN_BOND
    assert reserved(market, POSTER) == 2 * MIN_BOND
    receipt = market.ok(POSTER, unbond=types_pb2.Unbond(amount=2 * MIN_BOND))
    release = int(dict((a.key, a.value) for a in receipt.events[0].attributes)["release_height"])
    assert release == market.height + STAKING.unbonding_period_blocks
    # Still reserved, so still slashable, until the release height.
    assert reserved(market, POSTER) == 2 * MIN_BOND
    assert market.call(POSTER, withdraw_unbonded=types_pb2.WithdrawUnbonded()).error_name == "NothingToWithdraw"
    market.advance_to(release)
    market.ok(POSTER, withdraw_unbonded=types_pb2.WithdrawUnbonded())
    assert reserved(market, POSTER) == 0
    assert system.read_account(market.state, POSTER.public_key).free == free_before - 4 * 10**8
    assert staking.read_ledger(market.state, POSTER.public_key) is None


@pytest.mark.parametrize(
    "call, error",
    [
        ({"unbond": types_pb2.Unbond(amount=BOND + 1)}, "NotBonded"),
        ({"unbond": types_pb2.Unbond(amount=BOND - MIN_BOND + 1)}, "OfferActive"),
        ({"bond": types_pb2.Bond(amount=10**18)}, "InsufficientBalance"),
        ({"set_offer": types_pb2.SetOffer(models=[bytes(32)], price_per_token=1_000, capacity=1)}, "UnknownModel"),
        ({"set_offer": types_pb2.SetOffer(models=[MODEL_ID], price_per_token=1_000, capacity=10**6)}, "InvalidOffer"),
    ],
)
def test_staking_errors_change_nothing(call, error):
    market = Market.create()
    executor = EXECUTORS[0]
    before = (staking.read_ledger(market.state, executor.public_key), staking.read_offer(market.state, executor.public_key))
    receipt = market.call(executor, **call)
    assert (receipt.success, receipt.error_name) == (False, error)
    assert (staking.read_ledger(market.state, executor.public_key), staking.read_offer(market.state, executor.public_key)) == before


def test_an_offer_needs_the_minimum_bond_and_clearing_it_removes_the_executor():
    market = Market.create()
    receipt = market.call(POSTER, set_offer=types_pb2.SetOffer(models=[MODEL_ID], price_per_token=5, capacity=1))
    assert receipt.error_name == "NotBonded"
    market.ok(POSTER, bond=types_pb2.Bond(amount=MIN_BOND))
    market.ok(POSTER, set_offer=types_pb2.SetOffer(models=[MODEL_ID], price_per_token=5, capacity=1))
    assert POSTER.public_key in staking.serving(market.state, MODEL_ID)
    market.ok(POSTER, clear_offer=types_pb2.ClearOffer())
    assert POSTER.public_key not in staking.serving(market.state, MODEL_ID)
    assert market.call(POSTER, clear_offer=types_pb2.ClearOffer()).error_name == "NoOffer"
    # Without an offer the whole bond may go.
    market.ok(POSTER, unbond=types_pb2.Unbond(amount=MIN_BOND))


def test_the_validator_set_is_the_top_bonded_candidates_at_each_epoch():
    market = Market.create(staking_params=staking.Params(min_bond=MIN_BOND, unbonding_period_blocks=50, epoch_blocks=5, max_validators=2))
    for account, amount in zip(EXECUTORS, (3 * MIN_BOND, 5 * MIN_BOND, 4 * MIN_BOND)):
        market.ok(account, bond=types_pb2.Bond(amount=amount, validate=True))
    market.advance_to(5)
    chosen = {v.public_key: v.voting_power for v in staking.read_validator_set(market.state).validators}
    assert chosen == {EXECUTORS[1].public_key: BOND + 5 * MIN_BOND, EXECUTORS[2].public_key: BOND + 4 * MIN_BOND}


def test_a_dispute_jailed_candidate_is_left_out_of_elections_until_it_unjails_whatever_the_height():
    market = Market.create(staking_params=staking.Params(min_bond=MIN_BOND, unbonding_period_blocks=50, epoch_blocks=5, max_validators=2))
    for account, amount in zip(EXECUTORS, (3 * MIN_BOND, 5 * MIN_BOND, 4 * MIN_BOND)):
        market.ok(account, bond=types_pb2.Bond(amount=amount, validate=True))
    overlay = Overlay(market.state)
    ledger = staking.read_ledger(overlay, EXECUTORS[1].public_key)
    ledger.jailed = True  # a dispute's jail whose term (jailed_until 0) is long over
    write_ledger(overlay, EXECUTORS[1].public_key, ledger)
    market.state.apply(overlay.changes())
    assert staking.jailed(ledger, 10**9)
    market.advance_to(5)
    chosen = {v.public_key for v in staking.read_validator_set(market.state).validators}
    assert chosen == {EXECUTORS[2].public_key, EXECUTORS[0].public_key}


def test_a_ledger_that_only_records_a_jail_is_kept():
    market = Market.create()
    overlay = Overlay(market.state)
    write_ledger(overlay, POSTER.public_key, state_pb2.StakeLedger(jailed=True))
    market.state.apply(overlay.changes())
    assert staking.read_ledger(market.state, POSTER.public_key) == state_pb2.StakeLedger(jailed=True)


def test_a_model_is_registered_when_more_than_two_thirds_of_the_voting_stake_approves():
    market = Market.create(models_params=governance(voting_period_blocks=10))
    market.ok(PROPOSER, propose_model=types_pb2.ProposeModel(model=NEW_MODEL))
    assert reserved(market, PROPOSER) == BOND + 10**9
    for account, approve in zip(EXECUTORS, (True, True, False)):
        market.ok(account, vote_model=vote(approve))
    # 2 of 3 equal stakes would not be more than 2/3; the third changes its vote, so it passes.
    market.ok(EXECUTORS[2], vote_model=vote(True))
    events = market.advance(10)
    assert "ModelAccepted" in [event.name for event in events]
    assert models.read_model(market.state, NEW_MODEL.id) == NEW_MODEL
    assert reserved(market, PROPOSER) == BOND


def test_a_model_vote_without_quorum_is_rejected_and_the_deposit_burned():
    market = Market.create(models_params=governance(voting_period_blocks=3))
    market.ok(PROPOSER, propose_model=types_pb2.ProposeModel(model=NEW_MODEL))
    market.ok(EXECUTORS[0], vote_model=vote(True))
    events = market.advance(3)
    assert "ModelRejected" in [event.name for event in events]
    assert models.read_model(market.state, NEW_MODEL.id) is None
    assert reserved(market, PROPOSER) == BOND
    assert market.call(EXECUTORS[1], vote_model=vote(True)).error_name == "NoProposal"


def test_only_bonded_accounts_vote_and_a_registered_model_cannot_be_proposed_again():
    market = Market.create(models_params=governance())
    registered = types_pb2.ModelInfo()
    registered.CopyFrom(NEW_MODEL)
    registered.id = MODEL.id
    assert market.call(PROPOSER, propose_model=types_pb2.ProposeModel(model=registered)).error_name == "AlreadyRegistered"
    market.ok(PROPOSER, propose_model=types_pb2.ProposeModel(model=NEW_MODEL))
    assert market.call(POSTER, vote_model=vote(True)).error_name == "NoStake"


def test_exactly_two_thirds_approving_is_not_enough():
    market = Market.create(models_params=governance(voting_period_blocks=6))
    market.ok(PROPOSER, propose_model=types_pb2.ProposeModel(model=NEW_MODEL))
    for account, approve in zip(EXECUTORS, (True, True, False)):
        market.ok(account, vote_model=vote(approve))
    events = market.advance(6)
    assert "ModelRejected" in [event.name for event in events]
    assert models.read_model(market.state, NEW_MODEL.id) is None


def test_a_model_whose_miss_slack_would_leave_no_rivals_is_refused():
    # The slack is also the verifier's rival tolerance: a proposal with a slack of many logits would
    # make every sampled token rival-free, so every result valid.
    vacuous = types_pb2.ModelInfo()
    vacuous.CopyFrom(NEW_MODEL)
    vacuous.thresholds.miss_slack_micro = 1_000_001
    vacuous.thresholds.worst_margin_micro = -2_000_000
    market = Market.create()
    with pytest.raises(InvalidCall, match="InvalidModel: thresholds: miss_slack_micro must be at most 1,000,000"):
        market.call(POSTER, propose_model=types_pb2.ProposeModel(model=vacuous))
    assert models.open_proposals(market.state) == []
