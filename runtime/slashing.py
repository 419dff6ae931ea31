"""slashing: offences punished from evidence carried in blocks — the stake burned, the validator jailed.

A validator that signs two conflicting votes (runtime/evidence.py) is punished when a block
carries the evidence: `slash_fraction_double_sign_ppm` of its bonded and still-unbonding stake is
burned and it is jailed for `jail_blocks`, so the next election leaves it out; the current epoch's
set stays as it is (consensus never changes its validators mid-epoch). Its offer stays: the
executor market is not part of this rule. Evidence older than `max_evidence_age_blocks`, from a
non-validator, or for an offence already punished makes the block invalid.

Shape: params, storage keys, errors, events, evidence checks, penalties, hooks, declaration.
The parameters live in staking's (StakingParams) and this module's records under the
`staking/evidence/` prefix: both kept the form they had when slashing was part of staking, so
the genesis format and the state roots did not change when it became a module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from proto import state_pb2, types_pb2
from runtime import balances, staking, system, weights
from runtime.arithmetic import U64_MAX, apply_ppm
from runtime.evidence import DoubleSign, EvidenceError, double_sign
from runtime.module import ACCOUNT, AMOUNT, INTEGER, EventSpec, ModuleSpec
from runtime.primitives import BlockContext, DispatchError, make_event
from runtime.staking.elections import validator_set_at
from runtime.staking.storage import add_totals, read_accounts, read_ledger, write_accounts, write_ledger
from runtime.state import Overlay, StateReader

MODULE = "slashing"

# --- params -------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """The slashing rules (stored in staking's parameters; proto StakingParams documents each field)."""

    slash_fraction_double_sign_ppm: int
    jail_blocks: int
    max_evidence_age_blocks: int


def read_params(state: StateReader) -> Params:
    """The slashing rules in force in `state`."""
    stake_params = staking.read_params(state)
    return Params(
        stake_params.slash_fraction_double_sign_ppm, stake_params.jail_blocks, stake_params.max_evidence_age_blocks
    )


# --- storage keys ---------------------------------------------------------------

# + u64be(height) -> AccountList of the validators punished for a double-sign at that height;
# keyed by height so that each block deletes the one height that just became too old.
OFFENCE_PREFIX = b"staking/evidence/"


def offence_key(height: int) -> bytes:
    return OFFENCE_PREFIX + height.to_bytes(8, "big")


def punished(state: StateReader, validator: bytes, height: int) -> bool:
    """Whether the validator was already punished for a double-sign at `height`."""
    return validator in read_accounts(state, offence_key(height))


# --- errors ---------------------------------------------------------------------


class SlashingError(DispatchError):
    module = MODULE


class InvalidEvidence(SlashingError):
    """A block carries evidence that is malformed, inadmissible or already punished: the block is invalid."""


ERRORS = (InvalidEvidence,)

# --- events ---------------------------------------------------------------------

SLASHED = "Slashed"
JAILED = "Jailed"

EVENTS = (
    EventSpec(
        SLASHED,
        "A validator's stake was burned for signing two conflicting votes at `height`.",
        {"validator": ACCOUNT, "amount": AMOUNT, "height": INTEGER},
    ),
    EventSpec(
        JAILED,
        "A validator is left out of validator elections held below height `until`.",
        {"validator": ACCOUNT, "until": INTEGER},
    ),
)


def _event(event_name: str, **attributes: object) -> types_pb2.Event:
    return make_event(MODULE, event_name, **attributes)


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


# --- penalties ------------------------------------------------------------------


def punish_double_sign(state: Overlay, validator: bytes, height: int, block_height: int, params: Params) -> int:
    """Burn the slash fraction of the validator's bonded and still-unbonding stake, jail it; the amount burned."""
    ledger = read_ledger(state, validator) or state_pb2.StakeLedger()
    fraction = params.slash_fraction_double_sign_ppm
    from_bonded = apply_ppm(ledger.bonded, fraction)
    from_unbonding = 0
    # A chunk released by now may be withdrawn in this very block: it no longer stands behind the stake.
    for chunk in ledger.unbonding:
        if chunk.release_height > block_height:
            cut = apply_ppm(chunk.amount, fraction)
            chunk.amount -= cut
            from_unbonding += cut
    kept = [chunk for chunk in ledger.unbonding if chunk.amount]
    del ledger.unbonding[:]
    ledger.unbonding.extend(kept)
    ledger.bonded -= from_bonded
    until = min(U64_MAX, block_height + params.jail_blocks)
    ledger.jailed_until = max(ledger.jailed_until, until)
    write_ledger(state, validator, ledger)
    amount = from_bonded + from_unbonding
    if amount:
        balances.burn_reserved(state, validator, amount)
    add_totals(state, bonded_delta=-from_bonded, unbonding_delta=-from_unbonding)
    write_accounts(state, offence_key(height), read_accounts(state, offence_key(height)) + [validator])
    state.deposit_event(_event(SLASHED, validator=validator.hex(), amount=amount, height=height))
    state.deposit_event(_event(JAILED, validator=validator.hex(), until=ledger.jailed_until))
    return amount


def _prune_offences(state: Overlay, block_height: int, params: Params) -> None:
    # Records are written only for heights at most max_evidence_age_blocks below their block, so
    # deleting the one height that just became too old, every block, removes each record in time.
    expired = block_height - params.max_evidence_age_blocks - 1
    if expired >= 0 and state.get(offence_key(expired)) is not None:
        state.delete(offence_key(expired))


# --- hooks ----------------------------------------------------------------------


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


def hooks_weight(state: StateReader, block: BlockContext) -> int:
    """on_initialize's declared weight (runtime/weights.py): the offence record pruned; per piece of evidence, two
    signatures verified, the validator sets and the offence list read, the stake burned, the offender jailed."""
    validators = staking.read_params(state).max_validators
    per_piece = 2 * weights.SIGNATURE + 8 * weights.READ + 6 * weights.WRITE + 4 * validators * weights.LIST_ENTRY
    return 2 * weights.READ + weights.WRITE + len(block.evidence) * per_piece


# --- declaration ----------------------------------------------------------------

SPEC = ModuleSpec(
    name=MODULE,
    doc="Offences punished from block evidence: stake burned, validators jailed.",
    params=None,
    genesis=None,
    events=EVENTS,
    errors=ERRORS,
    on_initialize=on_initialize,
    hooks_weight=hooks_weight,
)
