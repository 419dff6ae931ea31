"""`inferchain query account|block|chain|tx`: read a node's state, blocks and transactions.

In `--output json` documents, balances, amounts and fees are strings
(they pass 2^53, where JSON readers lose digits, as genesis.json does); heights, nonces and counts
are numbers; hashes and keys are hex; accounts carry their SS58 address.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from chain.cli.connection import add_node_argument, cli_errors, node_client, resolve_account_argument
from chain.cli.errors import EXIT_USAGE, CliError
from chain.cli.output import add_output_argument, print_fields, print_json, print_table
from chain.client import (
    Account,
    Block,
    ChainInfo,
    ClientError,
    Event,
    Receipt,
    TransactionStatus,
    decode_hash,
    describe_transaction,
)
from chain.ss58 import encode_address


def register(subparsers) -> None:
    """Add `query` and its subcommands."""
    query = subparsers.add_parser("query", help="read accounts, blocks, transactions and chain info from a node")
    commands = query.add_subparsers(dest="query_command", metavar="WHAT")
    commands.required = True

    account = commands.add_parser("account", help="an account's balances and nonce, verified against a state proof")
    account.add_argument("account", metavar="ACCOUNT", help="dev name (alice, bob, ...), key file, SS58 address or hex public key")
    _common(account)
    account.set_defaults(handler=query_account)

    block = commands.add_parser("block", help="a block by height or hash (default: the best block)")
    block.add_argument("selector", metavar="HEIGHT_OR_HASH", nargs="?", help="a height, or a 64-hex-digit block hash")
    _common(block)
    block.set_defaults(handler=query_block)

    chain = commands.add_parser("chain", help="chain id, genesis hash, heads, fee rule")
    _common(chain)
    chain.set_defaults(handler=query_chain)

    tx = commands.add_parser("tx", help="a transaction's status: pending, included (with receipt) or rejected")
    tx.add_argument("hash", metavar="HASH", help="the transaction hash (64 hex digits)")
    _common(tx)
    tx.set_defaults(handler=query_tx)


def _common(parser: argparse.ArgumentParser) -> None:
    add_node_argument(parser)
    add_output_argument(parser)


def time_text(time_ms: int) -> str:
    """RFC 3339 UTC time of a millisecond timestamp."""
    moment = datetime.fromtimestamp(time_ms / 1000, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_document(event: Event) -> dict:
    """An event as JSON."""
    return {"module": event.module, "name": event.name, "attributes": dict(event.attributes)}


def receipt_document(receipt: Receipt) -> dict:
    """A receipt as JSON."""
    document = {
        "success": receipt.success,
        "fee_paid": str(receipt.fee_paid),
        "events": [event_document(event) for event in receipt.events],
    }
    if not receipt.success:
        document["error"] = {
            "module": receipt.error_module,
            "name": receipt.error_name,
            "message": receipt.error_message,
        }
    return document


def event_text(event: Event) -> str:
    """One line for an event: module.Name key=value ..."""
    attributes = " ".join(f"{key}={value}" for key, value in event.attributes)
    return f"{event.module}.{event.name} {attributes}".rstrip()


def status_document(status: TransactionStatus) -> dict:
    """A transaction status as JSON."""
    document: dict = {"hash": status.hash.hex(), "status": status.status}
    if status.included:
        document.update(height=status.height, block_hash=status.block_hash.hex(), index=status.index)
        if status.receipt is not None:
            document["receipt"] = receipt_document(status.receipt)
    if status.status == "rejected":
        document["reason"] = status.reason
    if status.raw:
        summary = describe_transaction(status.raw)
        document["transaction"] = _summary_document(summary)
    return document


def status_fields(status: TransactionStatus) -> list[tuple[str, object]]:
    """A transaction status as `name: value` lines."""
    fields: list[tuple[str, object]] = [("hash", status.hash.hex()), ("status", status.status)]
    if status.raw:
        summary = describe_transaction(status.raw)
        fields += [("sender", encode_address(summary.sender)), ("nonce", summary.nonce), ("fee", summary.fee)]
        fields += [("call", summary.call)]
        if summary.call == "transfer":
            fields += [("dest", encode_address(summary.dest)), ("amount", summary.amount)]
    if status.included:
        fields += [("height", status.height), ("block", status.block_hash.hex()), ("index", status.index)]
    if status.receipt is not None:
        fields += [("success", "yes" if status.receipt.success else "no"), ("fee paid", status.receipt.fee_paid)]
        if not status.receipt.success:
            fields.append(("error", status.receipt.error))
        fields += [("event", event_text(event)) for event in status.receipt.events]
    if status.status == "rejected":
        fields.append(("reason", status.reason))
    return fields


def _summary_document(summary) -> dict:
    document = {
        "sender": summary.sender.hex(),
        "sender_address": _address(summary.sender),
        "nonce": summary.nonce,
        "fee": str(summary.fee),
        "call": summary.call,
    }
    if summary.call == "transfer":
        document.update(dest=summary.dest.hex(), dest_address=_address(summary.dest), amount=str(summary.amount))
    return document


def _address(public_key: bytes) -> str:
    return encode_address(public_key) if len(public_key) == 32 else ""


# --- query account ----------------------------------------------------------------


def query_account(args: argparse.Namespace) -> int:
    """Print an account's proven balances and nonce."""
    public_key = resolve_account_argument(args.account)
    with node_client(args) as client:
        account = client.account(public_key)
    if args.output == "json":
        print_json(_account_document(account))
        return 0
    print_fields(
        [
            ("address", account.address),
            ("public key", account.public_key.hex()),
            ("exists", "yes" if account.exists else "no"),
            ("free", account.free),
            ("reserved", account.reserved),
            ("nonce", account.nonce),
            ("next nonce", account.next_nonce),
            ("at height", account.height),
            ("block", account.block_hash.hex()),
            ("state root", account.state_root.hex()),
            ("proof", "verified"),
        ]
    )
    return 0


def _account_document(account: Account) -> dict:
    return {
        "address": account.address,
        "public_key": account.public_key.hex(),
        "exists": account.exists,
        "free": str(account.free),
        "reserved": str(account.reserved),
        "nonce": account.nonce,
        "next_nonce": account.next_nonce,
        "height": account.height,
        "block_hash": account.block_hash.hex(),
        "state_root": account.state_root.hex(),
        "proof_verified": True,
    }


# --- query block ------------------------------------------------------------------


def query_block(args: argparse.Namespace) -> int:
    """Print a block's header and transactions."""
    height, block_hash = _block_selector(args.selector)
    with node_client(args) as client:
        block = client.block(height=height, hash=block_hash)
    with cli_errors():
        _print_block(block, args.output)
    return 0


def _print_block(block: Block, output: str) -> None:
    if output == "json":
        print_json(_block_document(block))
        return
    print_fields(
        [
            ("height", block.height),
            ("hash", block.hash.hex()),
            ("parent", block.parent_hash.hex()),
            ("time", time_text(block.time_ms)),
            ("proposer", _address(block.proposer)),
            ("state root", block.state_root.hex()),
            ("transactions", len(block.transactions)),
        ]
    )
    if block.transactions:
        print()
        print_table(("#", "hash", "sender", "nonce", "call", "result"), _transaction_rows(block))


def _block_selector(text: str | None) -> tuple[int | None, bytes | None]:
    if text is None:
        return None, None
    text = text.strip()
    if text.isdigit():
        return int(text), None
    try:
        return None, decode_hash(text, "block height or block hash")
    except ClientError as error:
        raise CliError(error.message, EXIT_USAGE) from None


def _transaction_rows(block: Block):
    for index, raw in enumerate(block.transactions):
        summary = describe_transaction(raw)
        receipt = block.receipts[index] if index < len(block.receipts) else None
        result = "" if receipt is None else ("ok" if receipt.success else receipt.error_name)
        call = summary.call
        if call == "transfer":
            call = f"transfer {summary.amount} to {_address(summary.dest)}"
        yield index, summary.hash.hex(), _address(summary.sender), summary.nonce, call, result


def _block_document(block: Block) -> dict:
    transactions = []
    for index, raw in enumerate(block.transactions):
        document = {"hash": block.transaction_hashes[index].hex(), **_summary_document(describe_transaction(raw))}
        if index < len(block.receipts):
            document["receipt"] = receipt_document(block.receipts[index])
        transactions.append(document)
    return {
        "height": block.height,
        "hash": block.hash.hex(),
        "chain_id": block.chain_id,
        "parent_hash": block.parent_hash.hex(),
        "time_ms": block.time_ms,
        "time": time_text(block.time_ms),
        "proposer": block.proposer.hex(),
        "proposer_address": _address(block.proposer),
        "state_root": block.state_root.hex(),
        "transactions_root": block.transactions_root.hex(),
        "receipts_root": block.receipts_root.hex(),
        "transaction_count": len(block.transactions),
        "transactions": transactions,
        "block_events": [event_document(event) for event in block.block_events],
    }


# --- query chain ------------------------------------------------------------------


def query_chain(args: argparse.Namespace) -> int:
    """Print chain id, genesis hash, heads and the fee rule."""
    with node_client(args) as client:
        info = client.chain_info()
    if args.output == "json":
        print_json(_chain_document(info))
        return 0
    print_fields(
        [
            ("chain id", info.chain_id),
            ("genesis hash", info.genesis_hash.hex()),
            ("best", f"{info.best_height} {info.best_hash.hex()}"),
            ("finalized", f"{info.finalized_height} {info.finalized_hash.hex()}"),
            ("block time", f"{info.block_time_ms} ms"),
            ("pending", info.pending_transactions),
            ("fee rule", f"{info.base_fee} + {info.fee_per_byte} per byte"),
            ("max tx size", f"{info.max_transaction_bytes} bytes"),
            ("existential deposit", info.existential_deposit),
            ("address format", f"SS58 prefix {info.ss58_prefix} ({info.ss58_prefix_name})"),
            ("node version", info.node_version),
        ]
    )
    return 0


def _chain_document(info: ChainInfo) -> dict:
    return {
        "chain_id": info.chain_id,
        "genesis_hash": info.genesis_hash.hex(),
        "best_height": info.best_height,
        "best_hash": info.best_hash.hex(),
        "finalized_height": info.finalized_height,
        "finalized_hash": info.finalized_hash.hex(),
        "block_time_ms": info.block_time_ms,
        "pending_transactions": info.pending_transactions,
        "base_fee": str(info.base_fee),
        "fee_per_byte": str(info.fee_per_byte),
        "max_transaction_bytes": info.max_transaction_bytes,
        "existential_deposit": str(info.existential_deposit),
        "ss58_prefix": info.ss58_prefix,
        "ss58_prefix_name": info.ss58_prefix_name,
        "node_version": info.node_version,
    }


# --- query tx ---------------------------------------------------------------------


def query_tx(args: argparse.Namespace) -> int:
    """Print a transaction's status and, once included, its receipt."""
    try:
        transaction_hash = decode_hash(args.hash, "transaction hash")
    except ClientError as error:
        raise CliError(error.message, EXIT_USAGE) from None
    with node_client(args) as client:
        status = client.transaction(transaction_hash)
    if status.status == "unknown":
        raise CliError(f"transaction {transaction_hash.hex()} is not known to the node at {args.node}")
    with cli_errors():
        if args.output == "json":
            print_json(status_document(status))
        else:
            print_fields(status_fields(status))
    return 0
