"""staking storage: the keys under `staking/` and their records.

Bonded and unbonding amounts are part of the account's reserved balance (as Substrate's staking
locks), so the supply invariant counts them through the accounts; the ledger says why they are
reserved. The accounts serving each model are kept in a sorted index so that assignment reads
one value instead of walking state.
"""

from __future__ import annotations

from proto import state_pb2, types_pb2
from runtime.state import Overlay, StateReader

LEDGER_PREFIX = b"staking/ledger/"  # + account -> StakeLedger
OFFER_PREFIX = b"staking/offer/"  # + account -> Offer
SERVING_PREFIX = b"staking/serving/"  # + model id -> AccountList (sorted)
CANDIDATES_KEY = b"staking/candidates"  # AccountList of accounts that declared to validate
VALIDATOR_SET_KEY = b"staking/validator_set"  # types.ValidatorSet of the current epoch
PREVIOUS_VALIDATOR_SET_KEY = b"staking/previous_validator_set"  # types.ValidatorSet of the epoch before
TOTALS_KEY = b"staking/totals"  # StakingTotals


def read_ledger(state: StateReader, account: bytes) -> state_pb2.StakeLedger | None:
    """The account's bonded and unbonding stake, or None when it has none."""
    raw = state.get(LEDGER_PREFIX + account)
    return None if raw is None else state_pb2.StakeLedger.FromString(raw)


def write_ledger(state: Overlay, account: bytes, ledger: state_pb2.StakeLedger) -> None:
    """Store the ledger; an empty one (nothing bonded, unbonding, declared or jailed) is deleted."""
    if (ledger.bonded == 0 and not ledger.unbonding and not ledger.validate and not ledger.jailed_until
            and not ledger.jailed):
        state.delete(LEDGER_PREFIX + account)
    else:
        state.set(LEDGER_PREFIX + account, ledger.SerializeToString(deterministic=True))


def bonded(state: StateReader, account: bytes) -> int:
    """The account's bonded stake (0 when it has none)."""
    ledger = read_ledger(state, account)
    return 0 if ledger is None else ledger.bonded


def read_offer(state: StateReader, account: bytes) -> state_pb2.Offer | None:
    """The account's executor offer, or None."""
    raw = state.get(OFFER_PREFIX + account)
    return None if raw is None else state_pb2.Offer.FromString(raw)


def read_accounts(state: StateReader, key: bytes) -> list[bytes]:
    """The accounts of an AccountList stored under `key` (empty when absent)."""
    raw = state.get(key)
    return [] if raw is None else list(state_pb2.AccountList.FromString(raw).accounts)


def write_accounts(state: Overlay, key: bytes, accounts: list[bytes]) -> None:
    """Store the accounts sorted; an empty list is deleted."""
    if accounts:
        state.set(key, state_pb2.AccountList(accounts=sorted(accounts)).SerializeToString(deterministic=True))
    else:
        state.delete(key)


def serving(state: StateReader, model_id: bytes) -> list[bytes]:
    """The accounts whose offer lists the model, sorted."""
    return read_accounts(state, SERVING_PREFIX + model_id)


def read_totals(state: StateReader) -> state_pb2.StakingTotals:
    """Total bonded and unbonding stake, and the current epoch."""
    raw = state.get(TOTALS_KEY)
    return state_pb2.StakingTotals() if raw is None else state_pb2.StakingTotals.FromString(raw)


def add_totals(state: Overlay, bonded_delta: int = 0, unbonding_delta: int = 0) -> None:
    totals = read_totals(state)
    totals.bonded += bonded_delta
    totals.unbonding += unbonding_delta
    state.set(TOTALS_KEY, totals.SerializeToString(deterministic=True))


def read_validator_set(state: StateReader) -> types_pb2.ValidatorSet:
    """The current epoch's validator set."""
    raw = state.get(VALIDATOR_SET_KEY)
    return types_pb2.ValidatorSet() if raw is None else types_pb2.ValidatorSet.FromString(raw)


def read_previous_validator_set(state: StateReader) -> types_pb2.ValidatorSet:
    """The set of the epoch before the current one (empty in the first epoch)."""
    raw = state.get(PREVIOUS_VALIDATOR_SET_KEY)
    return types_pb2.ValidatorSet() if raw is None else types_pb2.ValidatorSet.FromString(raw)
