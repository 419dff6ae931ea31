"""Finalized transfers per second and time to finality on a devnet of 4 validators, against a --dev node.

    .venv/bin/python bench/devnet.py [--seconds 20 | --quick] [--validators 4]

1. Sender accounts (default 240) with fresh keys. Every transfer is signed before any window
   opens (in a process per core), nonces 0.. per sender, to the dev accounts.
2. Baseline: `inferchain node --dev --no-worker` in a temporary directory on a free port; the
   senders are funded by transfers from the dev accounts; client threads (one per validator of
   the devnet, all to this node) submit in batches (SubmitTransactions) keeping at most
   --dev-window transactions in flight, for --seconds. Its rate: transactions in the blocks whose header time falls in the window,
   over the header time from the last block before it to the last block in it.
3. The devnet: --validators nodes started by chain/devnet's launcher (`inferchain devnet`'s own,
   --no-worker), each on its own loopback address, from a genesis derived from genesis.json that
   endows the senders. Every sender sends to one node (sender i to node i mod N).
   a. Capacity: the same closed loop as the baseline, one thread per node, at most --window in
      flight: finalized tx/s.
   b. Finality: after the pool drains, the threads submit at a steady rate (default 80% of the
      capacity just measured; --rate), a batch every 100 ms, for --seconds. Each transfer's time
      to finality runs from the start of the SubmitTransactions call that carried it to the
      arrival of the finalized block that holds it on the stream (SubscribeBlocks, which sends
      finalized blocks only) of the node it was sent to.
4. A summary, then one JSON line: tx_per_s (3a), p50_finality_s and p99_finality_s (3b),
   ratio_to_dev (3a over 2), and details. Goals: tx_per_s >= 1000, p50_finality_s < 1.5 at the
   genesis block time of 1 s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chain.client import Client, ClientError  # noqa: E402
from chain.crypto import DEV_ACCOUNT_NAMES, Keypair, dev_keypair  # noqa: E402
from chain.devnet.launcher import Devnet, LaunchOptions  # noqa: E402
from chain.devnet.layout import DevnetError, PortBases, choose_addresses, prepare  # noqa: E402
from chain.transactions import FeeRule, sign_transaction, transfer_call  # noqa: E402
from bench.transfers import SeenBlock, fund, included_rate  # noqa: E402
from tests.nodes import NodeProcess, free_port  # noqa: E402

ENDOWMENT = 10**15
DEFAULT_SENDERS = 240
# Submitted and not yet finalized, across all senders, in the capacity windows; per sender far below
# the pool's limit of 1,000 nonces ahead. The dev node only gains from a deep queue (as in
# bench/transfers.py); on the devnet a deep one makes blocks of many thousand transfers that
# consensus on 2 shared cores takes seconds to agree on (12,000 gave 4 blocks in 15 s), so it gets
# about three blocks' worth (1,000 and 2,000 gave less).
DEFAULT_WINDOW = 3_000
DEFAULT_DEV_WINDOW = 12_000
BATCH = 500
PACE_TICK_S = 0.1
# How long the finality phase waits after its window for the last transfers' blocks.
FINALITY_GRACE_S = 15.0
DRAIN_TIMEOUT_S = 60.0


# --- signing --------------------------------------------------------------------------


@dataclass(frozen=True)
class Signing:
    """What signing a chain's transfers needs from it."""

    chain_id: str
    genesis_hash: bytes
    fee_rule: FeeRule


def _sign_sender(job: tuple[bytes, Signing, int, int]) -> list[tuple[bytes, bytes]]:
    """(raw, hash) of one sender's transfers with nonces first.. first+count (run in a worker process)."""
    seed, signing, first, count = job
    sender = Keypair.from_seed(seed)
    dests = [dev_keypair(name).public_key for name in DEV_ACCOUNT_NAMES]
    signed = []
    for nonce in range(first, first + count):
        transaction = sign_transaction(
            sender, chain_id=signing.chain_id, genesis_hash=signing.genesis_hash, nonce=nonce,
            call=transfer_call(dests[nonce % len(dests)], 1), fee_rule=signing.fee_rule,
        )
        signed.append((transaction.raw, transaction.hash))
    return signed


def presign(senders: list[Keypair], signing: Signing, per_sender: int, first_nonce: int = 0) -> list[deque]:
    """Every sender's transfers, signed in a process per core."""
    jobs = [(sender.seed, signing, first_nonce, per_sender) for sender in senders]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return [deque(signed) for signed in pool.map(_sign_sender, jobs, chunksize=8)]


def signing_of(client: Client) -> Signing:
    info = client.chain_info()
    return Signing(info.chain_id, info.genesis_hash, info.fee_rule)


# --- load -----------------------------------------------------------------------------


@dataclass
class Load:
    """Shared between the submitters and the block watchers of one phase."""

    window: int
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    accepted: int = 0
    included: int = 0
    rejected: Counter = field(default_factory=Counter)
    ran_dry: bool = False
    # Transfers whose time to finality is measured: hash -> (node index, submission time).
    tracked: dict = field(default_factory=dict)
    latencies: list = field(default_factory=list)
    track: bool = False

    def in_flight(self) -> int:
        return self.accepted - self.included


def submit_batch(client: Client, node: int, taken: list[tuple[deque, list]], load: Load) -> None:
    """Submit the chunks taken from the heads of sender queues; a refused transfer and those after it go back."""
    raws = [raw for _, chunk in taken for raw, _ in chunk]
    if not raws:
        return
    started = time.monotonic()
    try:
        verdicts = client.submit_many(raws, chunk=BATCH)
    except ClientError as error:
        for queue, chunk in taken:
            queue.extendleft(reversed(chunk))
        with load.lock:
            load.rejected[f"call {error.code}"] += len(raws)
        time.sleep(0.05)
        return
    position = 0
    with load.lock:
        for queue, chunk in taken:
            flags = [verdict.accepted or verdict.code == "ALREADY_EXISTS"
                     for verdict in verdicts[position:position + len(chunk)]]
            first_refused = flags.index(False) if False in flags else len(chunk)
            if load.track:
                for _, transaction_hash in chunk[:first_refused]:
                    load.tracked[transaction_hash] = (node, started)
            load.accepted += first_refused
            if first_refused < len(chunk):
                refused = verdicts[position + first_refused]
                load.rejected[f"{refused.code}: {refused.reason[:60]}"] += len(chunk) - first_refused
                queue.extendleft(reversed(chunk[first_refused:]))
            position += len(chunk)


def take(queues: list[deque], count: int) -> list[tuple[deque, list]]:
    """Up to `count` transfers, round robin over the senders, each sender's in nonce order."""
    chunks = {id(queue): (queue, []) for queue in queues}
    taken = 0
    while taken < count:
        progressed = False
        for queue in queues:
            if queue and taken < count:
                chunks[id(queue)][1].append(queue.popleft())
                taken += 1
                progressed = True
        if not progressed:
            break
    return [(queue, chunk) for queue, chunk in chunks.values() if chunk]


def closed_loop(target: str, node: int, queues: list[deque], load: Load) -> None:
    """Submit as fast as the window allows until told to stop."""
    with Client(target, timeout=60) as client:
        while not load.stop.is_set():
            if load.in_flight() > load.window:
                time.sleep(0.01)
                continue
            taken = take(queues, BATCH)
            if not taken:
                load.ran_dry = True
                return
            submit_batch(client, node, taken, load)


def paced(target: str, node: int, queues: list[deque], load: Load, rate: float) -> None:
    """Submit `rate` transfers per second, a batch every PACE_TICK_S, round robin over the senders."""
    owed = 0.0
    next_tick = time.monotonic()
    with Client(target, timeout=60) as client:
        while not load.stop.is_set():
            owed += rate * PACE_TICK_S
            count = int(owed)
            owed -= count
            taken = take(queues, count)
            if count and not taken:
                load.ran_dry = True
                return
            submit_batch(client, node, taken, load)
            # The next tick starts with the senders this one did not reach.
            shift = count % len(queues)
            queues = queues[shift:] + queues[:shift]
            next_tick += PACE_TICK_S
            time.sleep(max(0.0, next_tick - time.monotonic()))


def watch_blocks(target: str, node: int, from_height: int, load: Load, seen: list, counting: bool,
                 done: threading.Event) -> None:
    """Record every finalized block from `from_height`; count inclusions (`counting`) and times to finality."""
    with Client(target, timeout=60) as client:
        stream = client.subscribe_blocks(from_height=from_height)
        try:
            for block in stream:
                arrived = time.monotonic()
                seen.append(SeenBlock(block.height, block.time_ms, len(block.transactions), arrived))
                with load.lock:
                    if counting:
                        load.included += len(block.transactions)
                    if load.track:
                        for transaction_hash in block.transaction_hashes:
                            sent = load.tracked.get(transaction_hash)
                            if sent is not None and sent[0] == node:
                                load.latencies.append(arrived - sent[1])
                                del load.tracked[transaction_hash]
                if done.is_set():
                    return
        except ClientError:
            return
        finally:
            stream.close()


# --- phases -------------------------------------------------------------------------------


@dataclass
class Phase:
    """The outcome of one window."""

    name: str
    tx_per_s: float
    included: int
    seconds: float
    blocks: int
    load: Load
    # CPU seconds this benchmark process (submitting, following blocks) used in the window.
    client_cpu_s: float


def run_phase(name: str, targets: list[str], queues_per_thread: list[list[deque]], nodes_of_thread: list[int],
              seconds: float, window: int, rate: float | None = None) -> Phase:
    """One window of load on `targets` (thread i submits to targets[nodes_of_thread[i]])."""
    with Client(targets[0], timeout=30) as client:
        start_height = client.chain_info().best_height  # the head: the last block before the window
    load = Load(window=window, track=rate is not None)
    done = threading.Event()
    seen: list[list[SeenBlock]] = [[] for _ in targets]
    watchers = [
        threading.Thread(target=watch_blocks, args=(target, index, start_height, load, seen[index], index == 0, done),
                         daemon=True)
        for index, target in enumerate(targets)
    ]
    for watcher in watchers:
        watcher.start()
    threads = []
    for queues, node in zip(queues_per_thread, nodes_of_thread):
        if rate is None:
            worker = threading.Thread(target=closed_loop, args=(targets[node], node, queues, load), daemon=True)
        else:
            share = rate / len(queues_per_thread)
            worker = threading.Thread(target=paced, args=(targets[node], node, queues, load, share), daemon=True)
        threads.append(worker)
    start_ms = int(time.time() * 1000)
    cpu_started = time.process_time()
    for worker in threads:
        worker.start()
    time.sleep(seconds)
    end_ms = int(time.time() * 1000)
    client_cpu_s = time.process_time() - cpu_started
    load.stop.set()
    for worker in threads:
        worker.join(timeout=30)
    grace = time.monotonic() + (FINALITY_GRACE_S if rate is not None else 5.0)
    while time.monotonic() < grace:
        with load.lock:
            closed = any(block.time_ms > end_ms for block in seen[0])
            pending = len(load.tracked)
        if closed and (rate is None or pending == 0):
            break
        time.sleep(0.1)
    tx_per_s, included, window_s = included_rate(seen[0], start_ms, end_ms)  # finalized: blocks are final
    inside = [block for block in seen[0] if start_ms < block.time_ms <= end_ms]
    _drain(load)
    done.set()
    return Phase(name, tx_per_s, included, window_s, len(inside), load, client_cpu_s)


def _drain(load: Load) -> None:
    """Wait until everything accepted is finalized, so the next phase starts from an empty pool."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while load.in_flight() > 0 and time.monotonic() < deadline:
        time.sleep(0.1)


def split(queues: list[deque], parts: int) -> list[list[deque]]:
    return [queues[index::parts] for index in range(parts)]


# --- the two chains ------------------------------------------------------------------------


def measure_dev(args, senders: list[Keypair], threads: int) -> Phase:
    with tempfile.TemporaryDirectory(prefix="inferchain-bench-dev-") as base:
        node = NodeProcess(base_path=Path(base) / "dev", rpc_port=free_port()).start()
        try:
            with Client(node.target, timeout=60) as client:
                fund(client, senders, ENDOWMENT)
                signing = signing_of(client)
            per_sender = math.ceil(args.dev_max_rate * (args.seconds + 5) / len(senders))
            queues = _signed(senders, signing, per_sender)
            print(f"dev node: {args.seconds:g} s of load from {threads} threads ...", flush=True)
            return run_phase("dev", [node.target], split(queues, threads), [0] * threads, args.seconds, args.dev_window)
        finally:
            node.stop()


def _free_addresses(layout):
    """The devnet's addresses on port bases nothing else listens on (a `make devnet` may hold the defaults)."""
    rng = random.Random()
    for _ in range(50):
        base = rng.randrange(20_000, 60_000, 100)
        try:
            return choose_addresses(layout, PortBases(p2p=base, rpc=base + 20, prometheus=base + 40))
        except DevnetError:
            continue
    return choose_addresses(layout)  # says which default port is taken


def measure_devnet(args, senders: list[Keypair]) -> tuple[Phase, Phase, float]:
    with tempfile.TemporaryDirectory(prefix="inferchain-bench-devnet-") as base:
        layout = prepare(Path(base) / "devnet", args.validators,
                         extra_balances=[(sender.public_key, ENDOWMENT) for sender in senders])
        devnet = Devnet(layout, _free_addresses(layout), LaunchOptions(worker=False))
        try:
            print(f"starting a devnet of {args.validators} validators (--no-worker) ...", flush=True)
            devnet.start()
            devnet.wait_finalizing(report=lambda line: print(f"  {line}", flush=True))
            targets = [str(node.addresses.rpc) for node in devnet.nodes]
            with Client(targets[0], timeout=60) as client:
                signing = signing_of(client)
                block_time_ms = client.chain_info().block_time_ms
            per_sender = math.ceil(args.max_rate * (2 * args.seconds + 8) / len(senders))
            queues = _signed(senders, signing, per_sender)
            # Sender i sends to node i mod N: one thread per node, with that node's senders.
            count = len(targets)
            per_node = split(queues, count)
            print(f"devnet capacity: {args.seconds:g} s of load, one thread per node ...", flush=True)
            capacity = run_phase("devnet capacity", targets, per_node, list(range(count)), args.seconds, args.window)
            rate = args.rate or 0.8 * capacity.tx_per_s
            print(f"devnet finality: {args.seconds:g} s at {rate:,.0f} tx/s ...", flush=True)
            finality = run_phase("devnet finality", targets, per_node, list(range(count)), args.seconds, args.window,
                                 rate=max(rate, 1.0))
            return capacity, finality, block_time_ms / 1000
        finally:
            devnet.stop()


def _signed(senders: list[Keypair], signing: Signing, per_sender: int) -> list[deque]:
    started = time.perf_counter()
    queues = presign(senders, signing, per_sender)
    elapsed = time.perf_counter() - started
    total = per_sender * len(senders)
    print(f"  pre-signed {total:,} transfers in {elapsed:.1f} s ({total / elapsed:,.0f}/s)", flush=True)
    return queues


# --- main -------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measured window (default 20)")
    parser.add_argument("--quick", action="store_true", help="6-second windows")
    parser.add_argument("--validators", type=int, default=4, help="validators in the devnet (default 4)")
    parser.add_argument("--senders", type=int, default=DEFAULT_SENDERS, help=f"sender accounts (default {DEFAULT_SENDERS})")
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                        help=f"most transfers in flight in the devnet's capacity window (default {DEFAULT_WINDOW})")
    parser.add_argument("--dev-window", type=int, default=DEFAULT_DEV_WINDOW,
                        help=f"most transfers in flight on the --dev node (default {DEFAULT_DEV_WINDOW})")
    parser.add_argument("--rate", type=float, help="transfers per second in the finality window (default: 80%% of "
                                                   "the devnet's measured capacity)")
    parser.add_argument("--max-rate", type=float, default=3000,
                        help="pre-sign enough for this many tx/s on the devnet (default 3000)")
    parser.add_argument("--dev-max-rate", type=float, default=6000,
                        help="pre-sign enough for this many tx/s on the --dev node (default 6000)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 6.0
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    senders = [Keypair.generate() for _ in range(args.senders)]
    dev = measure_dev(args, senders, threads=args.validators)
    capacity, finality, block_time_s = measure_devnet(args, senders)
    report(args, dev, capacity, finality, block_time_s)
    return 0


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def report(args, dev: Phase, capacity: Phase, finality: Phase, block_time_s: float) -> None:
    latencies = finality.load.latencies
    p50, p99 = _percentile(latencies, 0.50), _percentile(latencies, 0.99)
    ratio = capacity.tx_per_s / dev.tx_per_s if dev.tx_per_s else 0.0
    unfinalized = len(finality.load.tracked)
    print()
    for phase in (dev, capacity, finality):
        print(f"{phase.name:<17} {phase.tx_per_s:>8,.0f} tx/s finalized ({phase.included:,} in {phase.blocks} blocks, "
              f"{phase.seconds:.2f} s of block time); accepted {phase.load.accepted:,}; this client used "
              f"{phase.client_cpu_s / args.seconds:.0%} of a core")
        for reason, count in phase.load.rejected.most_common(3):
            print(f"{'':<17} refused {count:,} x {reason}")
        if phase.load.ran_dry:
            print(f"{'':<17} WARNING: pre-signed transfers ran out: a lower bound (raise --max-rate/--dev-max-rate)")
    print(f"time to finality  p50 {p50:.3f} s, p99 {p99:.3f} s, mean "
          f"{statistics.fmean(latencies) if latencies else float('nan'):.3f} s over {len(latencies):,} transfers"
          f" ({unfinalized:,} not finalized within {FINALITY_GRACE_S:g} s of the window's end)")
    print(f"block time        {block_time_s:g} s; goals: >= 1000 tx/s, p50 < 1.5 s")
    print(f"ratio to --dev    {ratio:.3f}")
    print(json.dumps({
        "tx_per_s": round(capacity.tx_per_s, 1),
        "p50_finality_s": round(p50, 3),
        "p99_finality_s": round(p99, 3),
        "ratio_to_dev": round(ratio, 3),
        "dev_tx_per_s": round(dev.tx_per_s, 1),
        "finality_rate_offered": round(args.rate or 0.8 * capacity.tx_per_s, 1),
        "finality_phase_tx_per_s": round(finality.tx_per_s, 1),
        "finality_samples": len(latencies),
        "not_finalized": unfinalized,
        "validators": args.validators,
        "window_s": args.seconds,
        "block_time_s": block_time_s,
        "senders": args.senders,
        "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    sys.exit(main())
