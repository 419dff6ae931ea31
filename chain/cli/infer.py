"""`inferchain infer` runs a job locally; `inferchain verify` re-scores a result and judges it."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from chain.cli.errors import CliError
from chain.cli.model import _add_store_argument, _positive, progress, reporting_errors, store_for
from chain.cli.output import add_output_argument, print_fields, print_json
from inference.engine import EngineConfig, engine_version
from inference.errors import InferenceError, InvalidResult
from inference.loading import load_record
from inference.result import InferenceJob, InferenceResult
from inference.sampler import SamplingParams
from inference.thresholds import load_thresholds
from inference.verifier import verify

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_NO_VERDICT = 2
LARGE_MODEL_BYTES = 500_000_000


def register(subparsers) -> None:
    """Add `infer` and `verify`."""
    infer = subparsers.add_parser("infer", help="run a prompt locally with the chain's sampler and print the result")
    infer.add_argument("prompt", metavar="PROMPT")
    infer.add_argument("--model", help="id, unique id prefix or name (default: the embedded SmolLM2-135M-Instruct)")
    infer.add_argument("--max-tokens", type=_positive, default=128, help="most tokens to generate (default 128)")
    infer.add_argument("--temperature", default="0", help="0 is greedy (the default); e.g. 0.8")
    infer.add_argument("--top-k", type=int, default=40, help="candidates kept by top-k, 0 = all (default 40)")
    infer.add_argument("--top-p", default="0.95", help="nucleus mass kept after top-k (default 0.95)")
    infer.add_argument("--seed", type=_seed, default=0, help="unsigned 64-bit seed of the public noise (default 0)")
    infer.add_argument("--job-id", type=_job_id, help="64 hex digits (default: a hash of the job)")
    infer.add_argument("--raw", action="store_true", help="do not wrap the prompt in the model's chat template")
    _add_engine_arguments(infer)
    _add_store_argument(infer)
    add_output_argument(infer)
    infer.set_defaults(handler=infer_command)

    check = subparsers.add_parser(
        "verify", help="re-score a result file and judge it (exit 0 valid, 1 invalid, 2 unreadable)",
    )
    check.add_argument("result", metavar="RESULT.json", help="a result from `inferchain infer --output json`; - reads stdin")
    _add_engine_arguments(check)
    _add_store_argument(check)
    add_output_argument(check)
    check.set_defaults(handler=verify_command)


def _add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=_positive, help="CPU threads (default: all cores)")
    parser.add_argument("--context", type=_positive, default=4096, help="context size in tokens (default 4096)")
    parser.add_argument("--batch", type=_positive, default=512, help="n_batch for prompt and verification (default 512)")
    parser.add_argument("--gpu-layers", type=int,
                        help="layers offloaded to a GPU (default: all when llama.cpp has a GPU backend, else 0)")


def _seed(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 1 << 64:
        raise argparse.ArgumentTypeError("the seed is an unsigned 64-bit integer")
    return value


def _job_id(text: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a job id is 64 hex digits") from None
    if len(value) != 32:
        raise argparse.ArgumentTypeError("a job id is 64 hex digits")
    return value


def _engine_config(args: argparse.Namespace, context: int | None = None) -> EngineConfig:
    return EngineConfig(threads=args.threads, context=context or args.context, batch=args.batch,
                        gpu_layers=args.gpu_layers)


# -- infer -----------------------------------------------------------------------------------


@reporting_errors
def infer_command(args: argparse.Namespace) -> int:
    """Generate, print the result (JSON with --output json)."""
    sampling = SamplingParams.from_decimal(args.temperature, args.top_k, args.top_p, args.seed)
    store = store_for(args)
    record = store.resolve(args.model)
    engine = _load(store, record, _engine_config(args))
    job = InferenceJob(
        model=record.id,
        job_id=args.job_id or local_job_id(record.id, args.prompt, args.max_tokens, sampling, args.raw),
        prompt=args.prompt,
        max_tokens=args.max_tokens,
        sampling=sampling,
        prompt_format="raw" if args.raw else "chat",
    )
    started = time.perf_counter()
    result = engine.generate(job)
    seconds = time.perf_counter() - started
    progress(f"generated {len(result.tokens)} tokens in {seconds:.2f} s ({len(result.tokens) / seconds:.1f} tokens/s) "
             f"on {engine.device_description()}")
    if args.output == "json":
        print_json(result.to_json())
        return 0
    _print_result(result)
    return 0


def local_job_id(model_id: str, prompt: str, max_tokens: int, sampling: SamplingParams, raw: bool) -> bytes:
    """A job id for a local run: the hash of the job, so a rerun samples the same noise."""
    document = {"model": model_id, "prompt": prompt, "max_tokens": max_tokens,
                "sampling": sampling.to_json(), "raw": raw}
    text = "inferchain local job " + json.dumps(document, sort_keys=True)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=32).digest()


def _print_result(result: InferenceResult) -> None:
    sampling = result.job.sampling
    how = "greedy" if sampling.greedy else (
        f"T {sampling.temperature:g}, top-k {sampling.top_k}, top-p {sampling.top_p:g}, seed {sampling.seed}")
    print_fields([
        ("model", result.job.model),
        ("job id", result.job.job_id_hex),
        ("sampling", how),
        ("prompt tokens", result.prompt_tokens),
        ("tokens", len(result.tokens)),
        ("stop reason", result.stop_reason),
    ])
    print()
    print(result.text)


# -- verify ----------------------------------------------------------------------------------


def verify_command(args: argparse.Namespace) -> int:
    """Judge a result: exit 0 valid, 1 invalid, 2 when no verdict can be given."""
    try:
        result = read_result(args.result)
        store = store_for(args)
        record = store.resolve(result.job.model)
        context = max(args.context, result.prompt_tokens + result.job.max_tokens + 1)
        engine = _load(store, record, _engine_config(args, context))
        thresholds = load_thresholds(record.id, store.directory, engine_version())
        verdict = verify(result, engine, thresholds)
    except InferenceError as error:
        raise CliError(str(error), EXIT_NO_VERDICT) from None
    if args.output == "json":
        print_json(verdict.to_json())
    else:
        _print_verdict(verdict)
    return EXIT_VALID if verdict.valid else EXIT_INVALID


def read_result(source: str) -> InferenceResult:
    """A result from a file (or '-' for stdin), or InvalidResult saying why it cannot be read."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise InvalidResult(f"cannot read {source}: {reason}") from None
    try:
        return InferenceResult.from_json_text(text)
    except InvalidResult as error:
        raise InvalidResult(f"{source} is not an inference result: {error}") from None


def _print_verdict(verdict) -> None:
    print_fields([
        ("verdict", "valid" if verdict.valid else "INVALID"),
        ("model", verdict.model),
        ("job id", verdict.job_id),
        ("positions", verdict.positions),
        ("worst margin", f"{verdict.worst_margin_micro / 1e6:.3f} logits (position {verdict.worst_position})"),
        ("soft positions", f"{verdict.soft_positions} (at most {verdict.soft_positions_allowed})"),
        ("log-prob error", f"mean {verdict.mean_logprob_error_micro / 1e6:.4f}, "
                           f"max {verdict.max_logprob_error_micro / 1e6:.4f} nats"),
    ])
    for reason in verdict.reasons:
        print(f"  - {reason}")


def _load(store, record, config: EngineConfig):
    # Small models load in well under a second; only a slow load is worth a progress line (and a
    # quiet stderr keeps a failing command's output to its one error line).
    large = record.path.stat().st_size >= LARGE_MODEL_BYTES
    if large:
        progress(f"loading {record.name} ({record.id[:12]}..., {record.path.stat().st_size / 1e9:.1f} GB)...")
    started = time.perf_counter()
    engine = load_record(store, record, config)
    if large:
        progress(f"loaded on {engine.device_description()} in {time.perf_counter() - started:.1f} s")
    return engine
