"""The `inferchain` command line: one module per command group, each with `register(subparsers)`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable, Sequence

from chain.cli.errors import CliError

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
)


def build_parser() -> argparse.ArgumentParser:
    """The root parser with every command group registered."""
    parser = argparse.ArgumentParser(
        prog="inferchain",
        description="A proof-of-stake chain for verified LLM inference.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        module = _load_command_module(name)
        if module is not None:
            module.register(subparsers)
    return parser


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
        return handler(args) or 0
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
