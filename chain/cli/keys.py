"""`inferchain keys generate|inspect`: create key files and show what a name, file or address is."""

from __future__ import annotations

import argparse

from chain.cli.errors import EXIT_BAD_INPUT, CliError
from chain.cli.output import add_output_argument, print_fields, print_json
from chain.keys import KeyResolutionError, generate_key_file, resolve_account


def register(subparsers) -> None:
    """Add `keys` and its subcommands."""
    keys = subparsers.add_parser("keys", help="create and inspect account keys")
    commands = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    commands.required = True

    generate = commands.add_parser(
        "generate", help="write a new random key to a file (mode 0600; never overwrites)"
    )
    generate.add_argument("name", metavar="NAME_OR_FILE", help="the new key file: a path, or a name without a suffix for NAME.json in the current directory")
    add_output_argument(generate)
    generate.set_defaults(handler=generate_command)

    inspect = commands.add_parser("inspect", help="public key and address of a dev name, key file or address")
    inspect.add_argument("name", metavar="NAME_OR_FILE_OR_ADDRESS",
                         help="dev account (alice, bob, ...), key file, SS58 address or hex public key")
    inspect.add_argument("--show-secret", action="store_true", help="also print the secret seed (dev names and key files only; default: never printed)")
    add_output_argument(inspect)
    inspect.set_defaults(handler=inspect_command)


def generate_command(args: argparse.Namespace) -> int:
    """Write a new key file and print its public key and address (never the seed)."""
    try:
        path, keypair = generate_key_file(args.name)
    except KeyResolutionError as error:
        raise CliError(str(error), EXIT_BAD_INPUT) from None
    if args.output == "json":
        print_json({"file": str(path), "public_key": keypair.public_key.hex(), "address": keypair.address})
        return 0
    print_fields([("file", path), ("public key", keypair.public_key.hex()), ("address", keypair.address)])
    return 0


def inspect_command(args: argparse.Namespace) -> int:
    """Print the public key, address and whether the name can sign; the seed only with --show-secret."""
    try:
        account = resolve_account(args.name)
    except KeyResolutionError as error:
        raise CliError(str(error), EXIT_BAD_INPUT) from None
    if args.show_secret and account.keypair is None:
        raise CliError(f"{args.name!r} is {'an' if account.source == 'address' else 'a'} {account.source}: it holds no secret", EXIT_BAD_INPUT)
    document = {
        "source": account.source,
        "public_key": account.public_key.hex(),
        "address": account.address,
        "can_sign": account.can_sign,
    }
    if account.path is not None:
        document["file"] = str(account.path)
    if args.show_secret:
        document["seed"] = account.keypair.seed.hex()
    if args.output == "json":
        print_json(document)
        return 0
    fields = [
        ("source", account.source),
        ("public key", account.public_key.hex()),
        ("address", account.address),
        ("can sign", "yes" if account.can_sign else "no"),
    ]
    if account.path is not None:
        fields.append(("file", account.path))
    if args.show_secret:
        fields.append(("seed", account.keypair.seed.hex()))
    print_fields(fields)
    return 0
