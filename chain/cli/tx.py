"""`inferchain tx CALL`: sign any runtime call with a dev account or key file, check it, submit it.

One subcommand per call in the runtime registry (runtime/registry.py); its options are the call
message's fields, each scalar field (repeated or not) an option read by the kind its module declares
(CallSpec.fields; chain/cli/fields.py says how each kind is read and shown). A few calls also answer
to a shorter name and friendlier option names (CALL_NAMES: `tx offer --model ID --price P` is
`tx set_offer`); that table only names things, every call works without an entry.

Nested fields have no option: give the call as JSON with --call-json, in protobuf's JSON mapping,
except that top-level fields with an option are read as that option reads them (accounts in any
form, hashes and bytes in hex, a repeated field as a JSON list) and bytes inside nested messages
are hex, as the output shows them; an option given overrides its field in the JSON.

The node's admission is the check (SubmitTransaction applies the call to the latest state at the
account's next nonce and returns that verdict): a call that would fail is refused with the node's
reason and exit code 4, so it never costs a fee, and no separate simulation is asked for. A call
queued behind the sender's pending transactions is judged when its turn comes. --dry-run only
simulates (SimulateTransaction), prints the verdict and submits nothing.

Output: text names the call's fields by their options; `--output json` by their protobuf names
under "arguments", accounts as SS58 addresses, 64-bit integers as strings (docs/cli.md).
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from chain.cli.connection import add_node_argument, cli_errors, client_exit_code, node_client
from chain.cli.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_REFUSED, EXIT_USAGE, CliError
from chain.cli.fields import (  # noqa: F401  (parsers re-exported for chain/cli/job.py and the tests)
    FieldOption,
    add_field_options,
    field_options,
    is_nested,
    is_repeated,
    message_document,
    message_fields,
    parse_amount_value,
    parse_enum,
    parse_hex,
    parse_integer,
    parse_value,
    parse_values,
    read_options,
    set_field,
)
from chain.cli.output import Token, add_output_argument, print_fields, print_json, token_of, u64
from chain.cli.query import event_document, event_text, receipt_document
from chain.client import DEFAULT_WAIT_S, ClientError, Simulation, Submission
from chain.crypto import Keypair
from chain.keys import KeyResolutionError, resolve_signer
from chain.ss58 import encode_address
from chain.text import quote_input
from runtime.arithmetic import U64_MAX
from runtime.module import INTEGER, CallSpec  # noqa: F401  (INTEGER: re-exported for the tests)
from runtime.primitives import DispatchError
from runtime.registry import RUNTIME, Runtime

# A call is at most a transaction (64 KiB by default: 88 KB as base64 JSON); refuse longer JSON
# before parsing it. (Linux passes at most 128 KiB in one command-line argument.)
MAX_CALL_JSON = 100_000
CallOption = FieldOption


@dataclass(frozen=True)
class CallNames:
    """How a call reads for people: a shorter command, option names (field -> option) and option defaults."""

    alias: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, str] = field(default_factory=dict)


# Names only: a call without an entry is served the same way under its own name and field names.
CALL_NAMES = {
    "transfer": CallNames(options={"dest": "to"}),
    "set_offer": CallNames(alias="offer", options={"models": "model", "price_per_token": "price"},
                           defaults={"region": "", "capacity": "1", "endpoint": "", "engine_class": ""}),
    "withdraw_unbonded": CallNames(alias="withdraw"),
    "clear_offer": CallNames(alias="clear-offer"),
}


# The options every `tx` command has (add_submission_arguments): a call field of the same name is --field-NAME.
SUBMISSION_OPTIONS = ("--from", "--fee", "--nonce", "--wait", "--timeout", "--dry-run", "--no-simulate", "--node",
                      "--output", "--call-json")


def call_options(spec: CallSpec) -> list[FieldOption]:
    """The options of a call: each scalar field of its message, named and read by its kind."""
    names = CALL_NAMES.get(spec.name, CallNames())
    return field_options(spec.message.DESCRIPTOR, spec.fields, names.options, names.defaults,
                         reserved=SUBMISSION_OPTIONS)


# --- the parser -------------------------------------------------------------------


def register(subparsers, runtime: Runtime = RUNTIME) -> None:
    """Add `tx` and one subcommand per runtime call."""
    tx = subparsers.add_parser(
        "tx", help="sign and submit transactions (one command per runtime call)",
        description="Sign a runtime call, simulate it against the latest state, and submit it.",
    )
    commands = tx.add_subparsers(dest="tx_command", metavar="CALL")
    commands.required = True
    for module in runtime.modules:
        for spec in module.calls:
            _register_call(commands, module.name, spec)


def _register_call(commands, module_name: str, spec: CallSpec) -> None:
    alias = CALL_NAMES.get(spec.name, CallNames()).alias
    for name in (spec.name, alias) if alias else (spec.name,):
        same = f" (`tx {spec.name}`)" if name != spec.name else ""
        parser = commands.add_parser(
            name, help=spec.doc.rstrip(".") + same,
            description=f"{spec.doc.rstrip('.')} ({module_name} call {spec.name}, message "
                        f"{spec.message.DESCRIPTOR.name}). Simulated first; a call that would fail is not submitted.",
        )
        add_field_options(parser, call_options(spec), "--call-json")
        parser.add_argument("--call-json", metavar="JSON",
                            help=f"the call as a JSON object of {spec.message.DESCRIPTOR.name}'s fields (protobuf "
                                 "JSON; fields with an option read as the option does); needed for nested fields; "
                                 "options override it")
        add_submission_arguments(parser)
        parser.set_defaults(handler=call_command, call_spec=spec, call_builder=build_call)


def add_submission_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every `tx` command shares: signer, fee, nonce, waiting, simulation, node and output."""
    parser.add_argument("--from", dest="sender", required=True, metavar="SIGNER",
                        help="who signs and pays: a dev account name (alice, bob, ...) or a key file")
    parser.add_argument("--fee", help="fee to offer in base units (default: the chain's minimum for the size)")
    parser.add_argument("--nonce",
                        help="nonce to use, as given (default: the next free one, counting pending transactions)")
    parser.add_argument("--wait", action="store_true", help="wait until the transaction is in a finalized block")
    parser.add_argument("--timeout", type=float, default=DEFAULT_WAIT_S, metavar="SECONDS",
                        help=f"how long --wait waits (default: {DEFAULT_WAIT_S:g})")
    parser.add_argument("--dry-run", action="store_true",
                        help="simulate against the latest state and print the verdict, fee and events; submit "
                             "nothing (exit code 1 when the call would fail)")
    parser.add_argument("--no-simulate", action="store_true",
                        help="no effect, kept for scripts: the node's admission verdict is the simulation")
    add_node_argument(parser)
    add_output_argument(parser)



# --- the command ------------------------------------------------------------------


def call_command(args: argparse.Namespace) -> int:
    """Sign the call and submit it (or only simulate it, with --dry-run); report what happened.

    `args.call_builder(spec, args, token)` makes the call: build_call for the generic commands.
    """
    spec: CallSpec = args.call_spec
    signer = signer_argument(args.sender)
    fee = None if args.fee is None else _u64_option(args.fee, "--fee")
    nonce = None if args.nonce is None else _u64_option(args.nonce, "--nonce")
    with node_client(args) as client:
        chain_token = functools.cache(lambda: token_of(client.chain_info()))
        call = args.call_builder(spec, args, chain_token)
        token = chain_token() if args.output == "text" else Token()
        if args.dry_run:
            simulation = client.dry_run(signer, call, fee=fee, nonce=nonce)
            with cli_errors():
                _print_simulation(spec, signer, call, simulation, args.output, token)
            return 0 if simulation.valid else EXIT_FAILURE
        try:
            submission = client.submit(signer, call, fee=fee, nonce=nonce, wait=args.wait, timeout=args.timeout)
        except ClientError as error:
            if client_exit_code(error) != EXIT_REFUSED:
                raise
            raise CliError(f"{spec.name} not submitted: {error.message} ({error.code})", EXIT_REFUSED) from None
    with cli_errors():
        _print_submission(spec, signer, call, submission, args.output, token)
    receipt = submission.receipt
    if receipt is not None and not receipt.success:
        raise CliError(f"{spec.name} included at height {submission.inclusion.height} but failed: {receipt.error}")
    return 0


def signer_argument(text: str) -> Keypair:
    """The keypair --from names; one-line error otherwise."""
    try:
        return resolve_signer(text)
    except KeyResolutionError as error:
        raise CliError(f"--from: {error}", EXIT_BAD_INPUT) from None


def _u64_option(text: str, option: str) -> int:
    return parse_integer(text, option, 0, U64_MAX)



# --- building the call --------------------------------------------------------------


def build_call(spec: CallSpec, args: argparse.Namespace, token: Callable[[], Token]) -> Message:
    """The call message from --call-json and the options; CliError for a value that cannot be read.

    `token` gives the chain's token, asked for only when an amount is written in tokens.
    """
    call = spec.message()
    options = call_options(spec)
    given: set[str] = set()
    if args.call_json is not None:
        given |= _merge_call_json(spec, call, args.call_json, token)
    given |= read_options(call, options, args, token, frozenset(given))
    missing = [option.option for option in options if option.required and option.field.name not in given]
    if missing:
        raise CliError(f"{spec.name} needs {', '.join(missing)}", EXIT_USAGE)
    try:
        spec.check(call)
    except DispatchError as error:
        raise CliError(f"{spec.name} can never succeed: {error.message}", EXIT_USAGE) from None
    return call


def _merge_call_json(spec: CallSpec, call: Message, text: str, token: Callable[[], Token]) -> set[str]:
    """Read --call-json into `call`; the names of the fields it gave."""
    if len(text) > MAX_CALL_JSON:
        raise CliError(f"--call-json is {len(text)} characters; a call is at most {MAX_CALL_JSON}", EXIT_USAGE)
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys)
    except ValueError as error:
        raise CliError(f"--call-json is not JSON: {error}", EXIT_USAGE) from None
    except RecursionError:
        raise CliError("--call-json nests deeper than any call", EXIT_USAGE) from None
    if not isinstance(document, dict):
        raise CliError(f"--call-json must be a JSON object of {spec.message.DESCRIPTOR.name}'s fields", EXIT_USAGE)
    given = set()
    for option in call_options(spec):
        keys = [key for key in dict.fromkeys((option.field.name, option.field.json_name)) if key in document]
        if len(keys) > 1:
            raise CliError(f"--call-json gives {option.field.name} twice ({keys[0]!r} and {keys[1]!r})", EXIT_USAGE)
        if not keys:
            continue
        key = keys[0]
        value = document.pop(key)
        where = f"--call-json {key!r}"
        if option.repeated:
            if not isinstance(value, list):
                raise CliError(f"{where} must be a JSON list, got {quote_input(json.dumps(value))}", EXIT_USAGE)
            set_field(call, option, parse_values(option, value, where, token))
        else:
            set_field(call, option, parse_value(option, value, where, token))
        given.add(option.field.name)
    fields = spec.message.DESCRIPTOR.fields
    given |= {field.name for field in fields if field.name in document or field.json_name in document}
    try:
        json_format.ParseDict(_hex_bytes_as_base64(spec.message.DESCRIPTOR, document, "--call-json"), call)
    except json_format.ParseError as error:
        raise CliError(f"--call-json: {quote_input(str(error), 200)}", EXIT_USAGE) from None
    return given


def _hex_bytes_as_base64(descriptor, document: Any, where: str) -> Any:
    """The JSON with every bytes value of a nested message read as hex (as the output shows it) and
    written as the base64 that protobuf's JSON mapping wants; other values as they are."""
    if not isinstance(document, dict):
        return document
    converted = dict(document)
    for key, value in document.items():
        field = descriptor.fields_by_name.get(key) or next(
            (field for field in descriptor.fields if field.json_name == key), None
        )
        if field is None:
            continue
        values = value if is_repeated(field) and isinstance(value, list) else None
        here = f"{where} {key!r}"
        if field.type == FieldDescriptor.TYPE_BYTES:
            convert = lambda item: _base64_of_hex(item, here)  # noqa: E731
        elif is_nested(field):
            convert = lambda item: _hex_bytes_as_base64(field.message_type, item, here)  # noqa: E731
        else:
            continue
        converted[key] = [convert(item) for item in values] if values is not None else convert(value)
    return converted


def _base64_of_hex(value: Any, where: str) -> Any:
    if not isinstance(value, str):
        return value  # protobuf's parser names what is wrong with it
    return base64.b64encode(parse_hex(value, where)).decode()


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    document = dict(pairs)
    if len(document) < len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"key {quote_input(repeated)} appears twice")
    return document


# --- printing -----------------------------------------------------------------------


def arguments_document(spec: CallSpec, call: Message) -> dict:
    """The call's fields as JSON under their protobuf names: accounts as SS58, bytes as hex, 64-bit integers as strings."""
    return message_document(call, spec.fields)


def argument_fields(spec: CallSpec, call: Message, token: Token) -> list[tuple[str, object]]:
    """The call's fields as `name: value` lines, named by their options."""
    names = {option.field.name: option.option[2:] for option in call_options(spec)}
    return message_fields(call, spec.fields, token, names)


def _print_submission(
    spec: CallSpec, signer: Keypair, call: Message, submission: Submission, output: str, token: Token
) -> None:
    inclusion = submission.inclusion
    status = inclusion.status if inclusion else "submitted"
    if output == "json":
        document = {
            "hash": submission.hash.hex(),
            "call": spec.name,
            "from": encode_address(signer.public_key),
            "arguments": arguments_document(spec, call),
            "nonce": u64(submission.nonce),
            "fee": u64(submission.fee),
            "status": status,
        }
        if inclusion is not None:
            document.update(height=u64(inclusion.height), block_hash=inclusion.block_hash.hex(), index=inclusion.index)
            if inclusion.receipt is not None:
                document["receipt"] = receipt_document(inclusion.receipt)
        print_json(document)
        return
    fields: list[tuple[str, object]] = [("hash", submission.hash.hex()), ("call", spec.name),
                                        ("from", encode_address(signer.public_key))]
    fields += argument_fields(spec, call, token)
    fields += [("nonce", submission.nonce), ("fee", token.format(submission.fee)), ("status", status)]
    if inclusion is not None:
        fields += [("height", inclusion.height), ("block", inclusion.block_hash.hex())]
        if inclusion.receipt is not None:
            fields.append(("result", "ok" if inclusion.receipt.success else inclusion.receipt.error))
            fields += [("event", event_text(event, token)) for event in inclusion.receipt.events]
    print_fields(fields)


def _print_simulation(
    spec: CallSpec, signer: Keypair, call: Message, simulation: Simulation, output: str, token: Token
) -> None:
    if output == "json":
        document = {
            "dry_run": True,
            "call": spec.name,
            "from": encode_address(signer.public_key),
            "arguments": arguments_document(spec, call),
            "valid": simulation.valid,
            "fee": u64(simulation.fee),
            "minimum_fee": u64(simulation.minimum_fee),
            "events": [event_document(event) for event in simulation.events],
        }
        if not simulation.valid:
            document.update(code=simulation.code, reason=simulation.reason)
        print_json(document)
        return
    verdict = "would succeed" if simulation.valid else f"would fail: {simulation.reason}"
    fields: list[tuple[str, object]] = [("call", spec.name), ("from", encode_address(signer.public_key))]
    fields += argument_fields(spec, call, token)
    fields += [("verdict", verdict), ("fee", token.format(simulation.fee)),
               ("minimum fee", token.format(simulation.minimum_fee))]
    fields += [("event", event_text(event, token)) for event in simulation.events]
    fields.append(("submitted", "no (dry run)"))
    print_fields(fields)
