"""Jobs through the chain against the same jobs through raw llama-cpp-python, in one run.

    .venv/bin/python bench/jobs.py [--quick] [--jobs N] [--max-tokens M]

1. Start `inferchain node --dev` in a temporary directory on free ports; its validator (Alice)
   offers the embedded model with capacity 8, and the node runs her executor worker (a separate
   process), which generates 2 jobs at once on this 2-core machine (one thread each; the others
   wait their turn in the worker).
2. Post one 4-token warm-up job per core at once and wait for them to settle (the worker has loaded as many
   engines as it runs jobs at once, as the raw runs below create theirs before their clock starts), then wait
   for three quiet blocks (no transaction, no event): the batch arrives at a chain not busy with other jobs,
   whose nodes hold their pace's full credit (chain/consensus/pace.py).
3. Post N (default 32) greedy jobs of M (default 64) tokens, redundancy 1, different prompts, in
   one SubmitTransactions batch as Bob, and follow the blocks: each job's assignment and
   settlement (JobSettled), at the moment this process receives the final block. Not the block's
   header time: that is BFT time, the median of the parent's precommit times, about a block
   interval before the block itself is final (figures before 2026-12-07 used it and so were up to
   a block interval early at the end of the batch).
4. Stop the node, then run the same jobs with raw llama-cpp-python (`Llama.generate`, its own
   sampler; the same prompt tokens, as many tokens as the chain's result) in the order the chain
   ran them, in two layouts: one job at a time on every core, and one job per core with one thread
   each (the worker's layout), each twice. The fastest run is the baseline.
5. Print a summary, then one JSON line:
   - chain_over_raw: tokens/s through the chain (all tokens, from the batch's submission to the
     last settlement) over raw tokens/s (all tokens over the faster raw layout's time); goal >= 0.9.
   - extra_latency_blocks: the median over jobs of (post-to-settled time minus the time raw
     llama-cpp-python needed to finish the same job when running the jobs in the same order),
     in block intervals; goal <= 2. With one executor of capacity 1 the jobs queue in both runs,
     so this is what the chain adds (blocks to include, assign, commit and settle), not queueing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chain.client import Client  # noqa: E402
from chain.client.jobs import posted_job_id  # noqa: E402
from chain.crypto import dev_keypair  # noqa: E402
from chain.genesis import ConsensusParams  # noqa: E402
from chain.transactions import sign_transaction  # noqa: E402
from inference.engine import Engine, EngineConfig, engine_version  # noqa: E402
from inference.calibration import load_prompts  # noqa: E402
from inference.model_store import ModelStore  # noqa: E402
from inference.registration import EMBEDDED_MODEL_ID  # noqa: E402
from proto import types_pb2  # noqa: E402
from runtime.jobs.events import JOB_ASSIGNED, JOB_DISPUTED, JOB_EXPIRED, JOB_SETTLED  # noqa: E402
from tests.nodes import NodeProcess, free_port, wait_quiet  # noqa: E402

GREEDY = types_pb2.Sampling(temperature_milli=0, top_k=40, top_p_ppm=1_000_000, seed=0)
POST_PRICE = 10**10  # above the dev offer's price, so the escrow never limits the test


@dataclass
class Tracked:
    """One job's timeline through the chain (seconds since the epoch, when this process received the block)."""

    transaction_hash: bytes
    prompt: str
    job_id: bytes = b""  # from the JobPosted event of its transaction's receipt
    posted_s: float = 0.0
    assigned_s: float | None = None
    settled_s: float | None = None
    tokens: int = 0
    order: int = -1


@dataclass
class Run:
    jobs: list[Tracked] = field(default_factory=list)
    submitted_s: float = 0.0
    raw_seconds: list[float] = field(default_factory=list)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 jobs of 32 tokens (default: 32 jobs of 64)")
    parser.add_argument("--jobs", type=int, help="jobs posted together")
    parser.add_argument("--max-tokens", type=int, help="tokens per job")
    args = parser.parse_args(argv)
    args.jobs = args.jobs or (4 if args.quick else 32)
    args.max_tokens = args.max_tokens or (32 if args.quick else 64)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    prompts = load_prompts()
    run = Run()
    cores = max(1, os.cpu_count() or 1)
    # One job at a time on every core, and the worker's layout: one job per core, one thread each.
    layouts = [RawLayout(1, cores)] + ([RawLayout(cores, 1)] if cores > 1 else [])
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as base:
        node = NodeProcess(Path(base) / "node", free_port(), ("--log-level", "warning"), worker=True).start()
        try:
            with Client(node.target) as client:
                # Warm-up: the worker has loaded an engine for each job it runs at once.
                post_and_follow(client, ["Say OK."] * cores, 4, Run())
                wait_quiet(node.target)  # the warm-up's last heights are not the batch's
                post_and_follow(client, list(prompts[: args.jobs]), args.max_tokens, run)
        finally:
            node.stop()  # the node stops its worker too
    # Raw runs before and after would be fairer still, but the chain's order is known only now;
    # so each layout runs twice after the chain and its faster run counts (less noise, never
    # flattering the chain).
    run_raw(run, layouts, repeats=2)
    report(args, run, layouts)
    return 0


def post_and_follow(client: Client, prompts: list[str], max_tokens: int, run: Run) -> None:
    """Post the jobs in one batch as Bob, then read blocks until every one has settled."""
    bob = dev_keypair("bob")
    info = client.chain_info()
    nonce = client.next_nonce(bob.public_key)
    first_height = info.best_height + 1
    raws = []
    for index, prompt in enumerate(prompts):
        call = types_pb2.PostJob(model=bytes.fromhex(EMBEDDED_MODEL_ID), prompt=prompt, prompt_format="chat",
                                 max_tokens=max_tokens, sampling=GREEDY, max_price_per_token=POST_PRICE, redundancy=1)
        signed = sign_transaction(bob, chain_id=info.chain_id, genesis_hash=info.genesis_hash, nonce=nonce + index,
                                  call=call, fee_rule=info.fee_rule)
        raws.append(signed.raw)
        run.jobs.append(Tracked(signed.hash, prompt))
    run.submitted_s = time.time()
    verdicts = client.submit_many(raws)
    refused = [verdict for verdict in verdicts if not verdict.accepted]
    if refused:
        raise SystemExit(f"the node refused a job: {refused[0].reason}")
    by_transaction = {tracked.transaction_hash: tracked for tracked in run.jobs}
    by_id: dict[str, Tracked] = {}
    order = 0
    for block in client.subscribe_blocks(first_height):
        at = time.time()  # when the block is final here (its header time is its parent's commit time)
        for receipt in block.receipts:
            tracked = by_transaction.get(receipt.transaction_hash)
            job = posted_job_id(receipt)
            if tracked is not None and job is not None:
                tracked.job_id, tracked.posted_s = job, at
                by_id[job.hex()] = tracked
        events = [event for receipt in block.receipts for event in receipt.events] + list(block.block_events)
        for event in events:
            attributes = dict(event.attributes)
            tracked = by_id.get(attributes.get("job", ""))
            if tracked is None or event.module != "jobs":
                continue
            if event.name == JOB_ASSIGNED and tracked.assigned_s is None:
                tracked.assigned_s, tracked.order = at, order
                order += 1
            elif event.name == JOB_SETTLED:
                tracked.settled_s = at
            elif event.name in (JOB_EXPIRED, JOB_DISPUTED):
                raise SystemExit(f"job {attributes['job'][:12]} ended {event.name}")
        if len(by_id) == len(run.jobs) and all(tracked.settled_s is not None for tracked in run.jobs):
            break
    for tracked in run.jobs:
        tracked.tokens = len(client.get_job(tracked.job_id).result.tokens)


@dataclass
class RawLayout:
    """One way to run the jobs with raw llama-cpp-python: `engines` at once, `threads` each."""

    engines: int
    threads: int
    # Seconds from the start to each job's last token, in the chain's order; and the whole run.
    done_s: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.engines} x {self.threads} thread(s)"


def run_raw(run: Run, layouts: list[RawLayout], repeats: int) -> None:
    """The same jobs, in the chain's order, with raw llama-cpp-python and its own greedy sampler."""
    record = ModelStore().embedded()
    engine = Engine(record.path, record.id, EngineConfig(threads=1))
    prompts = {tracked.job_id: engine.prompt_tokens(tracked.prompt) for tracked in run.jobs}
    engine.close()
    ordered = sorted(run.jobs, key=lambda t: t.order)
    for layout in layouts:
        for _ in range(repeats):
            trial = RawLayout(layout.engines, layout.threads)
            _run_layout(record.path, ordered, prompts, trial)
            if not layout.seconds or trial.seconds < layout.seconds:
                layout.seconds, layout.done_s = trial.seconds, trial.done_s


def _run_layout(path: Path, ordered: list[Tracked], prompts: dict, layout: RawLayout) -> None:
    """Each engine takes the next job in order as soon as it is free (as the worker does)."""
    from llama_cpp import Llama

    engines = [Llama(model_path=str(path), n_ctx=4096, n_batch=512, n_threads=layout.threads,
                     n_threads_batch=layout.threads, verbose=False) for _ in range(layout.engines)]
    pending = list(enumerate(ordered))
    done = [0.0] * len(ordered)
    lock = threading.Lock()
    started = time.perf_counter()

    def serve(llama) -> None:
        while True:
            with lock:
                if not pending:
                    return
                index, tracked = pending.pop(0)
            produced = 0
            for _ in llama.generate(prompts[tracked.job_id], top_k=1, top_p=1.0, min_p=0.0, typical_p=1.0,
                                    temp=0.0, repeat_penalty=1.0, reset=True):
                produced += 1
                if produced >= tracked.tokens:
                    break
            done[index] = time.perf_counter() - started

    threads = [threading.Thread(target=serve, args=(llama,)) for llama in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    layout.seconds = time.perf_counter() - started
    layout.done_s = done
    for llama in engines:
        llama.close()


def report(args, run: Run, layouts: list[RawLayout]) -> None:
    ordered = sorted(run.jobs, key=lambda t: t.order)
    tokens = sum(tracked.tokens for tracked in ordered)
    chain_seconds = max(tracked.settled_s for tracked in ordered) - run.submitted_s
    chain_rate = tokens / chain_seconds
    # The baseline is the faster raw layout, so the ratio never flatters the chain.
    best = min(layouts, key=lambda layout: layout.seconds)
    raw_rate = tokens / best.seconds
    block_s = ConsensusParams.block_time_ms / 1000
    extras = [(tracked.settled_s - run.submitted_s - done) / block_s for tracked, done in zip(ordered, best.done_s)]
    extra = statistics.median(extras)
    for tracked in ordered:
        print(f"job {tracked.job_id.hex()[:8]}: {tracked.tokens} tokens, posted +{tracked.posted_s - run.submitted_s:.1f} s, "
              f"assigned +{tracked.assigned_s - run.submitted_s:.1f} s, settled +{tracked.settled_s - run.submitted_s:.1f} s")
    for layout in layouts:
        print(f"raw llama-cpp-python, {layout.name}: {tokens / layout.seconds:.1f} tokens/s ({layout.seconds:.1f} s)")
    print(f"{len(ordered)} jobs, {tokens} tokens: through the chain {chain_rate:.1f} tokens/s "
          f"({chain_seconds:.1f} s from submission to the last settlement); faster raw layout ({best.name}) "
          f"{raw_rate:.1f} tokens/s; chain_over_raw {chain_rate / raw_rate:.3f} (goal >= 0.9)")
    print(f"extra latency per job (post to settled, minus raw completion in the same order): median "
          f"{extra:.2f} blocks of {block_s:g} s (goal <= 2); per job {', '.join(f'{e:.1f}' for e in extras)}")
    print(json.dumps({
        "chain_over_raw": round(chain_rate / raw_rate, 4),
        "extra_latency_blocks": round(extra, 3),
        "chain_tokens_per_s": round(chain_rate, 2),
        "raw_tokens_per_s": round(raw_rate, 2),
        "raw_layouts": {layout.name: round(tokens / layout.seconds, 2) for layout in layouts},
        "jobs": len(ordered),
        "tokens": tokens,
        "max_tokens": args.max_tokens,
        "block_time_s": block_s,
        "engine": engine_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    raise SystemExit(main())
