"""runtime/evidence.py and staking's evidence rules: double-signs are checked, slashed, jailed, and refused when bad."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.crypto import dev_keypair
from proto import state_pb2, types_pb2
from runtime import balances, jobs, models, slashing, staking, system
from runtime.evidence import MAX_EVIDENCE_BYTES, EvidenceError, check_evidence_format, make_evidence
from runtime.executive import TRANSACTION_SIGNING_CONTEXT, InvalidBlock, apply_block, check_transaction, transaction_rules
from runtime.genesis import RuntimeGenesis, build_genesis_state
from runtime.hashing import evidence_root, merkle_root
from runtime.invariants import reserved_is_accounted, staking_totals_match, supply_is_conserved
from runtime.primitives import BlockContext
from runtime.staking.genesis import GenesisConfig as StakingGenesis
from runtime.staking.genesis import GenesisStake
from runtime.state import MemoryState
from runtime.votes import VOTE_SIGNING_CONTEXT, check_vote
from tests.runtime.helpers import CHAIN_ID, ENDOWMENT, GENESIS_HASH, GENESIS_TIME_MS, assert_events_declared
from tests.runtime.market import MODEL, MODEL_ID

ALICE, BOB, CHARLIE, DAVE = (dev_keypair(name) for name in ("alice", "bob", "charlie", "dave"))
AUTHOR = dev_keypair("ferdie")
MIN_BOND = 10**12
BOND = 7 * 10**13 + 13  # not a round number, so rounding down shows
STAKING = staking.Params(min_bond=MIN_BOND, unbonding_period_blocks=50, epoch_blocks=10)
PARAMS = slashing.Params(jail_blocks=25, max_evidence_age_blocks=8, slash_fraction_double_sign_ppm=50_000)
HASH_A, HASH_B = b"\x0a" * 32, b"\x0b" * 32


# --- a small chain: Alice, Bob and Charlie validate; Dave does not ---------------------


def world(stake_rules: staking.Params = STAKING, params: slashing.Params = PARAMS) -> MemoryState:
    offer = state_pb2.Offer(models=[MODEL_ID], price_per_token=1_000, capacity=1)
    config = RuntimeGenesis(
        {
            "system": system.GenesisConfig(CHAIN_ID, GENESIS_HASH, GENESIS_TIME_MS, 1, system.Params()),
            "balances": balances.GenesisConfig(
                balances.Params(), tuple((key.public_key, ENDOWMENT) for key in (ALICE, BOB, CHARLIE, DAVE, AUTHOR))
            ),
            "models": models.GenesisConfig(models.Params(), (MODEL,)),
            "staking": StakingGenesis(
                stake_rules,
                (
                    GenesisStake(ALICE.public_key, BOND, True, offer),
                    GenesisStake(BOB.public_key, BOND, True, None),
                    GenesisStake(CHARLIE.public_key, BOND, True, None),
                ),
            ),
            "slashing": slashing.GenesisConfig(params),
            # A challenge window short enough that the dispute windows end within the 50-block unbonding period
            # (runtime/disputes/genesis.py).
            "jobs": jobs.GenesisConfig(jobs.Params(challenge_window_blocks=5)),
        }
    )
    return MemoryState(build_genesis_state(config))


def check_invariants(state: MemoryState) -> None:
    items = list(state.iter_prefix())
    assert supply_is_conserved(state, items)
    assert reserved_is_accounted(items)
    assert staking_totals_match(state, items)


def height(state: MemoryState) -> int:
    return system.read_chain(state).height


def block(state: MemoryState, evidence=(), raws=()) -> types_pb2.BlockReceipts:
    """Apply the next block carrying `evidence`; commit it and check the invariants."""
    rules = transaction_rules(state)
    chain = system.read_chain(state)
    context = BlockContext(chain.height + 1, chain.time_ms + 1000, AUTHOR.public_key, tuple(evidence))
    writes, receipts = apply_block(state, context, [check_transaction(raw, rules) for raw in raws], rules)
    assert_events_declared(receipts)
    state.apply(writes.changes())
    check_invariants(state)
    return receipts


def advance_to(state: MemoryState, target: int) -> None:
    while height(state) < target:
        block(state)


def refused(state: MemoryState, evidence) -> str:
    """The next block carrying `evidence` is invalid; the reason. Nothing is written."""
    before = dict(state.items)
    chain = system.read_chain(state)
    context = BlockContext(chain.height + 1, chain.time_ms + 1000, AUTHOR.public_key, tuple(evidence))
    with pytest.raises(InvalidBlock) as error:
        apply_block(state, context, [])
    assert state.items == before
    return str(error.value)


def transaction(state: MemoryState, signer, **call) -> bytes:
    body = types_pb2.TransactionBody(
        chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH, sender=signer.public_key,
        nonce=system.read_account(state, signer.public_key).nonce, fee=10**8, **call,
    )
    raw = body.SerializeToString(deterministic=True)
    return types_pb2.Transaction(body=raw, signature=signer.sign(TRANSACTION_SIGNING_CONTEXT + raw)).SerializeToString()


def vote(signer, *, at: int = 5, round: int = 0, type=types_pb2.VOTE_TYPE_PRECOMMIT, block_hash: bytes = HASH_A,
         chain_id: str = CHAIN_ID, validator: bytes | None = None) -> types_pb2.Vote:
    """A vote signed as a validator signs it: over VOTE_SIGNING_CONTEXT || canonical body."""
    body = types_pb2.VoteBody(
        chain_id=chain_id, type=type, height=at, round=round, block_hash=block_hash, time_ms=GENESIS_TIME_MS,
        validator=validator or signer.public_key,
    ).SerializeToString(deterministic=True)
    return types_pb2.Vote(body=body, signature=signer.sign(VOTE_SIGNING_CONTEXT + body))


def double_sign(signer=ALICE, at: int = 5, **fields) -> types_pb2.DuplicateVoteEvidence:
    """Evidence of `signer` precommitting HASH_A and HASH_B at one height and round, in canonical order."""
    return types_pb2.DuplicateVoteEvidence(
        first=vote(signer, at=at, block_hash=HASH_A, **fields), second=vote(signer, at=at, block_hash=HASH_B, **fields)
    )


def ledger(state, key) -> state_pb2.StakeLedger:
    return staking.read_ledger(state, key.public_key)


def events(receipts, name: str) -> list[dict]:
    return [{a.key: a.value for a in e.attributes} for e in receipts.block_events if (e.module, e.name) == ("slashing", name)]


def validators(state) -> set[bytes]:
    return {validator.public_key for validator in staking.read_validator_set(state).validators}


# --- punishment -----------------------------------------------------------------------------


def test_a_double_sign_burns_the_slash_fraction_of_bonded_and_unbonding_stake_and_jails():
    state = world()
    unbond = 3 * 10**12 + 7
    block(state, raws=[transaction(state, ALICE, unbond=types_pb2.Unbond(amount=unbond))])  # height 1
    advance_to(state, 5)
    reserved_before = system.read_account(state, ALICE.public_key).reserved
    supply_before = system.read_supply(state)
    totals_before = staking.read_totals(state)

    receipts = block(state, [double_sign(ALICE, at=5)])  # height 6

    from_bonded = (BOND - unbond) * 50_000 // 1_000_000
    from_unbonding = unbond * 50_000 // 1_000_000
    slashed = from_bonded + from_unbonding
    assert ledger(state, ALICE).bonded == BOND - unbond - from_bonded
    assert [chunk.amount for chunk in ledger(state, ALICE).unbonding] == [unbond - from_unbonding]
    assert system.read_account(state, ALICE.public_key).reserved == reserved_before - slashed
    supply = system.read_supply(state)
    assert (supply.burned - supply_before.burned, supply.total_issuance) == (slashed, supply_before.total_issuance)
    totals = staking.read_totals(state)
    assert (totals_before.bonded - totals.bonded, totals_before.unbonding - totals.unbonding) == (from_bonded, from_unbonding)
    assert events(receipts, "Slashed") == [{"validator": ALICE.public_key.hex(), "amount": str(slashed), "height": "5"}]
    assert events(receipts, "Jailed") == [{"validator": ALICE.public_key.hex(), "until": str(6 + PARAMS.jail_blocks)}]
    assert ledger(state, ALICE).jailed_until == 6 + PARAMS.jail_blocks
    # A term, not a dispute's jail: no unjail is needed, so the flag stays clear.
    assert not ledger(state, ALICE).jailed
    # The slash is on record with every other slash.
    assert list(slashing.query_slashes(state, state_pb2.SlashQuery(account=ALICE.public_key)).slashes) == [
        state_pb2.SlashRecord(account=ALICE.public_key, offence="double_sign", height=6, amount=slashed,
                              burned=slashed, jailed_until=6 + PARAMS.jail_blocks)]
    # Others are untouched; the executor market too: Alice's offer stands.
    assert ledger(state, BOB).bonded == BOND
    assert staking.read_offer(state, ALICE.public_key) is not None
    assert ALICE.public_key in staking.serving(state, MODEL_ID)


def test_a_released_unbonding_chunk_is_not_slashed():
    # 40 blocks: the shortest unbonding period above the dispute windows of world() (37 blocks, runtime/disputes/genesis.py).
    state = world(dataclasses.replace(STAKING, unbonding_period_blocks=40))
    block(state, raws=[transaction(state, ALICE, unbond=types_pb2.Unbond(amount=10**12))])  # released at 41
    advance_to(state, 43)
    block(state, [double_sign(ALICE, at=43)])
    assert [chunk.amount for chunk in ledger(state, ALICE).unbonding] == [10**12]
    assert ledger(state, ALICE).bonded == BOND - 10**12 - (BOND - 10**12) * 50_000 // 1_000_000


def test_the_validator_leaves_the_set_at_the_next_epoch_and_returns_after_its_jail():
    state = world()
    advance_to(state, 5)
    block(state, [double_sign(ALICE, at=5)])  # height 6, jailed until 31
    assert ALICE.public_key in validators(state)  # the epoch's set does not change mid-epoch
    advance_to(state, 10)
    assert validators(state) == {BOB.public_key, CHARLIE.public_key}
    assert ALICE.public_key in {v.public_key for v in staking.read_previous_validator_set(state).validators}
    advance_to(state, 30)  # elections at 20 and 30 are below 31
    assert ALICE.public_key not in validators(state)
    advance_to(state, 40)
    assert ALICE.public_key in validators(state)


def test_evidence_from_the_previous_epoch_is_judged_against_the_set_that_signed_then():
    state = world()
    advance_to(state, 9)
    # Dave joins the candidates; he is elected at the end of block 10.
    block(state, raws=[transaction(state, DAVE, bond=types_pb2.Bond(amount=BOND, validate=True))])
    assert DAVE.public_key in validators(state)
    advance_to(state, 11)
    assert "was not a validator at height 9" in refused(state, [double_sign(DAVE, at=9)])
    block(state, [double_sign(DAVE, at=11), double_sign(ALICE, at=9)])  # Alice validated in epoch 0
    assert ledger(state, DAVE).jailed_until == ledger(state, ALICE).jailed_until == 12 + PARAMS.jail_blocks


def test_evidence_older_than_the_previous_epoch_is_refused_even_within_the_age():
    state = world(params=dataclasses.replace(PARAMS, max_evidence_age_blocks=30))
    advance_to(state, 24)
    assert "older than the previous epoch" in refused(state, [double_sign(ALICE, at=5)])
    block(state, [double_sign(ALICE, at=11)])


def test_punished_records_are_pruned_once_too_old():
    state = world()
    advance_to(state, 5)
    block(state, [double_sign(ALICE, at=5)])
    assert slashing.punished(state, ALICE.public_key, 5)
    advance_to(state, 5 + PARAMS.max_evidence_age_blocks)
    assert state.get(slashing.offence_key(5)) is not None
    block(state)
    assert state.get(slashing.offence_key(5)) is None
    assert not list(state.iter_prefix(slashing.OFFENCE_PREFIX))


# --- refusals ------------------------------------------------------------------------------


def _with(evidence: types_pb2.DuplicateVoteEvidence, **changes) -> types_pb2.DuplicateVoteEvidence:
    out = types_pb2.DuplicateVoteEvidence()
    out.CopyFrom(evidence)
    for path, value in changes.items():
        vote_name, field = path.split("__")
        setattr(getattr(out, vote_name), field, value)
    return out


def _padded_body(signer) -> types_pb2.Vote:
    # height 5 as a 2-byte varint (0x85 0x00): the same vote, not canonically encoded, yet signed.
    canonical = vote(signer).body
    body = canonical.replace(b"\x18\x05", b"\x18\x85\x00", 1)
    assert body != canonical
    return types_pb2.Vote(body=body, signature=signer.sign(VOTE_SIGNING_CONTEXT + body))


def _unknown_field() -> types_pb2.DuplicateVoteEvidence:
    raw = double_sign().SerializeToString(deterministic=True) + b"\x98\x06\x01"  # field 99
    return types_pb2.DuplicateVoteEvidence.FromString(raw)


REFUSALS = {
    "bad signature": (lambda: _with(double_sign(), second__signature=bytes(64)), "second vote: vote signature"),
    "different validators": (
        lambda: types_pb2.DuplicateVoteEvidence(first=vote(ALICE, block_hash=HASH_A), second=vote(BOB, block_hash=HASH_B)),
        "different validators",
    ),
    "same hash": (
        lambda: types_pb2.DuplicateVoteEvidence(first=vote(ALICE), second=vote(ALICE)), "same block hash",
    ),
    "different heights": (
        lambda: types_pb2.DuplicateVoteEvidence(first=vote(ALICE, block_hash=HASH_A), second=vote(ALICE, at=4, block_hash=HASH_B)),
        "different (height, round, type)",
    ),
    "different rounds": (
        lambda: types_pb2.DuplicateVoteEvidence(first=vote(ALICE, block_hash=HASH_A), second=vote(ALICE, round=1, block_hash=HASH_B)),
        "different (height, round, type)",
    ),
    "different types": (
        lambda: types_pb2.DuplicateVoteEvidence(
            first=vote(ALICE, block_hash=HASH_A), second=vote(ALICE, type=types_pb2.VOTE_TYPE_PREVOTE, block_hash=HASH_B)
        ),
        "different (height, round, type)",
    ),
    "wrong chain": (lambda: double_sign(chain_id="another-chain"), "for chain 'another-chain'"),
    "too old": (lambda: double_sign(at=1), "blocks old, the limit is 8"),
    "at the block's height": (lambda: double_sign(at=10), "not below the block's height 10"),
    "future height": (lambda: double_sign(at=2**64 - 1), "not below the block's height 10"),
    "non-validator": (lambda: double_sign(DAVE), f"{DAVE.public_key.hex()} was not a validator at height 5"),
    "signed for another validator": (lambda: double_sign(DAVE, validator=ALICE.public_key), "signature does not verify"),
    "wrong order": (
        lambda: types_pb2.DuplicateVoteEvidence(first=vote(ALICE, block_hash=HASH_B), second=vote(ALICE, block_hash=HASH_A)),
        "first must be the vote whose block hash sorts lower",
    ),
    "non-canonical vote bytes": (
        lambda: types_pb2.DuplicateVoteEvidence(first=_padded_body(ALICE), second=vote(ALICE, block_hash=HASH_B)),
        "first vote: vote body is not canonically encoded",
    ),
    "unknown field": (_unknown_field, "unknown field 99"),
    "one vote": (lambda: types_pb2.DuplicateVoteEvidence(first=vote(ALICE)), "two votes"),
    "oversized": (lambda: _with(double_sign(), second__signature=bytes(MAX_EVIDENCE_BYTES)), "the limit is 2048"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_bad_evidence_is_refused_with_a_reason_and_makes_the_block_invalid(case):
    make, reason = REFUSALS[case]
    state = world()
    advance_to(state, 9)
    evidence = make()
    assert reason in slashing.check_evidence(state, evidence, 10)
    message = refused(state, [evidence])
    assert message.startswith("evidence 0: ") and reason in message


def test_the_same_double_sign_is_punished_once():
    state = world()
    advance_to(state, 6)
    evidence = double_sign(ALICE, at=5)
    again = "evidence 1: " + ALICE.public_key.hex() + " was already punished for a double-sign at height 5"
    assert refused(state, [evidence, evidence]) == again
    # Another pair of votes for the same height (another round) is the same offence.
    assert refused(state, [evidence, double_sign(ALICE, at=5, round=3)]) == again
    block(state, [evidence])
    assert "already punished for a double-sign at height 5" in slashing.check_evidence(state, evidence, 8)
    assert "evidence 0: " in refused(state, [evidence])
    # A double-sign at another height is another offence.
    block(state, [double_sign(ALICE, at=6)])


def test_check_evidence_format_returns_both_votes_and_make_evidence_orders_them():
    first, second = check_evidence_format(double_sign(), CHAIN_ID)
    assert (first.body.block_hash, second.body.block_hash) == (HASH_A, HASH_B)
    high, low = check_vote(vote(ALICE, block_hash=HASH_B), CHAIN_ID), check_vote(vote(ALICE, block_hash=b""), CHAIN_ID)
    evidence = make_evidence(high, low)
    assert check_evidence_format(evidence, CHAIN_ID)[0].body.block_hash == b""  # a nil vote sorts first
    with pytest.raises(EvidenceError, match="same block hash"):
        make_evidence(high, high)


def test_admissible_evidence_keeps_one_admissible_piece_per_offence():
    state = world()
    advance_to(state, 6)
    good, same_offence, bad = double_sign(ALICE, at=5), double_sign(ALICE, at=5, round=1), double_sign(DAVE, at=5)
    bob = double_sign(BOB, at=6)
    assert slashing.admissible_evidence(state, [bad, good, same_offence, bob, good], 7) == [good, bob]


def test_evidence_root_is_empty_without_evidence_and_the_merkle_root_of_the_pieces_otherwise():
    assert evidence_root([]) == b""
    pieces = [double_sign(ALICE), double_sign(BOB)]
    assert evidence_root(pieces) == merkle_root([piece.SerializeToString(deterministic=True) for piece in pieces])


def test_slash_fraction_is_validated():
    with pytest.raises(ValueError, match="at most 1000000"):
        slashing.Params(slash_fraction_double_sign_ppm=1_000_001).validate()
    slashing.Params(slash_fraction_double_sign_ppm=1_000_000).validate()


# --- arbitrary input -----------------------------------------------------------------------

STATE = world()
advance_to(STATE, 9)

SIGNERS = (ALICE, BOB, DAVE)


def sometimes(draw, default, other):
    """Mostly `default`, one time in eight a value drawn from `other`: arbitrary input that still reaches later checks."""
    # Hypothesis favours small and boundary integers, so the rare branch is a middle value.
    return draw(other) if draw(st.integers(0, 7)) == 3 else default


@st.composite
def arbitrary_votes(draw, signer_index: int, at: int, round: int, vote_type: int, block_hash: bytes) -> types_pb2.Vote:
    signer = SIGNERS[signer_index]
    body = types_pb2.VoteBody(
        chain_id=sometimes(draw, CHAIN_ID, st.text(max_size=8)),
        type=sometimes(draw, vote_type, st.integers(0, 3)),
        height=sometimes(draw, at, st.integers(0, 2**64 - 1)),
        round=sometimes(draw, round, st.integers(0, 2**32 - 1)),
        block_hash=sometimes(draw, block_hash, st.sampled_from([b"", HASH_A, HASH_B, b"\x01"])),
        time_ms=draw(st.integers(0, 2**64 - 1)),
        validator=sometimes(draw, signer.public_key, st.binary(max_size=33) | st.sampled_from([k.public_key for k in SIGNERS])),
    )
    raw = sometimes(draw, body.SerializeToString(deterministic=True), st.binary(max_size=80))
    signature = sometimes(draw, signer.sign(VOTE_SIGNING_CONTEXT + raw), st.binary(max_size=70))
    return types_pb2.Vote(body=raw, signature=signature)


@st.composite
def arbitrary_evidence(draw) -> types_pb2.DuplicateVoteEvidence:
    signer = draw(st.integers(0, 2))
    at, round, vote_type = draw(st.integers(0, 12)), draw(st.integers(0, 2)), draw(st.integers(1, 2))
    first = draw(arbitrary_votes(signer, at, round, vote_type, HASH_A))
    second = draw(arbitrary_votes(sometimes(draw, signer, st.integers(0, 2)), at, round, vote_type, HASH_B))
    if draw(st.integers(0, 9)) == 0:
        first, second = second, first
    return types_pb2.DuplicateVoteEvidence(first=first, second=second)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evidence=arbitrary_evidence())
def test_arbitrary_evidence_is_refused_with_a_documented_error_or_punished(evidence):
    try:
        check_evidence_format(evidence, CHAIN_ID)
    except EvidenceError as error:
        assert str(error)
    reason = slashing.check_evidence(STATE, evidence, 10)
    before = dict(STATE.items)
    context = BlockContext(10, system.read_chain(STATE).time_ms + 1000, AUTHOR.public_key, (evidence,))
    if reason is None:
        writes, _ = apply_block(STATE, context, [])
        offence = check_evidence_format(evidence, CHAIN_ID)[0].body
        assert slashing.punished(writes, offence.validator, offence.height)
    else:
        assert reason
        with pytest.raises(InvalidBlock, match="evidence 0: "):
            apply_block(STATE, context, [])
    assert STATE.items == before
