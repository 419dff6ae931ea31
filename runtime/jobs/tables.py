"""The executor tables of the draw: a model's executors frozen for a staking epoch, one state key per entry.

Built at the model's first draw of each epoch (assignment.py refresh_tables, from on_initialize):
every executor serving the model with at least the minimum bond and not jailed, sorted by (price,
account), with weight stake x reputation x 2^128 / price^2 and running sums, so a draw reads O(log n)
entries (docs/protocol.md, "Assignment"). One table holds every executor, one more per region named.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from proto import state_pb2
from runtime import reputation, staking
from runtime.jobs.collateral import drawable_stake
from runtime.jobs.params import Params
from runtime.state import Overlay, StateReader

TABLE_PREFIX = b"jobs/draw/"  # + model + u8 len(region) + region -> DrawTable; + u32be index -> DrawEntry
# Weights are stake x reputation x 2^WEIGHT_SHIFT / price^2: the shift keeps 1 / price^2 an integer with
# 128 bits of precision for any 64-bit price.
WEIGHT_SHIFT = 128


@dataclass(frozen=True)
class Entry:
    """One executor of a table: frozen price, capacity and weight, and the running sum of weights up to it."""

    index: int
    account: bytes
    price: int
    capacity: int
    weight: int
    cumulative: int
    stake: int
    reputation: int


def entry_weight(stake: int, score: int, price: int) -> int:
    """An executor's weight in the draw: stake x reputation / price^2, scaled by 2^WEIGHT_SHIFT."""
    return (stake * score << WEIGHT_SHIFT) // max(price, 1) ** 2


def _table_key(model: bytes, region: str) -> bytes:
    encoded = region.encode()
    return TABLE_PREFIX + model + bytes([len(encoded)]) + encoded


def _entry_key(model: bytes, region: str, index: int) -> bytes:
    return _table_key(model, region) + struct.pack(">I", index)


def read_table(state: StateReader, model: bytes, region: str = "") -> state_pb2.DrawTable | None:
    """The header of a model's table (region "": every executor), or None when none was built."""
    raw = state.get(_table_key(model, region))
    return None if raw is None else state_pb2.DrawTable.FromString(raw)


def read_entry(state: StateReader, model: bytes, region: str, index: int) -> Entry:
    """The `index`-th entry (0-based) of a table."""
    record = state_pb2.DrawEntry.FromString(state.get(_entry_key(model, region, index)))
    return Entry(index, record.account, record.price_per_token, record.capacity, int.from_bytes(record.weight, "big"),
                 int.from_bytes(record.cumulative, "big"), record.stake, record.reputation)


def _write_table(state: Overlay, model: bytes, region: str, epoch: int, rows: list, regions: list[str]) -> None:
    cumulative = 0
    for index, (price, account, capacity, _, stake, score) in enumerate(rows):
        weight = entry_weight(stake, score, price)
        cumulative += weight
        record = state_pb2.DrawEntry(account=account, price_per_token=price, capacity=capacity,
                                     weight=_unsigned(weight), cumulative=_unsigned(cumulative), stake=stake,
                                     reputation=score)
        state.set(_entry_key(model, region, index), record.SerializeToString(deterministic=True))
    header = state_pb2.DrawTable(epoch=epoch, count=len(rows), regions=regions)
    state.set(_table_key(model, region), header.SerializeToString(deterministic=True))


def _unsigned(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _delete_tables(state: Overlay, model: bytes) -> None:
    old = read_table(state, model)
    if old is None:
        return
    for region in ["", *old.regions]:
        table = read_table(state, model, region)
        for index in range(table.count if table else 0):
            state.delete(_entry_key(model, region, index))
        state.delete(_table_key(model, region))


def build_tables(state: Overlay, model: bytes, epoch: int, params: Params) -> None:
    """Freeze the model's executors for the epoch: one table of all of them, one per region they name."""
    stake_params = staking.read_params(state)
    rows = []
    for account in staking.serving(state, model):
        offer = staking.read_offer(state, account)
        stake = drawable_stake(state, account)
        if offer is None or stake < stake_params.min_bond:
            continue
        score = reputation.read_reputation(state, account)
        rows.append((offer.price_per_token, account, offer.capacity, offer.region, stake, score))
    rows.sort()
    regions = sorted({row[3] for row in rows if row[3]})
    _delete_tables(state, model)
    _write_table(state, model, "", epoch, rows, regions)
    for region in regions:
        _write_table(state, model, region, epoch, [row for row in rows if row[3] == region], [])


def current_epoch(state: StateReader, height: int) -> int:
    """The staking epoch of the block at `height` (the one whose validator set signs it)."""
    return staking.epoch_of(height, staking.read_params(state))


def ensure_tables(state: Overlay, model: bytes, height: int, params: Params) -> None:
    """Build the model's tables for this epoch unless they are built already (only from on_initialize)."""
    epoch = current_epoch(state, height)
    table = read_table(state, model)
    if table is None or table.epoch != epoch:
        build_tables(state, model, epoch, params)


def count_at_most(state: StateReader, model: bytes, region: str, count: int, price: int) -> int:
    """How many of the first `count` entries cost at most `price` per token (a binary search)."""
    low, high = 0, count
    while low < high:
        middle = (low + high) // 2
        if read_entry(state, model, region, middle).price <= price:
            low = middle + 1
        else:
            high = middle
    return low
