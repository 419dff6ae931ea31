"""NodeCore in-process over a real LevelDB store: block times from an injected clock, and a halt on a failed write."""

from __future__ import annotations

import logging

import pytest

from chain.crypto import dev_keypair
from chain.genesis import dev_genesis_document, parse_genesis
from chain.node.core import NodeCore, ProductionHalted
from chain.storage import ChainStore
from proto import types_pb2
from runtime import system
from tests.nodes import fill_filesystem

GENESIS = parse_genesis(dev_genesis_document())


class FakeClock:
    """Seconds since the epoch, moved only by the test."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(GENESIS.genesis_time_ms / 1000 + 3600)  # an hour after genesis


def node_core(path, clock) -> NodeCore:
    store = ChainStore(path)
    store.initialize(GENESIS.chain_id, GENESIS.hash, GENESIS.initial_height, GENESIS.state())
    return NodeCore(store, GENESIS, dev_keypair("alice"), clock=clock)


def block_time_ms(core: NodeCore, block_hash: bytes) -> int:
    finalized = core.store.finalized_block(block_hash)
    return types_pb2.Header.FromString(finalized.block.header).time_ms


def test_block_time_is_the_time_in_the_last_commit_which_follows_the_injected_clock(tmp_path, clock):
    core = node_core(tmp_path / "db", clock)
    first = block_time_ms(core, core.produce_block().hash)
    assert first == GENESIS.genesis_time_ms + 1  # BFT time: no commit before the first block
    times = [first]
    for step_s in (1.0, 2.5, 0.25, 60.0):
        precommitted_at = int(clock.now * 1000)  # the last block's precommit carried the clock's time
        clock.now += step_s
        produced = core.produce_block()
        times.append(block_time_ms(core, produced.hash))
        assert times[-1] == max(precommitted_at, times[-2] + 1)
        assert system.read_chain(core.store.state).time_ms == times[-1]  # the runtime saw the same time
    assert [later - earlier for earlier, later in zip(times[2:], times[3:])] == [2500, 250]
    core.store.close()


def test_block_time_stays_strictly_increasing_when_the_clock_stands_still_or_goes_back(tmp_path, clock):
    core = node_core(tmp_path / "db", clock)
    core.produce_block()
    first = block_time_ms(core, core.produce_block().hash)  # the first block after genesis has genesis' time
    standing = [block_time_ms(core, core.produce_block().hash) for _ in range(3)]
    assert standing == [first + 1, first + 2, first + 3]
    clock.now -= 600  # NTP stepped the clock back ten minutes
    back = [block_time_ms(core, core.produce_block().hash) for _ in range(2)]
    assert back == [first + 4, first + 5]
    clock.now = first / 1000 + 10
    core.produce_block()  # its precommit carries the clock again
    assert block_time_ms(core, core.produce_block().hash) == first + 10_000
    core.store.close()


def test_the_first_block_after_genesis_is_one_millisecond_after_genesis_whatever_the_clock(tmp_path):
    core = node_core(tmp_path / "db", FakeClock(0.0))
    assert block_time_ms(core, core.produce_block().hash) == GENESIS.genesis_time_ms + 1
    core.store.close()


def test_a_failed_write_halts_production_with_one_log_line_and_keeps_the_head(small_disk, clock, caplog):
    core = node_core(small_disk / "db", clock)
    reported = core.produce_block()
    filler = fill_filesystem(small_disk / "filler")
    caplog.set_level(logging.INFO)
    with pytest.raises(ProductionHalted):
        for _ in range(1000):  # the log's last page may still take a block or two
            clock.now += 1
            reported = core.produce_block()
    head = core.head
    assert head.height == reported.height and head.hash == reported.hash
    assert core.stats.production_halted and core.stats.storage_errors == 1
    filler.unlink()
    clock.now += 1
    with pytest.raises(ProductionHalted):
        core.produce_block()  # space is back, but nothing is built on a failed write until a restart
    assert core.head == head and core.stats.storage_errors == 1
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1 and "block production halted" in errors[0].getMessage()
    assert "No space left on device" in errors[0].getMessage()
    core.store.close()
    reopened = ChainStore(small_disk / "db")
    assert reopened.head == head
    reopened.close()


def test_a_time_budget_stops_filling_a_block_and_the_rest_waits_for_the_next(tmp_path, clock):
    from chain.transactions import FeeRule, sign_transaction, transfer_call

    core = node_core(tmp_path / "db", clock)
    bob = dev_keypair("bob")
    raws = [
        sign_transaction(bob, chain_id=GENESIS.chain_id, genesis_hash=GENESIS.hash, nonce=nonce,
                         call=transfer_call(dev_keypair("eve").public_key, 10**12), fee_rule=FeeRule(1000, 10, 5_000)).raw
        for nonce in range(200)
    ]
    assert all(rejection is None for _, rejection in core.submit_many(raws))
    budgeted = core.propose(time_budget_s=0.0)
    assert len(budgeted.included) == 64  # the budget is checked every 64 transactions, after the first 64
    unbounded = core.propose()
    assert len(unbounded.included) == 200
