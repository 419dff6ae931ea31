"""staking: bonded and unbonding stake, executor offers, and the validator set chosen per epoch.

Bonded and unbonding amounts are part of the account's reserved balance (as Substrate's staking
locks), so the supply invariant counts them through the accounts; the ledger says why they are
reserved. Unbonding stake stays reserved for `unbonding_period_blocks`, longer than every
challenge window, so an offence found late can still be slashed. An executor is a bonded account
with an offer; the accounts serving each model are kept in a sorted index so that assignment
(runtime/jobs.py) reads one value instead of walking state.

A validator that signs two conflicting votes (runtime/evidence.py) is punished when a block
carries the evidence: `slash_fraction_double_sign_ppm` of its bonded and still-unbonding stake is
burned and it is jailed for `jail_blocks`, so the next election leaves it out; the current epoch's
set stays as it is (consensus never changes its validators mid-epoch). Its offer stays: the
executor market is not part of this rule.

Shape: params, storage keys, errors, events, storage access, calls, evidence and slashing, hooks,
genesis, declaration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping

from proto import state_pb2, types_pb2
from runtime import balances, models, system
from runtime.arithmetic import PPM, U64_MAX, apply_ppm
from runtime.evidence import DoubleSign, EvidenceError, double_sign
from runtime.module import (
    ACCOUNT,
    AMOUNT,
    INTEGER,
    TEXT,
    CallSpec,
    EventSpec,
    GenesisContext,
    GenesisInvalid,
    GenesisSpec,
    ModuleSpec,
    ParamsSpec,
    check_section_keys,
)
from runtime.params import decode_params, encode_params, params_from_json, params_to_json, parse_integer
from runtime.primitives import BlockContext, DispatchError, make_event
from runtime.state import IterableState, Overlay, StateReader

MODULE = "staking"
MAX_REGION_BYTES = 32
MAX_GENESIS_STAKES = 10_000

# --- params -------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """Stake rules, set at genesis (proto StakingParams documents each field)."""

    min_bond: int = 10**17
    unbonding_period_blocks: int = 1_000
    epoch_blocks: int = 100
    max_validators: int = 100
    max_offer_models: int = 16
    max_executors_per_model: int = 1_000
    max_unbonding_chunks: int = 32
    max_capacity: int = 64
    slash_fraction_double_sign_ppm: int = 50_000
    jail_blocks: int = 1_000
    max_evidence_age_blocks: int = 100

    def validate(self) -> None:
        for name, value in asdict(self).items():
            if value < 1:
                raise ValueError(f"staking.params.{name} must be at least 1")
        if self.slash_fraction_double_sign_ppm > PPM:
            raise ValueError(f"staking.params.slash_fraction_double_sign_ppm must be at most {PPM} (all of the stake)")


PARAMS_KEY = b"staking/params"
PARAMS = ParamsSpec(Params, state_pb2.StakingParams, PARAMS_KEY)

# --- storage keys ---------------------------------------------------------------

LEDGER_PREFIX = b"staking/ledger/"  # + account -> StakeLedger
OFFER_PREFIX = b"staking/offer/"  # + account -> Offer
SERVING_PREFIX = b"staking/serving/"  # + model id -> AccountList (sorted)
CANDIDATES_KEY = b"staking/candidates"  # AccountList of accounts that declared to validate
VALIDATOR_SET_KEY = b"staking/validator_set"  # types.ValidatorSet of the current epoch
PREVIOUS_VALIDATOR_SET_KEY = b"staking/previous_validator_set"  # types.ValidatorSet of the epoch before
TOTALS_KEY = b"staking/totals"  # StakingTotals
# + u64be(height) -> AccountList of the validators punished for a double-sign at that height;
# keyed by height so that each block deletes the one height that just became too old.
OFFENCE_PREFIX = b"staking/evidence/"


def offence_key(height: int) -> bytes:
    return OFFENCE_PREFIX + height.to_bytes(8, "big")


def read_params(state: StateReader) -> Params:
    return decode_params(PARAMS, state.get(PARAMS_KEY))


# --- errors ---------------------------------------------------------------------


class StakingError(DispatchError):
    module = MODULE


class ZeroAmount(StakingError):
    """Bonding or unbonding nothing."""


class InsufficientBalance(StakingError):
    """The free balance does not cover the bond."""


class BelowMinimumBond(StakingError):
    """The bond would stay below staking.params.min_bond (and above zero)."""


class NotBonded(StakingError):
    """The account has no (or not enough) bonded stake for this."""


class TooManyUnbondingChunks(StakingError):
    """Too many unbonding amounts wait at once; withdraw the released ones first."""


class NothingToWithdraw(StakingError):
    """No unbonding amount has reached its release height."""


class OfferActive(StakingError):
    """Unbonding below the minimum bond while an offer stands; clear the offer first."""


class InvalidOffer(StakingError):
    """The offer's models, capacity or region break the rules."""


class UnknownModel(StakingError):
    """The offer names a model that is not registered."""


class NoOffer(StakingError):
    """The account has no offer to clear."""


class TooManyExecutors(StakingError):
    """The model already has staking.params.max_executors_per_model executors."""


class InvalidEvidence(StakingError):
    """A block carries evidence that is malformed, inadmissible or already punished: the block is invalid."""


ERRORS = (
    ZeroAmount, InsufficientBalance, BelowMinimumBond, NotBonded, TooManyUnbondingChunks, NothingToWithdraw,
    OfferActive, InvalidOffer, UnknownModel, NoOffer, TooManyExecutors, InvalidEvidence,
)

# --- events ---------------------------------------------------------------------

EVENTS = (
    EventSpec("Bonded", "Free balance became bonded stake.", {"account": ACCOUNT, "amount": AMOUNT, "bonded": AMOUNT}),
    EventSpec(
        "Unbonded",
        "Bonded stake started unbonding; it is released at release_height.",
        {"account": ACCOUNT, "amount": AMOUNT, "release_height": INTEGER},
    ),
    EventSpec("Withdrawn", "Released unbonding stake returned to free balance.", {"account": ACCOUNT, "amount": AMOUNT}),
    EventSpec(
        "OfferSet",
        "An account offers to execute jobs for the listed models.",
        {"account": ACCOUNT, "models": TEXT, "price_per_token": AMOUNT, "region": TEXT, "capacity": INTEGER},
    ),
    EventSpec("OfferCleared", "An account no longer takes new jobs.", {"account": ACCOUNT}),
    EventSpec(
        "ValidatorSetChanged",
        "The validator set of a new epoch (top bonded accounts that declared to validate).",
        {"epoch": INTEGER, "validators": INTEGER, "total_power": AMOUNT},
    ),
    EventSpec(
        "Slashed",
        "A validator's stake was burned for signing two conflicting votes at `height`.",
        {"validator": ACCOUNT, "amount": AMOUNT, "height": INTEGER},
    ),
    EventSpec(
        "Jailed",
        "A validator is left out of validator elections held below height `until`.",
        {"validator": ACCOUNT, "until": INTEGER},
    ),
)


def _event(event_name: str, **attributes: object) -> types_pb2.Event:
    return make_event(MODULE, event_name, **attributes)


# --- storage access -------------------------------------------------------------


def read_ledger(state: StateReader, account: bytes) -> state_pb2.StakeLedger | None:
    raw = state.get(LEDGER_PREFIX + account)
    return None if raw is None else state_pb2.StakeLedger.FromString(raw)


def _write_ledger(state: Overlay, account: bytes, ledger: state_pb2.StakeLedger) -> None:
    if ledger.bonded == 0 and not ledger.unbonding and not ledger.validate and not ledger.jailed_until:
        state.delete(LEDGER_PREFIX + account)
    else:
        state.set(LEDGER_PREFIX + account, ledger.SerializeToString(deterministic=True))


def bonded(state: StateReader, account: bytes) -> int:
    ledger = read_ledger(state, account)
    return 0 if ledger is None else ledger.bonded


def read_offer(state: StateReader, account: bytes) -> state_pb2.Offer | None:
    raw = state.get(OFFER_PREFIX + account)
    return None if raw is None else state_pb2.Offer.FromString(raw)


def _read_list(state: StateReader, key: bytes) -> list[bytes]:
    raw = state.get(key)
    return [] if raw is None else list(state_pb2.AccountList.FromString(raw).accounts)


def _write_list(state: Overlay, key: bytes, accounts: list[bytes]) -> None:
    if accounts:
        state.set(key, state_pb2.AccountList(accounts=sorted(accounts)).SerializeToString(deterministic=True))
    else:
        state.delete(key)


def serving(state: StateReader, model_id: bytes) -> list[bytes]:
    """The accounts whose offer lists the model, sorted."""
    return _read_list(state, SERVING_PREFIX + model_id)


def read_totals(state: StateReader) -> state_pb2.StakingTotals:
    raw = state.get(TOTALS_KEY)
    return state_pb2.StakingTotals() if raw is None else state_pb2.StakingTotals.FromString(raw)


def _add_totals(state: Overlay, bonded_delta: int = 0, unbonding_delta: int = 0) -> None:
    totals = read_totals(state)
    totals.bonded += bonded_delta
    totals.unbonding += unbonding_delta
    state.set(TOTALS_KEY, totals.SerializeToString(deterministic=True))


def read_validator_set(state: StateReader) -> types_pb2.ValidatorSet:
    raw = state.get(VALIDATOR_SET_KEY)
    return types_pb2.ValidatorSet() if raw is None else types_pb2.ValidatorSet.FromString(raw)


def read_previous_validator_set(state: StateReader) -> types_pb2.ValidatorSet:
    """The set of the epoch before the current one (empty in the first epoch)."""
    raw = state.get(PREVIOUS_VALIDATOR_SET_KEY)
    return types_pb2.ValidatorSet() if raw is None else types_pb2.ValidatorSet.FromString(raw)


def jailed(ledger: state_pb2.StakeLedger | None, height: int) -> bool:
    """Whether an election held at `height` leaves the account out."""
    return ledger is not None and height < ledger.jailed_until


def _current_height(state: StateReader) -> int:
    return system.read_chain(state).height


# --- calls ----------------------------------------------------------------------


def bond(state: Overlay, origin: bytes, call: types_pb2.Bond) -> None:
    """Bond `amount` more (0 only to change `validate`), and declare whether to validate."""
    ledger = read_ledger(state, origin) or state_pb2.StakeLedger()
    if call.amount == 0 and call.validate == ledger.validate:
        raise ZeroAmount("bond amount must be positive (or change --validate)")
    params = read_params(state)
    new_bonded = ledger.bonded + call.amount
    if new_bonded < params.min_bond:
        raise BelowMinimumBond(f"bonded stake would be {new_bonded}, below the minimum bond {params.min_bond}")
    if call.amount:
        balances.reserve(state, origin, call.amount, InsufficientBalance)
    if call.validate != ledger.validate:
        candidates = set(_read_list(state, CANDIDATES_KEY))
        (candidates.add if call.validate else candidates.discard)(origin)
        _write_list(state, CANDIDATES_KEY, list(candidates))
    ledger.bonded = new_bonded
    ledger.validate = call.validate
    _write_ledger(state, origin, ledger)
    _add_totals(state, bonded_delta=call.amount)
    state.deposit_event(_event("Bonded", account=origin.hex(), amount=call.amount, bonded=new_bonded))


def check_amount(call) -> None:
    if call.amount == 0:
        raise ZeroAmount("amount must be positive")


def unbond(state: Overlay, origin: bytes, call: types_pb2.Unbond) -> None:
    """Start unbonding `amount`; it stays reserved (and slashable) until its release height."""
    check_amount(call)
    ledger = read_ledger(state, origin)
    have = 0 if ledger is None else ledger.bonded
    if call.amount > have:
        raise NotBonded(f"unbond of {call.amount} exceeds the bonded stake {have}")
    params = read_params(state)
    remaining = have - call.amount
    if remaining < params.min_bond:
        if read_offer(state, origin) is not None:
            raise OfferActive(
                f"unbonding leaves {remaining}, below the minimum bond {params.min_bond}, while an offer stands: "
                "clear the offer first"
            )
        if 0 < remaining:
            raise BelowMinimumBond(f"unbonding leaves {remaining}: unbond everything or keep at least {params.min_bond}")
    release = _current_height(state) + params.unbonding_period_blocks
    if ledger.unbonding and ledger.unbonding[-1].release_height == release:
        ledger.unbonding[-1].amount += call.amount
    elif len(ledger.unbonding) >= params.max_unbonding_chunks:
        raise TooManyUnbondingChunks(
            f"{len(ledger.unbonding)} unbonding amounts already wait (the limit); withdraw released ones first"
        )
    else:
        ledger.unbonding.append(state_pb2.UnbondingChunk(amount=call.amount, release_height=release))
    ledger.bonded = remaining
    if remaining == 0 and ledger.validate:
        ledger.validate = False
        _write_list(state, CANDIDATES_KEY, [a for a in _read_list(state, CANDIDATES_KEY) if a != origin])
    _write_ledger(state, origin, ledger)
    _add_totals(state, bonded_delta=-call.amount, unbonding_delta=call.amount)
    state.deposit_event(_event("Unbonded", account=origin.hex(), amount=call.amount, release_height=release))


def withdraw_unbonded(state: Overlay, origin: bytes, call: types_pb2.WithdrawUnbonded) -> None:
    """Return every released unbonding amount to free balance."""
    ledger = read_ledger(state, origin)
    height = _current_height(state)
    released = [chunk for chunk in (ledger.unbonding if ledger else []) if chunk.release_height <= height]
    if not released:
        pending = "" if not ledger or not ledger.unbonding else f"; the next release is at height {ledger.unbonding[0].release_height}"
        raise NothingToWithdraw(f"no unbonding amount is released at height {height}{pending}")
    amount = sum(chunk.amount for chunk in released)
    kept = [chunk for chunk in ledger.unbonding if chunk.release_height > height]
    del ledger.unbonding[:]
    ledger.unbonding.extend(kept)
    _write_ledger(state, origin, ledger)
    balances.unreserve(state, origin, amount)
    _add_totals(state, unbonding_delta=-amount)
    state.deposit_event(_event("Withdrawn", account=origin.hex(), amount=amount))


def check_offer(call: types_pb2.SetOffer) -> None:
    """What makes an offer invalid whatever the state."""
    if not call.models:
        raise InvalidOffer("an offer lists at least one model")
    for model in call.models:
        if len(model) != 32:
            raise InvalidOffer(f"a model id is 32 bytes, got {len(model)}")
    if len(set(call.models)) != len(call.models):
        raise InvalidOffer("an offer lists each model once")
    if call.capacity == 0:
        raise InvalidOffer("capacity (jobs at once) must be at least 1")
    check_region(call.region, InvalidOffer)


def check_region(region: str, error: type[DispatchError]) -> None:
    """A region is lowercase ASCII letters, digits and '-', at most MAX_REGION_BYTES (empty: none)."""
    if len(region) > MAX_REGION_BYTES or not all(c.islower() or c.isdigit() or c == "-" for c in region) or not region.isascii():
        raise error(f"a region is at most {MAX_REGION_BYTES} lowercase ASCII letters, digits or '-'")


def set_offer(state: Overlay, origin: bytes, call: types_pb2.SetOffer) -> None:
    """Offer to execute jobs; replaces an earlier offer."""
    check_offer(call)
    params = read_params(state)
    if len(call.models) > params.max_offer_models:
        raise InvalidOffer(f"an offer lists at most {params.max_offer_models} models")
    if call.capacity > params.max_capacity:
        raise InvalidOffer(f"capacity is at most {params.max_capacity} jobs at once")
    have = bonded(state, origin)
    if have < params.min_bond:
        raise NotBonded(f"an executor needs at least {params.min_bond} bonded, this account has {have}")
    for model in call.models:
        if models.read_model(state, model) is None:
            raise UnknownModel(f"model {model.hex()} is not registered")
    old = read_offer(state, origin)
    old_models = set(old.models) if old else set()
    for model in sorted(set(call.models) - old_models):
        accounts = serving(state, model)
        if len(accounts) >= params.max_executors_per_model:
            raise TooManyExecutors(f"model {model.hex()} already has {len(accounts)} executors (the limit)")
        _write_list(state, SERVING_PREFIX + model, accounts + [origin])
    for model in sorted(old_models - set(call.models)):
        _write_list(state, SERVING_PREFIX + model, [a for a in serving(state, model) if a != origin])
    offer = state_pb2.Offer(
        models=list(call.models), price_per_token=call.price_per_token, region=call.region, capacity=call.capacity
    )
    state.set(OFFER_PREFIX + origin, offer.SerializeToString(deterministic=True))
    state.deposit_event(
        _event(
            "OfferSet",
            account=origin.hex(),
            models=",".join(model.hex() for model in call.models),
            price_per_token=call.price_per_token,
            region=call.region,
            capacity=call.capacity,
        )
    )


def clear_offer(state: Overlay, origin: bytes, call: types_pb2.ClearOffer) -> None:
    """Take no new jobs; assigned ones run to their end."""
    offer = read_offer(state, origin)
    if offer is None:
        raise NoOffer("this account has no offer")
    for model in offer.models:
        _write_list(state, SERVING_PREFIX + model, [a for a in serving(state, model) if a != origin])
    state.delete(OFFER_PREFIX + origin)
    state.deposit_event(_event("OfferCleared", account=origin.hex()))


def _bond_cost(call: types_pb2.Bond) -> int:
    return call.amount


CALLS = (
    CallSpec(
        name="bond",
        message=types_pb2.Bond,
        doc="Bond free balance as stake (and declare whether to validate).",
        handler=bond,
        cost=_bond_cost,
        fields={"amount": AMOUNT, "validate": INTEGER},
    ),
    CallSpec(
        name="unbond",
        message=types_pb2.Unbond,
        doc="Start unbonding stake; withdraw it after the unbonding period.",
        handler=unbond,
        check=check_amount,
        fields={"amount": AMOUNT},
    ),
    CallSpec(
        name="withdraw_unbonded",
        message=types_pb2.WithdrawUnbonded,
        doc="Return released unbonding stake to free balance.",
        handler=withdraw_unbonded,
    ),
    CallSpec(
        name="set_offer",
        message=types_pb2.SetOffer,
        doc="Offer to execute jobs: models, price per token, region, capacity.",
        handler=set_offer,
        check=check_offer,
        fields={"price_per_token": AMOUNT, "region": TEXT, "capacity": INTEGER},
    ),
    CallSpec(
        name="clear_offer",
        message=types_pb2.ClearOffer,
        doc="Stop taking new jobs.",
        handler=clear_offer,
    ),
)

# --- evidence and slashing ------------------------------------------------------


def epoch_of(height: int, params: Params) -> int:
    """The epoch whose validator set signs the block at `height` (elected at the end of block epoch × epoch_blocks)."""
    return (height - 1) // params.epoch_blocks


def validator_set_at(state: StateReader, height: int, block_height: int, params: Params) -> types_pb2.ValidatorSet | None:
    """The set that signed at `height`, seen from the block at `block_height`: this epoch's or the last; else None."""
    epochs_back = epoch_of(block_height, params) - epoch_of(height, params)
    if epochs_back == 0:
        return read_validator_set(state)
    if epochs_back == 1:
        return read_previous_validator_set(state)
    return None


def punished(state: StateReader, validator: bytes, height: int) -> bool:
    """Whether the validator was already punished for a double-sign at `height`."""
    return validator in _read_list(state, offence_key(height))


def check_evidence(state: StateReader, evidence: types_pb2.DuplicateVoteEvidence, block_height: int) -> str | None:
    """None if the block at `block_height` may carry `evidence` on top of `state`, else the reason it may not."""
    try:
        _admissible_double_sign(state, evidence, block_height, read_params(state))
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
            offence = _admissible_double_sign(state, evidence, block_height, params)
        except InvalidEvidence:
            continue
        if (offence.validator, offence.height) not in seen:
            seen.add((offence.validator, offence.height))
            chosen.append(evidence)
    return chosen


def _admissible_double_sign(
    state: StateReader, evidence: types_pb2.DuplicateVoteEvidence, block_height: int, params: Params
) -> DoubleSign:
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
    validator_set = validator_set_at(state, height, block_height, params)
    if validator_set is None:
        raise InvalidEvidence(f"the double-sign at height {height} is older than the previous epoch's validator set")
    if all(validator.public_key != offence.validator for validator in validator_set.validators):
        raise InvalidEvidence(f"{who} was not a validator at height {height}")
    if punished(state, offence.validator, height):
        raise InvalidEvidence(f"{who} was already punished for a double-sign at height {height}")
    return offence


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
    _write_ledger(state, validator, ledger)
    amount = from_bonded + from_unbonding
    if amount:
        balances.burn_reserved(state, validator, amount)
    _add_totals(state, bonded_delta=-from_bonded, unbonding_delta=-from_unbonding)
    _write_list(state, offence_key(height), _read_list(state, offence_key(height)) + [validator])
    state.deposit_event(_event("Slashed", validator=validator.hex(), amount=amount, height=height))
    state.deposit_event(_event("Jailed", validator=validator.hex(), until=ledger.jailed_until))
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
            offence = _admissible_double_sign(state, evidence, block.height, params)
        except InvalidEvidence as error:
            raise InvalidEvidence(f"evidence {index}: {error}") from None
        punish_double_sign(state, offence.validator, offence.height, block.height, params)


def elect_validators(state: StateReader, params: Params, height: int) -> types_pb2.ValidatorSet:
    """The top `max_validators` bonded, unjailed candidates by stake at `height` (ties: lower account id first)."""
    ranked = []
    for account in _read_list(state, CANDIDATES_KEY):
        ledger = read_ledger(state, account)
        stake = 0 if ledger is None else ledger.bonded
        if stake >= params.min_bond and not jailed(ledger, height):
            ranked.append((-stake, account))
    ranked.sort()
    chosen = sorted((account, -negative) for negative, account in ranked[: params.max_validators])
    return types_pb2.ValidatorSet(
        validators=[types_pb2.Validator(public_key=account, voting_power=power) for account, power in chosen]
    )


def _store_validator_set(state: Overlay, params: Params, height: int) -> types_pb2.ValidatorSet:
    validator_set = elect_validators(state, params, height)
    state.set(VALIDATOR_SET_KEY, validator_set.SerializeToString(deterministic=True))
    return validator_set


def _rotate(state: Overlay, params: Params, height: int) -> None:
    # Evidence from the last epoch is judged against the set that signed then.
    state.set(PREVIOUS_VALIDATOR_SET_KEY, read_validator_set(state).SerializeToString(deterministic=True))
    validator_set = _store_validator_set(state, params, height)
    epoch = height // params.epoch_blocks
    totals = read_totals(state)
    totals.epoch = epoch
    state.set(TOTALS_KEY, totals.SerializeToString(deterministic=True))
    total_power = sum(validator.voting_power for validator in validator_set.validators)
    state.deposit_event(
        _event("ValidatorSetChanged", epoch=epoch, validators=len(validator_set.validators), total_power=total_power)
    )


def on_finalize(state: Overlay, block: BlockContext, fees: int) -> None:
    """At each epoch boundary, choose the next epoch's validator set."""
    params = read_params(state)
    if block.height % params.epoch_blocks == 0:
        _rotate(state, params, block.height)


# --- genesis --------------------------------------------------------------------


@dataclass(frozen=True)
class GenesisStake:
    account: bytes
    bonded: int
    validate: bool
    offer: state_pb2.Offer | None


@dataclass(frozen=True)
class GenesisConfig:
    params: Params
    stakes: tuple[GenesisStake, ...]


def parse_genesis(section: Mapping[str, Any], context: GenesisContext) -> GenesisConfig:
    """`app_state.staking`: {"params": {...}, "stakes": [{"address", "bonded", "validate"?, "offer"?, "name"?}]}."""
    check_section_keys(section, ("params", "stakes"), "app_state.staking")
    params = params_from_json(PARAMS, section.get("params", {}), "app_state.staking.params")
    entries = section.get("stakes", [])
    if not isinstance(entries, list) or len(entries) > MAX_GENESIS_STAKES:
        raise GenesisInvalid(f"app_state.staking.stakes must be a list of at most {MAX_GENESIS_STAKES} entries")
    stakes = tuple(_genesis_stake(entry, f"app_state.staking.stakes[{i}]", context) for i, entry in enumerate(entries))
    return GenesisConfig(params, stakes)


def _genesis_stake(entry: Any, where: str, context: GenesisContext) -> GenesisStake:
    check_section_keys(entry, ("name", "address", "bonded", "validate", "offer"), where)
    try:
        account = context.decode_account(entry.get("address") if isinstance(entry.get("address"), str) else "")
    except ValueError as error:
        raise GenesisInvalid(f"{where}.address: {error}") from None
    validate = entry.get("validate", False)
    if not isinstance(validate, bool):
        raise GenesisInvalid(f"{where}.validate must be true or false")
    offer = None
    if "offer" in entry:
        offer = _genesis_offer(entry["offer"], f"{where}.offer")
    return GenesisStake(account, parse_integer(entry.get("bonded"), f"{where}.bonded"), validate, offer)


def _genesis_offer(raw: Any, where: str) -> state_pb2.Offer:
    check_section_keys(raw, ("models", "price_per_token", "region", "capacity"), where)
    model_ids = raw.get("models")
    if not isinstance(model_ids, list) or not all(isinstance(m, str) and len(m) == 64 for m in model_ids):
        raise GenesisInvalid(f"{where}.models must be a list of 64-hex-digit model ids")
    try:
        ids = [bytes.fromhex(m) for m in model_ids]
    except ValueError:
        raise GenesisInvalid(f"{where}.models must be a list of 64-hex-digit model ids") from None
    region = raw.get("region", "")
    if not isinstance(region, str):
        raise GenesisInvalid(f"{where}.region must be a string")
    offer = types_pb2.SetOffer(
        models=ids,
        price_per_token=parse_integer(raw.get("price_per_token"), f"{where}.price_per_token"),
        region=region,
        capacity=parse_integer(raw.get("capacity", 1), f"{where}.capacity", 2**32 - 1),
    )
    try:
        check_offer(offer)
    except InvalidOffer as error:
        raise GenesisInvalid(f"{where}: {error}") from None
    return state_pb2.Offer(models=ids, price_per_token=offer.price_per_token, region=region, capacity=offer.capacity)


def genesis(state: Overlay, config: GenesisConfig) -> None:
    """Write the parameters, bond each stake from its account's free balance, set offers, elect validators."""
    config.params.validate()
    state.set(PARAMS_KEY, encode_params(PARAMS, config.params))
    state.set(TOTALS_KEY, state_pb2.StakingTotals().SerializeToString(deterministic=True))
    seen: set[bytes] = set()
    for stake in config.stakes:
        where = f"app_state.staking.stakes ({stake.account.hex()})"
        if stake.account in seen:
            raise GenesisInvalid(f"{where}: listed twice")
        seen.add(stake.account)
        try:
            bond(state, stake.account, types_pb2.Bond(amount=stake.bonded, validate=stake.validate))
            if stake.offer is not None:
                set_offer(state, stake.account, types_pb2.SetOffer(**_offer_fields(stake.offer)))
        except DispatchError as error:
            raise GenesisInvalid(f"{where}: {error}") from None
    state.take_events()
    _store_validator_set(state, config.params, _current_height(state))
    if read_totals(state).bonded > U64_MAX:
        raise GenesisInvalid("app_state.staking: the total bonded stake does not fit in 64 bits")


def _offer_fields(offer: state_pb2.Offer) -> dict:
    return {"models": list(offer.models), "price_per_token": offer.price_per_token, "region": offer.region,
            "capacity": offer.capacity}


def export_genesis(state: IterableState, encode_account=bytes.hex) -> dict:
    """Parameters and every bonded stake with its offer (unbonding amounts return to free balance)."""
    stakes = []
    for key, value in state.iter_prefix(LEDGER_PREFIX):
        account = key[len(LEDGER_PREFIX):]
        ledger = state_pb2.StakeLedger.FromString(value)
        if ledger.bonded == 0:
            continue
        entry: dict[str, Any] = {"address": encode_account(account), "bonded": str(ledger.bonded), "validate": ledger.validate}
        offer = read_offer(state, account)
        if offer is not None:
            entry["offer"] = {
                "models": [model.hex() for model in offer.models],
                "price_per_token": str(offer.price_per_token),
                "region": offer.region,
                "capacity": offer.capacity,
            }
        stakes.append(entry)
    return {"params": params_to_json(PARAMS, read_params(state)), "stakes": stakes}


# --- declaration ----------------------------------------------------------------

SPEC = ModuleSpec(
    name=MODULE,
    doc="Bonded and unbonding stake, executor offers, the validator set per epoch.",
    params=PARAMS,
    genesis=GenesisSpec(parse=parse_genesis, build=genesis, export=export_genesis),
    calls=CALLS,
    events=EVENTS,
    errors=ERRORS,
    on_initialize=on_initialize,
    on_finalize=on_finalize,
)
