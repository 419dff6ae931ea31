"""What every command that talks to a node shares: the `--node` option, the client, one-line errors."""

from __future__ import annotations

import argparse
import contextlib
from typing import Iterator

from chain.cli.errors import EXIT_USAGE, CliError
from chain.client import DEFAULT_TARGET, Client, ClientError
from chain.keys import KeyResolutionError, resolve_account


def add_node_argument(parser: argparse.ArgumentParser) -> None:
    """Give a command the `--node HOST:PORT` option."""
    parser.add_argument(
        "--node",
        default=DEFAULT_TARGET,
        metavar="HOST:PORT",
        help=f"the node's gRPC address (default {DEFAULT_TARGET})",
    )


@contextlib.contextmanager
def node_client(args: argparse.Namespace) -> Iterator[Client]:
    """A client of the node named by --node; client and key errors become one-line CLI errors."""
    target = args.node.strip()
    if not target or ":" not in target:
        raise CliError(f"--node must be HOST:PORT, got {args.node!r}", EXIT_USAGE)
    with cli_errors(), Client(target) as client:
        yield client


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Map client and key errors to CliError (exit 1) with the node's reason."""
    try:
        yield
    except ClientError as error:
        raise CliError(_client_message(error)) from None
    except KeyResolutionError as error:
        raise CliError(str(error)) from None


def _client_message(error: ClientError) -> str:
    if error.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "DATA_LOSS"):
        return error.message
    return f"{error.message} ({error.code})"


def resolve_account_argument(text: str) -> bytes:
    """The public key an ACCOUNT argument names; one-line error otherwise."""
    try:
        return resolve_account(text).public_key
    except KeyResolutionError as error:
        raise CliError(str(error)) from None
