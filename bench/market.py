"""Per-block execution time of full market blocks, against the block time, at 10, 100 and 1,000 executors.

    .venv/bin/python bench/market.py [--quick] [--repeats R] [--executors 10,100,1000]

1. For each executor count, build an in-process chain state with the genesis defaults (staking,
   jobs, block limits, fees; tests/runtime/worlds.py): one registered model, that many executors
   bonded and offering it at capacity `max_capacity`, and posters endowed.
2. Fill blocks the way a proposer does (runtime/block.py BlockSpace: weight, bytes, count) with
   - PostJob (redundancy max_redundancy, a short prompt: the most work per byte; the first posts
     of a model read every offer, as no draw table exists yet);
   - the blocks after, whose on_initialize draws those jobs' executors (and builds the draw table);
   - CommitResult, one per assignment of jobs posted in earlier blocks;
   - RevealResult, the same assignments revealing (the last reveal of a job settles it);
   and the block at the height where the most jobs the chain lets share one deadline
   (jobs.params.max_due_per_height), posted together and never committed, all miss it.
3. Time `process_block` (what every validator runs on a proposed block: size rules, stateless
   checks with signature verification, the weight rule, hooks and every transaction) on the parent
   state, best of R runs, in CPU time of this process (on a machine shared with other work, wall
   time measures the others too; it is printed beside), against `block_time_ms` (a chain
   parameter: a block must execute within it, and the weight limit is calibrated to it). The same
   run measures one Ed25519 verification's CPU time, against the 160 us the weights assume: how this
   machine, now, compares with the calibration.
4. The last line is one JSON object: `<scenario>_ms_at_<executors>` (CPU), `<scenario>_wall_ms_at_...`,
   `<scenario>_transactions_at_...`, `<scenario>_weight_ppm_at_...` (the block's declared weight
   against max_block_weight), `verify_us` and `verify_over_weight`, and `worst_over_block_time`
   (the slowest block's CPU time over block_time_ms; goal < 1: every full block executes within
   the block time).

--quick: one run each, and fewer jobs set up (blocks are still filled to the limit where enough
assignments exist).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chain.genesis import ConsensusParams  # noqa: E402
from proto import state_pb2, types_pb2  # noqa: E402
from runtime import jobs, staking, weights  # noqa: E402
from runtime.block import BlockLimits  # noqa: E402
from runtime.executive import TRANSACTION_SIGNING_CONTEXT  # noqa: E402
from runtime.signatures import verify_signature  # noqa: E402
from tests.runtime.worlds import POSTERS, Timed, World, assignments, commits, posts, reveals  # noqa: E402

# --- the scenarios --------------------------------------------------------------------

# Jobs are drawn in the on_initialize of a later block (jobs.params.assignment_delay_blocks): blocks applied
# after posting until the draws are made.
DRAW_BLOCKS = 4


def bench_executors(count: int, repeats: int, quick: bool) -> dict:
    """Every scenario at `count` executors; {name: Timed}."""
    figures = {}
    world = World.create(count)
    world.apply([])
    figures["empty"] = world.time([], repeats)
    # PostJob: more candidates than a block holds; what the proposer fits is timed.
    supply = posts(world, 3_000 if not quick or count < 1000 else 1_200)
    full = world.fill(supply)
    figures["post_job"] = world.time(full, repeats)
    # The blocks that draw those jobs' executors: the slowest is the draw hook's block.
    figures["draw_hook"] = max((world.time([], repeats) for _ in range(DRAW_BLOCKS)), key=lambda timed: timed.ms)
    # Commit and reveal: the assignments of the jobs just posted, plus more posted until a block's worth exist.
    capacity = count * staking.read_params(world.state).max_capacity
    want = min(capacity, 3_000 if not quick else 1_200)
    posted = len(full)
    assigned = len(assignments(world, jobs.SLOT_ASSIGNED))
    # Until a block's worth of assignments exist, or posting more assigns no more (executors full, queues capped).
    while assigned + jobs.read_params(world.state).max_redundancy <= want:
        batch = world.fill(posts(world, 400, start=posted))
        if not batch:
            break
        posted += len(batch)
        world.apply(batch)
        for _ in range(DRAW_BLOCKS):
            world.apply([])
        before, assigned = assigned, len(assignments(world, jobs.SLOT_ASSIGNED))
        if assigned <= before:
            break
    pending = assignments(world, jobs.SLOT_ASSIGNED)
    full = world.fill(commits(world, pending))
    figures["commit"] = world.time(full, repeats)
    # Commit the rest so every job opens its reveal, then reveal a block's worth.
    rest = assignments(world, jobs.SLOT_ASSIGNED)
    while rest:
        batch = world.fill(commits(world, rest))
        if not batch:
            break
        world.apply(batch)
        before, rest = len(rest), assignments(world, jobs.SLOT_ASSIGNED)
        if len(rest) >= before:
            break
    pending = assignments(world, jobs.SLOT_COMMITTED)
    full = world.fill(reveals(world, pending))
    figures["reveal"] = world.time(full, repeats)
    figures["deadline_hook"] = deadline_block(count, repeats)
    return figures


def deadline_block(count: int, repeats: int) -> "Timed":
    """The block where the most jobs that can share a deadline all miss it (nobody commits)."""
    world = World.create(count)
    world.apply([])
    # Enough jobs to fill the busiest height the schedule allows (jobs.params.max_due_per_height), posted together.
    params = jobs.read_params(world.state)
    limit = 2 * getattr(params, "max_due_per_height", 1_000)
    sent = 0
    while sent < limit:
        batch = world.fill(posts(world, min(400, limit - sent), start=sent))
        if not batch:
            break
        world.apply(batch)
        sent += len(batch)
    for _ in range(DRAW_BLOCKS):
        world.apply([])
    deadlines = {int.from_bytes(key[len(jobs.SCHEDULE_PREFIX):], "big"): len(jobs.read_ids(world.state, key))
                 for key, _ in world.state.iter_prefix(jobs.SCHEDULE_PREFIX)}
    assigned = {slot.deadline_height for _, value in world.state.iter_prefix(jobs.JOB_PREFIX)
                for slot in state_pb2.Job.FromString(value).assignments}
    # The commit deadline height with the most jobs due.
    busiest = max((height for height in deadlines if height in assigned), key=deadlines.get)
    world.advance_to(busiest)
    return world.time([], repeats)


# --- the report -----------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one run each, fewer jobs set up at 1,000 executors")
    parser.add_argument("--repeats", type=int, help="timed runs per block, the best counts (default 3; 1 with --quick)")
    parser.add_argument("--executors", default="10,100,1000", help="executor counts, comma-separated")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.counts = [int(part) for part in args.executors.split(",") if part]
    return args


def verify_us() -> float:
    """CPU microseconds of one Ed25519 verification of a signed transaction here and now (best of 4 rounds):
    how this machine compares, in this run, with the calibration's weights.SIGNATURE."""
    world = World.create(1)
    raw = world.sign(POSTERS[0], transfer=types_pb2.Transfer(dest=POSTERS[1].public_key, amount=1))
    transaction = types_pb2.Transaction.FromString(raw)
    sender = types_pb2.TransactionBody.FromString(transaction.body).sender
    message = TRANSACTION_SIGNING_CONTEXT + transaction.body
    best = None
    for _ in range(4):
        started = time.process_time()
        for _ in range(200):
            assert verify_signature(sender, transaction.signature, message)
        elapsed = (time.process_time() - started) / 200
        best = elapsed if best is None else min(best, elapsed)
    return best * 1e6


def main(argv=None) -> int:
    args = parse_args(argv)
    block_time_ms = ConsensusParams.block_time_ms
    figures: dict = {}
    worst = worst_wall = 0.0
    baseline = verify_us()
    print(f"Ed25519 verification: {baseline:.0f} us of CPU (the weights assume {weights.SIGNATURE / 1000:.0f} us)")
    for count in args.counts:
        for name, timed in bench_executors(count, args.repeats, args.quick).items():
            worst = max(worst, timed.ms / block_time_ms)
            worst_wall = max(worst_wall, timed.wall_ms / block_time_ms)
            print(f"{count:>5} executors, {name:>13}: {timed.ms:7.1f} ms CPU ({timed.wall_ms:7.1f} ms wall) for "
                  f"{timed.transactions:>5} transactions ({timed.failed} failed), weight "
                  f"{timed.weight / timed.max_weight:6.1%} of the limit, CPU {timed.ms / block_time_ms:5.1%} of the "
                  f"{block_time_ms} ms block time", flush=True)
            figures[f"{name}_ms_at_{count}"] = round(timed.ms, 2)
            figures[f"{name}_wall_ms_at_{count}"] = round(timed.wall_ms, 2)
            figures[f"{name}_transactions_at_{count}"] = timed.transactions
            figures[f"{name}_weight_ppm_at_{count}"] = timed.weight * 1_000_000 // timed.max_weight
    figures.update(block_time_ms=block_time_ms, worst_over_block_time=round(worst, 4),
                   worst_wall_over_block_time=round(worst_wall, 4), verify_us=round(baseline, 1),
                   verify_over_weight=round(baseline * 1000 / weights.SIGNATURE, 3),
                   max_block_weight=BlockLimits().max_block_weight, quick=args.quick, repeats=args.repeats,
                   cpu=platform.processor() or platform.machine(), cpus=os.cpu_count())
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
