"""`inferchain genesis validate|hash|dev`: check a genesis file, print its hash, or print the dev genesis."""

from __future__ import annotations

import argparse
import json

from chain.cli.errors import EXIT_BAD_INPUT, EXIT_USAGE, CliError
from chain.cli.output import Token, add_output_argument, print_fields, print_json, u64
from chain.genesis import DEV_CHAIN_ID, Genesis, GenesisError, dev_genesis_document, load_genesis, parse_genesis
from chain.ss58 import encode_address

DEFAULT_GENESIS = "genesis.json"


def register(subparsers) -> None:
    """Add `genesis` and its subcommands."""
    genesis = subparsers.add_parser("genesis", help="validate, hash or create genesis documents")
    commands = genesis.add_subparsers(dest="genesis_command", metavar="ACTION")
    commands.required = True

    validate = commands.add_parser("validate", help="check a genesis file; print a summary or the bad field")
    validate.add_argument("file", nargs="?", default=DEFAULT_GENESIS, metavar="FILE",
                          help=f"the genesis file (default: ./{DEFAULT_GENESIS})")
    add_output_argument(validate)
    validate.set_defaults(handler=validate_command)

    hash_ = commands.add_parser("hash", help="the genesis hash (blake2b-256 of the canonical JSON), in hex")
    hash_.add_argument("file", nargs="?", default=DEFAULT_GENESIS, metavar="FILE",
                       help=f"the genesis file (default: ./{DEFAULT_GENESIS})")
    hash_.set_defaults(handler=hash_command)

    dev = commands.add_parser("dev", help="print the development genesis document (six dev accounts, Alice validating)")
    dev.add_argument("--chain-id", default=None, metavar="ID", help=f"chain id (default: {DEV_CHAIN_ID})")
    dev.set_defaults(handler=dev_command)


def _load(path: str) -> Genesis:
    try:
        return load_genesis(path)
    except GenesisError as error:
        raise CliError(f"{path}: {error}", EXIT_BAD_INPUT) from None


def _balances(genesis: Genesis):
    """The balances module's genesis configuration (runtime/balances.py GenesisConfig)."""
    return genesis.runtime.modules["balances"]


def genesis_token(genesis: Genesis) -> Token:
    """The token a genesis declares in the balances parameters."""
    params = _balances(genesis).params
    return Token(params.token_symbol, params.token_decimals)


def validate_command(args: argparse.Namespace) -> int:
    """Exit 0 with a summary of a valid genesis; exit 6 (bad input) naming the bad field otherwise."""
    genesis = _load(args.file)
    accounts = _balances(genesis).balances
    token = genesis_token(genesis)
    summary = {
        "file": args.file,
        "valid": True,
        "chain_id": genesis.chain_id,
        "genesis_hash": genesis.hash.hex(),
        "genesis_time_ms": u64(genesis.genesis_time_ms),
        "initial_height": u64(genesis.initial_height),
        "block_time_ms": u64(genesis.consensus.block_time_ms),
        "validators": [
            {"name": v.name, "address": encode_address(v.public_key), "power": u64(v.power)}
            for v in genesis.validators
        ],
        "accounts": len(accounts),
        "total_issuance": u64(_balances(genesis).total_issuance),
        "token_symbol": token.symbol,
        "token_decimals": token.decimals,
    }
    if args.output == "json":
        print_json(summary)
        return 0
    print_fields(
        [
            ("file", args.file),
            ("valid", "yes"),
            ("chain id", genesis.chain_id),
            ("genesis hash", genesis.hash.hex()),
            ("initial height", genesis.initial_height),
            ("block time", f"{genesis.consensus.block_time_ms} ms"),
            ("validators", ", ".join(f"{v.name or encode_address(v.public_key)} ({v.power})" for v in genesis.validators)),
            ("accounts", len(accounts)),
            ("token", f"{token.symbol} (1 {token.symbol} = 10^{token.decimals} base units)"),
            ("total issuance", token.format(_balances(genesis).total_issuance)),
        ]
    )
    return 0


def hash_command(args: argparse.Namespace) -> int:
    """Print the hash of a valid genesis file in hex."""
    print(_load(args.file).hash.hex())
    return 0


def dev_command(args: argparse.Namespace) -> int:
    """Print the development genesis document as JSON."""
    document = dev_genesis_document() if args.chain_id is None else dev_genesis_document(chain_id=args.chain_id)
    try:
        parse_genesis(document)
    except GenesisError as error:
        raise CliError(f"--chain-id: {error}", EXIT_USAGE) from None
    print(json.dumps(document, indent=2))
    return 0
