"""`inferchain query account|block|chain|tx`: read a node's state, blocks and transactions.

Beside these, `query models|executors` (chain/cli/market_queries.py) and `query MODULE QUERY` for
every query a runtime module declares (chain/cli/module_queries.py).

People see amounts in tokens (`1.000000000000000000 INFER`) and accounts as SS58 addresses.
In `--output json` documents, 64-bit integers (balances, amounts, fees, nonces, heights, times)
are decimal strings and smaller ones (counts, indexes) numbers (docs/cli.md); amounts stay in base
units; hashes and keys are hex; accounts carry their SS58 address.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from chain.cli.connection import add_node_argument, cli_errors, node_client, resolve_account_argument
from chain.cli.errors import EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_UNTRUSTED, EXIT_USAGE, CliError
from chain.cli.market_queries import register_queries
from chain.cli.module_queries import register_module_queries
from chain.cli.output import Token, add_output_argument, print_fields, print_json, print_table, token_of, u64
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
from chain.client.light import LightClient, VerifiedAccount, VerifiedHeader
from chain.genesis import Genesis, GenesisError, load_genesis
from chain.ss58 import encode_address
from runtime.registry import RUNTIME, Runtime

ACCOUNT_KIND = "account"
AMOUNT_KIND = "amount"


def register(subparsers, runtime: Runtime = RUNTIME) -> None:
    """Add `query` and its subcommands."""
    query = subparsers.add_parser("query", help="read accounts, blocks, transactions and chain info from a node")
    commands = query.add_subparsers(dest="query_command", metavar="WHAT")
    commands.required = True

    account = commands.add_parser("account", help="an account's balances and nonce, verified against a state proof")
    account.add_argument("account", metavar="ACCOUNT", help="dev name (alice, bob, ...), key file, SS58 address or hex public key")
    _light_argument(account)
    _common(account)
    account.set_defaults(handler=query_account)

    block = commands.add_parser("block", help="a block by height or hash (default: the best block)")
    block.add_argument("selector", metavar="HEIGHT_OR_HASH", nargs="?",
                       help="a height, or a 64-hex-digit block hash (default: the best block)")
    _light_argument(block)
    _common(block)
    block.set_defaults(handler=query_block)

    chain = commands.add_parser("chain", help="chain id, genesis hash, heads, fee rule")
    _common(chain)
    chain.set_defaults(handler=query_chain)

    tx = commands.add_parser("tx", help="a transaction's status: pending, included (with receipt) or rejected")
    tx.add_argument("hash", metavar="HASH", help="the transaction hash (64 hex digits)")
    _common(tx)
    tx.set_defaults(handler=query_tx)
    register_queries(commands)  # models, executors: chain/cli/market_queries.py
    register_module_queries(commands, runtime)  # MODULE QUERY: chain/cli/module_queries.py


def _common(parser: argparse.ArgumentParser) -> None:
    add_node_argument(parser)
    add_output_argument(parser)


def _light_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--light", metavar="GENESIS.json",
        help="also verify the block's commit, following the validator set from this trusted genesis file "
             "(docs/protocol.md, \"Light client\") (default: trust the node's headers)",
    )


def _trusted_genesis(path: str) -> Genesis:
    try:
        return load_genesis(path)
    except GenesisError as error:
        raise CliError(f"--light: {error}", EXIT_BAD_INPUT) from None


def _commit_text(header: VerifiedHeader) -> str:
    return (f"verified: {header.signed_power} of {header.total_power} voting power signed block {header.height}, "
            "validator set followed from the trusted genesis")


def _commit_document(header: VerifiedHeader) -> dict:
    return {
        "height": u64(header.height),
        "validators_hash": header.validators_hash.hex(),
        "signed_power": u64(header.signed_power),
        "total_power": u64(header.total_power),
    }


def time_text(time_ms: int) -> str:
    """RFC 3339 UTC time of a millisecond timestamp."""
    moment = datetime.fromtimestamp(time_ms / 1000, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- events, receipts and transactions, shared with `inferchain tx` --------------------


def attribute_kind(event: Event, key: str, runtime: Runtime = RUNTIME) -> str | None:
    """What an event attribute holds ("account", "amount", ...), as its module declares it."""
    spec = runtime.event(event.module, event.name)
    return None if spec is None else spec.attributes.get(key)


def _account_text(value: str) -> str:
    # An account attribute is 64 hex characters of a 32-byte id; anything else is shown as sent.
    try:
        public_key = bytes.fromhex(value) if len(value) == 64 else b""
    except ValueError:
        return value
    return encode_address(public_key) if len(public_key) == 32 else value


def _amount_text(value: str, token: Token) -> str:
    return token.format(int(value)) if value.isascii() and value.isdigit() else value


def event_document(event: Event, runtime: Runtime = RUNTIME) -> dict:
    """An event as JSON: accounts as SS58 addresses, amounts as base-unit strings (as sent)."""
    attributes = {
        key: _account_text(value) if attribute_kind(event, key, runtime) == ACCOUNT_KIND else value
        for key, value in event.attributes
    }
    return {"module": event.module, "name": event.name, "attributes": attributes}


def event_text(event: Event, token: Token = Token(), runtime: Runtime = RUNTIME) -> str:
    """One line for an event: module.Name key=value ..., accounts in SS58, amounts in tokens."""
    attributes = " ".join(
        f"{key}={_attribute_text(event, key, value, token, runtime)}" for key, value in event.attributes
    )
    return f"{event.module}.{event.name} {attributes}".rstrip()


def _attribute_text(event: Event, key: str, value: str, token: Token, runtime: Runtime) -> str:
    kind = attribute_kind(event, key, runtime)
    if kind == ACCOUNT_KIND:
        return _account_text(value)
    if kind == AMOUNT_KIND:
        return _amount_text(value, token)
    return value


def receipt_document(receipt: Receipt) -> dict:
    """A receipt as JSON."""
    document = {
        "success": receipt.success,
        "fee_paid": u64(receipt.fee_paid),
        "events": [event_document(event) for event in receipt.events],
    }
    if not receipt.success:
        document["error"] = {
            "module": receipt.error_module,
            "name": receipt.error_name,
            "message": receipt.error_message,
        }
    return document


def status_document(status: TransactionStatus) -> dict:
    """A transaction status as JSON."""
    document: dict = {"hash": status.hash.hex(), "status": status.status}
    if status.included:
        document.update(height=u64(status.height), block_hash=status.block_hash.hex(), index=status.index)
        if status.receipt is not None:
            document["receipt"] = receipt_document(status.receipt)
    if status.status == "rejected":
        document["reason"] = status.reason
    if status.raw:
        summary = describe_transaction(status.raw)
        document["transaction"] = _summary_document(summary)
    return document


def status_fields(status: TransactionStatus, token: Token = Token()) -> list[tuple[str, object]]:
    """A transaction status as `name: value` lines."""
    fields: list[tuple[str, object]] = [("hash", status.hash.hex()), ("status", status.status)]
    if status.raw:
        summary = describe_transaction(status.raw)
        fields += [("sender", _address(summary.sender)), ("nonce", summary.nonce), ("fee", token.format(summary.fee))]
        fields += [("call", summary.call)]
        if summary.call == "transfer":
            fields += [("dest", _address(summary.dest)), ("amount", token.format(summary.amount))]
    if status.included:
        fields += [("height", status.height), ("block", status.block_hash.hex()), ("index", status.index)]
    if status.receipt is not None:
        fields += [("success", "yes" if status.receipt.success else "no"),
                   ("fee paid", token.format(status.receipt.fee_paid))]
        if not status.receipt.success:
            fields.append(("error", status.receipt.error))
        fields += [("event", event_text(event, token)) for event in status.receipt.events]
    if status.status == "rejected":
        fields.append(("reason", status.reason))
    return fields


def _summary_document(summary) -> dict:
    document = {
        "sender": summary.sender.hex(),
        "sender_address": _address(summary.sender),
        "nonce": u64(summary.nonce),
        "fee": u64(summary.fee),
        "call": summary.call,
    }
    if summary.call == "transfer":
        document.update(dest=summary.dest.hex(), dest_address=_address(summary.dest), amount=u64(summary.amount))
    return document


def _address(public_key: bytes) -> str:
    return encode_address(public_key) if len(public_key) == 32 else ""


def _token(client) -> Token:
    # The token is fixed at genesis, but only ChainInfo says it: one more call, for text output only.
    return token_of(client.chain_info())


# --- query account ----------------------------------------------------------------


def query_account(args: argparse.Namespace) -> int:
    """Print an account's proven balances and nonce (--light: proven against a block whose commit was verified)."""
    public_key = resolve_account_argument(args.account)
    genesis = _trusted_genesis(args.light) if args.light else None
    with node_client(args) as client:
        if genesis is None:
            account = client.account(public_key)
        else:
            account = LightClient(client, genesis).verified_account(public_key)
        token = _token(client) if args.output == "text" else Token()
    if args.output == "json":
        print_json(_account_document(account))
        return 0
    print_fields(_account_fields(account, token))
    return 0


def _account_anchor(account: Account | VerifiedAccount) -> tuple[int, bytes, bytes, VerifiedHeader | None]:
    """The block the account is proven after (height, hash, state root) and the verified commit, if any.

    A light client's account carries no next nonce: that counts pending transactions, which no proof covers."""
    if isinstance(account, VerifiedAccount):
        return account.block.height, account.block.hash, account.block.state_root, account.block
    return account.height, account.block_hash, account.state_root, None


def _account_fields(account: Account | VerifiedAccount, token: Token) -> list[tuple[str, object]]:
    height, block_hash, state_root, commit = _account_anchor(account)
    fields: list[tuple[str, object]] = [
        ("address", account.address),
        ("public key", account.public_key.hex()),
        ("exists", "yes" if account.exists else "no"),
        ("free", token.format(account.free)),
        ("reserved", token.format(account.reserved)),
        ("nonce", account.nonce),
    ]
    if commit is None:
        fields.append(("next nonce", account.next_nonce))
    fields += [("at height", height), ("block", block_hash.hex()), ("state root", state_root.hex())]
    fields.append(("proof", "verified"))
    if commit is not None:
        fields.append(("commit", _commit_text(commit)))
    return fields


def _account_document(account: Account | VerifiedAccount) -> dict:
    height, block_hash, state_root, commit = _account_anchor(account)
    document = {
        "address": account.address,
        "public_key": account.public_key.hex(),
        "exists": account.exists,
        "free": u64(account.free),
        "reserved": u64(account.reserved),
        "nonce": u64(account.nonce),
    }
    if commit is None:
        document["next_nonce"] = u64(account.next_nonce)
    document.update(height=u64(height), block_hash=block_hash.hex(), state_root=state_root.hex(), proof_verified=True)
    if commit is not None:
        document["commit"] = _commit_document(commit)
    return document


# --- query block ------------------------------------------------------------------


def query_block(args: argparse.Namespace) -> int:
    """Print a block's header and transactions."""
    height, block_hash = _block_selector(args.selector)
    genesis = _trusted_genesis(args.light) if args.light else None
    with node_client(args) as client:
        block = client.block(height=height, hash=block_hash)
        commit = _verified_commit(client, genesis, block) if genesis is not None else None
        token = _token(client) if args.output == "text" else Token()
    with cli_errors():
        _print_block(block, args.output, token, commit)
    return 0


def _verified_commit(client, genesis: Genesis, block: Block) -> VerifiedHeader:
    """The light client's verdict on the block's height; the block shown must be the block it verified."""
    header = LightClient(client, genesis).verified_header(block.height)
    if header.hash != block.hash:
        raise CliError(
            f"the node showed block {block.hash.hex()} at height {block.height}, but the block its validators "
            f"signed there is {header.hash.hex()}", EXIT_UNTRUSTED,
        )
    return header


def _print_block(block: Block, output: str, token: Token, commit: VerifiedHeader | None = None) -> None:
    if output == "json":
        document = _block_document(block)
        if commit is not None:
            document["commit"] = _commit_document(commit)
        print_json(document)
        return
    commit_fields = [] if commit is None else [("commit", _commit_text(commit))]
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
        + commit_fields
        + [("event", event_text(event, token)) for event in block.block_events]
    )
    if block.transactions:
        print()
        print_table(("#", "hash", "sender", "nonce", "call", "result"), _transaction_rows(block, token))


def _block_selector(text: str | None) -> tuple[int | None, bytes | None]:
    if text is None:
        return None, None
    text = text.strip()
    if text.isascii() and text.isdigit():
        return int(text), None
    try:
        return None, decode_hash(text, "block height or block hash")
    except ClientError as error:
        raise CliError(error.message, EXIT_USAGE) from None


def _transaction_rows(block: Block, token: Token):
    for index, raw in enumerate(block.transactions):
        summary = describe_transaction(raw)
        receipt = block.receipts[index] if index < len(block.receipts) else None
        result = "" if receipt is None else ("ok" if receipt.success else receipt.error_name)
        call = summary.call
        if call == "transfer":
            call = f"transfer {token.format(summary.amount)} to {_address(summary.dest)}"
        yield index, summary.hash.hex(), _address(summary.sender), summary.nonce, call, result


def _block_document(block: Block) -> dict:
    transactions = []
    for index, raw in enumerate(block.transactions):
        document = {"hash": block.transaction_hashes[index].hex(), **_summary_document(describe_transaction(raw))}
        if index < len(block.receipts):
            document["receipt"] = receipt_document(block.receipts[index])
        transactions.append(document)
    return {
        "height": u64(block.height),
        "hash": block.hash.hex(),
        "chain_id": block.chain_id,
        "parent_hash": block.parent_hash.hex(),
        "time_ms": u64(block.time_ms),
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
    """Print chain id, genesis hash, heads, the token and the fee rule."""
    with node_client(args) as client:
        info = client.chain_info()
    if args.output == "json":
        print_json(_chain_document(info))
        return 0
    token = token_of(info)
    print_fields(
        [
            ("chain id", info.chain_id),
            ("genesis hash", info.genesis_hash.hex()),
            ("best", f"{info.best_height} {info.best_hash.hex()}"),
            ("finalized", f"{info.finalized_height} {info.finalized_hash.hex()}"),
            ("block time", f"{info.block_time_ms} ms"),
            ("consensus", f"round {info.consensus_round}, {info.validators} validators "
                          f"({'this node is one' if info.is_validator else 'this node follows'})"
                          f"{', syncing' if info.syncing else ''}"),
            ("peers", info.peers),
            ("pending", info.pending_transactions),
            ("token", f"{token.symbol} (1 {token.symbol} = 10^{token.decimals} base units)"),
            ("fee rule", f"{token.format(info.base_fee)} + {token.format(info.fee_per_byte)} per byte"),
            ("max tx size", f"{info.max_transaction_bytes} bytes"),
            ("existential deposit", token.format(info.existential_deposit)),
            ("address format", f"SS58 prefix {info.ss58_prefix} ({info.ss58_prefix_name})"),
            ("node version", info.node_version),
            ("runtime version", info.spec_version),
        ]
    )
    return 0


def _chain_document(info: ChainInfo) -> dict:
    token = token_of(info)
    return {
        "chain_id": info.chain_id,
        "genesis_hash": info.genesis_hash.hex(),
        "best_height": u64(info.best_height),
        "best_hash": info.best_hash.hex(),
        "finalized_height": u64(info.finalized_height),
        "finalized_hash": info.finalized_hash.hex(),
        "block_time_ms": u64(info.block_time_ms),
        "pending_transactions": info.pending_transactions,
        "peers": info.peers,
        "consensus_round": info.consensus_round,
        "syncing": info.syncing,
        "is_validator": info.is_validator,
        "validators": info.validators,
        "total_voting_power": u64(info.total_voting_power),
        "token_symbol": token.symbol,
        "token_decimals": token.decimals,
        "base_fee": u64(info.base_fee),
        "fee_per_byte": u64(info.fee_per_byte),
        "max_transaction_bytes": u64(info.max_transaction_bytes),
        "existential_deposit": u64(info.existential_deposit),
        "ss58_prefix": info.ss58_prefix,
        "spec_version": info.spec_version,
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
        token = _token(client) if args.output == "text" else Token()
    if status.status == "unknown":
        raise CliError(f"transaction {transaction_hash.hex()} is not known to the node at {args.node}", EXIT_REFUSED)
    with cli_errors():
        if args.output == "json":
            print_json(status_document(status))
        else:
            print_fields(status_fields(status, token))
    return 0
