"""The worker's tokens/s with 1, 4 and 8 concurrent jobs: one engine per job against one batch.

    .venv/bin/python bench/worker.py [--seconds 20 | --quick] [--cores N] [--max-tokens 48] [--gpu-layers N]

1. Unbatched, today's layout (chain/worker/executor.py's EnginePool): one Engine per concurrent
   job, each with max(1, cores // jobs) threads, every job its own thread.
2. Batched: one BatchedEngine (inference/batched.py) with one slot per concurrent job and all the
   cores, every job its own thread calling generate(), each result through the canonical scoring
   pass (inference/canonical.py) before it is returned, as a GPU worker commits it (a CPU worker's
   default is the pass off: batched_no_pass_tps_8 below).
3. Each layout runs jobs back to back (calibration prompts, greedy and sampled alternately, fresh
   job ids) for about --seconds per concurrency; tokens/s is every result's tokens over the wall
   time until the last job ends. Both layouts are measured in this run, on this machine.
4. The last line is one JSON object: unbatched_tps_{1,4,8}, batched_tps_{1,4,8},
   batched_over_unbatched_8, canonical_share (the pass's share of the batched engine's busy time
   at 8 jobs), rolled_back (positions the pass rolled back in all batched runs: 0 where batching is
   exact, as on the pinned CPU build), and batched_no_pass_tps_{1,4,8} (the batch alone, the pass
   off: what the batch itself gains, and what `inferchain worker --batch-jobs N` runs on a CPU).

What the CPU gains: from the batch alone, little or nothing; with the canonical pass, nothing: it
loses. The pinned CPU build (llama.cpp without llamafile's matrix kernels, docs/verification.md)
computes a batch row with the same vector kernels as a single decoded token, so eight sequences in
one decode cost nearly eight decodes; a batch saves only per-decode overhead (graph build, thread
wake-ups, one pass over the weights per step instead of per job), and the scheduler thread costs
some back. The canonical pass is one fresh evaluation of prompt + output per result, and on this
build an evaluated row costs about what a generated token cost: the pass takes close to half the
batched engine's time, and rolls back nothing (on the CPU the batch is exact;
tests/inference/test_batched.py), so the worker leaves it off on the CPU. Three `--seconds 10` runs
in a row on a quiet 2-core x86-64 VM (AVX2), SmolLM2-135M Q4_1, 48 tokens, nothing else running
(the first run measured the batch without the pass at 8 jobs only):

    jobs  unbatched          batched, with the pass     batched, pass off (over unbatched)
    1     66.5  64.3  61.4   28.0  35.3  29.1           -     56.7  49.6  (0.88, 0.81)
    4     76.0  78.9  71.4   41.6  33.4  37.3           -     71.5  70.7  (0.91, 0.99)
    8     64.5  69.2  63.7   46.3  35.3  35.3           84.1  67.1  74.6  (1.30, 0.97, 1.17)

So on the CPU a batch of 8 runs between even and a third faster than one engine per job (0.97 to
1.30, as noisy as these machines), fewer jobs run slower in a batch, and the pass halves it:
`--batch-jobs` is off by default on the CPU.

On a GPU a decode step is bound by reading the weights, so a batch of eight costs about one step:
batching is where GPU throughput comes from, and there the pass is what makes the results
verifiable (bench/gpu/ measures both; not yet run).

On a machine where other processes compete for the cores, set OMP_WAIT_POLICY=passive: ggml's
OpenMP teams of 2 threads otherwise spin-wait for a descheduled peer, and one 2-thread engine fell
from 34 to 0.3 tokens/s in a run on a loaded machine without it (the 1-thread engines kept their speed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.batched import BatchedEngine  # noqa: E402
from inference.calibration import load_prompts  # noqa: E402
from inference.engine import Engine, EngineConfig, engine_version  # noqa: E402
from inference.model_store import ModelStore  # noqa: E402
from inference.result import InferenceJob  # noqa: E402
from inference.sampler import SamplingParams  # noqa: E402

CONCURRENCY = (1, 4, 8)
SAMPLINGS = (SamplingParams(), SamplingParams(temperature_milli=800, top_k=40, top_p_ppm=950_000, seed=42))
CONTEXT = 1024


@dataclass
class Run:
    """What one layout at one concurrency produced."""

    tokens: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


class JobSource:
    """Jobs in a fixed order, each with its own id: prompts cycle, greedy and sampled alternate."""

    def __init__(self, model_id: str, label: str, max_tokens: int):
        self.model_id, self.label, self.max_tokens = model_id, label, max_tokens
        self.prompts = load_prompts()
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> InferenceJob:
        with self._lock:
            index, self._next = self._next, self._next + 1
        job_id = hashlib.blake2b(f"bench worker {self.label} {index}".encode(), digest_size=32).digest()
        return InferenceJob(self.model_id, job_id, self.prompts[index % len(self.prompts)], self.max_tokens,
                            SAMPLINGS[index % len(SAMPLINGS)])


def measure(generators: list, source: JobSource, seconds: float) -> Run:
    """Run one thread per generator (its `generate`), jobs back to back until `seconds` have passed."""
    tokens = [0] * len(generators)
    started = time.perf_counter()
    deadline = started + seconds

    def work(index: int) -> None:
        while time.perf_counter() < deadline:
            tokens[index] += len(generators[index](source.take()).tokens)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(len(generators))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Run(tokens=sum(tokens), seconds=time.perf_counter() - started)


def unbatched(record, jobs: int, cores: int, args) -> Run:
    """Today's layout: one engine per concurrent job, the cores shared out between them."""
    config = EngineConfig(threads=max(1, cores // jobs), context=CONTEXT, gpu_layers=args.gpu_layers)
    engines = [Engine(record.path, record.id, config) for _ in range(jobs)]
    try:
        source = JobSource(record.id, f"unbatched {jobs}", args.max_tokens)
        return measure([engine.generate for engine in engines], source, args.seconds)
    finally:
        for engine in engines:
            engine.close()


def batched(record, jobs: int, cores: int, args, canonical_pass: bool = True) -> tuple[Run, float, int]:
    """One batched engine with a slot per job and every core; the canonical pass's share; rollbacks."""
    config = EngineConfig(threads=cores, context=CONTEXT, gpu_layers=args.gpu_layers, canonical_pass=canonical_pass)
    engine = BatchedEngine(record.path, record.id, config, slots=jobs)
    try:
        source = JobSource(record.id, f"batched {jobs}", args.max_tokens)
        run = measure([engine.generate] * jobs, source, args.seconds)
        stats = engine.stats()
    finally:
        engine.close()
    busy = stats.generating_s + stats.canonical_s
    return run, (stats.canonical_s / busy if busy else 0.0), stats.rolled_back


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measure each layout and concurrency this long")
    parser.add_argument("--quick", action="store_true", help="a short run (3 s each) to check the benchmark works")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores to share out (default: all)")
    parser.add_argument("--max-tokens", type=int, default=48, help="tokens per job at most (default 48)")
    parser.add_argument("--gpu-layers", type=int, default=None, help="layers on the GPU (default: all when one exists)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = min(args.seconds, 3.0)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    record = ModelStore().embedded()
    print(f"{record.name} ({record.id[:12]}...), {engine_version()}, {args.cores} cores "
          f"({platform.processor() or platform.machine()}), {args.seconds:g} s per run, "
          f"at most {args.max_tokens} tokens per job, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}",
          flush=True)
    figures: dict[str, float] = {}
    share, rolled_back = 0.0, 0
    for jobs in CONCURRENCY:
        plain = unbatched(record, jobs, args.cores, args)
        print(f"  {jobs} jobs, unbatched: {plain.per_second:7.1f} tokens/s ({plain.tokens} tokens in "
              f"{plain.seconds:.1f} s, {max(1, args.cores // jobs)} threads per engine)", flush=True)
        run, share, rolled = batched(record, jobs, args.cores, args)
        rolled_back += rolled
        print(f"  {jobs} jobs, batched:   {run.per_second:7.1f} tokens/s ({run.tokens} tokens in "
              f"{run.seconds:.1f} s; canonical pass {100 * share:.0f}% of the engine's time, "
              f"{rolled} positions rolled back)", flush=True)
        bare, _, _ = batched(record, jobs, args.cores, args, canonical_pass=False)
        print(f"  {jobs} jobs, batched without the canonical pass: {bare.per_second:7.1f} tokens/s", flush=True)
        figures[f"unbatched_tps_{jobs}"] = round(plain.per_second, 1)
        figures[f"batched_tps_{jobs}"] = round(run.per_second, 1)
        figures[f"batched_no_pass_tps_{jobs}"] = round(bare.per_second, 1)
    figures["batched_over_unbatched_8"] = round(figures["batched_tps_8"] / figures["unbatched_tps_8"], 3) \
        if figures["unbatched_tps_8"] else 0.0
    figures["canonical_share"] = round(share, 3)
    figures["rolled_back"] = rolled_back
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
