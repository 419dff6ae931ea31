"""staking genesis: parameters, and stakes bonded (with offers) from the accounts' genesis balances."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from proto import state_pb2, types_pb2
from runtime import system
from runtime.arithmetic import U32_MAX, U64_MAX
from runtime.module import GenesisContext, GenesisInvalid, check_section_keys
from runtime.params import encode_params, params_from_json, params_to_json, parse_integer
from runtime.primitives import CallContext, DispatchError
from runtime.staking.bonds import bond
from runtime.staking.elections import store_validator_set
from runtime.staking.errors import InvalidOffer
from runtime.staking.offers import check_offer, set_offer, stored_class
from runtime.staking.params import MAX_GENESIS_STAKES, PARAMS, PARAMS_KEY, Params, read_params
from runtime.staking.storage import LEDGER_PREFIX, TOTALS_KEY, read_offer, read_totals
from runtime.state import IterableState, Overlay


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
    check_section_keys(raw, ("models", "price_per_token", "region", "capacity", "endpoint", "engine_class"), where)
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
    endpoint = raw.get("endpoint", "")
    if not isinstance(endpoint, str):
        raise GenesisInvalid(f"{where}.endpoint must be a string")
    engine_class = raw.get("engine_class", "")
    if not isinstance(engine_class, str):
        raise GenesisInvalid(f"{where}.engine_class must be a string")
    offer = types_pb2.SetOffer(
        models=ids,
        price_per_token=parse_integer(raw.get("price_per_token"), f"{where}.price_per_token"),
        region=region,
        capacity=parse_integer(raw.get("capacity", 1), f"{where}.capacity", U32_MAX),
        endpoint=endpoint,
        engine_class=engine_class,
    )
    try:
        check_offer(offer)
    except InvalidOffer as error:
        raise GenesisInvalid(f"{where}: {error}") from None
    return state_pb2.Offer(
        models=ids, price_per_token=offer.price_per_token, region=region, capacity=offer.capacity, endpoint=endpoint,
        engine_class=stored_class(engine_class),
    )


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
            context = CallContext.at_genesis(stake.account)
            bond(state, context, types_pb2.Bond(amount=stake.bonded, validate=stake.validate))
            if stake.offer is not None:
                set_offer(state, context, types_pb2.SetOffer(**_offer_fields(stake.offer)))
        except DispatchError as error:
            raise GenesisInvalid(f"{where}: {error}") from None
    state.take_events()
    store_validator_set(state, config.params, system.read_chain(state).height)
    if read_totals(state).bonded > U64_MAX:
        raise GenesisInvalid("app_state.staking: the total bonded stake does not fit in 64 bits")


def _offer_fields(offer: state_pb2.Offer) -> dict:
    return {"models": list(offer.models), "price_per_token": offer.price_per_token, "region": offer.region,
            "capacity": offer.capacity, "endpoint": offer.endpoint, "engine_class": offer.engine_class}


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
            if offer.endpoint:
                entry["offer"]["endpoint"] = offer.endpoint
            if offer.engine_class:
                entry["offer"]["engine_class"] = offer.engine_class
        stakes.append(entry)
    return {"params": params_to_json(PARAMS, read_params(state)), "stakes": stakes}
