"""Penalties: the stake cut shared by every offence, its payouts and burn, jail, and one punishment per offence.

`slash` is the one way the disputes and jobs modules punish an executor or a committee member:
the fraction of its bonded stake and of each unbonding chunk not yet released is cut (the same cut
a double-sign takes, `stake_cut`), paid out as the caller says (the poster's burned fee made good,
the challenger's or committee's reward) and the rest burned. Unbonding chunks are cut because
genesis keeps the unbonding period longer than any offence takes to prove (the disputes module's
genesis check). An offence is keyed by (offence, job, account): a second call for it changes nothing.
While the brake holds (brake.py), an offence is recorded as punished and nothing is taken: no cut,
no payout, no burn, no jail; it is not punished again when the brake is released.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from proto import state_pb2
from runtime import balances, staking
from runtime.arithmetic import PPM, U64_MAX, apply_ppm
from runtime.slashing import events
from runtime.slashing.brake import braked
from runtime.slashing.params import read_params
from runtime.slashing.storage import already_punished, mark_punished, write_slash_record
from runtime.staking.storage import add_totals, read_ledger, write_ledger
from runtime.state import Overlay, StateReader

# Every offence a SlashRecord may name (proto SlashRecord.offence). None is a prefix of another, which keeps
# the offence keys unambiguous (storage.punished_key).
DOUBLE_SIGN = "double_sign"
INVALID_RESULT = "invalid_result"
MISSED_RESULT = "missed_result"
MISSED_VOTE = "missed_vote"
CONTRARY_VOTE = "contrary_vote"
FAILED_CHALLENGE = "failed_challenge"
CONVICTION = "conviction"
OFFENCES = frozenset({DOUBLE_SIGN, INVALID_RESULT, MISSED_RESULT, MISSED_VOTE, CONTRARY_VOTE, FAILED_CHALLENGE,
                      CONVICTION})

Payouts = Callable[[int], Sequence[tuple[bytes, int]]]


def _no_payouts(amount: int) -> Sequence[tuple[bytes, int]]:
    return ()


# --- the cut ----------------------------------------------------------------------


@dataclass(frozen=True)
class StakeCut:
    """An account's ledger after a cut, and what the cut took from bonded and from unbonding stake."""

    ledger: state_pb2.StakeLedger
    from_bonded: int
    from_unbonding: int

    @property
    def amount(self) -> int:
        return self.from_bonded + self.from_unbonding


def stake_cut(ledger: state_pb2.StakeLedger | None, fraction_ppm: int, height: int) -> StakeCut:
    """`fraction_ppm` of the bonded stake and of each chunk still unbonding at `height` (or locked), each rounded
    down."""
    after = state_pb2.StakeLedger()
    if ledger is not None:
        after.CopyFrom(ledger)
    from_unbonding = 0
    # A chunk released by now may be withdrawn in this very block: it no longer stands behind the stake, unless
    # the ledger is locked (runtime/staking/bonds.py lock_stake), when nothing can be withdrawn.
    locked = height < after.locked_until
    for chunk in after.unbonding:
        if chunk.release_height > height or locked:
            cut = apply_ppm(chunk.amount, fraction_ppm)
            chunk.amount -= cut
            from_unbonding += cut
    kept = [chunk for chunk in after.unbonding if chunk.amount]
    del after.unbonding[:]
    after.unbonding.extend(kept)
    from_bonded = apply_ppm(after.bonded, fraction_ppm)
    after.bonded -= from_bonded
    return StakeCut(after, from_bonded, from_unbonding)


def take_cut(state: Overlay, account: bytes, cut: StakeCut) -> None:
    """Store the cut ledger and the staking totals; the reserved balance it frees is the caller's to pay or burn."""
    if cut.amount == 0:
        return
    write_ledger(state, account, cut.ledger)
    add_totals(state, bonded_delta=-cut.from_bonded, unbonding_delta=-cut.from_unbonding)


# --- jail -------------------------------------------------------------------------


def jail_until(ledger: state_pb2.StakeLedger, height: int, jail_blocks: int) -> int:
    """The jail's end when an account is jailed at `height`: never earlier than a jail it already serves."""
    return max(ledger.jailed_until, min(U64_MAX, height + jail_blocks))


def _jail(state: Overlay, account: bytes, height: int) -> int:
    ledger = read_ledger(state, account) or state_pb2.StakeLedger()
    ledger.jailed = True
    ledger.jailed_until = jail_until(ledger, height, read_params(state).jail_blocks)
    write_ledger(state, account, ledger)
    state.deposit_event(events.event(events.EXECUTOR_JAILED, account=account.hex(), until=ledger.jailed_until))
    return ledger.jailed_until


def jail(state: Overlay, account: bytes, height: int) -> int:
    """Jail `account` from `height` for slashing's jail_blocks until it unjails; the height it may unjail from."""
    return _jail(state, account, height)


def jailed(state: StateReader, account: bytes, height: int) -> bool:
    """Whether `account` is jailed at `height` (by a dispute until it unjails, or by a double-sign's term)."""
    return staking.jailed(read_ledger(state, account), height)


# --- slash ------------------------------------------------------------------------


def _check_offence(offence: str, job: bytes) -> None:
    # A caller's mistake, not a user's: it must fail loudly rather than punish under a name nobody reads.
    if offence not in OFFENCES:
        raise ValueError(f"unknown offence {offence!r} (known: {', '.join(sorted(OFFENCES))})")
    if len(job) not in (0, 32):
        raise ValueError(f"a job id is 32 bytes (or empty), got {len(job)}")


def _checked_payouts(payouts: Sequence[tuple[bytes, int]], amount: int) -> list[tuple[bytes, int]]:
    """The non-zero payouts, after checking each is a 32-byte account and a non-negative integer, and that
    together they stay within `amount`."""
    checked = []
    for payee, paid in payouts:
        if len(payee) != 32 or not isinstance(paid, int) or paid < 0:
            raise ValueError(f"a payout must be a 32-byte account and a non-negative integer, got {payee!r}, {paid!r}")
        if paid:
            checked.append((payee, paid))
    total = sum(paid for _, paid in checked)
    if total > amount:
        raise ValueError(f"payouts of {total} exceed the slash of {amount}")
    return checked


def _pay(state: Overlay, offender: bytes, payouts: Sequence[tuple[bytes, int]]) -> int:
    """Move each payout from the offender's reserved to the payee's free balance; the total paid."""
    for payee, amount in payouts:
        balances.repatriate_reserved(state, offender, payee, amount)
        balances.unreserve(state, payee, amount)
    return sum(amount for _, amount in payouts)


def _record(state: Overlay, record: state_pb2.SlashRecord) -> state_pb2.SlashRecord:
    """Mark the offence punished, store the record, and emit StakeSlashed."""
    mark_punished(state, record.offence, record.job, record.account, record.height)
    write_slash_record(state, record)
    state.deposit_event(events.event(
        events.STAKE_SLASHED, account=record.account.hex(), offence=record.offence, job=record.job.hex(),
        amount=record.amount, burned=record.burned, paid=record.paid,
    ))
    return record


def _record_braked(state: Overlay, account: bytes, offence: str, job: bytes, height: int) -> state_pb2.SlashRecord:
    """Mark the offence punished and store a braked record that took nothing; emit SlashBraked."""
    record = state_pb2.SlashRecord(account=account, offence=offence, job=job, height=height, braked=True)
    mark_punished(state, offence, job, account, height)
    write_slash_record(state, record)
    state.deposit_event(events.event(events.SLASH_BRAKED, account=account.hex(), offence=offence, job=job.hex()))
    return record


def slash(state: Overlay, account: bytes, fraction_ppm: int, offence: str, job: bytes, height: int, *,
          jail: bool = False, payouts: Payouts = _no_payouts) -> state_pb2.SlashRecord | None:
    """Cut `fraction_ppm` of the account's stake for `offence` in `job`, pay `payouts(amount)`, burn the rest,
    jail when asked; the SlashRecord, or None when this offence was already punished (nothing changes). While the
    brake holds, nothing is cut, paid or jailed: the record says `braked`."""
    _check_offence(offence, job)
    if not 0 <= fraction_ppm <= PPM:
        raise ValueError(f"a slash fraction is 0 to {PPM} ppm, got {fraction_ppm}")
    if already_punished(state, offence, job, account):
        return None
    if offence != DOUBLE_SIGN and braked(state):
        return _record_braked(state, account, offence, job, height)
    cut = stake_cut(read_ledger(state, account), fraction_ppm, height)
    payments = _checked_payouts(payouts(cut.amount), cut.amount)
    take_cut(state, account, cut)
    paid = _pay(state, account, payments)
    burned = cut.amount - paid
    if burned:
        balances.burn_reserved(state, account, burned)
    until = _jail(state, account, height) if jail else 0
    return _record(state, state_pb2.SlashRecord(
        account=account, offence=offence, job=job, height=height, amount=cut.amount, burned=burned, paid=paid,
        jailed_until=until,
    ))


def burn_bond(state: Overlay, account: bytes, amount: int, offence: str, job: bytes,
              height: int) -> state_pb2.SlashRecord | None:
    """Burn `amount` of a reserved bond that is not stake (a losing challenger's); the SlashRecord (its `amount` is
    what was burned), or None when this offence was already punished (nothing changes). While the brake holds
    nothing is burned and the record says `braked`; the caller returns to the account what was not burned."""
    _check_offence(offence, job)
    if amount < 0:
        raise ValueError(f"a burned bond is a non-negative amount, got {amount}")
    if already_punished(state, offence, job, account):
        return None
    if braked(state):
        return _record_braked(state, account, offence, job, height)
    if amount:
        balances.burn_reserved(state, account, amount)
    return _record(state, state_pb2.SlashRecord(
        account=account, offence=offence, job=job, height=height, amount=amount, burned=amount,
    ))
