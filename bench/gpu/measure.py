"""Issue 27's GPU measurement: what a CUDA build computes, and whether the canonical pass makes it exact.

    python3 bench/gpu/measure.py --model PATH --out results.json [--quick] [--deadline-s N]

Run on the device by bench/gpu/device.sh (a CUDA build of llama-cpp-python on PYTHONPATH), and here
with the pinned CPU build to test it (`--quick`; where the CPU build is exact, every agreement
below must be total). Every part uses the real engine and the model file given; the parts, in the
order they run (a tight --deadline-s drops the later ones, and the file holds what ran):

  import  `import numpy` then `import llama_cpp` in a fresh process, and the other order: both must
          load (a CUDA build linked against another C++ runtime crashed numpy-first).
  b       token agreement between the canonical pass and fast generation on the bench jobs (greedy
          and sampled): the fast path single-sequence (one token per decode) and batched (8 jobs in
          one llama_decode); per job, identical or the first position the canonical pass rolled back.
  a       the canonical pass in 3 fresh processes: each re-scores the committed outputs on a fresh
          context and runs the pass again from the fast tokens; bit-identical logits rows
          (blake2b of the float32 rows), log-probabilities and committed tokens, or not.
  d       a reused engine (prefix reuse: each job evaluates only what the previous prompt did not
          share) against the same engine with its cache cleared per job, and against a new engine
          per job (a sample): if only the reused cache differs, the prefix-reuse explanation holds.
  e       throughput: one Engine with and without the pass, then a BatchedEngine with 1, 4, 8, 16
          slots (as many caller threads), tokens/s and the pass's share of the batched time.
  c       the device's results for bench/gpu/judge.py: honest rows (the reference calibration jobs,
          the bench jobs, held-out prompts, batched, n_batch 8, a reused prefix) and the frauds of
          docs/verification.md that need an executor (requantised models, the real model with a
          bent sampler, steering, another job's or seed's output), each result with this device's
          own verifier's margins and log-probability errors (the same-class check).

The JSON file holds every figure and the saved results; the last line printed is one JSON object
with the headline figures.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from inference import frauds  # noqa: E402
from inference.calibration.plan import (  # noqa: E402
    GREEDY,
    SAMPLINGS,
    T_0_7,
    calibration_job_id,
    held_out_jobs,
    load_held_out_prompts,
    load_prompts,
)
from inference.engine import Engine, EngineConfig, engine_version, gpu_offload_supported, job_chooser  # noqa: E402
from inference.engine import logprobs_micronats  # noqa: E402
from inference.result import InferenceJob, InferenceResult  # noqa: E402
from inference.sampler import SamplingParams  # noqa: E402
from inference.verifier import evaluate  # noqa: E402

MODEL_ID = "d63af87b96e2fd6551e9e7320602f3934f34c41a91004117dd24981571d02f79"
GREEDY_BENCH = SamplingParams()
SAMPLED_BENCH = SamplingParams(temperature_milli=800, top_k=40, top_p_ppm=950_000, seed=42)
# The real model for this many tokens, then the Q4_0 model (docs/verification.md's prefix fraud).
PREFIX_TOKENS = 16


@dataclasses.dataclass
class Sizes:
    """How much each part runs; --quick shrinks every one for a 2-core CPU test."""

    jobs: int = 50
    max_tokens: int = 64
    processes: int = 3
    new_engine_sample: int = 10
    slots: tuple[int, ...] = (1, 4, 8, 16)
    throughput_jobs: int = 32
    calibration_prompts: int = 6
    calibration_max_tokens: int = 96
    row_jobs: int = 16
    held_out_prompts: int = 6
    context: int = 4096
    fraud_rows: tuple[str, ...] | None = None  # None: every one


QUICK = Sizes(jobs=6, max_tokens=16, processes=3, new_engine_sample=2, slots=(1, 4), throughput_jobs=4,
              calibration_prompts=1, calibration_max_tokens=24, row_jobs=3, held_out_prompts=1, context=1024,
              fraud_rows=("q4_0", "prefix_then_q4_0", "temperature_narrowed", "steered_greedy", "other_seed"))


class Clock:
    """The time left before --deadline-s; parts that would not fit are skipped and say so."""

    def __init__(self, deadline_s: float):
        self.started = time.perf_counter()
        self.deadline_s = deadline_s

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> float:
        return float("inf") if not self.deadline_s else self.deadline_s - self.elapsed()


class Measurement:
    """One run: the engines' settings, the bench jobs, and the results file written after each part."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.sizes = QUICK if args.quick else Sizes()
        self.model = Path(args.model)
        self.model_id = args.model_id
        self.clock = Clock(args.deadline_s)
        self.out = Path(args.out)
        self.data: dict = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "quick": args.quick,
            "sizes": dataclasses.asdict(self.sizes),
            "model": self.model_id,
            "engine": engine_version(),
            "gpu_offload": gpu_offload_supported(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "system_info": _system_info(),
            "device": _device_name(),
            "parts": {},
            "skipped": [],
        }
        self.jobs = bench_jobs(self.model_id, self.sizes.jobs, self.sizes.max_tokens)

    def config(self, **changes) -> EngineConfig:
        """The engine configuration of every part: all layers on the GPU where there is one."""
        return dataclasses.replace(EngineConfig(context=self.sizes.context, threads=self.args.threads), **changes)

    def engine(self, **changes) -> Engine:
        return Engine(self.model, self.model_id, self.config(**changes))

    def save(self) -> None:
        self.data["elapsed_s"] = round(self.clock.elapsed(), 1)
        temporary = self.out.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.data))
        temporary.replace(self.out)

    def run_part(self, name: str, needs_s: float, function) -> None:
        """Run one part if the deadline leaves it `needs_s` seconds; record it, save, say so."""
        if self.clock.left() < needs_s:
            self.data["skipped"].append(name)
            print(f"[{name}] skipped: {self.clock.left():.0f} s left, it needs about {needs_s:.0f}", flush=True)
            return
        started = time.perf_counter()
        print(f"[{name}] running ({self.clock.elapsed():.0f} s elapsed)", flush=True)
        try:
            self.data["parts"][name] = function()
        except Exception as error:  # one part's failure must not lose the others' figures
            self.data["parts"][name] = {"error": f"{type(error).__name__}: {error}"}
            print(f"[{name}] failed: {type(error).__name__}: {error}", flush=True)
        self.data["parts"][name]["seconds"] = round(time.perf_counter() - started, 2)
        self.save()
        print(f"[{name}] done in {time.perf_counter() - started:.1f} s", flush=True)

    # -- import order --------------------------------------------------------------------------

    def import_order(self) -> dict:
        outcomes = {}
        for label, code in (("numpy_first", "import numpy; import llama_cpp"),
                            ("llama_cpp_first", "import llama_cpp; import numpy")):
            check = subprocess.run([sys.executable, "-c", code + "; llama_cpp.llama_backend_init(); print('ok')"],
                                   capture_output=True, text=True, timeout=120)
            outcomes[label] = {"returncode": check.returncode, "ok": check.returncode == 0 and "ok" in check.stdout,
                               "stderr_tail": check.stderr[-300:]}
        return outcomes

    # -- (b) canonical pass against fast generation ----------------------------------------------

    def agreement(self) -> dict:
        single = self.engine(canonical_pass=False, reuse_prefix=False)
        try:
            fast, fast_seconds = timed_generate(single, self.jobs)
            canonical = []
            started = time.perf_counter()
            for job, result in zip(self.jobs, fast):
                canonical.append(run_canonical(single, job, result.tokens))
            canonical_seconds = time.perf_counter() - started
        finally:
            single.close()
        batched_fast, batched_seconds = self.batched_generate(self.jobs, 8, canonical=False)
        checker = self.engine(canonical_pass=False, reuse_prefix=False)
        try:
            batched_canonical = [run_canonical(checker, job, result.tokens)
                                 for job, result in zip(self.jobs, batched_fast)]
        finally:
            checker.close()
        self.fast = fast
        self.committed = [outcome.result for outcome in canonical]
        return {
            "jobs": len(self.jobs),
            "single": compare_paths(fast, canonical),
            "batched_8": compare_paths(batched_fast, batched_canonical),
            "batched_committed_equals_single_committed": sum(
                a.result == b.result for a, b in zip(batched_canonical, canonical)),
            "fast_single_tokens_per_s": round(count_tokens(fast) / fast_seconds, 1),
            "fast_batched_8_tokens_per_s": round(count_tokens(batched_fast) / batched_seconds, 1),
            "canonical_seconds": round(canonical_seconds, 3),
            "fast_single_seconds": round(fast_seconds, 3),
        }

    def batched_generate(self, jobs, slots: int, canonical: bool):
        from inference.batched import BatchedEngine

        engine = BatchedEngine(self.model, self.model_id, self.config(canonical_pass=canonical), slots=slots)
        try:
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(max_workers=slots) as pool:
                results = list(pool.map(engine.generate, jobs))
            seconds = time.perf_counter() - started
        finally:
            engine.close()
        self.last_stats = engine.stats()
        return results, seconds

    # -- (a) the canonical pass in fresh processes ---------------------------------------------

    def processes(self) -> dict:
        if not hasattr(self, "committed"):
            raise RuntimeError("part b did not run: no committed outputs to re-score")
        with tempfile.TemporaryDirectory(prefix="gpu-measure-") as scratch:
            inputs = Path(scratch) / "inputs.json"
            inputs.write_text(json.dumps([
                {"job": job.to_json(), "fast": list(fast.tokens), "committed": list(committed.tokens)}
                for job, fast, committed in zip(self.jobs, self.fast, self.committed)]))
            runs = []
            for index in range(self.sizes.processes):
                output = Path(scratch) / f"child-{index}.json"
                command = [sys.executable, os.fspath(Path(__file__).resolve()), "--child", os.fspath(inputs),
                           "--model", os.fspath(self.model), "--model-id", self.model_id,
                           "--out", os.fspath(output), "--context", str(self.sizes.context)]
                if self.args.threads:
                    command += ["--threads", str(self.args.threads)]
                left = self.clock.left()
                subprocess.run(command, check=True, timeout=None if left == float("inf") else max(60, left))
                runs.append(json.loads(output.read_text()))
        first = runs[0]
        same_rows = [all(run["rows"][i] == first["rows"][i] for run in runs) for i in range(len(self.jobs))]
        same_logprobs = [all(run["logprobs"][i] == first["logprobs"][i] for run in runs) for i in range(len(self.jobs))]
        same_committed = [all(run["committed"][i] == first["committed"][i] for run in runs)
                          for i in range(len(self.jobs))]
        parent_logprobs = [list(result.logprobs_micronats) for result in self.committed]
        return {
            "processes": len(runs),
            "jobs": len(self.jobs),
            "rows_identical_jobs": sum(same_rows),
            "logprobs_identical_jobs": sum(same_logprobs),
            "committed_identical_jobs": sum(same_committed),
            "committed_equals_parent_jobs": sum(
                first["committed"][i] == list(self.committed[i].tokens) for i in range(len(self.jobs))),
            "logprobs_equal_parent_jobs": sum(first["logprobs"][i] == parent_logprobs[i] for i in range(len(self.jobs))),
            "bit_identical": all(same_rows) and all(same_logprobs) and all(same_committed),
            "load_seconds": [run["load_seconds"] for run in runs],
        }

    # -- (d) reused against fresh ------------------------------------------------------------------

    def reuse(self) -> dict:
        reused_engine = self.engine(canonical_pass=False, reuse_prefix=True)
        try:
            shared = []
            reused = []
            for job in self.jobs:
                prompt = reused_engine.prompt_tokens(job.prompt, job.prompt_format)
                # What the KV cache kept from the previous job: only the rest is evaluated, in other batches.
                shared.append(reused_engine._reusable_prefix(prompt))
                reused.append(reused_engine.generate(job))
        finally:
            reused_engine.close()
        cleared_engine = self.engine(canonical_pass=False, reuse_prefix=False)
        try:
            cleared = [cleared_engine.generate(job) for job in self.jobs]
        finally:
            cleared_engine.close()
        # A new engine for a sample of the jobs, those where reuse made a difference first.
        differing = [i for i in range(len(self.jobs)) if reused[i] != cleared[i]]
        others = [i for i in range(len(self.jobs)) if i not in differing]
        sample = (differing + others)[:self.sizes.new_engine_sample]
        new = {}
        for index in sample:
            engine = self.engine(canonical_pass=False, reuse_prefix=False)
            try:
                new[index] = engine.generate(self.jobs[index])
            finally:
                engine.close()
        reused_vs_cleared = [describe_difference(a, b) for a, b in zip(reused, cleared)]
        cleared_vs_new = {index: describe_difference(cleared[index], new[index]) for index in sample}
        reused_differs = [i for i, d in enumerate(reused_vs_cleared) if not d["identical"]]
        new_differs = [i for i, d in cleared_vs_new.items() if not d["identical"]]
        # A job that reused nothing yet differs is not explained by prefix reuse.
        unexplained = [i for i in reused_differs if shared[i] == 0]
        if not reused_differs and not new_differs:
            verdict = "no difference at all: nothing to explain on this build"
        elif reused_differs and not new_differs and not unexplained:
            verdict = ("confirmed: only the reused prefix changes the output; a cleared cache "
                       "reproduces a new engine")
        else:
            verdict = ("refuted or incomplete: a cleared cache differs from a new engine, or a job that "
                       "reused no prefix differs, so more than the KV prefix changes the output")
        return {
            "jobs": len(self.jobs),
            "shared_prefix_tokens": shared,
            "reused_differs_from_cleared_jobs": len(reused_differs),
            "reused_differs_greedy_jobs": sum(1 for i in reused_differs if self.jobs[i].sampling.greedy),
            "reused_differs_without_a_shared_prefix_jobs": len(unexplained),
            "reused_vs_cleared": reused_vs_cleared,
            "new_engine_sample": len(sample),
            "cleared_differs_from_new_engine_jobs": len(new_differs),
            "cleared_vs_new": {str(k): v for k, v in cleared_vs_new.items()},
            "prefix_reuse_explanation": verdict,
        }

    # -- (e) throughput ------------------------------------------------------------------------------

    def throughput(self) -> dict:
        jobs = (self.jobs * ((self.sizes.throughput_jobs // max(1, len(self.jobs))) + 1))[:self.sizes.throughput_jobs]
        jobs = [dataclasses.replace(job, job_id=calibration_job_id(index, 9, "gpu throughput"))
                for index, job in enumerate(jobs)]
        figures: dict = {"jobs": len(jobs), "max_tokens": self.sizes.max_tokens}
        for label, canonical in (("single_fast", False), ("single_canonical", True)):
            engine = self.engine(canonical_pass=canonical, reuse_prefix=False)
            try:
                results, seconds = timed_generate(engine, jobs)
            finally:
                engine.close()
            figures[f"{label}_tokens_per_s"] = round(count_tokens(results) / seconds, 1)
        reference = None
        for slots in self.sizes.slots:
            if self.clock.left() < 30:
                figures[f"batched_{slots}"] = {"skipped": "deadline"}
                continue
            results, seconds = self.batched_generate(jobs, slots, canonical=True)
            stats = self.last_stats
            reference = reference or results
            figures[f"batched_{slots}"] = {
                "tokens_per_s": round(count_tokens(results) / seconds, 1),
                "wall_s": round(seconds, 3),
                "generating_s": round(stats.generating_s, 3),
                "canonical_s": round(stats.canonical_s, 3),
                "canonical_share": round(stats.canonical_s / max(1e-9, stats.generating_s + stats.canonical_s), 4),
                "rolled_back": stats.rolled_back,
                "steps": stats.steps,
                "results_equal_to_1_slot": sum(a == b for a, b in zip(results, reference)),
            }
        return figures

    # -- (c) the device's results, for judging across the pair ------------------------------------------

    def calibration_rows(self) -> dict:
        sizes = self.sizes
        prompts = load_prompts()[:sizes.calibration_prompts]
        reference_jobs, keys = [], {}
        for prompt_index, prompt in enumerate(prompts):
            for sampling_index, sampling in enumerate(SAMPLINGS):
                job_id = calibration_job_id(prompt_index, sampling_index)
                keys[job_id] = (prompt_index, sampling_index)
                reference_jobs.append(InferenceJob(self.model_id, job_id, prompt, sizes.calibration_max_tokens, sampling))
        self.rows: list[dict] = []
        # Registered at once, so that every save after a row holds the rows so far.
        record = self.data["parts"]["c_rows"] = {
            "rows": self.rows, "max_tokens": sizes.calibration_max_tokens,
            "reference_keys": {job_id.hex(): list(key) for job_id, key in keys.items()},
            "verifier": "this device, one fresh evaluation per result (the same class)"}
        self.verifier = self.engine(canonical_pass=False, reuse_prefix=False)
        try:
            self._rows(reference_jobs, keys)
        finally:
            self.verifier.close()
        record["jobs"] = sum(len(row["outcomes"]) for row in self.rows)
        return record

    def _rows(self, reference_jobs, keys) -> None:
        sizes = self.sizes
        reference = self.executor_row("reference", "reference: the device's committed results (canonical pass)",
                                      reference_jobs, honest=True)
        subset = spread(reference, sizes.row_jobs, len(SAMPLINGS))
        moderate = [r for r in reference if keys[r.job.job_id][1] in T_0_7][:sizes.row_jobs]
        greedy = [r for r in reference if keys[r.job.job_id][1] == GREEDY][:sizes.row_jobs]
        if hasattr(self, "committed"):
            self.add_row("bench_jobs", "bench jobs of parts a-b (greedy, T 0.8; no reference row, so none counted identical)", True,
                         [(r, 0.0, None) for r in self.committed])
        held_out = held_out_jobs(self.model_id, load_held_out_prompts()[:sizes.held_out_prompts],
                                 sizes.calibration_max_tokens)
        honest_plans = {
            "held_out": lambda: self.executor_row(
                "held_out", "held out (not fitted): other prompts, every sampling, lengths 16 to max", held_out,
                honest=True, held_out=True),
            "batched_8": lambda: self.batched_row([r.job for r in subset]),
            # The canonical pass evaluates in the engine's n_batch chunks: at 8 it is another shape
            # than the verifier's 512, which on a GPU may be another result.
            "batch_8": lambda: self.executor_row("batch_8", "n_batch 8 (reference 512), canonical pass at n_batch 8",
                                                 [r.job for r in subset], honest=True, batch=8),
            "prefix_cache": lambda: self.executor_row("prefix_cache", "prefix evaluated before, cache reused",
                                                      [r.job for r in subset], honest=True, reuse_prefix=True),
        }
        self.run_rows(honest_plans)
        scratch = Path(tempfile.mkdtemp(prefix="gpu-frauds-"))
        models = {}

        def fraud_model(quantisation: str) -> Path:
            if quantisation not in models:
                models[quantisation] = frauds.requantise(self.model, scratch / f"{quantisation}.gguf", quantisation)
            return models[quantisation]

        def perturbed(scale: float) -> Path:
            return frauds.perturb_weights(self.model, scratch / f"perturbed-{scale}.gguf", scale)

        plans = {
            "q4_0": lambda: self.executor_row("q4_0", "cheaper model: Q4_0 requantisation", [r.job for r in subset],
                                              model=fraud_model("Q4_0"), claims_true_logprobs=True),
            "q3_k_m": lambda: self.executor_row("q3_k_m", "cheaper model: Q3_K_M requantisation",
                                                [r.job for r in subset], model=fraud_model("Q3_K_M"),
                                                claims_true_logprobs=True),
            "q2_k": lambda: self.executor_row("q2_k", "cheaper model: Q2_K requantisation", [r.job for r in subset],
                                              model=fraud_model("Q2_K"), claims_true_logprobs=True),
            "prefix_then_q4_0": lambda: self.executor_row(
                "prefix_then_q4_0", f"real model for {PREFIX_TOKENS} tokens, then Q4_0", [r.job for r in subset],
                model=fraud_model("Q4_0"), claims_true_logprobs=True,
                choosers=[frauds.forced_prefix(r.tokens[:PREFIX_TOKENS], job_chooser(r.job)) for r in subset]),
            "q8_0": lambda: self.executor_row("q8_0", "Q8_0 requantisation (same weights, higher precision)",
                                              [r.job for r in subset], model=fraud_model("Q8_0"),
                                              claims_true_logprobs=True, exempt=True),
            "perturbed_1": lambda: self.executor_row("perturbed_1", "different model: weights perturbed 1%",
                                                     [r.job for r in subset], model=perturbed(0.01),
                                                     claims_true_logprobs=True),
            "temperature_narrowed": lambda: self.executor_row(
                "temperature_narrowed", "declared T 0.7, sampled at T 0.4", [r.job for r in moderate],
                choosers=[frauds.sampler_for(r.job, temperature_milli=400) for r in moderate]),
            "top_k_narrowed": lambda: self.executor_row(
                "top_k_narrowed", "declared top-k 40, sampled with top-k 5", [r.job for r in moderate],
                choosers=[frauds.sampler_for(r.job, top_k=5) for r in moderate]),
            "top_p_narrowed": lambda: self.executor_row(
                "top_p_narrowed", "declared top-p 0.95, sampled with top-p 0.8", [r.job for r in moderate],
                choosers=[frauds.sampler_for(r.job, top_p_ppm=800_000) for r in moderate]),
            "steered_greedy": lambda: self.steered_row("steered_greedy", "steered greedy job: runner-up within 0.3 logits",
                                                       greedy, 0.3),
            "steered_top_k_1": lambda: self.steered_row(
                "steered_top_k_1", "steered top-k 1 job: runner-up within 0.9 logits", greedy, 0.9, top_k=1),
            "steered_sampled": lambda: self.steered_row("steered_sampled", "steered T 0.7 job: runner-up within 0.3 logits",
                                                        moderate, 0.3),
            "other_job": lambda: self.regenerated_row(
                "other_job", "output of another job (same prompt and seed)",
                [r for r in subset if not r.job.sampling.greedy],
                lambda job: dataclasses.replace(job, job_id=calibration_job_id(*keys[job.job_id], "other job"))),
            "other_seed": lambda: self.regenerated_row(
                "other_seed", "sampled job answered with another seed", [r for r in subset if not r.job.sampling.greedy],
                lambda job: dataclasses.replace(job, sampling=dataclasses.replace(
                    job.sampling, seed=(job.sampling.seed + 1) % (1 << 64)))),
        }
        self.run_rows({key: plan for key, plan in plans.items()
                       if sizes.fraud_rows is None or key in sizes.fraud_rows})

    def run_rows(self, plans: dict) -> None:
        """Each row in turn while the deadline leaves time, saving the file after each."""
        for key, plan in plans.items():
            # A row may take as long as the longest so far (a requantisation, say), with room to save.
            if self.clock.left() < max(25.0, 1.5 * getattr(self, "longest_row_s", 0.0)):
                self.data["skipped"].append(f"c:{key}")
                continue
            started = time.perf_counter()
            try:
                plan()
            except Exception as error:  # e.g. perturbed weights need the gguf package, absent on the device
                self.data["skipped"].append(f"c:{key} ({type(error).__name__}: {error})")
                print(f"[c] row {key} skipped: {type(error).__name__}: {error}", flush=True)
            self.longest_row_s = max(getattr(self, "longest_row_s", 0.0), time.perf_counter() - started)
            self.save()

    def executor_row(self, key, label, jobs, honest=False, held_out=False, exempt=False, model=None,
                     claims_true_logprobs=False, choosers=None, **changes) -> list[InferenceResult]:
        """Each job generated by an executor on this device (the real model unless `model`), then verified here."""
        engine = Engine(model or self.model, self.model_id, self.config(**{"reuse_prefix": False, **changes}))
        generated = []
        try:
            for index, job in enumerate(jobs):
                chooser = choosers[index] if choosers else None
                started = time.perf_counter()
                result = engine.generate(job, None, chooser)
                generated.append((result, time.perf_counter() - started, getattr(chooser, "steered", None)))
        finally:
            engine.close()
        self.add_row(key, label, honest, generated, held_out=held_out, exempt=exempt,
                     claims_true_logprobs=claims_true_logprobs)
        return [result for result, _, _ in generated]

    def batched_row(self, jobs) -> None:
        results, seconds = self.batched_generate(jobs, min(8, max(1, len(jobs))), canonical=True)
        each = seconds / max(1, len(results))
        self.add_row("batched_8", "8 jobs decoded together (BatchedEngine), canonical pass", True,
                     [(result, each, None) for result in results])

    def steered_row(self, key, label, honest_results, within, **declared) -> None:
        jobs, choosers = [], []
        for index, honest in enumerate(honest_results):
            job = honest.job
            if declared:
                sampling = dataclasses.replace(SAMPLINGS[T_0_7[0]], **declared)
                job = dataclasses.replace(job, sampling=sampling, job_id=calibration_job_id(index, -1, key))
            jobs.append(job)
            choosers.append(frauds.Steering(job, within))
        self.executor_row(key, label, jobs, choosers=choosers)

    def regenerated_row(self, key, label, honest_results, variant) -> None:
        engine = Engine(self.model, self.model_id, self.config(reuse_prefix=False))
        generated = []
        try:
            for honest in honest_results:
                started = time.perf_counter()
                other = engine.generate(variant(honest.job))
                generated.append((frauds.claim_for(honest, other), time.perf_counter() - started, None))
        finally:
            engine.close()
        self.add_row(key, label, False, generated, honest_results=honest_results)

    def add_row(self, key, label, honest, generated, held_out=False, exempt=False, claims_true_logprobs=False,
                honest_results=None) -> None:
        """A row of results with this device's own (same-class) verification of each."""
        outcomes = []
        for result, seconds, altered in generated:
            started = time.perf_counter()
            evaluation = evaluate(result, self.verifier)
            verify_seconds = time.perf_counter() - started
            outcomes.append({
                "result": result.to_json(),
                "generate_seconds": round(seconds, 4),
                "altered": altered,
                "same_class": {
                    "margins": [round(float(value), 4) for value in evaluation.margins],
                    "logprob_errors": [int(value) for value in evaluation.logprob_errors],
                    "recomputed_logprobs": [int(value) for value in evaluation.recomputed_logprobs],
                    "problems": list(evaluation.problems),
                    "verify_seconds": round(verify_seconds, 4),
                },
            })
        self.rows.append({"key": key, "label": label, "honest": honest, "held_out": held_out, "exempt": exempt,
                          "claims_true_logprobs": claims_true_logprobs, "outcomes": outcomes})
        negative = sum(sum(1 for m in o["same_class"]["margins"] if m < 0) for o in outcomes)
        print(f"[c] {key}: {len(outcomes)} jobs, {negative} negative same-class margins", flush=True)


# -- helpers ---------------------------------------------------------------------------------------


def bench_jobs(model_id: str, count: int, max_tokens: int) -> list[InferenceJob]:
    """`count` jobs over the committed prompts, greedy and sampled (T 0.8, top-k 40, top-p 0.95) in turn."""
    prompts = load_prompts()
    return [InferenceJob(model_id, calibration_job_id(index, index % 2, "gpu bench"), prompts[index // 2 % len(prompts)],
                         max_tokens, GREEDY_BENCH if index % 2 == 0 else SAMPLED_BENCH)
            for index in range(count)]


def spread(reference: list[InferenceResult], count: int, samplings: int) -> list[InferenceResult]:
    """calibration.run.spread over results: `count` jobs over the prompts, the sampling turning."""
    prompts = len(reference) // samplings
    count = min(count, len(reference))
    return [reference[(index * prompts // count) * samplings + index % samplings] for index in range(count)]


def run_canonical(engine: Engine, job: InferenceJob, tokens):
    from inference.canonical import canonical_pass

    prompt = engine.prompt_tokens(job.prompt, job.prompt_format)
    return canonical_pass(engine, job, prompt, tokens, job_chooser(job))


def timed_generate(engine: Engine, jobs):
    started = time.perf_counter()
    results = [engine.generate(job) for job in jobs]
    return results, time.perf_counter() - started


def count_tokens(results) -> int:
    return sum(len(result.tokens) for result in results)


def compare_paths(fast: list[InferenceResult], canonical) -> dict:
    """How the committed (canonical) results compare with a fast path's."""
    identical = sum(1 for f, c in zip(fast, canonical) if f.tokens == c.result.tokens)
    positions = agreed = 0
    first_rollbacks = []
    logprob_gaps = []
    for f, c in zip(fast, canonical):
        same = common_prefix(f.tokens, c.result.tokens)
        agreed += same
        positions += len(f.tokens)
        if same < len(f.tokens):
            first_rollbacks.append(same)
        gaps = np.abs(np.asarray(f.logprobs_micronats[:same]) - np.asarray(c.result.logprobs_micronats[:same]))
        logprob_gaps.append(int(gaps.max()) if same else 0)
    return {
        "identical_jobs": identical,
        "jobs": len(fast),
        "greedy_identical": sum(1 for f, c in zip(fast, canonical)
                                if f.job.sampling.greedy and f.tokens == c.result.tokens),
        "greedy_jobs": sum(1 for f in fast if f.job.sampling.greedy),
        "positions_agreeing": agreed,
        "positions": positions,
        "rolled_back_positions": sum(c.rolled_back for c in canonical),
        "first_rollback_positions": first_rollbacks,
        "logprobs_identical_jobs": sum(1 for f, c in zip(fast, canonical) if f == c.result),
        "max_logprob_gap_micronats": max(logprob_gaps, default=0),
    }


def common_prefix(a, b) -> int:
    count = 0
    for x, y in zip(a, b):
        if x != y:
            break
        count += 1
    return count


def describe_difference(a: InferenceResult, b: InferenceResult) -> dict:
    same = common_prefix(a.tokens, b.tokens)
    gaps = np.abs(np.asarray(a.logprobs_micronats[:same]) - np.asarray(b.logprobs_micronats[:same]))
    return {"identical": a == b, "tokens_identical": a.tokens == b.tokens, "first_token_difference":
            None if a.tokens == b.tokens else same, "max_logprob_gap_micronats": int(gaps.max()) if same else 0,
            "greedy": a.job.sampling.greedy}


def _system_info() -> str:
    import llama_cpp

    return llama_cpp.llama_print_system_info().decode("utf-8", "replace")


def _device_name() -> str:
    try:
        query = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap,driver_version",
                                "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        if query.returncode == 0 and query.stdout.strip():
            return query.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return f"CPU: {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def headline(data: dict) -> dict:
    """The figures printed last, one JSON line."""
    parts = data["parts"]
    line = {"device": data["device"], "engine": data["engine"], "quick": data["quick"]}
    imports = parts.get("import_order", {})
    if "numpy_first" in imports:
        line["import_numpy_first_ok"] = imports["numpy_first"]["ok"]
        line["import_llama_cpp_first_ok"] = imports["llama_cpp_first"]["ok"]
    a = parts.get("a_processes", {})
    if "bit_identical" in a:
        line["a_bit_identical"] = a["bit_identical"]
        line["a_rows_identical_jobs"] = f"{a['rows_identical_jobs']}/{a['jobs']}"
        line["a_committed_identical_jobs"] = f"{a['committed_identical_jobs']}/{a['jobs']}"
    b = parts.get("b_agreement", {})
    for path in ("single", "batched_8"):
        if path in b:
            line[f"b_{path}_identical_jobs"] = f"{b[path]['identical_jobs']}/{b[path]['jobs']}"
            line[f"b_{path}_positions_agreeing"] = f"{b[path]['positions_agreeing']}/{b[path]['positions']}"
    d = parts.get("d_reuse", {})
    if "prefix_reuse_explanation" in d:
        line["d_reused_differs_jobs"] = f"{d['reused_differs_from_cleared_jobs']}/{d['jobs']}"
        line["d_cleared_differs_from_new_engine"] = f"{d['cleared_differs_from_new_engine_jobs']}/{d['new_engine_sample']}"
        line["d_explanation"] = d["prefix_reuse_explanation"].split(":")[0]
    e = parts.get("e_throughput", {})
    for key, value in e.items():
        if key.endswith("tokens_per_s"):
            line[f"e_{key}"] = value
        elif key.startswith("batched_") and isinstance(value, dict) and "tokens_per_s" in value:
            line[f"e_{key}_tokens_per_s"] = value["tokens_per_s"]
            line[f"e_{key}_canonical_share"] = value["canonical_share"]
    c = parts.get("c_rows", {})
    if "rows" in c:
        rows = c["rows"]
        line["c_rows"] = len(rows) if isinstance(rows, list) else rows
        line["c_same_class_negative_margins_honest"] = sum(
            sum(1 for m in o["same_class"]["margins"] if m < 0)
            for row in (rows if isinstance(rows, list) else []) if row["honest"] for o in row["outcomes"])
    line["skipped"] = data["skipped"]
    line["elapsed_s"] = data.get("elapsed_s")
    return line


# -- the child of part (a) ---------------------------------------------------------------------------


def child(args: argparse.Namespace) -> int:
    """Re-score and re-run the canonical pass in this fresh process; write digests and outputs."""
    started = time.perf_counter()
    engine = Engine(args.model, args.model_id, EngineConfig(context=args.context, threads=args.threads,
                                                            canonical_pass=False, reuse_prefix=False))
    load_seconds = time.perf_counter() - started
    rows_digests, logprobs, committed = [], [], []
    try:
        for entry in json.loads(Path(args.child).read_text()):
            job = InferenceJob.from_json(entry["job"])
            prompt = engine.prompt_tokens(job.prompt, job.prompt_format)
            rows = engine.output_logits(prompt, entry["committed"], fresh=True)
            rows_digests.append(hashlib.blake2b(np.ascontiguousarray(rows, dtype=np.float32).tobytes(),
                                                digest_size=16).hexdigest())
            logprobs.append([int(value) for value in logprobs_micronats(rows, entry["committed"])])
            committed.append(list(run_canonical(engine, job, entry["fast"]).result.tokens))
    finally:
        engine.close()
    Path(args.out).write_text(json.dumps({"rows": rows_digests, "logprobs": logprobs, "committed": committed,
                                          "load_seconds": round(load_seconds, 3)}))
    return 0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="the GGUF file (default: the embedded model)")
    parser.add_argument("--model-id", default=MODEL_ID, help="its id (blake2b-256; default the embedded model's)")
    parser.add_argument("--out", default="gpu-results.json", help="the JSON results file")
    parser.add_argument("--quick", action="store_true", help="a short run (a 2-core CPU test)")
    parser.add_argument("--deadline-s", type=float, default=0.0, help="skip parts that would end after this")
    parser.add_argument("--threads", type=int, default=None, help="engine threads (default: every core)")
    parser.add_argument("--context", type=int, default=4096, help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--parts", default="import_order,b_agreement,a_processes,d_reuse,e_throughput,c_rows",
                        help="the parts to run, in order (default: all)")
    args = parser.parse_args(argv)
    if args.model is None:
        from inference.model_store import ModelStore

        record = ModelStore(tempfile.mkdtemp(prefix="gpu-store-")).embedded()
        args.model, args.model_id = os.fspath(record.path), record.id
    return args


# What each part needs at least, in seconds on the device (parts that would overrun are skipped).
NEEDS = {"import_order": 10, "b_agreement": 40, "a_processes": 40, "d_reuse": 40, "e_throughput": 60, "c_rows": 60}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        return child(args)
    run = Measurement(args)
    methods = {"import_order": run.import_order, "b_agreement": run.agreement, "a_processes": run.processes,
               "d_reuse": run.reuse, "e_throughput": run.throughput, "c_rows": run.calibration_rows}
    print(f"measuring on {run.data['device']} with {run.data['engine']} ({'quick' if args.quick else 'full'})",
          flush=True)
    for name in args.parts.split(","):
        run.run_part(name, NEEDS[name] if not args.quick else 0, methods[name])
    run.save()
    print(json.dumps(headline(run.data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
