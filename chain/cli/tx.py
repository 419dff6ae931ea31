"""`inferchain tx transfer`: sign a transfer with a dev account or key file and submit it to a node."""

from __future__ import annotations

import argparse

from chain.cli.errors import EXIT_USAGE, CliError
from chain.cli.output import add_output_argument, print_fields, print_json
from chain.cli.connection import add_node_argument, cli_errors, node_client, resolve_account_argument
from chain.cli.query import event_text, receipt_document
from chain.client import DEFAULT_WAIT_S, TransferResult
from chain.keys import KeyResolutionError, resolve_signer
from chain.ss58 import encode_address

U64_MAX = 2**64 - 1


def register(subparsers) -> None:
    """Add `tx` and its subcommands."""
    tx = subparsers.add_parser("tx", help="sign and submit transactions")
    commands = tx.add_subparsers(dest="tx_command", metavar="CALL")
    commands.required = True

    transfer = commands.add_parser("transfer", help="move tokens from a signer to an account")
    transfer.add_argument("--from", dest="sender", required=True, metavar="SIGNER",
                          help="dev account name (alice, bob, ...) or key file that signs")
    transfer.add_argument("--to", dest="dest", required=True, metavar="ACCOUNT",
                          help="dev name, key file, SS58 address or hex public key")
    transfer.add_argument("--amount", required=True, help="tokens to move (a positive integer)")
    transfer.add_argument("--fee", help="fee to offer (default: the chain's minimum for the size)")
    transfer.add_argument("--nonce", help="nonce to use (default: the next one, counting pending transactions)")
    transfer.add_argument("--wait", action="store_true", help="wait until the transfer is in a finalized block")
    transfer.add_argument("--timeout", type=float, default=DEFAULT_WAIT_S, metavar="SECONDS",
                          help=f"how long --wait waits (default {DEFAULT_WAIT_S:g})")
    add_node_argument(transfer)
    add_output_argument(transfer)
    transfer.set_defaults(handler=transfer_command)


def transfer_command(args: argparse.Namespace) -> int:
    """Sign and submit a transfer; with --wait, report its inclusion and receipt."""
    amount = _u64(args.amount, "--amount", minimum=1)
    fee = None if args.fee is None else _u64(args.fee, "--fee")
    nonce = None if args.nonce is None else _u64(args.nonce, "--nonce")
    try:
        signer = resolve_signer(args.sender)
    except KeyResolutionError as error:
        raise CliError(f"--from: {error}") from None
    dest = resolve_account_argument(args.dest)
    with node_client(args) as client:
        result = client.transfer(signer, dest, amount, fee=fee, nonce=nonce, wait=args.wait, timeout=args.timeout)
    with cli_errors():
        _print_result(result, signer.public_key, dest, amount, args.output)
    receipt = result.inclusion.receipt if result.inclusion else None
    if receipt is not None and not receipt.success:
        raise CliError(f"transfer included at height {result.inclusion.height} but failed: {receipt.error}")
    return 0


def _u64(text: str, option: str, minimum: int = 0) -> int:
    text = text.strip().replace("_", "")
    if not text.isdigit():
        raise CliError(f"{option} must be a whole number, got {text!r}", EXIT_USAGE)
    value = int(text)
    if not minimum <= value <= U64_MAX:
        raise CliError(f"{option} must be between {minimum} and 2^64-1, got {value}", EXIT_USAGE)
    return value


def _print_result(result: TransferResult, sender: bytes, dest: bytes, amount: int, output: str) -> None:
    inclusion = result.inclusion
    if output == "json":
        document = {
            "hash": result.hash.hex(),
            "from": encode_address(sender),
            "to": encode_address(dest),
            "amount": str(amount),
            "nonce": result.nonce,
            "fee": str(result.fee),
            "status": inclusion.status if inclusion else "submitted",
        }
        if inclusion is not None:
            document.update(height=inclusion.height, block_hash=inclusion.block_hash.hex(), index=inclusion.index)
            if inclusion.receipt is not None:
                document["receipt"] = receipt_document(inclusion.receipt)
        print_json(document)
        return
    fields: list[tuple[str, object]] = [
        ("hash", result.hash.hex()),
        ("from", encode_address(sender)),
        ("to", encode_address(dest)),
        ("amount", amount),
        ("nonce", result.nonce),
        ("fee", result.fee),
        ("status", inclusion.status if inclusion else "submitted"),
    ]
    if inclusion is not None:
        fields += [("height", inclusion.height), ("block", inclusion.block_hash.hex())]
        if inclusion.receipt is not None:
            fields.append(("result", "ok" if inclusion.receipt.success else inclusion.receipt.error))
            fields += [("event", event_text(event)) for event in inclusion.receipt.events]
    print_fields(fields)
