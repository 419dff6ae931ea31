"""What every command that talks to a node shares: the `--node` option, the client, one-line errors."""

from __future__ import annotations

import argparse
import contextlib
from typing import Iterator

from chain.cli.errors import (
    EXIT_BAD_INPUT,
    EXIT_NOT_INCLUDED,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_UNTRUSTED,
    EXIT_USAGE,
    CliError,
)
from chain.client import DEFAULT_TARGET, Client, ClientError, InclusionTimeout, ProofError
from chain.keys import KeyResolutionError, resolve_account
from chain.text import quote_input

# gRPC status codes that mean no inferchain node gave an answer (chain/client.py words them).
_UNREACHABLE_CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "UNIMPLEMENTED")


def add_node_argument(parser: argparse.ArgumentParser) -> None:
    """Give a command the `--node HOST:PORT` option."""
    parser.add_argument(
        "--node",
        default=DEFAULT_TARGET,
        metavar="HOST:PORT",
        help="the node's gRPC API, served on its --rpc-port (not the Prometheus port) "
             f"(default: {DEFAULT_TARGET})",
    )


@contextlib.contextmanager
def node_client(args: argparse.Namespace) -> Iterator[Client]:
    """A client of the node named by --node; client and key errors become one-line CLI errors."""
    with cli_errors(), Client(node_target(args.node)) as client:
        yield client


def node_target(text: str) -> str:
    """The --node value checked as HOST:PORT (gRPC would silently take port 99999 as 34463)."""
    target = text.strip()
    host, _, port = target.rpartition(":")
    if not host or not (port.isascii() and port.isdigit() and len(port) <= 5 and 0 < int(port) <= 65535):
        raise CliError(f"--node must be HOST:PORT with a port from 1 to 65535, got {quote_input(text)}", EXIT_USAGE)
    return target


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Map client and key errors to a CliError with the node's reason and a distinct exit code."""
    try:
        yield
    except ClientError as error:
        raise CliError(_client_message(error), client_exit_code(error)) from None
    except KeyResolutionError as error:
        raise CliError(str(error), EXIT_BAD_INPUT) from None


def client_exit_code(error: ClientError) -> int:
    """The exit code for a client error: unreachable, refused, untrusted or not included."""
    if isinstance(error, ProofError):
        return EXIT_UNTRUSTED
    if isinstance(error, InclusionTimeout):
        return EXIT_NOT_INCLUDED
    if error.code in _UNREACHABLE_CODES:
        return EXIT_UNREACHABLE
    return EXIT_REFUSED


def _client_message(error: ClientError) -> str:
    if error.code in _UNREACHABLE_CODES or isinstance(error, (ProofError, InclusionTimeout)):
        return error.message
    return f"{error.message} ({error.code})"


def resolve_account_argument(text: str) -> bytes:
    """The public key an ACCOUNT argument names; one-line error otherwise."""
    try:
        return resolve_account(text).public_key
    except KeyResolutionError as error:
        raise CliError(str(error), EXIT_BAD_INPUT) from None
