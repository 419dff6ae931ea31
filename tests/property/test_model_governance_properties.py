"""Property tests of model governance (runtime/models.py), one per attack of issue 24 item 7.

Each ran against the real runtime and state before the change and found the attack: an account with
no stake held every proposal slot; a wrong description of an id blocked the true one; a wrong entry
could be neither amended nor removed; a third of the stake voting alone registered a model; a model
naming no file could be proposed and voted in. tests/runtime/market.py checks the supply and every
reserved unit after each block.
"""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from proto import types_pb2
from runtime import models, staking, system
from runtime.arithmetic import PPM
from runtime.executive import check_transaction, transaction_rules
from runtime.primitives import InvalidTransaction
from runtime.staking.genesis import GenesisStake
from tests.runtime.market import ACCOUNTS, EXECUTORS, MIN_BOND, MODEL, MODEL_ID, POSTER, Market

DEPOSIT = 10**9
VOTE_BLOCKS = 4
SOURCE = "pypi:llm-example==1.0/llm_example/example.gguf"
NEW_ID = bytes(range(1, 33))
# The genesis quorum and threshold (what the chain ships), short votes, small deposits.
GOVERNANCE = models.Params(voting_period_blocks=VOTE_BLOCKS, proposal_deposit=DEPOSIT, min_proposer_bond=MIN_BOND,
                           max_open_proposals=8, max_proposals_per_account=2)
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def described(model_id: bytes = NEW_ID, **changes) -> types_pb2.ModelInfo:
    model = types_pb2.ModelInfo()
    model.CopyFrom(MODEL)
    model.id, model.name, model.source, model.size_bytes = model_id, "true-model", SOURCE, 1_000_000
    for name, value in changes.items():
        if name == "end_tokens":
            del model.end_tokens[:]
            model.end_tokens.extend(value)
        else:
            setattr(model, name, value)
    return model


# A description of the same id that differs from the true one in what a job depends on.
wrong_changes = st.fixed_dictionaries({}, optional={
    "context_length": st.integers(1, models.MAX_CONTEXT_LENGTH),
    "end_tokens": st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=models.MAX_END_TOKENS),
    "name": st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), min_size=1, max_size=20),
    "size_bytes": st.integers(1, models.MAX_MODEL_BYTES),
})


def together(market: Market, *calls) -> list:
    """(account, call fields) pairs in one block, each account at most once; their receipts."""
    return list(market.block([market.transaction(account, **call) for account, call in calls]).transactions)


def voting(model_id: bytes, proposal: bytes, approve: bool = True) -> dict:
    return {"vote_model": types_pb2.VoteModel(model=model_id, proposal=proposal, approve=approve)}


def burned(market: Market) -> int:
    return system.read_supply(market.state).burned


# --- attack 1: an account with no stake held every proposal slot ------------------------------


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 40)), min_size=1, max_size=16))
def test_unbonded_accounts_hold_no_proposal_and_none_holds_more_than_its_limit(attempts):
    # Accounts 1 and 5 have no bond; 2, 3 and 4 are bonded executors.
    market = Market.create(models_params=GOVERNANCE)
    people = [POSTER, *EXECUTORS, ACCOUNTS[5]]
    for who, number in attempts:
        market.call(people[who], propose_model=types_pb2.ProposeModel(model=described(bytes([number]) * 32)))
    held: dict[bytes, int] = {}
    for key in models.open_proposals(market.state):
        proposer = models.read_proposal(market.state, key).proposer
        held[proposer] = held.get(proposer, 0) + 1
    assert all(staking.bonded(market.state, account) >= GOVERNANCE.min_proposer_bond for account in held)
    assert all(count <= GOVERNANCE.max_proposals_per_account for count in held.values())
    assert POSTER.public_key not in held and ACCOUNTS[5].public_key not in held


# --- attack 2: a wrong description of an id blocked the true one --------------------------------


@SETTINGS
@given(wrong_changes, st.booleans())
def test_a_squatting_description_never_blocks_the_true_one(changes, squatter_first):
    true, wrong = described(), described(**changes)
    assume(wrong != true)
    market = Market.create(models_params=GOVERNANCE)
    squatter, honest = EXECUTORS[0], EXECUTORS[1]
    proposals = [(squatter, {"propose_model": types_pb2.ProposeModel(model=wrong)}),
                 (honest, {"propose_model": types_pb2.ProposeModel(model=true)})]
    receipts = together(market, *(proposals if squatter_first else proposals[::-1]))
    assert all(receipt.success for receipt in receipts)
    true_hash = models.proposal_hash(models.ADD, true)
    assert all(receipt.success for receipt in together(
        market, (EXECUTORS[1], voting(NEW_ID, true_hash)), (EXECUTORS[2], voting(NEW_ID, true_hash))))
    before = burned(market)
    market.advance(VOTE_BLOCKS)
    assert models.read_model(market.state, NEW_ID) == true
    assert burned(market) == before + DEPOSIT  # the squatter's, never the honest proposer's
    assert models.open_proposals(market.state) == []


# --- attack 3: a wrong entry could be neither amended nor removed --------------------------------


@SETTINGS
@given(wrong_changes, st.booleans())
def test_a_wrong_registration_is_amended_or_removed_by_vote(changes, remove):
    wrong, true = described(MODEL_ID, **changes), described(MODEL_ID)
    assume(wrong != true)
    market = Market.create(models_params=GOVERNANCE)
    market.state.items[models.MODEL_PREFIX + MODEL_ID] = wrong.SerializeToString(deterministic=True)
    if remove:
        call = {"remove_model": types_pb2.RemoveModel(model=MODEL_ID)}
        proposal = models.proposal_hash(models.REMOVE, types_pb2.ModelInfo(id=MODEL_ID))
    else:
        call = {"amend_model": types_pb2.AmendModel(model=true)}
        proposal = models.proposal_hash(models.AMEND, true)
    receipts = together(market, (EXECUTORS[0], call), (EXECUTORS[1], voting(MODEL_ID, proposal)),
                        (EXECUTORS[2], voting(MODEL_ID, proposal)))
    assert all(receipt.success for receipt in receipts)
    market.advance(VOTE_BLOCKS)
    assert models.read_model(market.state, MODEL_ID) == (None if remove else true)


@SETTINGS
@given(st.sampled_from(["amend_model", "remove_model"]), st.binary(min_size=32, max_size=32))
def test_amending_or_removing_a_model_that_is_not_registered_is_refused_and_changes_nothing(call, model_id):
    assume(model_id != MODEL_ID)
    market = Market.create(models_params=GOVERNANCE)
    before = {key: value for key, value in market.state.items.items() if not key.startswith(b"system/")}
    message = (types_pb2.AmendModel(model=described(model_id)) if call == "amend_model"
               else types_pb2.RemoveModel(model=model_id))
    receipt = market.call(EXECUTORS[0], **{call: message})
    assert (receipt.success, receipt.error_name) == (False, "UnknownModel") and "not registered" in receipt.error_message
    after = {key: value for key, value in market.state.items.items() if not key.startswith(b"system/")}
    assert after == before


# --- attack 4: a minority voting alone registered a model -----------------------------------------


@SETTINGS
@given(
    st.lists(st.integers(MIN_BOND, 10**14), min_size=3, max_size=5),
    st.data(),
)
def test_a_model_is_registered_only_with_half_the_bonded_stake_voting_and_two_thirds_of_it_approving(bonds, data):
    voters = ACCOUNTS[1:1 + len(bonds)]
    ballots = data.draw(st.lists(st.sampled_from([None, True, False]), min_size=len(bonds), max_size=len(bonds)))
    stakes = tuple(GenesisStake(account.public_key, bond, False, None) for account, bond in zip(voters, bonds))
    market = Market.create(executors=stakes, models_params=GOVERNANCE)
    proposer = voters[0]
    model = described()
    proposal = models.proposal_hash(models.ADD, model)
    assert together(market, (proposer, {"propose_model": types_pb2.ProposeModel(model=model)}))[0].success
    # An account without stake votes too, and is refused: it changes no count.
    unbonded = ACCOUNTS[0] if len(bonds) == 5 else ACCOUNTS[5]
    calls = [(account, voting(NEW_ID, proposal, ballot)) for account, ballot in zip(voters, ballots) if ballot is not None]
    receipts = together(market, *calls, (unbonded, voting(NEW_ID, proposal)))
    assert all(receipt.success for receipt in receipts[:-1]) and receipts[-1].error_name == "NoStake"
    before = burned(market)
    market.advance(VOTE_BLOCKS)
    total = sum(bonds)
    voted = sum(bond for bond, ballot in zip(bonds, ballots) if ballot is not None)
    approved = sum(bond for bond, ballot in zip(bonds, ballots) if ballot)
    passes = voted * PPM >= GOVERNANCE.quorum_ppm * total and approved * PPM > GOVERNANCE.threshold_ppm * voted
    assert (models.read_model(market.state, NEW_ID) is not None) == passes
    assert burned(market) == before + (0 if passes else DEPOSIT)
    if 2 * approved < total and not any(ballot is False for ballot in ballots):
        assert not passes  # less than half of all stake, voting alone, never registers


# --- attack 5: a model naming no file was voted in ------------------------------------------------


sources = st.one_of(
    st.text(max_size=60),
    st.text(max_size=40).map(lambda text: "https://" + text),
    st.text(max_size=40).map(lambda text: "http://example.com/" + text),
    st.text(max_size=40).map(lambda text: "pypi:" + text),
    st.just("pypi:llm-example==1.0/../secret.gguf"),
    st.just("pypi:llm-example/llm_example/example.gguf"),
    st.just("https://example.com/" + "a" * 300),
)


@SETTINGS
@given(sources, st.sampled_from([0, 1, 10**6, models.MAX_MODEL_BYTES + 1, 2**64 - 1]), st.booleans())
def test_a_proposal_that_names_no_fetchable_file_is_refused_before_the_fee(source, size, amend):
    valid_source = source.startswith(("https://", "pypi:")) and source.isascii() and " " not in source and (
        ".." not in source and len(source) <= models.MAX_SOURCE_CHARS)
    assume(not valid_source or not 0 < size <= models.MAX_MODEL_BYTES)
    market = Market.create(models_params=GOVERNANCE)
    model = described(MODEL_ID if amend else NEW_ID, source=source, size_bytes=size)
    call = {"amend_model": types_pb2.AmendModel(model=model)} if amend else {
        "propose_model": types_pb2.ProposeModel(model=model)}
    raw = market.transaction(EXECUTORS[0], **call)
    try:
        check_transaction(raw, transaction_rules(market.state))
    except InvalidTransaction as refused:
        assert "models.InvalidModel" in str(refused) and ("source" in str(refused) or "size_bytes" in str(refused))
        return
    raise AssertionError(f"a proposal with source {source!r} and size {size} was admitted")
