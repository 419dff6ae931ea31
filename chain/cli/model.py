"""`inferchain model add|list|info|remove|calibrate`: the local, content-addressed model store."""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
import time
from pathlib import Path

from chain.cli.errors import EXIT_FAILURE, CliError
from chain.cli.output import add_output_argument, print_fields, print_json, print_table
from inference.errors import InferenceError
from inference.model_store import ModelStore, default_home


def register(subparsers) -> None:
    """Add `model` and its subcommands."""
    model = subparsers.add_parser("model", help="import, list, inspect, remove and calibrate GGUF models")
    commands = model.add_subparsers(dest="model_command", metavar="ACTION")
    commands.required = True

    add = commands.add_parser("add", help="import a GGUF file into the store (its id is the blake2b-256 of its bytes)")
    add.add_argument("path", metavar="FILE.gguf")
    add.add_argument("--name", help="a name to list it under (default: the file name)")
    _add_store_argument(add)
    add_output_argument(add)
    add.set_defaults(handler=add_command)

    listing = commands.add_parser("list", help="list models: the embedded default first, then imported ones")
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
        help="measure honest variation and frauds on the committed prompt set; write thresholds and the table",
    )
    calibrate.add_argument("model", nargs="?", metavar="MODEL", help="id, unique id prefix or name (default: embedded)")
    calibrate.add_argument("--prompts", type=_positive, help="prompts in the reference row (default: the whole set)")
    calibrate.add_argument("--jobs", type=_positive, default=125, help="jobs per variation and fraud row (default 125)")
    calibrate.add_argument("--max-tokens", type=_positive, default=64, help="tokens per job (default 64)")
    calibrate.add_argument("--threads", type=_positive, default=2, help="threads of the reference configuration (default 2)")
    calibrate.add_argument("--rows", help="comma-separated row keys to run (default: all; the reference always runs)")
    calibrate.add_argument("--thresholds-out", type=Path,
                           help="where to write the thresholds (default: MODELS_DIR/ID.thresholds.json; "
                                "a file named thresholds.json is merged by model id)")
    calibrate.add_argument("--docs", type=Path, help="Markdown file whose calibration table block is replaced")
    calibrate.add_argument("--work-dir", type=Path,
                           help="where fraud models and generations are written (default: a temporary directory)")
    calibrate.add_argument("--reuse-generations", action="store_true",
                           help="re-verify generations saved in --work-dir by an earlier run instead of regenerating")
    _add_store_argument(calibrate)
    add_output_argument(calibrate)
    calibrate.set_defaults(handler=calibrate_command)


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


def reporting_errors(handler):
    """Turn the inference package's errors into one-line CLI errors."""

    @functools.wraps(handler)
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except InferenceError as error:
            raise CliError(str(error), EXIT_FAILURE) from None

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
    if args.output == "json":
        print_json([detail.to_json() for detail in details])
        return 0
    rows = [
        (detail.record.id, detail.record.name, detail.quantisation, _size(detail.size_bytes),
         "embedded" if detail.record.embedded else "imported")
        for detail in details
    ]
    print_table(("ID", "NAME", "QUANT", "SIZE", "SOURCE"), rows)
    return 0


@reporting_errors
def info_command(args: argparse.Namespace) -> int:
    """Print what a model's GGUF header says, and its id."""
    store = store_for(args)
    details = store.details(store.resolve(args.model))
    document = details.to_json()
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
    from inference.thresholds import local_thresholds_path, write_thresholds

    store = store_for(args)
    record = store.resolve(args.model)
    rows = _row_keys(args.rows, ROW_KEYS)
    settings = CalibrationSettings(
        reference_prompts=args.prompts, row_jobs=args.jobs, max_tokens=args.max_tokens,
        threads=args.threads, rows=rows, work_dir=args.work_dir, reuse_generations=args.reuse_generations,
    )
    command = "inferchain " + " ".join(shlex.quote(part) for part in sys.argv[1:]) if sys.argv[1:] else "inferchain model calibrate"
    model_path = store.verified_path(record)
    progress(f"calibrating {record.name} ({record.id[:12]}...): this takes a while; progress follows")
    started = time.perf_counter()
    report = Calibration(model_path, record.id, settings, progress=progress, command=command).run()
    thresholds_path = args.thresholds_out or local_thresholds_path(store.directory, record.id)
    write_thresholds(report.thresholds, thresholds_path)
    if args.docs:
        write_docs_table(report, args.docs)
    progress(f"calibration done in {time.perf_counter() - started:.0f} s; thresholds written to {thresholds_path}")
    if args.output == "json":
        print_json(report_json(report))
        return 0
    print(render_table(report))
    return 0


def _row_keys(text: str | None, known: tuple[str, ...]) -> tuple[str, ...] | None:
    if not text:
        return None
    keys = tuple(key.strip() for key in text.split(",") if key.strip())
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise CliError(f"unknown calibration rows: {', '.join(unknown)} (known: {', '.join(known)})")
    return keys


def _size(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:.0f} MB" if size_bytes >= 1e6 else f"{size_bytes} B"
