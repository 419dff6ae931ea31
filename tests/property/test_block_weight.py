"""A full block's work stays under its weight limit (docs/protocol.md, "Block validity"; docs/economics.md,
"Work per block").

For random blocks of each call type, filled by a proposer's BlockSpace up to the weight limit (or as far as the
jobs waiting for a commit or a reveal allow), on chains with
10, 100 and 1,000 executors serving the model, and for the blocks whose hooks draw a block's worth of jobs
or handle the most jobs due at one height: the work process_block does, counted deterministically (its
signatures, transactions and bytes; every read that reaches the committed state; every key it writes), priced
at the unit costs of runtime/weights.py, is at most the block's declared weight, and that is at most
max_block_weight (the hooks' alone may exceed it only in a block with no transactions). Wall-clock figures
are bench/market.py's: timing on this shared machine would make a flaky test.
"""

from __future__ import annotations

from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proto import state_pb2, types_pb2
from runtime import jobs, weights
from runtime.block import read_block_limits
from runtime.executive import hooks_weight, process_block, transaction_weight
from tests.runtime.worlds import POSTERS, World, assignments, commits, post_call, reveals

EXECUTORS = (10, 100, 1_000)
# Blocks applied after posting until the jobs' first draws (jobs.params.assignment_delay_blocks) are made.
DRAW_BLOCKS = 4


class CountingReader:
    """A committed state that counts the reads reaching it (reads of what the block wrote itself stay in its layers)."""

    def __init__(self, state):
        self.state = state
        self.reads = 0

    def get(self, key: bytes) -> bytes | None:
        self.reads += 1
        return self.state.get(key)


def counted_work(world: World, raws: list[bytes]) -> tuple[int, int]:
    """(the work process_block counted, in weight units; the block's declared weight), on the world's next block."""
    reader = CountingReader(world.state)
    context = world.next_context()
    writes, _, checked = process_block(reader, types_pb2.Block(transactions=raws), context)
    fixed = sum(weights.SIGNATURE + weights.TRANSACTION + weights.BYTE * tx.size for tx in checked)
    work = fixed + reader.reads * weights.READ + len(writes.changes()) * weights.WRITE
    declared = hooks_weight(world.state, context) + sum(transaction_weight(tx.body, tx.size) for tx in checked)
    return work, declared


@cache
def worlds(count: int) -> dict[str, World]:
    """Snapshots of a chain with `count` executors, one per scenario's parent state."""
    world = World.create(count)
    world.apply([])
    snapshots = {"genesis": world.copy()}
    # A block's worth of jobs whose first draws come DRAW_BLOCKS - 1 blocks later: the draw hook's parent.
    world.apply(world.fill([world.sign(POSTERS[i % len(POSTERS)], **post_call(world, i)) for i in range(120)]))
    for _ in range(jobs.read_params(world.state).assignment_delay_blocks - 1):
        world.apply([])
    snapshots["draw"] = world.copy()
    for _ in range(DRAW_BLOCKS):
        world.apply([])
    # Those jobs committed (their reveals open), then a second block's worth posted and drawn, never committed.
    pending = assignments(world, jobs.SLOT_ASSIGNED)
    while pending:
        world.apply(world.fill(commits(world, pending)))
        before, pending = len(pending), assignments(world, jobs.SLOT_ASSIGNED)
        assert len(pending) < before, "commits of assigned jobs were not applied"
    world.apply(world.fill([world.sign(POSTERS[i % len(POSTERS)], **post_call(world, 1_000 + i)) for i in range(120)]))
    for _ in range(DRAW_BLOCKS):
        world.apply([])
    snapshots["assigned"] = world.copy()
    # The height where the most of the uncommitted jobs' deadlines fall: the deadline hook's parent.
    due = {int.from_bytes(key[len(jobs.SCHEDULE_PREFIX):], "big"): len(state_pb2.JobIdList.FromString(value).job_ids)
           for key, value in world.state.iter_prefix(jobs.SCHEDULE_PREFIX)}
    world.advance_to(max(due, key=due.get))
    snapshots["deadline"] = world
    return snapshots


def _transactions(world: World, scenario: str, data) -> list[bytes]:
    if scenario == "transfer":
        dests = data.draw(st.lists(st.sampled_from(world.executors), min_size=1, max_size=8))
        amounts = data.draw(st.lists(st.integers(1, 10**9), min_size=1, max_size=8))
        return [world.sign(POSTERS[i % len(POSTERS)], transfer=types_pb2.Transfer(
            dest=dests[i % len(dests)].public_key, amount=amounts[i % len(amounts)])) for i in range(4_000)]
    if scenario == "post_job":
        prompt_bytes = data.draw(st.integers(1, 2_000))
        redundancy = data.draw(st.integers(1, min(5, len(world.executors))))
        calls = []
        for index in range(400):
            call = post_call(world, index)
            call["post_job"].prompt = ("p" * prompt_bytes)[:-len(str(index))] + str(index)
            call["post_job"].redundancy = redundancy
            calls.append(world.sign(POSTERS[index % len(POSTERS)], **call))
        return calls
    if scenario == "commit":
        pending = assignments(world, jobs.SLOT_ASSIGNED)
        return commits(world, data.draw(st.permutations(pending)))
    if scenario == "reveal":
        pending = assignments(world, jobs.SLOT_COMMITTED)
        return reveals(world, data.draw(st.permutations(pending)))
    return []


SCENARIOS = {"transfer": "genesis", "post_job": "genesis", "draw_hook": "draw", "commit": "assigned",
             "reveal": "assigned", "deadline_hook": "deadline"}


@settings(max_examples=24, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(count=st.sampled_from(EXECUTORS), scenario=st.sampled_from(sorted(SCENARIOS)), data=st.data())
def test_a_full_blocks_counted_work_is_within_its_declared_weight_and_the_limit(count, scenario, data):
    world = worlds(count)[SCENARIOS[scenario]].copy()
    raws = world.fill(_transactions(world, scenario, data))
    if scenario in ("transfer", "post_job", "commit"):
        assert raws, "the block took none of the candidates"
    work, declared = counted_work(world, raws)
    assert work <= declared, f"{scenario} at {count} executors: counted work {work} above the declared {declared}"
    if raws:
        assert declared <= read_block_limits(world.state).max_block_weight
