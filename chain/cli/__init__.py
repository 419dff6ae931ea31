"""The `inferchain` command line: one module per command group, each with `register(subparsers)`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable, Sequence

from chain.cli.errors import EXIT_CODES, EXIT_INTERRUPTED, EXIT_OK, CliError

log = logging.getLogger(__name__)

# Each entry names a module in chain/cli/ that exposes `register(subparsers)`.
COMMAND_MODULES = (
    "node",
    "keys",
    "genesis",
    "tx",
    "query",
    "model",
    "infer",
    "job",
    "worker",
    "devnet",
    "gateway",
)


def build_parser() -> argparse.ArgumentParser:
    """The root parser with every command group registered."""
    parser = argparse.ArgumentParser(
        prog="inferchain",
        description="A proof-of-stake chain for verified LLM inference.",
        epilog="exit codes (docs/cli.md):\n" + "\n".join(f"  {code:>3}  {name}" for code, name, _ in EXIT_CODES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version_text(),
                        help="print the inferchain and engine versions and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        module = _load_command_module(name)
        if module is not None:
            module.register(subparsers)
    return parser


def version_text() -> str:
    """'inferchain 0.1.0 (engine llama-cpp-python 0.3.36)', from the installed packages' metadata."""
    # Metadata, not `import llama_cpp`: loading the engine's shared library is slow and may fail.
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    return f"inferchain {installed('inferchain')} (engine llama-cpp-python {installed('llama-cpp-python')})"


def _load_command_module(name: str):
    import importlib

    try:
        return importlib.import_module(f"chain.cli.{name}")
    except ModuleNotFoundError as error:
        if error.name == f"chain.cli.{name}":
            return None
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script: parse, dispatch, map errors to one line and an exit code."""
    # gRPC's C core would print its own copy of errors we already report in one line.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        code = handler(args) or 0
        sys.stdout.flush()  # here, so a closed pipe is caught below rather than at exit
        return code
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`... --output json | head`): not an error of ours, and nothing
        # more can be written. Point stdout at /dev/null so the interpreter's final flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
