"""runtime/slashing/brake.py and the slashing_brake call: the validators' supermajority stops dispute slashing."""

from __future__ import annotations

import pytest

from proto import state_pb2, types_pb2
from runtime import slashing, staking, weights
from runtime.arithmetic import apply_ppm
from runtime.disputes import params as disputes
from runtime.disputes import weights as dispute_weights
from runtime.jobs.pricing import charge, protocol_fee
from runtime.primitives import CallContext
from runtime.slashing import storage
from runtime.slashing.calls import slashing_brake
from runtime.slashing.errors import AlreadyEngaged, NotEngaged, NotValidator
from runtime.slashing.penalties import INVALID_RESULT, jail, slash
from runtime.slashing.queries import query_brake, query_slashes
from runtime.slashing.weights import MAX_VALIDATORS, SLASH
from runtime.state import Overlay
from tests.runtime import test_evidence as evidence_world
from tests.runtime.helpers import ENDOWMENT, free
from tests.runtime.market import (
    BOND,
    FEE,
    JOBS,
    JUDGES,
    OUTSIDER,
    POSTER,
    FORGED,
    commit_votes,
    forged_at_redundancy_two,
    index_of,
    judge_stake,
    judge_votes,
    ledger,
    market_with,
    reveal_votes,
    salt_for,
    settled_alone,
    vote_all,
)

ENGAGE = {"slashing_brake": types_pb2.SlashingBrake(engage=True)}
RELEASE = {"slashing_brake": types_pb2.SlashingBrake(engage=False)}
FIRST, SECOND, THIRD = JUDGES
VALID = state_pb2.CANDIDATE_VERDICT_VALID
INVALID = state_pb2.CANDIDATE_VERDICT_INVALID


def attributes(events, name: str) -> list[dict]:
    return [{a.key: a.value for a in e.attributes} for e in events if (e.module, e.name) == ("slashing", name)]


def status(market) -> state_pb2.BrakeStatus:
    return query_brake(market.state, state_pb2.NoArguments())


def engaged_by_every_judge():
    market = market_with()
    for judge in JUDGES:
        market.ok(judge, **ENGAGE)
    assert slashing.braked(market.state) and slashing.engaged(market.state)
    return market


def slashes(market, account) -> list[state_pb2.SlashRecord]:
    return list(query_slashes(market.state, state_pb2.SlashQuery(account=account.public_key)).slashes)


def _gross(job, slot) -> int:
    return charge(slot.price_per_token, slot.reveal.prompt_tokens, len(slot.reveal.tokens), job.prompt_price_ppm)


def _slot_fees(job) -> int:
    return sum(protocol_fee(_gross(job, slot), JOBS.protocol_fee_ppm) for slot in job.assignments if slot.payment)


def honest_valid(market, job_id: bytes, honest) -> list[bool]:
    """The votes that judge `honest`'s result valid and every other candidate invalid."""
    job = market.job(job_id)
    return [position == index_of(job, honest) for position in market.dispute(job_id).candidates]


def decide_by_vote(market, job_id: bytes, valid: list[bool]) -> list:
    """Every judge commits and reveals `valid`; the events of the block whose last reveal decides the dispute."""
    dispute = market.dispute(job_id)
    market.advance_to(dispute.draw_height)
    ballots = {judge: judge_votes(dispute, valid) for judge in JUDGES}
    commit_votes(market, job_id, ballots)
    *first, last = JUDGES
    reveal_votes(market, job_id, {judge: ballots[judge] for judge in first})
    receipts = market.block([market.transaction(last, reveal_vote=types_pb2.RevealVote(
        dispute=job_id, salt=salt_for(job_id, last), votes=ballots[last]))])
    assert receipts.transactions[0].success
    return [*receipts.transactions[0].events, *receipts.block_events]


# --- who may pull it, and when it holds ---------------------------------------------------------------


def test_validators_with_two_thirds_of_the_power_or_less_do_not_engage_the_brake_and_slashing_goes_on():
    market = market_with()
    receipts = [market.ok(judge, **ENGAGE) for judge in (FIRST, SECOND)]
    assert attributes(receipts[1].events, "BrakeVoted") == [{
        "validator": SECOND.public_key.hex(), "engage": "true", "engaged_power": str(2 * BOND),
        "total_power": str(3 * BOND)}]
    # Exactly 2/3 is not more than 2/3.
    assert not any(attributes(receipt.events, "BrakeEngaged") for receipt in receipts)
    assert status(market) == state_pb2.BrakeStatus(
        engaged=False, engaged_power=2 * BOND, total_power=3 * BOND,
        validators=sorted([FIRST.public_key, SECOND.public_key]))
    assert not slashing.braked(market.state)
    overlay = Overlay(market.state)
    record = slash(overlay, OUTSIDER.public_key, 500_000, INVALID_RESULT, b"\x0c" * 32, market.height)
    assert not record.braked and attributes(overlay.events, "StakeSlashed")


def test_validators_with_more_than_two_thirds_of_the_power_engage_the_brake():
    market = market_with()
    market.ok(FIRST, **ENGAGE)
    market.ok(SECOND, **ENGAGE)
    receipt = market.ok(THIRD, **ENGAGE)
    assert attributes(receipt.events, "BrakeEngaged") == [
        {"engaged_power": str(3 * BOND), "total_power": str(3 * BOND)}]
    assert status(market).engaged and slashing.braked(market.state)
    assert storage.brake_records(market.state) == 3
    assert market.state.get(storage.BRAKE_PREFIX + THIRD.public_key) == b""


def test_an_account_outside_the_validator_set_is_refused():
    market = market_with()
    receipt = market.call(POSTER, **ENGAGE)
    assert (receipt.success, receipt.error_module, receipt.error_name) == (False, "slashing", "NotValidator")
    assert POSTER.public_key.hex() in receipt.error_message
    assert f"0 of {3 * BOND} voting power" in receipt.error_message
    assert f"holds from {2 * BOND + 1}" in receipt.error_message
    assert storage.brake_records(market.state) == 0


@pytest.mark.parametrize("first, second, error", [
    (ENGAGE, ENGAGE, AlreadyEngaged),  # a second pull by the same validator
    (None, RELEASE, NotEngaged),  # a release with nothing pulled
    (ENGAGE, None, NotValidator),  # from outside the set
])
def test_a_refused_brake_call_changes_nothing_and_names_the_account_and_the_power(first, second, error):
    market = market_with()
    if first is not None:
        market.ok(FIRST, **first)
    sender = OUTSIDER if error is NotValidator else FIRST
    call = (second or ENGAGE)["slashing_brake"]
    overlay = Overlay(market.state)
    with pytest.raises(error) as refused:
        slashing_brake(overlay, CallContext(sender.public_key, 0, bytes(32)), call)
    assert overlay.changes() == {} and overlay.events == []
    engaged_power = BOND if first is not None else 0
    assert sender.public_key.hex() in str(refused.value)
    assert f"{engaged_power} of {3 * BOND} voting power" in str(refused.value)
    # Through a transaction: the fee is taken, nothing under slashing/ is written.
    before = {key: value for key, value in market.state.iter_prefix(b"slashing/")}
    receipt = market.call(sender, slashing_brake=call)
    assert receipt.error_name == error.__name__ and not receipt.events
    assert {key: value for key, value in market.state.iter_prefix(b"slashing/")} == before


# --- while it holds -----------------------------------------------------------------------------------


def test_while_engaged_a_forgery_judged_invalid_is_recorded_braked_and_nothing_is_taken():
    market = engaged_by_every_judge()
    judges_before = {judge.public_key: free(market.state, judge) for judge in JUDGES}
    job_id, honest, forger, escrow = forged_at_redundancy_two(market)
    job = market.job(job_id)
    honest_at, forger_at = index_of(job, honest), index_of(job, forger)
    dispute = market.dispute(job_id)
    events = decide_by_vote(market, job_id, [position == honest_at for position in dispute.candidates])

    # The verdict stands: the forgery is judged invalid, the honest result valid.
    job = market.job(job_id)
    assert job.assignments[forger_at].verdict == INVALID and job.assignments[honest_at].verdict == VALID
    # The forger: nothing cut, not jailed; the offence recorded braked, with amount 0, and marked punished.
    assert ledger(market, forger).bonded == BOND and not ledger(market, forger).jailed
    assert ledger(market, forger).jailed_until == 0
    assert slashes(market, forger) == [state_pb2.SlashRecord(
        account=forger.public_key, offence=INVALID_RESULT, job=job_id, height=market.height, braked=True)]
    assert attributes(events, "SlashBraked") == [
        {"account": forger.public_key.hex(), "offence": INVALID_RESULT, "job": job_id.hex()}]
    assert not attributes(events, "StakeSlashed") and not attributes(events, "ExecutorJailed")
    assert slashing.already_punished(market.state, INVALID_RESULT, job_id, forger.public_key)
    # The honest co-executor: paid and released at once.
    paid = job.assignments[honest_at]
    assert paid.payment > 0 and paid.released
    assert free(market.state, honest) == ENDOWMENT - BOND - 2 * FEE + paid.payment
    # The poster: the valid result and the rest of the escrow back, as without the brake.
    assert job.status == state_pb2.JOB_STATUS_SETTLED and job.output_digest == paid.reveal.output_digest
    assert job.escrow == 0 and job.refunded + _gross(job, paid) + (job.protocol_fee - _slot_fees(job)) \
        + job.queue_fee == escrow
    # The members: no reward out of a slash that took nothing, and no loss.
    for judge in JUDGES:
        assert free(market.state, judge) == judges_before[judge.public_key] - 2 * FEE
        assert ledger(market, judge).bonded == BOND


def test_released_the_brake_slashes_later_offences_but_not_one_proven_while_it_held():
    market = engaged_by_every_judge()
    first_job, honest, forger, _ = forged_at_redundancy_two(market)
    decide_by_vote(market, first_job, honest_valid(market, first_job, honest))
    assert ledger(market, forger).bonded == BOND

    receipt = market.ok(FIRST, **RELEASE)
    assert attributes(receipt.events, "BrakeReleased") == [
        {"engaged_power": str(2 * BOND), "total_power": str(3 * BOND)}]
    assert not slashing.braked(market.state) and storage.brake_records(market.state) == 2
    # The offence proven while the brake held stays punished: nothing is taken for it now.
    overlay = Overlay(market.state)
    assert slash(overlay, forger.public_key, 500_000, INVALID_RESULT, first_job, market.height) is None
    assert overlay.changes() == {}

    second_job, honest, forger, _ = forged_at_redundancy_two(market)
    decide_by_vote(market, second_job, honest_valid(market, second_job, honest))
    slashed = apply_ppm(BOND, 500_000)
    assert ledger(market, forger).bonded == BOND - slashed and ledger(market, forger).jailed
    latest = slashes(market, forger)[0]
    assert (latest.job, latest.amount, latest.braked) == (second_job, slashed, False)


def test_while_engaged_a_losing_challenger_keeps_its_bond():
    market = market_with(executors=1)
    for judge in JUDGES:
        market.ok(judge, **ENGAGE)
    job_id, executor = settled_alone(market)
    bond = disputes.Params().min_challenge_bond
    before = free(market.state, POSTER)
    market.ok(POSTER, challenge=types_pb2.Challenge(job_id=job_id, candidate=0, bond=bond))
    dispute = market.dispute(job_id)
    market.advance_to(dispute.draw_height)
    vote_all(market, job_id, {judge: judge_votes(dispute, [True]) for judge in JUDGES})
    assert free(market.state, POSTER) == before - FEE
    (record,) = slashes(market, POSTER)
    assert (record.offence, record.job, record.amount, record.burned, record.braked) == (
        "failed_challenge", job_id, 0, 0, True)
    assert market.job(job_id).assignments[0].released


def test_while_engaged_a_challenged_forgery_returns_the_payment_but_no_slash_makes_the_burned_fee_good():
    market = market_with(executors=1)
    for judge in JUDGES:
        market.ok(judge, **ENGAGE)
    poster_before = free(market.state, POSTER)
    job_id, forger = settled_alone(market, FORGED)
    payment = market.job(job_id).assignments[0].payment
    bond = disputes.Params().min_challenge_bond
    challenger_before = free(market.state, OUTSIDER)
    market.ok(OUTSIDER, challenge=types_pb2.Challenge(job_id=job_id, candidate=0, bond=bond))
    dispute = market.dispute(job_id)
    market.advance_to(dispute.draw_height)
    vote_all(market, job_id, {judge: judge_votes(dispute, [False]) for judge in JUDGES})
    job = market.job(job_id)
    assert job.status == state_pb2.JOB_STATUS_REJECTED and job.refunded >= payment > 0
    assert ledger(market, forger).bonded == BOND and not ledger(market, forger).jailed
    # The challenger: its bond back, no reward; the poster: its payment back, out the fee the job burned.
    assert free(market.state, OUTSIDER) == challenger_before - FEE
    assert free(market.state, POSTER) == poster_before - FEE - job.storage_deposit - job.protocol_fee


def test_a_validator_leaving_the_set_at_an_epoch_stops_counting():
    judges = (judge_stake(FIRST, 2 * BOND), judge_stake(SECOND), judge_stake(THIRD))
    market = market_with(judges=judges)
    market.ok(FIRST, **ENGAGE)
    receipt = market.ok(SECOND, **ENGAGE)  # 3 of 4: engaged
    assert attributes(receipt.events, "BrakeEngaged") == [
        {"engaged_power": str(3 * BOND), "total_power": str(4 * BOND)}]
    overlay = Overlay(market.state)
    jail(overlay, SECOND.public_key, market.height)  # as a verdict jails: out of the next election
    market.state.apply(overlay.changes())
    boundary = (market.height // 10 + 1) * 10  # epochs of 10 blocks
    market.advance_to(boundary)
    assert slashing.braked(market.state)  # the set changed at the end of this block: the next one decides
    events = market.advance(1)
    assert attributes(events, "BrakeReleased") == [{"engaged_power": str(2 * BOND), "total_power": str(3 * BOND)}]
    assert not slashing.braked(market.state)
    assert status(market) == state_pb2.BrakeStatus(
        engaged=False, engaged_power=2 * BOND, total_power=3 * BOND, validators=[FIRST.public_key])
    # Its record stays, counting nothing; outside the set it may not release it.
    assert storage.brake_pulled(market.state, SECOND.public_key)
    assert market.call(SECOND, **RELEASE).error_name == "NotValidator"


def test_a_double_sign_is_punished_while_the_brake_holds():
    state = evidence_world.world()
    validators = (evidence_world.ALICE, evidence_world.BOB, evidence_world.CHARLIE)
    receipts = evidence_world.block(state, raws=[
        evidence_world.transaction(state, validator, **ENGAGE) for validator in validators])
    assert all(receipt.success for receipt in receipts.transactions)
    assert slashing.braked(state)
    evidence_world.advance_to(state, 6)
    receipts = evidence_world.block(state, evidence=[evidence_world.double_sign(evidence_world.ALICE, at=5)])
    burned = evidence_world.BOND * evidence_world.PARAMS.slash_fraction_double_sign_ppm // 10**6
    assert evidence_world.events(receipts, "Slashed") == [
        {"validator": evidence_world.ALICE.public_key.hex(), "amount": str(burned), "height": "5"}]
    assert evidence_world.ledger(state, evidence_world.ALICE).bonded == evidence_world.BOND - burned
    assert evidence_world.ledger(state, evidence_world.ALICE).jailed_until == 7 + evidence_world.PARAMS.jail_blocks


# --- declarations -------------------------------------------------------------------------------------


def test_the_brake_call_and_query_are_declared_with_their_weights():
    spec = next(call for call in slashing.SPEC.calls if call.name == "slashing_brake")
    assert spec.message is types_pb2.SlashingBrake
    assert types_pb2.TransactionBody.DESCRIPTOR.fields_by_name["slashing_brake"].number == 34
    weight = spec.weight(types_pb2.SlashingBrake(engage=True))
    # The set searched and tallied at the ceiling of validators, one record read each.
    assert MAX_VALIDATORS * (2 * weights.LIST_ENTRY + weights.READ) < weight < weights.UNDECLARED_CALL
    spec.check(types_pb2.SlashingBrake())  # nothing stateless can fail
    query = next(query for query in slashing.SPEC.queries if query.name == "brake")
    assert query.response is state_pb2.BrakeStatus
    # A slash reads the brake's flag, one key, whatever the set's size.
    assert SLASH == 7 * weights.READ + 8 * weights.WRITE + 64 * weights.LIST_ENTRY


def test_the_validator_ceiling_is_the_one_genesis_enforces():
    assert MAX_VALIDATORS == dispute_weights.MAX_VALIDATORS == weights.MAX_VALIDATORS


def test_the_hooks_declare_the_tally_only_while_there_are_brake_records():
    market = market_with()
    block = type("Block", (), {"evidence": ()})()
    quiet = slashing.hooks_weight(market.state, block)
    market.ok(FIRST, **ENGAGE)
    validators = staking.read_params(market.state).max_validators
    assert slashing.hooks_weight(market.state, block) - quiet == (
        2 * weights.READ + validators * (weights.LIST_ENTRY + weights.READ) + weights.READ + weights.WRITE)


def test_the_brake_encodings_are_the_pinned_vectors_of_the_protocol_doc():
    body = types_pb2.TransactionBody
    assert body(slashing_brake=types_pb2.SlashingBrake(engage=True)).SerializeToString() == bytes.fromhex("9202020801")
    assert body(slashing_brake=types_pb2.SlashingBrake(engage=False)).SerializeToString() == bytes.fromhex("920200")
    assert storage.BRAKE_PREFIX + b"\x01" * 32 == bytes.fromhex("736c617368696e672f6272616b652f") + b"\x01" * 32
    record = state_pb2.SlashRecord(account=b"\x01" * 32, offence=INVALID_RESULT, job=b"\x0c" * 32, height=7,
                                   braked=True)
    assert record.SerializeToString(deterministic=True).endswith(bytes.fromhex("2007" "4801"))
