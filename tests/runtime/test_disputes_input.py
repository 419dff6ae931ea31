"""disputes: bad input refused with its own error before any state change, and the hashes and encodings pinned.

Stateful refusals run the real runtime on an in-memory chain (tests/runtime/market.py); stateless
ones and the vote encoding are checked over arbitrary input with hypothesis.
"""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

from proto import state_pb2, types_pb2
from runtime import models, system
from runtime.module import GenesisInvalid
from runtime.arithmetic import apply_ppm
from runtime.disputes import errors
from runtime.disputes import params as disputes
from runtime.disputes.recipes import audit_point, committee_seed, vote_commitment, vote_encoding
from runtime.executive import CallWouldFail, check_transaction, transaction_rules, validate_transaction
from runtime.primitives import CallContext
from runtime.registry import RUNTIME
from runtime.state import Overlay
from tests.runtime.helpers import ENDOWMENT
from tests.runtime.market import (
    BOND,
    JOBS,
    JUDGES,
    MODEL,
    OUTSIDER,
    Market,
    commit_votes,
    forged_at_redundancy_two,
    index_of,
    judge_votes,
    ledger,
    market_with,
    reveal_votes,
    salt_for,
    settled_alone,
)


# --- the vote encoding and the draws' hashes (vectors for docs/protocol.md) -------------------------


def test_a_vote_commitment_binds_every_field_of_every_vote():
    votes = [types_pb2.CandidateVote(candidate=1, valid=True, positions=64, misses=2, worst_margin_micro=-5)]
    assert vote_encoding(votes) == bytes.fromhex("00000001" "01" "00000040" "00000002" "fffffffffffffffb")
    base = vote_commitment(b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, votes)
    assert base.hex() == "d4fd87db1b893ea606cddd2ca94a45acc94b0206c0f368056f195e2cb3b6586f"
    for field, value in (("candidate", 2), ("valid", False), ("positions", 63), ("misses", 3),
                         ("worst_margin_micro", -4)):
        changed = types_pb2.CandidateVote()
        changed.CopyFrom(votes[0])
        setattr(changed, field, value)
        assert vote_commitment(b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, [changed]) != base


def test_the_audit_point_and_committee_seed_are_pinned():
    assert audit_point(b"\x00" * 32, b"\x01" * 32) == 80409
    assert committee_seed(b"\x00" * 32, b"\x01" * 32).hex() == (
        "fee4e25654844c41014e7bdfc18d8bfb98f369014990ee7412c383ff68d71e18")


# --- bad input ----------------------------------------------------------------------------------


def refused(market: Market, signer, error, **call) -> None:
    """The call fails with `error` before it writes anything: its handler leaves a layer untouched (no write, no
    event), and in a block only the fee and the nonce move."""
    ((name, message),) = call.items()
    layer = Overlay(market.state)
    system.enter_next_block(layer)
    written = dict(layer.writes)
    nonce = system.read_account(market.state, signer.public_key).nonce
    with pytest.raises(error):
        RUNTIME.calls[name].handler(layer, CallContext(signer.public_key, nonce, bytes(32)), message)
    assert layer.writes == written and not layer.events
    receipt = market.call(signer, **call)
    assert (receipt.success, receipt.error_module, receipt.error_name) == (False, "disputes", error.__name__)


def test_every_bad_input_is_refused_with_its_own_error_before_any_state_change():
    market = market_with(executors=3, params=disputes.Params(audit_probability_ppm=0, max_open_disputes=1))
    disputed, honest, forger, _ = forged_at_redundancy_two(market)
    settled, _ = settled_alone(market)
    bond = disputes.Params().min_challenge_bond
    nowhere = b"\x07" * 32

    def challenge(job_id=settled, candidate=0, amount=bond):
        return types_pb2.Challenge(job_id=job_id, candidate=candidate, bond=amount)

    refused(market, OUTSIDER, errors.UnknownJob, challenge=challenge(job_id=nowhere))
    refused(market, OUTSIDER, errors.AlreadyDisputed, challenge=challenge(job_id=disputed))
    refused(market, OUTSIDER, errors.UnknownCandidate, challenge=challenge(candidate=1))
    refused(market, OUTSIDER, errors.BondTooLow, challenge=challenge(amount=bond - 1))
    refused(market, OUTSIDER, errors.TooManyDisputes, challenge=challenge())  # the digests dispute is open
    dispute = market.dispute(disputed)
    market.advance_to(dispute.draw_height)
    dispute = market.dispute(disputed)
    job = market.job(disputed)
    valid = [position == index_of(job, honest) for position in dispute.candidates]
    ballots = {judge: judge_votes(dispute, valid) for judge in JUDGES}

    def commitment(member, votes=None):
        return vote_commitment(disputed, member.public_key, salt_for(disputed, member), votes or ballots[member])

    def reveal(member, votes=None, salt=None):
        return types_pb2.RevealVote(dispute=disputed, salt=salt or salt_for(disputed, member), votes=votes or ballots[member])

    commit_votes(market, disputed, {JUDGES[0]: ballots[JUDGES[0]]})
    refused(market, JUDGES[0], errors.AlreadyVoted, commit_vote=types_pb2.CommitVote(
        dispute=disputed, commitment=commitment(JUDGES[0])))
    refused(market, OUTSIDER, errors.NotMember, commit_vote=types_pb2.CommitVote(
        dispute=disputed, commitment=commitment(OUTSIDER, ballots[JUDGES[0]])))
    refused(market, JUDGES[1], errors.UnknownDispute, commit_vote=types_pb2.CommitVote(
        dispute=nowhere, commitment=commitment(JUDGES[1])))
    refused(market, JUDGES[0], errors.WrongPhase, reveal_vote=reveal(JUDGES[0]))  # still committing
    commit_votes(market, disputed, {JUDGES[1]: ballots[JUDGES[1]]})
    market.advance_to(market.dispute(disputed).commit_deadline)  # JUDGES[2] never commits
    assert market.dispute(disputed).status == state_pb2.DISPUTE_STATUS_REVEALING
    refused(market, JUDGES[2], errors.VotingClosed, commit_vote=types_pb2.CommitVote(
        dispute=disputed, commitment=commitment(JUDGES[2])))
    refused(market, JUDGES[0], errors.VoteMismatch, reveal_vote=reveal(JUDGES[0], salt=b"\x01" * 32))
    flipped = judge_votes(dispute, [not ok for ok in valid])
    refused(market, JUDGES[0], errors.VoteMismatch, reveal_vote=reveal(JUDGES[0], votes=flipped))
    refused(market, JUDGES[0], errors.InvalidVote, reveal_vote=reveal(JUDGES[0], votes=list(reversed(ballots[JUDGES[0]]))))
    refused(market, JUDGES[2], errors.VotingClosed, reveal_vote=reveal(JUDGES[2]))  # it never committed
    refused(market, OUTSIDER, errors.NotMember, reveal_vote=reveal(JUDGES[0]))
    reveal_votes(market, disputed, {JUDGES[0]: ballots[JUDGES[0]]})
    refused(market, JUDGES[0], errors.AlreadyVoted, reveal_vote=reveal(JUDGES[0]))
    market.advance_to(market.dispute(disputed).reveal_deadline)
    assert market.dispute(disputed).status == state_pb2.DISPUTE_STATUS_DECIDED
    refused(market, JUDGES[1], errors.VotingClosed, reveal_vote=reveal(JUDGES[1]))  # committed, revealed too late
    refused(market, JUDGES[2], errors.WrongPhase, commit_vote=types_pb2.CommitVote(
        dispute=disputed, commitment=commitment(JUDGES[2])))
    market.advance_to(market.job(settled).final_height + JOBS.challenge_window_blocks + 1)
    refused(market, OUTSIDER, errors.ChallengeWindowClosed, challenge=challenge())
    # Both members that did not reveal lost the missed-vote share; the one that revealed did not.
    assert ledger(market, JUDGES[1]).bonded == ledger(market, JUDGES[2]).bonded == BOND - apply_ppm(BOND, 10_000)
    assert ledger(market, JUDGES[0]).bonded == BOND


@pytest.mark.parametrize("name, message, error", [
    ("challenge", types_pb2.Challenge(job_id=b"\x01" * 31, bond=1), errors.UnknownJob),
    ("challenge", types_pb2.Challenge(job_id=b"\x01" * 32, bond=0), errors.BondTooLow),
    ("commit_vote", types_pb2.CommitVote(dispute=b"\x01" * 33, commitment=b"\x02" * 32), errors.UnknownDispute),
    ("commit_vote", types_pb2.CommitVote(dispute=b"\x01" * 32, commitment=b"\x02" * 31), errors.InvalidVote),
    ("reveal_vote", types_pb2.RevealVote(dispute=b"\x01" * 32, salt=b"\x02" * 16,
                                         votes=[types_pb2.CandidateVote()]), errors.InvalidVote),
    ("reveal_vote", types_pb2.RevealVote(dispute=b"\x01" * 32, salt=b"\x02" * 32), errors.InvalidVote),
    ("reveal_vote", types_pb2.RevealVote(dispute=b"\x01" * 32, salt=b"\x02" * 32,
                                         votes=[types_pb2.CandidateVote()] * 9), errors.InvalidVote),
])
def test_a_call_that_can_never_succeed_is_refused_by_its_stateless_check(name, message, error):
    with pytest.raises(error):
        RUNTIME.calls[name].check(message)


@settings(max_examples=200, deadline=None)
@given(dispute=st.binary(max_size=40), salt=st.binary(max_size=40), commitment=st.binary(max_size=40),
       votes=st.lists(st.builds(types_pb2.CandidateVote, candidate=st.integers(0, 2**32 - 1), valid=st.booleans(),
                                positions=st.integers(0, 2**32 - 1), misses=st.integers(0, 2**32 - 1),
                                worst_margin_micro=st.integers(-2**63, 2**63 - 1)), max_size=10),
       bond=st.integers(0, 2**64 - 1), job=st.binary(max_size=40))
def test_the_stateless_checks_refuse_cleanly_or_pass(dispute, salt, commitment, votes, bond, job):
    for name, message in (("challenge", types_pb2.Challenge(job_id=job, bond=bond)),
                          ("commit_vote", types_pb2.CommitVote(dispute=dispute, commitment=commitment)),
                          ("reveal_vote", types_pb2.RevealVote(dispute=dispute, salt=salt, votes=votes))):
        try:
            RUNTIME.calls[name].check(message)
        except errors.DisputesError as error:
            assert error.message
        else:
            assert len(dispute if name != "challenge" else job) == 32


@settings(max_examples=200, deadline=None)
@given(votes=st.lists(st.builds(types_pb2.CandidateVote, candidate=st.integers(0, 2**32 - 1), valid=st.booleans(),
                                positions=st.integers(0, 2**32 - 1), misses=st.integers(0, 2**32 - 1),
                                worst_margin_micro=st.integers(-2**63, 2**63 - 1)), min_size=1, max_size=8))
def test_the_vote_encoding_is_fixed_width_and_decodes_back(votes):
    encoded = vote_encoding(votes)
    assert len(encoded) == 21 * len(votes)
    decoded = [struct.unpack(">IBIIq", encoded[21 * i:21 * (i + 1)]) for i in range(len(votes))]
    assert decoded == [(v.candidate, int(v.valid), v.positions, v.misses, v.worst_margin_micro) for v in votes]

def test_a_challenge_bond_beyond_the_free_balance_is_refused():
    market = market_with(executors=1)
    job_id, _ = settled_alone(market)
    refused(market, OUTSIDER, errors.InsufficientBalance,
            challenge=types_pb2.Challenge(job_id=job_id, candidate=0, bond=10 * ENDOWMENT))

def test_the_pool_refuses_a_vote_that_would_fail_before_it_costs_a_fee():
    market = market_with()
    job_id, honest, _, _ = forged_at_redundancy_two(market)
    market.advance_to(market.dispute(job_id).draw_height)
    raw = market.transaction(OUTSIDER, commit_vote=types_pb2.CommitVote(dispute=job_id, commitment=bytes(32)))
    rules = transaction_rules(market.state)
    with pytest.raises(CallWouldFail, match="disputes.NotMember"):
        validate_transaction(market.state, check_transaction(raw, rules), rules)


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_a_models_own_audit_probability_is_a_share_read_from_genesis(ppm):
    document = models.model_to_json(MODEL)
    document["audit_probability_ppm"] = ppm
    if ppm <= 1_000_000:
        assert models.model_from_json(document, "app_state.models.models[0]").audit_probability_ppm == ppm
    else:
        with pytest.raises(GenesisInvalid, match="audit_probability_ppm is a share in parts per million: at most"):
            models.model_from_json(document, "app_state.models.models[0]")
