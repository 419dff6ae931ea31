"""runtime/slashing/penalties.py: the stake cut, its payouts and burn, jail, one punishment per offence, the records."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proto import state_pb2, types_pb2
from runtime import slashing, staking, system
from runtime.arithmetic import PPM
from runtime.invariants import reserved_is_accounted, staking_totals_match, supply_is_conserved
from runtime.module import InvalidQuery
from runtime.slashing.penalties import burn_bond, jail, jailed, slash
from runtime.slashing.queries import query_slashes
from runtime.slashing.storage import RECENT_PREFIX, SLASH_PREFIX, punished_key, recent_key, slash_key
from runtime.staking.storage import add_totals, write_ledger
from runtime.state import MemoryState, Overlay
from tests.runtime.helpers import ACCOUNTS, ENDOWMENT, genesis_state
from tests.runtime.market import EXECUTORS, Market

OFFENDER, POSTER, CHALLENGER, MEMBER = (account.public_key for account in ACCOUNTS[:4])
STRANGER = b"\x5a" * 32  # an account that does not exist yet
JOB = b"\x0c" * 32
HEIGHT = 100
JAIL_BLOCKS = slashing.Params().jail_blocks


def staked(bonded: int, chunks: list[tuple[int, int]] = ()) -> MemoryState:
    """A chain where OFFENDER has `bonded` stake and unbonding `chunks` of (amount, release height)."""
    state = genesis_state(endowed=4)
    overlay = Overlay(state)
    ledger = state_pb2.StakeLedger(
        bonded=bonded, unbonding=[state_pb2.UnbondingChunk(amount=a, release_height=r) for a, r in chunks]
    )
    unbonding = sum(amount for amount, _ in chunks)
    info = system.read_account(overlay, OFFENDER)
    info.free -= bonded + unbonding
    info.reserved += bonded + unbonding
    system.write_account(overlay, OFFENDER, info)
    write_ledger(overlay, OFFENDER, ledger)
    add_totals(overlay, bonded_delta=bonded, unbonding_delta=unbonding)
    state.apply(overlay.changes())
    assert_invariants(state)
    return state


def assert_invariants(state: MemoryState) -> None:
    items = list(state.iter_prefix())
    assert supply_is_conserved(state, items)
    assert reserved_is_accounted(items)
    assert staking_totals_match(state, items)


def commit(state: MemoryState, overlay: Overlay) -> None:
    state.apply(overlay.changes())
    assert_invariants(state)


def ledger_of(state, account: bytes = OFFENDER) -> state_pb2.StakeLedger:
    return staking.read_ledger(state, account) or state_pb2.StakeLedger()


def balance(state, account: bytes) -> tuple[int, int]:
    info = system.read_account(state, account)
    return (0, 0) if info is None else (info.free, info.reserved)


def event_attributes(overlay: Overlay, name: str) -> list[dict]:
    return [{a.key: a.value for a in e.attributes} for e in overlay.events if (e.module, e.name) == ("slashing", name)]


# --- the cut -----------------------------------------------------------------------------------


def test_a_slash_cuts_bonded_and_unreleased_unbonding_stake_and_burns_it():
    bonded, unbonding, released = 5 * 10**12 + 3, 2 * 10**12 + 1, 10**12
    state = staked(bonded, [(released, HEIGHT), (unbonding, HEIGHT + 1)])
    supply_before = system.read_supply(state)
    overlay = Overlay(state)

    record = slash(overlay, OFFENDER, 100_000, "invalid_result", JOB, HEIGHT)
    commit(state, overlay)

    from_bonded, from_unbonding = bonded // 10, unbonding // 10
    assert ledger_of(state).bonded == bonded - from_bonded
    # The chunk released at this height may be withdrawn in this block: it is not cut.
    assert [(c.amount, c.release_height) for c in ledger_of(state).unbonding] == [
        (released, HEIGHT), (unbonding - from_unbonding, HEIGHT + 1)]
    assert record == state_pb2.SlashRecord(account=OFFENDER, offence="invalid_result", job=JOB, height=HEIGHT,
                                           amount=from_bonded + from_unbonding, burned=from_bonded + from_unbonding)
    assert system.read_supply(state).burned - supply_before.burned == record.amount
    assert event_attributes(overlay, "StakeSlashed") == [{
        "account": OFFENDER.hex(), "offence": "invalid_result", "job": JOB.hex(), "amount": str(record.amount),
        "burned": str(record.amount), "paid": "0"}]


def test_payouts_go_to_the_payees_free_balance_and_only_the_rest_is_burned():
    state = staked(10**13)
    supply_before = system.read_supply(state)
    poster_before, stranger_before = balance(state, POSTER), balance(state, STRANGER)
    overlay = Overlay(state)
    asked = []

    def payouts(amount):
        asked.append(amount)
        return [(POSTER, 7), (STRANGER, amount // 2)]

    record = slash(overlay, OFFENDER, 500_000, "invalid_result", JOB, HEIGHT, payouts=payouts)
    commit(state, overlay)

    assert asked == [5 * 10**12]
    assert (record.amount, record.paid, record.burned) == (5 * 10**12, 7 + 25 * 10**11, 25 * 10**11 - 7)
    assert balance(state, POSTER) == (poster_before[0] + 7, poster_before[1])
    assert stranger_before == (0, 0) and balance(state, STRANGER) == (25 * 10**11, 0)
    assert system.read_supply(state).burned - supply_before.burned == record.burned


def test_payouts_above_the_cut_are_refused_before_anything_changes():
    state = staked(10**13)
    overlay = Overlay(state)
    with pytest.raises(ValueError, match="exceed the slash"):
        slash(overlay, OFFENDER, 1_000, "missed_vote", JOB, HEIGHT, payouts=lambda amount: [(POSTER, amount + 1)])
    assert overlay.writes == {} and overlay.events == []


@pytest.mark.parametrize("arguments, message", [
    (dict(offence="bad_mood"), "unknown offence"),
    (dict(fraction_ppm=PPM + 1), "slash fraction"),
    (dict(job=b"\x01" * 31), "32 bytes"),
])
def test_a_caller_mistake_is_refused_loudly_and_changes_nothing(arguments, message):
    state = staked(10**13)
    overlay = Overlay(state)
    call = dict(account=OFFENDER, fraction_ppm=1_000, offence="missed_vote", job=JOB, height=HEIGHT) | arguments
    with pytest.raises(ValueError, match=message):
        slash(overlay, **call)
    assert overlay.writes == {}


# --- one offence, one punishment ---------------------------------------------------------------


def test_one_offence_is_punished_once_and_others_still_are():
    state = staked(10**13)
    overlay = Overlay(state)
    first = slash(overlay, OFFENDER, 10_000, "missed_vote", JOB, HEIGHT)
    commit(state, overlay)
    again = Overlay(state)
    assert slash(again, OFFENDER, 10_000, "missed_vote", JOB, HEIGHT + 5, jail=True) is None
    assert again.writes == {} and again.events == []
    assert state.get(punished_key("missed_vote", JOB, OFFENDER)) == HEIGHT.to_bytes(8, "big")
    # Another offence in the same job, or the same offence in another job, is its own.
    other = Overlay(state)
    assert slash(other, OFFENDER, 10_000, "contrary_vote", JOB, HEIGHT).amount > 0
    assert slash(other, OFFENDER, 10_000, "missed_vote", b"\x0d" * 32, HEIGHT).amount > 0
    commit(state, other)
    assert first.amount == 10**11


def test_a_slash_of_no_stake_still_records_the_offence():
    state = genesis_state(endowed=4)
    overlay = Overlay(state)
    record = slash(overlay, POSTER, 500_000, "missed_result", JOB, HEIGHT)
    commit(state, overlay)
    assert (record.amount, record.burned, record.paid) == (0, 0, 0)
    assert staking.read_ledger(state, POSTER) is None
    assert slash(Overlay(state), POSTER, 500_000, "missed_result", JOB, HEIGHT) is None
    assert query_slashes(state, state_pb2.SlashQuery(account=POSTER)).slashes == [record]


# --- jail --------------------------------------------------------------------------------------


def test_a_slash_with_jail_sets_the_flag_until_an_unjail_whatever_the_height():
    state = staked(10**13)
    overlay = Overlay(state)
    record = slash(overlay, OFFENDER, 10_000, "invalid_result", JOB, HEIGHT, jail=True)
    commit(state, overlay)
    assert record.jailed_until == HEIGHT + JAIL_BLOCKS
    assert ledger_of(state).jailed and ledger_of(state).jailed_until == HEIGHT + JAIL_BLOCKS
    assert event_attributes(overlay, "ExecutorJailed") == [{"account": OFFENDER.hex(), "until": str(record.jailed_until)}]
    assert jailed(state, OFFENDER, HEIGHT) and jailed(state, OFFENDER, HEIGHT + JAIL_BLOCKS + 10**6)
    assert not jailed(state, POSTER, HEIGHT)


def test_a_second_jail_never_shortens_the_first():
    state = staked(10**13)
    overlay = Overlay(state)
    assert jail(overlay, OFFENDER, HEIGHT) == HEIGHT + JAIL_BLOCKS
    assert jail(overlay, OFFENDER, HEIGHT - 50) == HEIGHT + JAIL_BLOCKS
    assert jail(overlay, OFFENDER, HEIGHT + 10) == HEIGHT + 10 + JAIL_BLOCKS
    commit(state, overlay)


def test_a_jail_of_an_account_without_stake_is_kept():
    state = genesis_state(endowed=4)
    overlay = Overlay(state)
    jail(overlay, POSTER, HEIGHT)
    commit(state, overlay)
    assert ledger_of(state, POSTER).jailed and jailed(state, POSTER, HEIGHT)


# --- burn_bond ---------------------------------------------------------------------------------


def test_a_lost_challenge_bond_is_burned_once_and_recorded():
    state = genesis_state(endowed=4)
    overlay = Overlay(state)
    system.write_account(overlay, CHALLENGER, state_pb2.AccountInfo(free=ENDOWMENT - 10**11, reserved=10**11))
    state.apply(overlay.changes())
    supply_before = system.read_supply(state)
    overlay = Overlay(state)
    record = burn_bond(overlay, CHALLENGER, 5 * 10**10, "failed_challenge", JOB, HEIGHT)
    state.apply(overlay.changes())
    assert record == state_pb2.SlashRecord(account=CHALLENGER, offence="failed_challenge", job=JOB, height=HEIGHT,
                                           amount=5 * 10**10, burned=5 * 10**10)
    assert balance(state, CHALLENGER) == (ENDOWMENT - 10**11, 5 * 10**10)
    assert system.read_supply(state).burned - supply_before.burned == 5 * 10**10
    assert supply_is_conserved(state, list(state.iter_prefix()))
    assert burn_bond(Overlay(state), CHALLENGER, 5 * 10**10, "failed_challenge", JOB, HEIGHT) is None


# --- records and the slashes query -------------------------------------------------------------


def test_records_are_served_newest_first_per_account_and_for_everyone():
    state = staked(10**13)
    for height, account, offence in [(10, OFFENDER, "missed_vote"), (10, POSTER, "missed_result"),
                                     (12, OFFENDER, "contrary_vote"), (12, OFFENDER, "missed_result")]:
        overlay = Overlay(state)
        slash(overlay, account, 1_000, offence, JOB, height)
        commit(state, overlay)

    def offences(account=b"", limit=0):
        listed = query_slashes(state, state_pb2.SlashQuery(account=account, limit=limit)).slashes
        return [(record.height, record.offence) for record in listed]

    assert offences() == [(12, "missed_result"), (12, "contrary_vote"), (10, "missed_result"), (10, "missed_vote")]
    assert offences(OFFENDER) == [(12, "missed_result"), (12, "contrary_vote"), (10, "missed_vote")]
    assert offences(OFFENDER, limit=1) == [(12, "missed_result")]
    assert offences(CHALLENGER) == []
    # Each record is stored once under the account and once under the height, and nowhere else.
    assert len(list(state.iter_prefix(SLASH_PREFIX))) == len(list(state.iter_prefix(RECENT_PREFIX))) == 4


class ReverseWalkingState:
    """A state like the node's store: it walks a prefix backwards, and counts what it reads."""

    def __init__(self, state: MemoryState):
        self.state, self.read = state, 0

    def get(self, key):
        return self.state.get(key)

    def iter_prefix(self, prefix=b""):
        raise AssertionError("a walk forwards would read every record")

    def iter_prefix_reverse(self, prefix, before=None):
        for item in reversed(list(self.state.iter_prefix(prefix))):
            self.read += 1
            yield item


def test_the_query_reads_only_the_records_it_returns_from_a_store_that_walks_backwards():
    state = staked(10**13)
    for height in range(1, 8):
        overlay = Overlay(state)
        slash(overlay, OFFENDER, 1_000, "missed_vote", height.to_bytes(32, "big"), height)
        commit(state, overlay)
    store = ReverseWalkingState(state)
    listed = query_slashes(store, state_pb2.SlashQuery(limit=3)).slashes
    assert [record.height for record in listed] == [7, 6, 5] and store.read == 3


@pytest.mark.parametrize("request_, message", [
    (state_pb2.SlashQuery(limit=101), "at most 100"),
    (state_pb2.SlashQuery(account=b"\x01" * 20), "32 bytes"),
])
def test_a_bad_slashes_query_is_refused(request_, message):
    with pytest.raises(InvalidQuery, match=message):
        query_slashes(genesis_state(endowed=1), request_)


def test_the_slashes_query_is_declared_by_the_module():
    spec = next(query for query in slashing.SPEC.queries if query.name == "slashes")
    assert (spec.request, spec.response) == (state_pb2.SlashQuery, state_pb2.SlashList)


# --- properties --------------------------------------------------------------------------------

AMOUNTS = st.integers(min_value=0, max_value=10**13)
CHUNKS = st.lists(st.tuples(st.integers(min_value=1, max_value=10**13),
                            st.integers(min_value=HEIGHT - 5, max_value=HEIGHT + 5)), max_size=6)
PAYEES = st.sampled_from([OFFENDER, POSTER, CHALLENGER, MEMBER, STRANGER])
SHARES = st.lists(st.tuples(PAYEES, st.integers(min_value=0, max_value=PPM)), max_size=4).filter(
    lambda shares: sum(share for _, share in shares) <= PPM)
OFFENCES = st.sampled_from(sorted(slashing.OFFENCES))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bonded=AMOUNTS, chunks=CHUNKS, fraction=st.integers(min_value=0, max_value=PPM), shares=SHARES,
       offence=OFFENCES, jail_it=st.booleans())
def test_a_slash_keeps_every_figure_consistent_and_a_second_one_changes_nothing(bonded, chunks, fraction, shares,
                                                                                 offence, jail_it):
    state = staked(bonded, chunks)
    before = {account: balance(state, account) for account in (OFFENDER, POSTER, CHALLENGER, MEMBER, STRANGER)}
    ledger_before, supply_before = ledger_of(state), system.read_supply(state)

    def payouts(amount):
        return [(payee, amount * share // PPM) for payee, share in shares]

    overlay = Overlay(state)
    record = slash(overlay, OFFENDER, fraction, offence, JOB, HEIGHT, jail=jail_it, payouts=payouts)
    commit(state, overlay)  # supply, reserved and staking totals checked

    ledger = ledger_of(state)
    live = [c.amount for c in ledger_before.unbonding if c.release_height > HEIGHT]
    expected_cut = bonded * fraction // PPM + sum(amount * fraction // PPM for amount in live)
    assert record.amount == expected_cut == record.paid + record.burned
    assert ledger.bonded == bonded - bonded * fraction // PPM
    assert [c.amount for c in ledger.unbonding] == [
        c.amount - (c.amount * fraction // PPM if c.release_height > HEIGHT else 0)
        for c in ledger_before.unbonding if c.amount - (c.amount * fraction // PPM if c.release_height > HEIGHT else 0)]
    assert system.read_supply(state).burned - supply_before.burned == record.burned
    paid_to = {}
    for payee, share in shares:
        paid_to[payee] = paid_to.get(payee, 0) + expected_cut * share // PPM
    for account, (free, reserved) in before.items():
        now_free, now_reserved = balance(state, account)
        cut = expected_cut if account == OFFENDER else 0
        assert now_free == free + paid_to.get(account, 0) >= 0
        assert now_reserved == reserved - cut >= 0
    assert ledger.jailed == jail_it and record.jailed_until == (HEIGHT + JAIL_BLOCKS if jail_it else 0)

    again = Overlay(state)
    assert slash(again, OFFENDER, fraction, offence, JOB, HEIGHT, jail=not jail_it, payouts=payouts) is None
    assert again.writes == {} and again.events == []


# --- sequences ---------------------------------------------------------------------------------

ACTORS = st.sampled_from(range(3))
ACTIONS = st.lists(st.one_of(
    st.tuples(st.just("unbond"), ACTORS, st.integers(min_value=1, max_value=PPM)),
    st.tuples(st.just("advance"), st.integers(min_value=1, max_value=30)),
    st.tuples(st.just("withdraw"), ACTORS),
    st.tuples(st.just("slash"), ACTORS, st.integers(min_value=0, max_value=PPM), OFFENCES,
              st.integers(min_value=0, max_value=2), st.booleans(), SHARES),
    st.tuples(st.just("unjail"), ACTORS),
), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=ACTIONS)
def test_sequences_of_unbond_withdraw_slash_jail_and_unjail_keep_the_books_and_punish_each_offence_once(actions):
    market = Market.create()
    punished, records = set(), 0
    for action in actions:
        kind, *arguments = action
        if kind == "advance":
            market.advance(arguments[0])
        elif kind == "unbond":
            who, share = EXECUTORS[arguments[0]], arguments[1]
            amount = ledger_of(market.state, who.public_key).bonded * share // PPM
            if amount:
                market.call(who, unbond=types_pb2.Unbond(amount=amount))
        elif kind == "withdraw":
            market.call(EXECUTORS[arguments[0]], withdraw_unbonded=types_pb2.WithdrawUnbonded())
        elif kind == "unjail":
            receipt = market.call(EXECUTORS[arguments[0]], unjail=types_pb2.Unjail())
            assert receipt.success or receipt.error_name in ("NotJailed", "StillJailed")
        else:
            who, fraction, offence, job, jail_it, shares = arguments
            account, job_id = EXECUTORS[who].public_key, bytes([job]) * 32
            overlay = Overlay(market.state)
            record = slash(overlay, account, fraction, offence, job_id, market.height, jail=jail_it,
                           payouts=lambda amount: [(payee, amount * share // PPM) for payee, share in shares])
            assert (record is None) == ((offence, job_id, account) in punished)
            if record is not None:
                punished.add((offence, job_id, account))
                records += 1
                assert record.paid + record.burned == record.amount
            market.state.apply(overlay.changes())
        items = list(market.state.iter_prefix())
        assert supply_is_conserved(market.state, items) and reserved_is_accounted(items)
        assert staking_totals_match(market.state, items)
    assert len(list(market.state.iter_prefix(SLASH_PREFIX))) == records == len(punished)


def test_the_keys_are_as_documented():
    account, job = b"\x01" * 32, b"\x0c" * 32
    assert punished_key("invalid_result", job, account).hex() == (
        "736c617368696e672f6f6666656e63652f"  # slashing/offence/
        "bc3df2fe8d850d92c94911313e34202d1ba2d9058e02910f7f9959597a029cbf")
    assert slash_key(account, 100, 2) == b"slashing/slash/" + account + (100).to_bytes(8, "big") + b"\0\0\0\2"
    assert recent_key(100, 2, account) == b"slashing/recent/" + (100).to_bytes(8, "big") + b"\0\0\0\2" + account
