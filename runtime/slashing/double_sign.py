"""The double-sign rule: evidence carried in blocks is checked, and its validator's stake burned and jailed.

A validator that signs two conflicting votes (runtime/evidence.py) is punished when a block
carries the evidence: `slash_fraction_double_sign_ppm` of its bonded and still-unbonding stake is
burned (the cut every offence takes, penalties.stake_cut) and it is jailed for `jail_blocks`, so the
next election leaves it out; the current epoch's set stays as it is (consensus never changes its
validators mid-epoch). The jail ends by itself: no unjail is needed. Its offer stays: the executor
market is not part of this rule. Evidence older than `max_evidence_age_blocks`, from a
non-validator, or for an offence already punished makes the block invalid.
"""

from __future__ import annotations

from typing import Iterable

from proto import state_pb2, types_pb2
from runtime import balances, staking, system
from runtime.evidence import DoubleSign, EvidenceError, double_sign
from runtime.primitives import BlockContext
from runtime.slashing import events
from runtime.slashing.errors import InvalidEvidence
from runtime.slashing.params import Params, read_params
from runtime.slashing.penalties import DOUBLE_SIGN, jail_until, stake_cut, take_cut
from runtime.slashing.storage import offence_key, punished, write_slash_record
from runtime.staking.elections import validator_set_at
from runtime.staking.storage import read_accounts, read_ledger, write_accounts, write_ledger
from runtime.state import Overlay, StateReader

# --- evidence checks ------------------------------------------------------------


def check_evidence(state: StateReader, evidence: types_pb2.DuplicateVoteEvidence, block_height: int) -> str | None:
    """None if the block at `block_height` may carry `evidence` on top of `state`, else the reason it may not."""
    try:
        admissible_double_sign(state, evidence, block_height, read_params(state))
    except InvalidEvidence as error:
        return str(error)
    return None


def admissible_evidence(
    state: StateReader, candidates: Iterable[types_pb2.DuplicateVoteEvidence], block_height: int
) -> list[types_pb2.DuplicateVoteEvidence]:
    """What a proposer may put in the block at `block_height`: the admissible candidates, one per (validator, height)."""
    params = read_params(state)
    chosen, seen = [], set()
    for evidence in candidates:
        try:
            offence = admissible_double_sign(state, evidence, block_height, params)
        except InvalidEvidence:
            continue
        if (offence.validator, offence.height) not in seen:
            seen.add((offence.validator, offence.height))
            chosen.append(evidence)
    return chosen


def admissible_double_sign(
    state: StateReader, evidence: types_pb2.DuplicateVoteEvidence, block_height: int, params: Params
) -> DoubleSign:
    """The offence `evidence` proves, if the block at `block_height` may punish it; else InvalidEvidence."""
    try:
        offence = double_sign(evidence, system.read_chain(state).chain_id)
    except EvidenceError as error:
        raise InvalidEvidence(str(error)) from None
    who, height = offence.validator.hex(), offence.height
    if height >= block_height:
        raise InvalidEvidence(f"the double-sign at height {height} is not below the block's height {block_height}")
    age = block_height - height
    if age > params.max_evidence_age_blocks:
        raise InvalidEvidence(
            f"the double-sign at height {height} is {age} blocks old, the limit is {params.max_evidence_age_blocks}"
        )
    validator_set = validator_set_at(state, height, block_height, staking.read_params(state))
    if validator_set is None:
        raise InvalidEvidence(f"the double-sign at height {height} is older than the previous epoch's validator set")
    if all(validator.public_key != offence.validator for validator in validator_set.validators):
        raise InvalidEvidence(f"{who} was not a validator at height {height}")
    if punished(state, offence.validator, height):
        raise InvalidEvidence(f"{who} was already punished for a double-sign at height {height}")
    return offence


# --- punishment -----------------------------------------------------------------


def punish_double_sign(state: Overlay, validator: bytes, height: int, block_height: int, params: Params) -> int:
    """Burn the slash fraction of the validator's bonded and still-unbonding stake, jail it; the amount burned."""
    cut = stake_cut(read_ledger(state, validator), params.slash_fraction_double_sign_ppm, block_height)
    take_cut(state, validator, cut)
    if cut.amount:
        balances.burn_reserved(state, validator, cut.amount)
    ledger = read_ledger(state, validator) or state_pb2.StakeLedger()
    # A term, not a dispute's jail: the validator returns to elections when it ends, without an unjail.
    ledger.jailed_until = jail_until(ledger, block_height, params.jail_blocks)
    write_ledger(state, validator, ledger)
    write_accounts(state, offence_key(height), read_accounts(state, offence_key(height)) + [validator])
    write_slash_record(state, state_pb2.SlashRecord(
        account=validator, offence=DOUBLE_SIGN, height=block_height, amount=cut.amount, burned=cut.amount,
        jailed_until=ledger.jailed_until,
    ))
    state.deposit_event(events.event(events.SLASHED, validator=validator.hex(), amount=cut.amount, height=height))
    state.deposit_event(events.event(events.JAILED, validator=validator.hex(), until=ledger.jailed_until))
    return cut.amount


def _prune_offences(state: Overlay, block_height: int, params: Params) -> None:
    # Records are written only for heights at most max_evidence_age_blocks below their block, so
    # deleting the one height that just became too old, every block, removes each record in time.
    expired = block_height - params.max_evidence_age_blocks - 1
    if expired >= 0 and state.get(offence_key(expired)) is not None:
        state.delete(offence_key(expired))


# --- hook -----------------------------------------------------------------------


def on_initialize(state: Overlay, block: BlockContext) -> None:
    """Punish each double-sign the block carries; any inadmissible evidence makes the block invalid."""
    params = read_params(state)
    _prune_offences(state, block.height, params)
    # In block order, so a second piece for a (validator, height) is refused as already punished.
    for index, evidence in enumerate(block.evidence):
        try:
            offence = admissible_double_sign(state, evidence, block.height, params)
        except InvalidEvidence as error:
            raise InvalidEvidence(f"evidence {index}: {error}") from None
        punish_double_sign(state, offence.validator, offence.height, block.height, params)
