"""Our engine's tokens/s against raw llama-cpp-python, and verification time against generation time.

    .venv/bin/python bench/inference.py [--seconds 60 | --quick] [--threads 2] [--max-tokens 64]

1. Load the embedded model twice: raw llama-cpp-python (`Llama`, its own C sampler chain) and
   our engine (the chain's sampler: greedy, or top-k/top-p plus Gumbel-max noise from blake2b,
   with per-token log-probabilities).
2. For each prompt of the committed calibration set, in turn: our engine generates a job (greedy,
   then sampled at T 0.8, top-k 40, top-p 0.95), and raw `Llama.generate` produces exactly as
   many tokens from the same prompt tokens with the same parameters; the order alternates so
   neither side always runs first. Both reuse the KV cache for a shared prefix, as each does by
   default.
3. Our verifier re-scores every result of ours (one batched evaluation) on a second engine, as a
   validator would: it keeps only what its own earlier evaluations cached (the chat template's
   opening), never the generator's cache of the job it checks.
4. Print a summary, then one JSON line: engine_over_raw (greedy, sampled; goal >= 0.95) and
   verify_over_generate (goal <= 0.7 on CPU), all measured in this run on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.calibration import calibration_job_id, load_prompts  # noqa: E402
from inference.engine import Engine, EngineConfig, engine_version  # noqa: E402
from inference.model_store import ModelStore  # noqa: E402
from inference.result import InferenceJob  # noqa: E402
from inference.sampler import SamplingParams  # noqa: E402
from inference.thresholds import load_thresholds  # noqa: E402
from inference.verifier import rescore_and_judge  # noqa: E402

GREEDY = SamplingParams()
SAMPLED = SamplingParams(temperature_milli=800, top_k=40, top_p_ppm=950_000, seed=42)


@dataclass
class Tally:
    """Tokens and seconds of one side of one sampling mode."""

    tokens: int = 0
    seconds: float = 0.0

    def add(self, tokens: int, seconds: float) -> None:
        self.tokens += tokens
        self.seconds += seconds

    @property
    def per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


@dataclass
class Totals:
    """Everything measured in a run."""

    ours: dict = field(default_factory=lambda: {"greedy": Tally(), "sampled": Tally()})
    raw: dict = field(default_factory=lambda: {"greedy": Tally(), "sampled": Tally()})
    generate_seconds: float = 0.0
    verify_seconds: float = 0.0
    jobs: int = 0
    invalid: int = 0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measure for about this long (default 60)")
    parser.add_argument("--quick", action="store_true", help="a short run (about 10 s) to check the benchmark works")
    parser.add_argument("--threads", type=int, default=2, help="threads for both engines (default 2)")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens per job (default 64)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = min(args.seconds, 10.0)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    record = ModelStore().embedded()
    print(f"loading {record.name} ({record.id[:12]}...) three times: raw llama-cpp-python, our engine, "
          "our verifier ...", flush=True)
    raw = _raw_llama(record.path, args.threads)
    ours = Engine(record.path, record.id, EngineConfig(threads=args.threads, gpu_layers=0))
    checker = Engine(record.path, record.id, EngineConfig(threads=args.threads, gpu_layers=0))
    thresholds = load_thresholds(record.id)
    totals = Totals()
    prompts = load_prompts()
    print(f"generating for about {args.seconds:g} s on {ours.device_description()} ...", flush=True)
    started = time.perf_counter()
    index = 0
    while time.perf_counter() - started < args.seconds:
        for mode, sampling in (("greedy", GREEDY), ("sampled", SAMPLED)):
            job = InferenceJob(record.id, calibration_job_id(index, 0, "bench"), prompts[index % len(prompts)],
                               args.max_tokens, sampling)
            measure_job(job, mode, ours, checker, raw, thresholds, totals)
        index += 1
    report(args, totals, ours)
    return 0


def measure_job(job: InferenceJob, mode: str, ours: Engine, checker: Engine, raw, thresholds, totals: Totals) -> None:
    """Generate one job with both engines (same prompt tokens, same token count), then verify ours."""
    prompt = ours.prompt_tokens(job.prompt)
    ours_result, ours_seconds = _timed(ours.generate, job)
    # Ours stops at end-of-sequence; raw then produces exactly as many tokens, so both pay the
    # same prompt evaluation for the same number of generated tokens.
    raw_seconds = _raw_generate(raw, prompt, len(ours_result.tokens), job.sampling)
    totals.ours[mode].add(len(ours_result.tokens), ours_seconds)
    totals.raw[mode].add(len(ours_result.tokens), raw_seconds)
    verdict, verify_seconds = _timed(rescore_and_judge, ours_result, checker, thresholds)
    totals.generate_seconds += ours_seconds
    totals.verify_seconds += verify_seconds
    totals.jobs += 1
    totals.invalid += not verdict.valid


def _raw_llama(path: Path, threads: int):
    from llama_cpp import Llama

    return Llama(model_path=str(path), n_ctx=4096, n_batch=512, n_threads=threads, n_threads_batch=threads,
                 verbose=False)


def _raw_generate(llama, prompt: list[int], count: int, sampling: SamplingParams) -> float:
    """Seconds for raw llama-cpp-python to produce `count` tokens from `prompt` with its own sampler."""
    temperature = sampling.temperature if not sampling.greedy else 0.0
    started = time.perf_counter()
    produced = 0
    for _ in llama.generate(prompt, top_k=sampling.top_k, top_p=sampling.top_p, min_p=0.0, typical_p=1.0,
                            temp=temperature, repeat_penalty=1.0):
        produced += 1
        if produced >= count:
            break
    return time.perf_counter() - started


def _timed(function, *args):
    started = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - started


def report(args, totals: Totals, ours: Engine) -> None:
    ratios = {mode: _ratio(totals.ours[mode].per_second, totals.raw[mode].per_second) for mode in ("greedy", "sampled")}
    verify_over_generate = _ratio(totals.verify_seconds, totals.generate_seconds)
    print()
    for mode in ("greedy", "sampled"):
        print(f"{mode:8} ours {totals.ours[mode].per_second:6.1f} tokens/s, raw llama-cpp-python "
              f"{totals.raw[mode].per_second:6.1f} tokens/s, ratio {ratios[mode]:.3f} (goal >= 0.95)")
    print(f"verify   {totals.verify_seconds:.1f} s for {totals.generate_seconds:.1f} s of generation, "
          f"ratio {verify_over_generate:.3f} (goal <= 0.7 on CPU); {totals.invalid} of {totals.jobs} judged invalid")
    print(json.dumps({
        "engine_over_raw": {mode: round(value, 4) for mode, value in ratios.items()},
        "verify_over_generate": round(verify_over_generate, 4),
        "ours_tokens_per_s": {mode: round(totals.ours[mode].per_second, 2) for mode in ratios},
        "raw_tokens_per_s": {mode: round(totals.raw[mode].per_second, 2) for mode in ratios},
        "jobs": totals.jobs,
        "invalid": totals.invalid,
        "max_tokens": args.max_tokens,
        "threads": args.threads,
        "device": ours.device_description(),
        "engine": engine_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }))


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


if __name__ == "__main__":
    sys.exit(main())
