"""genesis.json: load, validate, hash, and turn into the runtime's typed genesis configuration.

The shape follows CometBFT where it fits: genesis_time (RFC 3339), chain_id,
initial_height, consensus_params, validators, app_state.<module>; 64-bit integers
are strings. The genesis hash is blake2b-256 of the document's canonical JSON
(sorted keys, no insignificant whitespace), so reformatting the file keeps the hash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from chain.crypto import DEV_ACCOUNT_NAMES, dev_keypair
from chain.ss58 import AddressError, decode_address, encode_address
from proto import types_pb2
from inference.registration import EMBEDDED_MODEL_ID, embedded_model_info
from runtime import staking
from runtime.block import LIMITS, BlockLimits
from runtime.executive import check_weight_bounds
from runtime.genesis import RuntimeGenesis, build_genesis_state, default_app_state, parse_app_state
from runtime.hashing import blake2b_256
from runtime.module import GenesisContext
from runtime.params import params_from_json, parse_integer
from runtime.state import MemoryState

DEV_CHAIN_ID = "inferchain-dev"
DEV_GENESIS_TIME = "2026-11-01T00:00:00Z"
# 10^9 INFER at 9 decimals: the six dev accounts hold 6 x 10^9 INFER, a third of the u64 supply cap
# (18,446,744,073.709551615 INFER; docs/economics.md, "Token and supply").
DEV_ENDOWMENT = 10**18
# Each dev validator bonds this much and offers the embedded model at this price (base units per token).
DEV_BOND = 2 * 10**17
DEV_PRICE_PER_TOKEN = 1_000_000_000
DEV_CAPACITY = 8


class GenesisError(ValueError):
    """A genesis document that cannot start a chain; the message names the field."""


@dataclass(frozen=True)
class GenesisValidator:
    name: str
    public_key: bytes
    power: int


@dataclass(frozen=True)
class ConsensusParams:
    """genesis `consensus_params.block`: the node's block time, and the runtime's block limits."""

    block_time_ms: int = 1_000
    # The protocol rule, judged by the runtime from state (runtime/block.py); here for the node's own sizing
    # (message and part limits), read from the same genesis.
    limits: BlockLimits = BlockLimits()

    @property
    def max_block_bytes(self) -> int:
        return self.limits.max_block_bytes

    @property
    def max_block_transactions(self) -> int:
        return self.limits.max_block_transactions


@dataclass(frozen=True)
class Genesis:
    """A validated genesis document and what the node and runtime need from it."""

    chain_id: str
    genesis_time_ms: int
    initial_height: int
    consensus: ConsensusParams
    validators: tuple[GenesisValidator, ...]
    runtime: RuntimeGenesis
    hash: bytes

    def state(self) -> dict[bytes, bytes]:
        """The genesis key-value state."""
        return build_genesis_state(self.runtime)


def canonical_json(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def genesis_hash(document: dict) -> bytes:
    """blake2b-256 of the canonical JSON of the document."""
    return blake2b_256(canonical_json(document))


def load_genesis(path: str | Path) -> Genesis:
    """Read and validate a genesis file; GenesisError with a readable message otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise GenesisError(f"cannot read genesis file {path}: {error.strerror or error}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise GenesisError(f"{path} is not valid JSON: {error}") from None
    return parse_genesis(document)


def parse_genesis(document: Any) -> Genesis:
    """Validate a genesis document (already parsed JSON)."""
    if not isinstance(document, dict):
        raise GenesisError("genesis must be a JSON object")
    chain_id = _string(document, "chain_id")
    if not chain_id or len(chain_id) > 64:
        raise GenesisError("chain_id must be a non-empty string of at most 64 characters")
    genesis_time_ms = _time_ms(_string(document, "genesis_time"))
    initial_height = _u64(document.get("initial_height", "1"), "initial_height")
    if initial_height < 1:
        raise GenesisError("initial_height must be at least 1")
    consensus = _consensus_params(document.get("consensus_params", {}))
    listed = _validators(document["validators"]) if "validators" in document else None
    app_state = _object(document, "app_state")
    hash_ = genesis_hash(document)
    context = GenesisContext(chain_id, hash_, genesis_time_ms, initial_height, decode_address, consensus.limits)
    try:
        runtime_genesis = parse_app_state(app_state, context)
    except ValueError as error:
        raise GenesisError(str(error)) from None
    try:
        state = build_genesis_state(runtime_genesis)
    except ValueError as error:
        message = str(error)  # most already name their field from app_state down
        raise GenesisError(message if message.startswith("app_state") else f"app_state: {message}") from None
    try:
        # The call weights bound the work of a block only for parameters within their ceilings (runtime/weights.py).
        check_weight_bounds(MemoryState(state))
    except ValueError as error:
        raise GenesisError(f"app_state: {error}") from None
    validators = _staked_validators(state, app_state, listed)
    return Genesis(chain_id, genesis_time_ms, initial_height, consensus, validators, runtime_genesis, hash_)


def _staked_validators(state: dict[bytes, bytes], app_state: dict, listed: tuple[GenesisValidator, ...] | None):
    """The set that signs the first block: staking's, from the genesis stakes. A `validators` list, when given,
    must say the same (as CometBFT's InitChain): consensus follows staking, so a list that differs would only mislead
    an operator, and a stake nobody listed would hold power no node of the list can sign with."""
    elected = types_pb2.ValidatorSet.FromString(state.get(staking.VALIDATOR_SET_KEY, b""))
    if not elected.validators:
        raise GenesisError("no validator at genesis: no entry of app_state.staking.stakes validates (validate: true, "
                           "at least min_bond bonded), so no block could ever be finalized")
    names = _stake_names(app_state)
    staked = tuple(GenesisValidator(names.get(v.public_key, ""), v.public_key, v.voting_power) for v in elected.validators)
    if listed is None:
        return staked
    powers = {validator.public_key: validator.voting_power for validator in elected.validators}
    for index, validator in enumerate(listed):
        if validator.public_key not in powers:
            raise GenesisError(
                f"validators[{index}] ({validator.name or encode_address(validator.public_key)}) does not validate by stake: "
                "give it an entry in app_state.staking.stakes with validate: true and at least min_bond bonded, "
                "or leave `validators` out to take the set from staking"
            )
        if validator.power != powers[validator.public_key]:
            raise GenesisError(
                f"validators[{index}].power is {validator.power}, but its bonded stake gives it {powers[validator.public_key]}: "
                "consensus weighs validators by bonded stake"
            )
    listed_keys = {validator.public_key for validator in listed}
    missing = [v for v in staked if v.public_key not in listed_keys]
    if missing:
        who = missing[0].name or encode_address(missing[0].public_key)
        raise GenesisError(
            f"{who} validates by stake (app_state.staking.stakes) but is not in validators: without its node no quorum "
            f"may form; list it with power {missing[0].power}, or leave `validators` out to take the set from staking"
        )
    return listed


def _stake_names(app_state: dict) -> dict[bytes, str]:
    """The `name` of each genesis stake by account, for people (the runtime has parsed the stakes already)."""
    stakes = app_state.get("staking", {}).get("stakes", [])
    return {decode_address(entry["address"]): entry["name"] for entry in stakes if isinstance(entry.get("name"), str)}


def _string(section: dict, key: str) -> str:
    value = section.get(key)
    if not isinstance(value, str):
        raise GenesisError(f"{key} must be a string")
    return value


def _object(section: dict, key: str) -> dict:
    value = section.get(key)
    if not isinstance(value, dict):
        raise GenesisError(f"{key} must be an object")
    return value


def _u64(value: Any, where: str) -> int:
    # 64-bit integers are strings (JSON numbers lose precision past 2^53); plain numbers are accepted too.
    try:
        return parse_integer(value, where)
    except ValueError as error:
        raise GenesisError(str(error)) from None


def _time_ms(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise GenesisError(f"genesis_time must be RFC 3339 (e.g. 2026-11-01T00:00:00Z), got {text!r}") from None
    if moment.tzinfo is None:
        raise GenesisError("genesis_time must carry a time zone (e.g. a trailing Z)")
    return int(moment.astimezone(timezone.utc).timestamp() * 1000)


def _consensus_params(section: Any) -> ConsensusParams:
    if not isinstance(section, dict):
        raise GenesisError("consensus_params must be an object")
    unknown = sorted(set(section) - {"block"})
    if unknown:
        raise GenesisError(f"consensus_params: unknown field {str(unknown[0])[:40]!r} (known: block)")
    block = section.get("block", {})
    if not isinstance(block, dict):
        raise GenesisError("consensus_params.block must be an object")
    block_time_ms = _u64(block.get("block_time_ms", ConsensusParams.block_time_ms), "consensus_params.block.block_time_ms")
    if not 10 <= block_time_ms <= 3_600_000:
        raise GenesisError("consensus_params.block.block_time_ms must be between 10 and 3600000")
    known = ("block_time_ms", *(field.name for field in fields(BlockLimits)))
    unknown = sorted(set(block) - set(known))
    if unknown:
        raise GenesisError(f"consensus_params.block: unknown parameter {str(unknown[0])[:40]!r} (known: {', '.join(known)})")
    limits = {key: value for key, value in block.items() if key != "block_time_ms"}
    try:
        return ConsensusParams(block_time_ms, params_from_json(LIMITS, limits, "consensus_params.block"))
    except ValueError as error:
        raise GenesisError(str(error)) from None


def _account(text: Any, where: str) -> bytes:
    if not isinstance(text, str):
        raise GenesisError(f"{where} must be an SS58 address string")
    try:
        return decode_address(text)
    except AddressError as error:
        raise GenesisError(f"{where}: {error}") from None


def _validators(entries: Any) -> tuple[GenesisValidator, ...]:
    if not isinstance(entries, list) or not entries:
        raise GenesisError("validators must be a non-empty list")
    validators = []
    for index, entry in enumerate(entries):
        where = f"validators[{index}]"
        if not isinstance(entry, dict):
            raise GenesisError(f"{where} must be an object")
        public_key = _account(entry.get("address"), f"{where}.address")
        key_field = entry.get("pub_key", {})
        if key_field and (not isinstance(key_field, dict) or key_field.get("value") != public_key.hex()):
            raise GenesisError(f"{where}.pub_key.value must be the hex public key of {where}.address")
        power = _u64(entry.get("power"), f"{where}.power")
        if power == 0:
            raise GenesisError(f"{where}.power must be positive")
        validators.append(GenesisValidator(str(entry.get("name", "")), public_key, power))
    if len({validator.public_key for validator in validators}) != len(validators):
        raise GenesisError("validators: the same key is listed twice")
    return tuple(validators)


def dev_genesis_document(chain_id: str = DEV_CHAIN_ID, validator_names: tuple[str, ...] = ("alice",)) -> dict:
    """The development genesis: the six dev accounts endowed, the named dev accounts validating."""
    document = {
        "genesis_time": DEV_GENESIS_TIME,
        "chain_id": chain_id,
        "initial_height": "1",
        "consensus_params": {
            "block": {
                "block_time_ms": str(ConsensusParams.block_time_ms),
                "max_block_bytes": str(BlockLimits.max_block_bytes),
                "max_block_transactions": str(BlockLimits.max_block_transactions),
                "max_block_weight": str(BlockLimits.max_block_weight),
            }
        },
        "validators": [validator_entry(name, dev_keypair(name).public_key) for name in validator_names],
        "app_state": default_app_state({
            "balances": {
                "balances": [
                    {"name": name, "address": dev_keypair(name).address, "amount": str(DEV_ENDOWMENT)}
                    for name in DEV_ACCOUNT_NAMES
                ],
            },
            "models": {"models": [embedded_model_info()]},
            "staking": {"stakes": [dev_stake(name) for name in validator_names]},
        }),
    }
    return document


def dev_stake(name: str) -> dict:
    """A dev account's genesis stake: bonded, validating, and offering the embedded model."""
    return stake_entry(name, dev_keypair(name).public_key)


def validator_entry(name: str, public_key: bytes, power: int = DEV_BOND) -> dict:
    """A genesis `validators` entry for an Ed25519 key; its power must be what its genesis stake bonds."""
    return {
        "name": name,
        "address": encode_address(public_key),
        "pub_key": {"type": "ed25519", "value": public_key.hex()},
        "power": str(power),
    }


def stake_entry(name: str, public_key: bytes) -> dict:
    """A genesis stake like the dev validators': DEV_BOND bonded, validating, offering the embedded model."""
    return {
        "name": name,
        "address": encode_address(public_key),
        "bonded": str(DEV_BOND),
        "validate": True,
        "offer": {
            "models": [EMBEDDED_MODEL_ID],
            "price_per_token": str(DEV_PRICE_PER_TOKEN),
            "region": "",
            "capacity": DEV_CAPACITY,
        },
    }