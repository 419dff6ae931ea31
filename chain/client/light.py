"""The light client: trust a block only when more than 2/3 of its validator set's power signed it.

The client (chain/client/client.py) checks a node's answers against the node's own headers; this
module checks the headers against the chain. It starts from a trusted genesis document, whose
staking state holds the validator set that signs the first block, and follows the set across
epochs (docs/protocol.md, "Light client"):

- The set that signs block h is `staking/validator_set` in the state after block h - 1. It changes
  only in `on_finalize` of a block whose height is a multiple of `epoch_blocks` (a genesis
  parameter that no call changes), so block h is signed by the set stored after the last such
  boundary below h, or by the genesis set when there is none.
- To cross a boundary E, the client verifies block E with the set that signs it (the header names
  that set's hash, the commit holds precommits of more than 2/3 of its power), then reads
  `staking/validator_set` after block E with GetStateProof and verifies the proof against the state
  root of that verified header: the next epoch's set. Verified sets are kept, so each boundary is
  crossed once.

Only then does a state proof count: `verified_state` and `verified_account` verify the block the
proof names, then the proof against that block's state root. Any failure is a LightClientError
naming the height and what was wrong; a node that cannot be reached is a plain ClientError.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from chain.client.calls import AccountLike, account_public_key, optional_u64
from chain.client.errors import ProofError
from chain.client.results import StateValue
from chain.consensus.commit import CommitError, VotingPower, verify_commit
from chain.genesis import Genesis
from chain.ss58 import encode_address
from chain.state.proof import verify_proof
from proto import state_pb2, types_pb2
from runtime import staking, system
from runtime.encoding import EncodingError, decode_canonical, decode_header
from runtime.hashing import blake2b_256


class LightClientError(ProofError):
    """What a node sent is not backed by the chain's signatures and proofs; `height` is the block (None:
    the chain as a whole)."""

    def __init__(self, height: int | None, reason: str):
        where = "light client" if height is None else f"light client, block {height}"
        super().__init__(f"{where}: {reason}")
        self.height = height
        self.reason = reason


@dataclass(frozen=True)
class VerifiedHeader:
    """A block header signed by more than 2/3 of the voting power of its validator set, that set followed
    from the trusted genesis."""

    height: int
    hash: bytes
    time_ms: int
    state_root: bytes
    validators_hash: bytes
    # The precommits' power and the set's total: more than 2/3 of it signed.
    signed_power: int
    total_power: int
    header: bytes


@dataclass(frozen=True)
class VerifiedState:
    """A state key's value (None: absent) after a verified block."""

    key: bytes
    value: bytes | None
    block: VerifiedHeader


@dataclass(frozen=True)
class VerifiedAccount:
    """An account's balances and nonce after a verified block."""

    public_key: bytes
    address: str
    exists: bool
    free: int
    reserved: int
    nonce: int
    block: VerifiedHeader


class LightClient:
    """Verifies headers, validator sets and state proofs from a node against a trusted genesis.

    `client` is a chain.client.Client (or anything with its chain_info, committed_block and
    state_proof). The node must serve the trusted genesis: its chain id and hash are compared
    at once, and LightClientError refuses a node of another chain.
    """

    def __init__(self, client, genesis: Genesis):
        self.client = client
        self.genesis = genesis
        state = genesis.state()
        self.epoch_blocks = staking.read_params(state).epoch_blocks
        genesis_set = _checked_validator_set(state.get(staking.VALIDATOR_SET_KEY), genesis.initial_height - 1)
        # By the height whose state holds the set: the genesis (initial_height - 1), then each boundary crossed.
        self._sets: dict[int, VotingPower] = {genesis.initial_height - 1: genesis_set}
        self._check_genesis()

    def verified_header(self, height: int = 0) -> VerifiedHeader:
        """The header of block `height` (0: the node's finalized block), its commit verified."""
        height = optional_u64(height, "height") or self.client.chain_info().finalized_height
        return self._verified_block(height, self.validators_for(height))

    def verified_state(self, key: bytes, height: int = 0) -> VerifiedState:
        """The value of state `key` after block `height` (0: the node's best), proven against a verified header."""
        proven = self._state_value(key, optional_u64(height, "height"))
        block = self._verified_block(proven.height, self.validators_for(proven.height))
        _check_state_value(key, proven, block)
        return VerifiedState(key, proven.value, block)

    def verified_account(self, account: AccountLike, height: int = 0) -> VerifiedAccount:
        """An account after block `height` (0: the node's best), proven against a verified header."""
        public_key = account_public_key(account)
        state = self.verified_state(system.account_key(public_key), height)
        info = state_pb2.AccountInfo()
        if state.value is not None:
            try:
                info = state_pb2.AccountInfo.FromString(state.value)
            except DecodeError:
                raise LightClientError(state.block.height, "the proven account value is not an AccountInfo") from None
        return VerifiedAccount(
            public_key=public_key,
            address=encode_address(public_key),
            exists=state.value is not None,
            free=info.free,
            reserved=info.reserved,
            nonce=info.nonce,
            block=state.block,
        )

    def validators_for(self, height: int) -> VotingPower:
        """The validator set that signs block `height`, followed from genesis across the boundaries before it."""
        if height < self.genesis.initial_height:
            raise LightClientError(height, f"the chain's first block is {self.genesis.initial_height}")
        target = self._set_height(height)
        after = max(known for known in self._sets if known <= target)
        while after < target:
            boundary = (after // self.epoch_blocks + 1) * self.epoch_blocks
            self._sets[boundary] = self._next_validators(boundary, self._sets[after])
            after = boundary
        return self._sets[target]

    def _set_height(self, height: int) -> int:
        """The height whose state holds the set that signs block `height`: the last boundary below it."""
        return max(self.genesis.initial_height - 1, (height - 1) // self.epoch_blocks * self.epoch_blocks)

    def _next_validators(self, boundary: int, validators: VotingPower) -> VotingPower:
        """The set stored by boundary block `boundary`, proven against its verified header."""
        block = self._verified_block(boundary, validators)
        proven = self._state_value(staking.VALIDATOR_SET_KEY, boundary)
        _check_state_value(staking.VALIDATOR_SET_KEY, proven, block)
        return _checked_validator_set(proven.value, boundary)

    def _verified_block(self, height: int, validators: VotingPower) -> VerifiedHeader:
        """Block `height` from the node, checked: hash, chain, height, set hash, then the commit."""
        try:
            committed = self.client.committed_block(height)
        except ProofError as error:
            raise LightClientError(height, f"the block sent does not match itself: {error.message}") from None
        raw = committed.block.header
        block_hash = blake2b_256(raw)
        try:
            header = decode_header(raw)
        except EncodingError as error:
            raise LightClientError(height, f"unusable header: {error}") from None
        chain_id = self.genesis.chain_id
        if header.height != height or header.chain_id != chain_id:
            raise LightClientError(height, f"the node sent block {header.height} of chain {header.chain_id[:64]!r}")
        if header.validators_hash != validators.hash:
            raise LightClientError(
                height,
                f"wrong validator set: the header names set {header.validators_hash.hex()}, "
                f"the set that signs this block is {validators.hash.hex()}",
            )
        try:
            signed_power = verify_commit(committed.commit, validators, chain_id, height, block_hash)
        except CommitError as error:
            raise LightClientError(height, f"bad commit: {error}") from None
        return VerifiedHeader(
            height=height,
            hash=block_hash,
            time_ms=header.time_ms,
            state_root=header.state_root,
            validators_hash=header.validators_hash,
            signed_power=signed_power,
            total_power=validators.total,
            header=raw,
        )

    def _state_value(self, key: bytes, height: int) -> StateValue:
        try:
            proven = self.client.state_proof(key, height)
        except ProofError as error:
            raise LightClientError(height or None, f"bad state proof: {error.message}") from None
        if height and proven.height != height:
            raise LightClientError(height, f"asked for the state after this block, got the state after {proven.height}")
        if proven.height < self.genesis.initial_height:
            raise LightClientError(proven.height, f"the chain's first block is {self.genesis.initial_height}")
        return proven

    def _check_genesis(self) -> None:
        info = self.client.chain_info()
        if info.chain_id != self.genesis.chain_id or info.genesis_hash != self.genesis.hash:
            raise LightClientError(
                None,
                f"the node serves chain {info.chain_id[:64]!r} with genesis {info.genesis_hash.hex()}, "
                f"not the trusted genesis {self.genesis.hash.hex()} of chain {self.genesis.chain_id!r}",
            )


def _check_state_value(key: bytes, proven: StateValue, block: VerifiedHeader) -> None:
    """`proven` shows what `key` holds under the verified block's state root (verified again here: the
    client object may be anyone's)."""
    if proven.block_hash != block.hash:
        raise LightClientError(
            block.height,
            f"the node proved state under block {proven.block_hash.hex()}, not the verified {block.hash.hex()}",
        )
    if proven.state_root != block.state_root or not verify_proof(block.state_root, key, proven.value, proven.proof):
        raise LightClientError(
            block.height,
            f"bad state proof: key {key[:96]!r} does not hold the value sent under the verified state root "
            f"{block.state_root.hex()}",
        )


def _checked_validator_set(value: bytes | None, height: int) -> VotingPower:
    """The proven `staking/validator_set` value as a set consensus can count: canonical, not empty, no repeats."""
    if value is None:
        raise LightClientError(height, "the state after this block holds no validator set")
    try:
        validator_set = decode_canonical(types_pb2.ValidatorSet, value, "validator set")
    except EncodingError as error:
        raise LightClientError(height, f"unusable validator set: {error}") from None
    validators = VotingPower.of(validator_set)
    if not validators.powers or len(validators.powers) != len(validator_set.validators) or validators.total == 0:
        raise LightClientError(height, "the validator set stored after this block is empty or repeats a validator")
    return validators

