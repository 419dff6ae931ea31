"""The executor tables of the draw: a model's executors frozen for a staking epoch, one state key per entry.

Built at the model's first draw of each epoch (assignment.py refresh_tables, from on_initialize):
every executor serving the model with at least the minimum bond and not jailed, sorted by (price,
account), with weight stake x reputation x 2^128 / price^2 and running sums, so a draw reads O(log n)
entries (docs/protocol.md, "Assignment"). Executors are split by the engine class their offer names
(runtime/models.py): one table per class holds every executor of that class, one more per class and
region named, and the model's header lists the classes that have tables. A job's executors all come
from one class, so redundant results are made by engines whose arithmetic agrees.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from proto import state_pb2
from runtime import models, reputation, staking
from runtime.jobs.collateral import drawable_stake
from runtime.jobs.params import Params
from runtime.state import Overlay, StateReader

TABLE_PREFIX = b"jobs/draw/"
# + model + 00 -> DrawTable: the model's header (epoch, every executor counted, the classes with tables);
# + model + u8 len(class) + class + u8 len(region) + region -> DrawTable; + u32be index -> DrawEntry.
# A class name is 1..32 bytes, so the header's 00 is no class table's key.
# Weights are stake x reputation x 2^WEIGHT_SHIFT / price^2: the shift keeps 1 / price^2 an integer with
# 128 bits of precision for any 64-bit price.
WEIGHT_SHIFT = 128


@dataclass(frozen=True)
class Table:
    """Which table: a model's executors of one engine class, all of them (region "") or those of one region."""

    model: bytes
    engine_class: str = models.CPU_CLASS
    region: str = ""

    def key(self) -> bytes:
        engine_class, region = self.engine_class.encode(), self.region.encode()
        return TABLE_PREFIX + self.model + bytes([len(engine_class)]) + engine_class + bytes([len(region)]) + region

    def entry_key(self, index: int) -> bytes:
        return self.key() + struct.pack(">I", index)

    def in_region(self, region: str) -> "Table":
        return Table(self.model, self.engine_class, region)


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
    engine_class: str = models.CPU_CLASS


def entry_weight(stake: int, score: int, price: int) -> int:
    """An executor's weight in the draw: stake x reputation / price^2, scaled by 2^WEIGHT_SHIFT."""
    return (stake * score << WEIGHT_SHIFT) // max(price, 1) ** 2


def _header_key(model: bytes) -> bytes:
    return TABLE_PREFIX + model + b"\x00"


def read_header(state: StateReader, model: bytes) -> state_pb2.DrawTable | None:
    """The model's header: the epoch its tables were built for, how many executors, the classes with a table."""
    raw = state.get(_header_key(model))
    return None if raw is None else state_pb2.DrawTable.FromString(raw)


def read_table(state: StateReader, table: Table) -> state_pb2.DrawTable | None:
    """The header of one class's table (region "": every executor of the class), or None when none was built."""
    raw = state.get(table.key())
    return None if raw is None else state_pb2.DrawTable.FromString(raw)


def read_entry(state: StateReader, table: Table, index: int) -> Entry:
    """The `index`-th entry (0-based) of a table."""
    record = state_pb2.DrawEntry.FromString(state.get(table.entry_key(index)))
    return Entry(index, record.account, record.price_per_token, record.capacity, int.from_bytes(record.weight, "big"),
                 int.from_bytes(record.cumulative, "big"), record.stake, record.reputation, table.engine_class)


def _write_table(state: Overlay, table: Table, epoch: int, rows: list, regions: list[str]) -> None:
    cumulative = 0
    for index, (price, account, capacity, _, stake, score) in enumerate(rows):
        weight = entry_weight(stake, score, price)
        cumulative += weight
        record = state_pb2.DrawEntry(account=account, price_per_token=price, capacity=capacity,
                                     weight=_unsigned(weight), cumulative=_unsigned(cumulative), stake=stake,
                                     reputation=score)
        state.set(table.entry_key(index), record.SerializeToString(deterministic=True))
    header = state_pb2.DrawTable(epoch=epoch, count=len(rows), regions=regions)
    state.set(table.key(), header.SerializeToString(deterministic=True))


def _unsigned(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _delete_tables(state: Overlay, model: bytes) -> None:
    old = read_header(state, model)
    if old is None:
        return
    for engine_class in old.engine_classes:
        whole = Table(model, engine_class)
        for region in ["", *read_table(state, whole).regions]:
            table = whole.in_region(region)
            header = read_table(state, table)
            for index in range(header.count if header else 0):
                state.delete(table.entry_key(index))
            state.delete(table.key())
    state.delete(_header_key(model))


def build_tables(state: Overlay, model: bytes, epoch: int, params: Params) -> None:
    """Freeze the model's executors for the epoch: per engine class, one table of all of them and one per region
    they name. An offer whose class the model no longer has (amended since) is left out."""
    stake_params = staking.read_params(state)
    described = models.model_for_job(state, model)
    known = set(models.class_names(described)) if described is not None else {models.CPU_CLASS}
    by_class: dict[str, list] = {}
    for account in staking.serving(state, model):
        offer = staking.read_offer(state, account)
        stake = drawable_stake(state, account)
        if offer is None or stake < stake_params.min_bond:
            continue
        engine_class = offer.engine_class or models.CPU_CLASS
        if engine_class not in known:
            continue
        score = reputation.read_reputation(state, account)
        by_class.setdefault(engine_class, []).append(
            (offer.price_per_token, account, offer.capacity, offer.region, stake, score))
    _delete_tables(state, model)
    classes = sorted(by_class)
    for engine_class in classes:
        rows = sorted(by_class[engine_class])
        regions = sorted({row[3] for row in rows if row[3]})
        whole = Table(model, engine_class)
        _write_table(state, whole, epoch, rows, regions)
        for region in regions:
            _write_table(state, whole.in_region(region), epoch, [row for row in rows if row[3] == region], [])
    header = state_pb2.DrawTable(epoch=epoch, count=sum(len(rows) for rows in by_class.values()),
                                 engine_classes=classes)
    state.set(_header_key(model), header.SerializeToString(deterministic=True))


def current_epoch(state: StateReader, height: int) -> int:
    """The staking epoch of the block at `height` (the one whose validator set signs it)."""
    return staking.epoch_of(height, staking.read_params(state))


def ensure_tables(state: Overlay, model: bytes, height: int, params: Params) -> None:
    """Build the model's tables for this epoch unless they are built already (only from on_initialize)."""
    epoch = current_epoch(state, height)
    header = read_header(state, model)
    if header is None or header.epoch != epoch:
        build_tables(state, model, epoch, params)


def count_at_most(state: StateReader, table: Table, count: int, price: int) -> int:
    """How many of the first `count` entries cost at most `price` per token (a binary search)."""
    low, high = 0, count
    while low < high:
        middle = (low + high) // 2
        if read_entry(state, table, middle).price <= price:
            low = middle + 1
        else:
            high = middle
    return low
