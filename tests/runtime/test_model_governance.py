"""runtime/models.py governance: proposals keyed by (id, description hash), limits, deposits, quorum, amend, remove."""

from __future__ import annotations

import pytest

from proto import state_pb2, types_pb2
from runtime import models, staking, system
from runtime.executive import InvalidCall
from tests.runtime.market import (
    ACCOUNTS,
    EXECUTORS,
    MIN_BOND,
    MODEL,
    MODEL_ID,
    POSTER,
    Market,
    commit_and_reveal,
    output,
)

DEPOSIT = 10**9
# Short votes; quorum and threshold at their genesis defaults (half of all bonded stake, more than 2/3 approving).
GOVERNANCE = models.Params(voting_period_blocks=5, proposal_deposit=DEPOSIT, min_proposer_bond=MIN_BOND,
                           max_open_proposals=8)
SOURCE = "pypi:llm-example==1.0/llm_example/example.gguf"
NEW_ID = bytes(range(1, 33))


def described(model_id: bytes = NEW_ID, **changes) -> types_pb2.ModelInfo:
    """A description validators can fetch (source and size), with `changes` applied."""
    model = types_pb2.ModelInfo()
    model.CopyFrom(MODEL)
    model.id = model_id
    model.name = "another"
    model.source = SOURCE
    model.size_bytes = 1_000_000
    for name, value in changes.items():
        if name == "end_tokens":
            del model.end_tokens[:]
            model.end_tokens.extend(value)
        else:
            setattr(model, name, value)
    return model


def governed(**params) -> Market:
    return Market.create(models_params=models.Params(**{**GOVERNANCE.__dict__, **params}))


def propose(market: Market, account, model: types_pb2.ModelInfo, kind: int = models.ADD) -> bytes:
    """Open a proposal (add, amend or remove); its hash."""
    if kind == models.ADD:
        market.ok(account, propose_model=types_pb2.ProposeModel(model=model))
    elif kind == models.AMEND:
        market.ok(account, amend_model=types_pb2.AmendModel(model=model))
    else:
        market.ok(account, remove_model=types_pb2.RemoveModel(model=model.id))
        model = types_pb2.ModelInfo(id=model.id)
    return models.proposal_hash(kind, model)


def vote(market: Market, account, model_id: bytes, proposal: bytes, approve: bool = True) -> None:
    market.ok(account, vote_model=types_pb2.VoteModel(model=model_id, proposal=proposal, approve=approve))


def reserved(market: Market, account) -> int:
    return system.read_account(market.state, account.public_key).reserved


def burned(market: Market) -> int:
    return system.read_supply(market.state).burned


def ended(events, name: str) -> list[dict]:
    return [{a.key: a.value for a in event.attributes} for event in events if event.name == name]


def model_state(market: Market) -> dict:
    return {key: value for key, value in market.state.items.items() if key.startswith(b"models/")}


def test_a_squatted_description_does_not_block_the_true_one_and_the_squatter_loses_its_deposit():
    market = governed()
    squatter, honest = EXECUTORS[0], EXECUTORS[1]
    wrong = propose(market, squatter, described(context_length=1 << 20, end_tokens=[0]))
    true = propose(market, honest, described())
    assert wrong != true and len(models.proposals_of_model(market.state, NEW_ID)) == 2
    vote(market, EXECUTORS[1], NEW_ID, true)
    vote(market, EXECUTORS[2], NEW_ID, true)
    burned_before = burned(market)
    events = market.advance(GOVERNANCE.voting_period_blocks)
    assert models.read_model(market.state, NEW_ID) == described()
    [rejected] = ended(events, "ModelRejected")
    assert (rejected["proposal"], rejected["reason"], rejected["burned"]) == (wrong.hex(), "no quorum", str(DEPOSIT))
    assert burned(market) == burned_before + DEPOSIT
    assert reserved(market, honest) == staking.bonded(market.state, honest.public_key)  # deposit returned


def together(market: Market, *calls) -> None:
    """(account, call fields) pairs in one block, each account at most once; every one must succeed."""
    receipts = market.block([market.transaction(account, **call) for account, call in calls])
    assert all(receipt.success for receipt in receipts.transactions), receipts


def voting(model_id: bytes, proposal: bytes, approve: bool = True) -> dict:
    return {"vote_model": types_pb2.VoteModel(model=model_id, proposal=proposal, approve=approve)}


def test_rivals_that_both_pass_in_one_block_the_most_approved_wins_and_the_other_is_superseded():
    market = governed()
    first_model, second_model = described(name="first"), described(name="second")
    first, second = models.proposal_hash(models.ADD, first_model), models.proposal_hash(models.ADD, second_model)
    together(market, (EXECUTORS[0], {"propose_model": types_pb2.ProposeModel(model=first_model)}),
             (EXECUTORS[1], {"propose_model": types_pb2.ProposeModel(model=second_model)}),
             (EXECUTORS[2], voting(NEW_ID, second)))
    together(market, (EXECUTORS[0], voting(NEW_ID, second)), (EXECUTORS[1], voting(NEW_ID, second)))
    together(market, (EXECUTORS[0], voting(NEW_ID, first)), (EXECUTORS[1], voting(NEW_ID, first)))
    events = market.advance(GOVERNANCE.voting_period_blocks)
    assert models.read_model(market.state, NEW_ID).name == "second"
    [rejected] = ended(events, "ModelRejected")
    assert (rejected["proposal"], rejected["reason"], rejected["burned"]) == (first.hex(), "superseded", "0")
    assert reserved(market, EXECUTORS[0]) == staking.bonded(market.state, EXECUTORS[0].public_key)


def test_an_account_without_the_proposer_bond_cannot_propose_and_nothing_changes():
    market = governed()
    before = model_state(market)
    receipt = market.call(POSTER, propose_model=types_pb2.ProposeModel(model=described()))
    assert (receipt.error_name, receipt.error_message) == (
        "NoStake", f"a proposer needs at least {MIN_BOND} bonded, this account has 0")
    assert model_state(market) == before and reserved(market, POSTER) == 0


def test_an_account_holds_at_most_max_proposals_per_account_open():
    market = governed(max_proposals_per_account=2)
    for index in range(2):
        propose(market, EXECUTORS[0], described(bytes([9, index]) * 16))
    before = (model_state(market), reserved(market, EXECUTORS[0]))
    receipt = market.call(EXECUTORS[0], propose_model=types_pb2.ProposeModel(model=described(bytes([9, 2]) * 16)))
    assert receipt.error_name == "TooManyProposals" and "max_proposals_per_account" in receipt.error_message
    assert (model_state(market), reserved(market, EXECUTORS[0])) == before
    propose(market, EXECUTORS[1], described(bytes([9, 2]) * 16))  # another account still can


def test_the_same_proposal_twice_is_refused_and_points_to_the_vote():
    market = governed()
    hash_ = propose(market, EXECUTORS[0], described())
    receipt = market.call(EXECUTORS[1], propose_model=types_pb2.ProposeModel(model=described()))
    assert receipt.error_name == "AlreadyProposed" and hash_.hex() in receipt.error_message


def test_quorum_is_a_share_of_all_bonded_stake_not_of_the_votes_cast():
    # One of three equal bonds (a third of all stake) approves alone: every vote cast approves, but
    # fewer than half of all bonded stake voted, so nothing is registered and the deposit burns.
    market = governed()
    hash_ = propose(market, EXECUTORS[0], described())
    vote(market, EXECUTORS[0], NEW_ID, hash_)
    events = market.advance(GOVERNANCE.voting_period_blocks)
    [rejected] = ended(events, "ModelRejected")
    assert rejected["reason"] == "no quorum" and rejected["voted"] == rejected["approved"]
    assert models.read_model(market.state, NEW_ID) is None


def test_exactly_two_thirds_approving_is_not_enough_and_the_deposit_burns():
    market = governed()
    hash_ = propose(market, EXECUTORS[0], described())
    for account, approve in zip(EXECUTORS, (True, True, False)):
        vote(market, account, NEW_ID, hash_, approve)
    before = burned(market)
    events = market.advance(GOVERNANCE.voting_period_blocks)
    assert ended(events, "ModelRejected")[0]["reason"] == "not approved"
    assert models.read_model(market.state, NEW_ID) is None and burned(market) == before + DEPOSIT


def test_votes_weigh_the_bond_at_the_end_so_stake_unbonded_mid_vote_no_longer_counts():
    # One bond approves, two vote no (a third approving: rejected if counted when cast); the two
    # unbond down to the minimum before the end, and only what is still bonded is counted.
    market = governed(voting_period_blocks=10)
    hash_ = propose(market, EXECUTORS[0], described())
    bond = staking.bonded(market.state, EXECUTORS[0].public_key)
    vote(market, EXECUTORS[0], NEW_ID, hash_)
    for account in EXECUTORS[1:]:
        vote(market, account, NEW_ID, hash_, approve=False)
        market.ok(account, unbond=types_pb2.Unbond(amount=bond - MIN_BOND))
    events = market.advance(10)
    [accepted] = ended(events, "ModelAccepted")
    assert (int(accepted["voted"]), int(accepted["approved"])) == (bond + 2 * MIN_BOND, bond)
    assert models.read_model(market.state, NEW_ID) == described()


def test_votes_name_an_open_proposal_and_come_from_bonded_accounts():
    market = governed()
    hash_ = propose(market, EXECUTORS[0], described())
    before = model_state(market)
    assert market.call(POSTER, vote_model=types_pb2.VoteModel(model=NEW_ID, proposal=hash_, approve=True)
                       ).error_name == "NoStake"
    assert market.call(EXECUTORS[1], vote_model=types_pb2.VoteModel(model=NEW_ID, proposal=bytes(32), approve=True)
                       ).error_name == "NoProposal"
    assert model_state(market) == before
    with pytest.raises(InvalidCall, match="a proposal hash is 32 bytes"):
        market.call(EXECUTORS[1], vote_model=types_pb2.VoteModel(model=NEW_ID, approve=True))


@pytest.mark.parametrize("changes, words", [
    ({"source": ""}, "names its GGUF file's source"),
    ({"source": "pypi:llm-example==1.0/../../etc/passwd.gguf"}, "source must be pypi:DIST==VERSION/PATH.gguf"),
    ({"source": "http://example.com/model.gguf"}, "source must be"),
    ({"source": "https://example.com/a b.gguf"}, "source must be"),
    ({"size_bytes": 0}, "size_bytes (the GGUF file's size) must be in [1, "),
])
def test_a_proposal_that_names_no_fetchable_file_is_refused_before_the_fee(changes, words):
    market = governed()
    before = dict(market.state.items)
    with pytest.raises(InvalidCall, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        market.call(EXECUTORS[0], propose_model=types_pb2.ProposeModel(model=described(**changes)))
    assert market.state.items == before


def test_a_wrong_registration_is_amended_by_vote():
    market = governed()
    wrong = described(MODEL_ID, context_length=1 << 20, end_tokens=[0])
    market.state.items[models.MODEL_PREFIX + MODEL_ID] = wrong.SerializeToString(deterministic=True)
    true = described(MODEL_ID)
    hash_ = propose(market, EXECUTORS[0], true, models.AMEND)
    for account in EXECUTORS[:2]:
        vote(market, account, MODEL_ID, hash_)
    events = market.advance(GOVERNANCE.voting_period_blocks)
    assert ended(events, "ModelAccepted")[0]["kind"] == "amend"
    assert models.read_model(market.state, MODEL_ID) == true


@pytest.mark.parametrize("call, error", [
    ({"amend_model": types_pb2.AmendModel(model=described())}, "UnknownModel"),
    ({"remove_model": types_pb2.RemoveModel(model=NEW_ID)}, "UnknownModel"),
    ({"propose_model": types_pb2.ProposeModel(model=described(MODEL_ID))}, "AlreadyRegistered"),
])
def test_amend_or_remove_of_a_model_that_is_not_registered_is_refused_and_changes_nothing(call, error):
    market = governed()
    before = (model_state(market), reserved(market, EXECUTORS[0]))
    receipt = market.call(EXECUTORS[0], **call)
    assert receipt.error_name == error and receipt.error_message
    assert (model_state(market), reserved(market, EXECUTORS[0])) == before


def test_an_amendment_that_changes_nothing_is_refused():
    market = governed()
    current = described(MODEL_ID)
    market.state.items[models.MODEL_PREFIX + MODEL_ID] = current.SerializeToString(deterministic=True)
    receipt = market.call(EXECUTORS[0], amend_model=types_pb2.AmendModel(model=current))
    assert receipt.error_name == "NoChange"


def test_a_removed_model_takes_no_new_jobs_or_offers_and_a_job_already_running_finishes():
    market = governed(voting_period_blocks=1)
    job_id, receipt = market.post()
    assert receipt.success
    while not market.executors_of(job_id):
        market.advance(1)
    hash_ = models.proposal_hash(models.REMOVE, types_pb2.ModelInfo(id=MODEL_ID))
    together(market, (EXECUTORS[0], {"remove_model": types_pb2.RemoveModel(model=MODEL_ID)}),
             (EXECUTORS[1], voting(MODEL_ID, hash_)), (EXECUTORS[2], voting(MODEL_ID, hash_)))
    events = market.advance(1)
    assert ended(events, "ModelAccepted")[0]["kind"] == "remove"
    assert models.read_model(market.state, MODEL_ID) is None
    assert models.model_for_job(market.state, MODEL_ID) == MODEL
    assert market.post()[1].error_name == "UnknownModel"
    offer = types_pb2.SetOffer(models=[MODEL_ID], price_per_token=1_000, capacity=1)
    assert market.call(ACCOUNTS[5], bond=types_pb2.Bond(amount=MIN_BOND)).success
    assert market.call(ACCOUNTS[5], set_offer=offer).error_name == "UnknownModel"
    commit_and_reveal(market, job_id, output())
    assert market.job(job_id).status != state_pb2.JOB_STATUS_ASSIGNED


def test_a_removed_model_can_be_added_again_by_a_new_vote():
    market = governed(voting_period_blocks=1)
    hash_ = models.proposal_hash(models.REMOVE, types_pb2.ModelInfo(id=MODEL_ID))
    together(market, (EXECUTORS[0], {"remove_model": types_pb2.RemoveModel(model=MODEL_ID)}),
             (EXECUTORS[1], voting(MODEL_ID, hash_)), (EXECUTORS[2], voting(MODEL_ID, hash_)))
    market.advance(1)
    assert models.read_model(market.state, MODEL_ID) is None
    again = described(MODEL_ID)
    hash_ = models.proposal_hash(models.ADD, again)
    together(market, (EXECUTORS[0], {"propose_model": types_pb2.ProposeModel(model=again)}),
             (EXECUTORS[1], voting(MODEL_ID, hash_)), (EXECUTORS[2], voting(MODEL_ID, hash_)))
    market.advance(1)
    assert models.read_model(market.state, MODEL_ID) == again
    assert market.state.get(models.RETIRED_PREFIX + MODEL_ID) is None


def test_params_refuse_a_threshold_below_half_and_a_per_account_limit_above_the_chains():
    with pytest.raises(ValueError, match="threshold_ppm must be in"):
        models.Params(threshold_ppm=400_000).validate()
    with pytest.raises(ValueError, match="max_proposals_per_account"):
        models.Params(max_open_proposals=2, max_proposals_per_account=3).validate()
    with pytest.raises(ValueError, match="min_proposer_bond"):
        models.Params(min_proposer_bond=0).validate()
    models.Params().validate()


def test_the_proposal_hash_vectors():
    # docs/protocol.md, "Models": H("inferchain/model-proposal/v1" || u8(kind) || ModelInfo, deterministic).
    removal = types_pb2.ModelInfo(id=bytes(range(32)))
    assert models.proposal_hash(models.REMOVE, removal).hex() == (
        "d79e028e0246c8ba83c41875b8608391a73c3ded11bc89169ff64144e4d381dc")
    added = types_pb2.ModelInfo(id=bytes(range(32)), name="x", context_length=64, end_tokens=[0, 2], engine="e",
                                source="https://example.com/x.gguf", size_bytes=5)
    assert added.SerializeToString(deterministic=True).hex() == (
        "0a20000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f1201781840220200022a0165"
        "3a1a68747470733a2f2f6578616d706c652e636f6d2f782e676775664005")
    assert models.proposal_hash(models.ADD, added).hex() == (
        "163b681ae161922dbf65ffe69965f49d517084d60df96ba5b447eca5fc5b62b2")


def test_the_embedded_models_genesis_entry_names_the_file_in_the_pinned_wheel():
    import importlib.metadata
    import json

    from inference.model_store import content_id
    from tests.commands import ROOT

    [entry] = json.loads((ROOT / "genesis.json").read_text())["app_state"]["models"]["models"]
    model = models.model_from_json(entry, "genesis")
    models.check_fetchable(model)
    distribution_pin, path = model.source.removeprefix("pypi:").split("/", 1)
    name, version = distribution_pin.split("==")
    distribution = importlib.metadata.distribution(name)
    assert distribution.version == version
    located = distribution.locate_file(path)
    assert located.stat().st_size == model.size_bytes and content_id(located) == model.id.hex()
