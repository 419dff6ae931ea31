"""`inferchain infer` runs a job locally; `inferchain verify` re-scores a result and judges it.

`infer` prints the text as it is generated, then one usage line on stderr; with `--output json`
it prints only the result document at the end (the file `verify` reads). `verify` judges by the
thresholds the chain registered for the result's model (`--node`, read with a state proof checked
against a block header, and with `--light GENESIS.json` that header's commit checked by the light
client against the validator set followed from that trusted genesis); a local thresholds file judges
only when named (`--thresholds FILE`), and the output says which thresholds were used and whether the
header's commit was verified.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from chain.cli.connection import cli_errors, node_client, node_target
from chain.cli.errors import (
    EXIT_BAD_INPUT,
    EXIT_ENGINE,
    EXIT_FAILURE,
    EXIT_NOT_SETTLED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNTRUSTED,
    EXIT_USAGE,
    CliError,
)
from chain.cli.fields import engine_class_name
from chain.cli.model import (
    _add_store_argument,
    _positive,
    inference_exit_code,
    progress,
    reporting_errors,
    store_for,
)
from chain.cli.output import add_output_argument, print_fields, print_json, u64
from chain.text import quote_input, quote_number
from chain.client.light import LightClient, LightClientError, VerifiedHeader
from chain.client.results import Block
from chain.client.verification import model_info_key, proven_model_info
from chain.genesis import Genesis, GenesisError, load_genesis
from proto import types_pb2
from inference.engine import EngineConfig, engine_version
from inference.errors import InferenceError, InvalidResult, InvalidThresholds
from inference.gguf_header import read_header
from inference.loading import load_record
from inference.result import InferenceJob, InferenceResult, refuse_duplicate_keys
from inference.sampler import SamplingParams
from inference.statistics import WINDOW_TOKENS
from inference.registration import registered_thresholds
from inference.thresholds import Thresholds, read_thresholds_file
from inference.verifier import Verdict, rescore_and_judge

# A valid verdict is success; an invalid one the "answer is no" code; no verdict (unreadable
# result, unknown model, no thresholds) exits with the code of its cause (chain/cli/errors.py).
EXIT_VALID = EXIT_OK
EXIT_INVALID = EXIT_FAILURE
# Undecodable bytes detokenise to U+FFFD; at the end of streamed text it may be half a character.
REPLACEMENT_CHARACTER = "\ufffd"
LARGE_MODEL_BYTES = 500_000_000
# A result of a full 8,192-token context is well under 1 MB of JSON: far larger input is refused
# after reading this much, never read whole (`/dev/zero` would never end).
MAX_RESULT_BYTES = 16 * 1024 * 1024


def register(subparsers) -> None:
    """Add `infer` and `verify`."""
    infer = subparsers.add_parser("infer", help="run a prompt locally with the chain's sampler and print the result")
    infer.add_argument("prompt", metavar="PROMPT", help="the prompt, wrapped in the model's chat template unless --raw")
    infer.add_argument("--model", help="id, unique id prefix or name (default: the embedded SmolLM2-135M-Instruct)")
    infer.add_argument("--max-tokens", type=_positive, default=128, help="most tokens to generate (default: 128)")
    infer.add_argument("--temperature", default="0", help="sampling temperature, a decimal such as 0.8; 0 is greedy (default: 0)")
    infer.add_argument("--top-k", type=int, default=40, help="candidates kept by top-k, 0 = all (default: 40)")
    infer.add_argument("--top-p", default="0.95", help="nucleus mass kept after top-k (default: 0.95)")
    infer.add_argument("--seed", type=_seed, default=0, help="unsigned 64-bit seed of the public noise (default: 0)")
    infer.add_argument("--seed-only", action="store_true",
                       help="key the noise by the seed alone, not the job id, as a job posted with "
                            "`job submit --seed-only` (or an OpenAI request with a seed): the same answer (default: off)")
    infer.add_argument("--job-id", type=_job_id, help="64 hex digits (default: a hash of the job)")
    infer.add_argument("--raw", action="store_true", help="do not wrap the prompt in the model's chat template (default: wrapped)")
    _add_engine_arguments(infer)
    _add_store_argument(infer)
    add_output_argument(infer)
    infer.set_defaults(handler=infer_command)

    judging = subparsers.add_parser(
        "verify",
        help="re-score a result and judge it by its model's thresholds registered on the chain "
             "(exit 0 valid, 1 invalid, 6 unreadable, 9 not the result the chain settled; docs/cli.md)",
    )
    judging.add_argument("result", metavar="RESULT.json",
                         help="a result from `inferchain infer --output json` or `inferchain job status ID "
                              "--output json`; - reads standard input")
    source = judging.add_mutually_exclusive_group()
    source.add_argument("--node", metavar="HOST:PORT",
                        help="a node of the chain: the result is judged by the thresholds registered for its "
                             "model (ModelInfo, voted by stake), read with a proof against a block header")
    source.add_argument("--thresholds", metavar="FILE", type=Path,
                        help="judge by a local thresholds file instead of the chain's (one model's document, "
                             "or a by-model-id file such as inference/data/thresholds.json)")
    judging.add_argument("--light", metavar="GENESIS.json",
                         help="with --node: also verify that the block whose state root holds the thresholds was "
                              "signed by more than 2/3 of the validator set followed from this trusted genesis "
                              "file (docs/protocol.md, \"Light client\") (default: trust the node's header)")
    judging.add_argument("--made-on", type=engine_class_name, default="cpu", metavar="CLASS",
                         help="with --node: the engine class that produced the result (the job's "
                              "Assignment.engine_class; default: cpu)")
    judging.add_argument("--verifier-class", type=engine_class_name, default="cpu", metavar="CLASS",
                         help="with --node: the engine class of this build; a result of another class is judged "
                              "by the model's thresholds for that pair of classes (default: cpu)")
    _add_engine_arguments(judging)
    _add_store_argument(judging)
    add_output_argument(judging)
    judging.set_defaults(handler=verify_command)


def _add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=_positive, help="CPU threads (default: all cores)")
    parser.add_argument("--context", type=_positive, default=4096, help="context size in tokens (default: 4096)")
    parser.add_argument("--batch", type=_positive, default=512, help="n_batch for prompt and verification (default: 512)")
    parser.add_argument("--gpu-layers", type=int,
                        help="layers offloaded to a GPU (default: all when llama.cpp has a GPU backend, else 0)")


def _seed(text: str) -> int:
    # Past 64 digits a number is out of range whatever its base: refused before int() reads it.
    if len(text.strip()) > 64 and text.strip().isascii() and text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"the seed must be from 0 to {(1 << 64) - 1}, got {quote_number(text)}")
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{quote_number(text)} is not an integer") from None
    if not 0 <= value < 1 << 64:
        raise argparse.ArgumentTypeError(f"the seed must be from 0 to {(1 << 64) - 1}, got {quote_number(text)}")
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
    """Generate; stream the text and a usage line, or print the result as JSON at the end."""
    sampling = SamplingParams.from_decimal(args.temperature, args.top_k, args.top_p, args.seed, args.seed_only)
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
    if args.output == "json":
        print_json(engine.generate(job).to_json())
        return 0
    stream = TextStream(engine.detokenize, sys.stdout)
    result = engine.generate(job, on_token=stream.add)
    stream.finish(result.text)
    progress(usage_line(result, stream, engine.device_description()))
    return 0


def local_job_id(model_id: str, prompt: str, max_tokens: int, sampling: SamplingParams, raw: bool) -> bytes:
    """A job id for a local run: the hash of the job, so a rerun samples the same noise."""
    document = {"model": model_id, "prompt": prompt, "max_tokens": max_tokens,
                "sampling": sampling.to_json(), "raw": raw}
    text = "inferchain local job " + json.dumps(document, sort_keys=True)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=32).digest()


class TextStream:
    """Writes generated text as tokens arrive, so a person reads it while the model works."""

    def __init__(self, detokenize, out):
        self._detokenize = detokenize
        self._out = out
        self._tokens: list[int] = []
        self._written = ""
        self.started = time.perf_counter()
        self.first_token_at: float | None = None
        self.last_token_at: float | None = None

    def add(self, token: int) -> None:
        """Take one generated token and write whatever whole characters it completes."""
        self.last_token_at = time.perf_counter()
        self.first_token_at = self.first_token_at or self.last_token_at
        self._tokens.append(token)
        # Detokenising the whole output keeps what is written equal to the final text (a token's
        # text alone can differ: leading spaces, characters split across tokens).
        text = self._detokenize(self._tokens).rstrip(REPLACEMENT_CHARACTER)
        if text.startswith(self._written) and len(text) > len(self._written):
            self._write(text[len(self._written):])
            self._written = text

    def finish(self, text: str) -> None:
        """Write the rest of the final text and end the line."""
        rest = text[len(self._written):] if text.startswith(self._written) else "\n" + text
        self._write(rest + "\n")

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()


def usage_line(result: InferenceResult, stream: TextStream, device: str) -> str:
    """Tokens in and out, and how fast: the line printed after the streamed text."""
    output_tokens = len(result.tokens)
    seconds = max((stream.last_token_at or stream.started) - stream.started, 1e-9)
    first = (stream.first_token_at or stream.started) - stream.started
    return (f"prompt {result.prompt_tokens} tokens, output {output_tokens} tokens (stop: {result.stop_reason}), "
            f"{output_tokens / seconds:.1f} tokens/s, first token after {first:.2f} s, on {device}")


# -- verify ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThresholdSource:
    """The thresholds a verdict was reached with, and where they came from (said in the output)."""

    thresholds: Thresholds
    description: str  # one line for people
    document: dict  # the same for --output json


NO_THRESHOLDS = ("no thresholds to judge by: give --node HOST:PORT to judge by the model's thresholds registered "
                 "on the chain, or --thresholds FILE to use a local file instead")


def verify_command(args: argparse.Namespace) -> int:
    """Judge a result: exit 0 valid, 1 invalid, the cause's code when no verdict can be given."""
    if args.node is None and args.thresholds is None:
        raise CliError(NO_THRESHOLDS, EXIT_USAGE)
    if args.light is not None and args.node is None:
        raise CliError("--light verifies the header of the node's thresholds: it needs --node HOST:PORT", EXIT_USAGE)
    target = node_target(args.node) if args.node is not None else None
    try:
        result = read_result(args.result)
        store = store_for(args)
        record = store.resolve(result.job.model)
        source = (chain_thresholds(args, result.job.model) if target is not None
                  else file_thresholds(args.thresholds, result.job.model))
        # Sized by the claim only up to the model's own context: a larger claim is judged invalid.
        trained = read_header(record.path).context_length or args.context
        context = max(args.context, min(result.prompt_tokens + result.job.max_tokens + 1, trained))
        engine = _load(store, record, _engine_config(args, context))
        _warn_on_engine_mismatch(source.thresholds)
        verdict = rescore_and_judge(result, engine, source.thresholds)
    except InvalidThresholds as error:
        raise CliError(str(error), EXIT_BAD_INPUT) from None
    except InferenceError as error:
        raise CliError(str(error), inference_exit_code(error)) from None
    if args.output == "json":
        print_json({**verdict.to_json(), "thresholds": source.document})
    else:
        _print_verdict(verdict, source)
    return EXIT_VALID if verdict.valid else EXIT_INVALID


def chain_thresholds(args: argparse.Namespace, model_hex: str) -> ThresholdSource:
    """The thresholds the chain registered for a model, proven against the state root of a block header
    (with --light, a header whose commit the light client verified)."""
    light = getattr(args, "light", None)
    genesis = trusted_genesis(light) if light else None
    classes = getattr(args, "made_on", "cpu"), getattr(args, "verifier_class", "cpu")
    with node_client(args) as client:
        return registered_model_thresholds(client, bytes.fromhex(model_hex), args.node, genesis, classes)


def trusted_genesis(path: str) -> Genesis:
    """The genesis file --light names; one-line bad input otherwise."""
    try:
        return load_genesis(path)
    except GenesisError as error:
        raise CliError(f"--light: {error}", EXIT_BAD_INPUT) from None


def registered_model_thresholds(client, model_id: bytes, node: str, genesis: Genesis | None,
                                classes: tuple[str, str] = ("cpu", "cpu")) -> ThresholdSource:
    """The model's registered thresholds for (the class that made the result, the verifier's class), read from
    `client` with a state proof against a block header; with a trusted `genesis`, that header's commit verified
    by the light client (a header its validators did not sign is refused, EXIT_UNTRUSTED). Client errors are
    the caller's to map."""
    value = client.state_proof(model_info_key(model_id))
    block = client.block(hash=value.block_hash)
    with cli_errors():
        model = proven_model_info(model_id, value, block)
    commit = finalized_header(client, genesis, block) if genesis is not None else None
    return _threshold_source(model_id.hex(), model, block, node, commit, classes)


def finalized_header(client, genesis: Genesis, block: Block) -> VerifiedHeader:
    """The light client's verdict on `block`: signed by more than 2/3 of its validator set, followed from `genesis`."""
    try:
        header = LightClient(client, genesis).verified_header(block.height)
    except LightClientError as error:
        raise CliError(f"the node's thresholds are not backed by the chain's validators: {error}",
                       EXIT_UNTRUSTED) from None
    if header.hash != block.hash:
        raise CliError(f"the node proved the thresholds under block {block.hash.hex()} at height {block.height}, "
                       f"but the block its validators signed there is {header.hash.hex()}", EXIT_UNTRUSTED)
    return header


def _threshold_source(model_hex: str, model: types_pb2.ModelInfo | None, block: Block, node: str,
                      commit: VerifiedHeader | None, classes: tuple[str, str]) -> ThresholdSource:
    where = f"at height {block.height} (block {block.hash.hex()[:16]}...) from {node}"
    if model is None:
        raise CliError(f"model {model_hex} is not registered on the chain {where}: the chain has no "
                       "thresholds for it (`inferchain query models` lists the registered ones)", EXIT_REFUSED)
    made_on, verifier_class = classes
    try:
        thresholds = registered_thresholds(model, made_on, verifier_class)
    except InvalidThresholds as error:
        # The chain's own data (or no thresholds for the pair asked): no verdict can be given.
        raise CliError(f"{error} (read {where})", EXIT_ENGINE) from None
    document = {"source": "chain", "node": node, "height": u64(block.height), "block_hash": block.hash.hex(),
                "model_name": model.name, "engine": thresholds.engine, "commit_verified": commit is not None,
                "made_on": made_on, "verifier_class": verifier_class}
    if commit is None:
        checked = "its header not checked against the validator set (--light GENESIS.json checks it)"
    else:
        checked = (f"its commit verified: {commit.signed_power} of {commit.total_power} voting power signed it, "
                   "validator set followed from the trusted genesis")
        document.update(signed_power=u64(commit.signed_power), total_power=u64(commit.total_power))
    return ThresholdSource(
        thresholds,
        f"registered on the chain (ModelInfo of {model.name}) {where}, calibrated on {thresholds.engine}"
        f"{'' if classes == ('cpu', 'cpu') else f' for results of class {made_on} judged on class {verifier_class}'}"
        f"; {checked}",
        document,
    )


def file_thresholds(path: Path, model_hex: str) -> ThresholdSource:
    """The thresholds of a local file named by --thresholds (an override of the chain's)."""
    thresholds = read_thresholds_file(path, model_hex)
    return ThresholdSource(
        thresholds,
        f"local file {path} (--thresholds, not the chain's), calibrated on {thresholds.engine}",
        {"source": "file", "path": str(path), "engine": thresholds.engine},
    )


def _warn_on_engine_mismatch(thresholds: Thresholds) -> None:
    here = engine_version()
    if thresholds.engine != here:
        progress(f"warning: the thresholds were calibrated on {thresholds.engine}, this verifier runs {here}: "
                 "honest results may be judged by another engine's arithmetic")


def read_result(source: str) -> InferenceResult:
    """A result from a file (or '-' for stdin), or InvalidResult saying why it cannot be read."""
    try:
        if source == "-":
            raw = sys.stdin.buffer.read(MAX_RESULT_BYTES + 1)
        else:
            with Path(source).open("rb") as file:
                raw = file.read(MAX_RESULT_BYTES + 1)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise InvalidResult(f"cannot read {source}: {reason}") from None
    if len(raw) > MAX_RESULT_BYTES:
        raise InvalidResult(f"{source} is not an inference result: larger than {MAX_RESULT_BYTES} bytes")
    try:
        document = json.loads(text, object_pairs_hook=refuse_duplicate_keys)
    except (ValueError, RecursionError):
        document = None  # from_json_text below says what is wrong with it
    # A job's JSON from the chain (`job status ID --output json`) carries its result under "result".
    if isinstance(document, dict) and "job_id" in document and "status" in document and "version" not in document:
        return _result_of_job(document, source)
    try:
        return InferenceResult.from_json_text(text)
    except InvalidResult as error:
        raise InvalidResult(f"{source} is not an inference result: {error}") from None


def _result_of_job(document: dict, source: str) -> InferenceResult:
    """The result inside a job's JSON (`inferchain job status ID --output json`), checked against the job's digest."""
    if "result" not in document:
        status = str(document.get("status"))[:20]
        raise InvalidResult(f"{source} is a job with no revealed result (status {status})")
    try:
        result = InferenceResult.from_json(document["result"])
    except InvalidResult as error:
        raise InvalidResult(f"{source}: its result is not an inference result: {error}") from None
    job_id = document.get("job_id")
    if not _is_hex_id(job_id):
        raise InvalidResult(f"{source}: the job's job_id must be 64 lowercase hex digits, got {quote_input(str(job_id))}")
    # Not the chain's result: its own exit code, whatever a verdict on it would be (it may be well formed, even valid).
    if result.job.job_id.hex() != job_id:
        raise CliError(f"{source}: this is not the result the chain settled: the result is for job "
                       f"{result.job.job_id.hex()}, not the job's {job_id}", EXIT_NOT_SETTLED)
    claimed = document.get("output_digest")
    if not claimed:
        return result
    if not _is_hex_id(claimed):
        raise InvalidResult(f"{source}: the job's output_digest must be 64 lowercase hex digits, got {quote_input(str(claimed))}")
    actual = result.output_digest().hex()
    if actual != claimed:
        raise CliError(f"{source}: this is not the result the chain settled: it hashes to {actual}, "
                       f"the job's output digest is {claimed}", EXIT_NOT_SETTLED)
    return result


def _is_hex_id(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _print_verdict(verdict: Verdict, source: ThresholdSource) -> None:
    print_fields([
        ("verdict", "valid" if verdict.valid else "INVALID"),
        ("thresholds", source.description),
        ("model", verdict.model),
        ("job id", verdict.job_id),
        ("positions", verdict.positions),
        ("worst margin", f"{verdict.worst_margin_micro / 1e6:.3f} logits (position {verdict.worst_position})"),
        ("misses", f"{verdict.misses}, {verdict.depth_sum_micro / 1e6:.2f} logits deep in all"
                   + (f", {verdict.window_depth_sum_micro / 1e6:.2f} in tokens {verdict.worst_window_start}-"
                      f"{verdict.worst_window_start + WINDOW_TOKENS - 1}" if verdict.worst_window_start >= 0 else "")),
        ("honest chance", f"10^{verdict.honest_chance_log10:.1f} (invalid below 10^{verdict.honest_chance_budget_log10:.1f})"),
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
