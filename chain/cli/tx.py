"""`inferchain tx CALL`: sign any runtime call with a dev account or key file, check it, submit it.

One subcommand per call in the runtime registry (runtime/registry.py); its options are the call
message's fields, read by the kind its module declares (CallSpec.fields):

    account  a dev name, key file, SS58 address or hex public key (bytes on the wire)
    amount   base units (1500) or tokens with the symbol (1.5INFER)
    hash     64 hex digits
    integer  a whole number in the field's range; other bytes fields take hex, strings text,
             booleans true/false (the option alone is true; left out, false), enums a value's name

Nested and repeated fields have no option: give the call as JSON with --call-json, in protobuf's
JSON mapping, except that top-level fields with an option are read as that option reads them
(accounts in any form, hashes in hex); an option given overrides its field in the JSON.

Before submitting, the call is simulated against the latest state (SimulateTransaction); one that
would fail is refused with the node's reason and exit code 4, so it never costs a fee
(--no-simulate skips this). --dry-run prints the simulation and submits nothing.

Output: text names the call's fields by their options; `--output json` by their protobuf names
under "arguments", accounts as SS58 addresses, 64-bit integers as strings (docs/cli.md).
"""

from __future__ import annotations

import argparse
import functools
import json
from dataclasses import dataclass
from typing import Any, Callable

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from chain.cli.connection import add_node_argument, cli_errors, node_client
from chain.cli.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_REFUSED, EXIT_USAGE, CliError
from chain.cli.output import Token, add_output_argument, print_fields, print_json, token_of, u64
from chain.cli.query import event_document, event_text, receipt_document
from chain.client import DEFAULT_WAIT_S, ClientError, Simulation, Submission, decode_hash
from chain.crypto import Keypair
from chain.keys import KeyResolutionError, resolve_account, resolve_signer
from chain.ss58 import encode_address
from chain.text import quote_input
from runtime.module import ACCOUNT, AMOUNT, HASH, INTEGER, TEXT, CallSpec
from runtime.primitives import DispatchError
from runtime.registry import RUNTIME

U64_MAX = 2**64 - 1
# Kinds for fields whose module declares none, from the wire type.
HEX = "hex"
BOOLEAN = "boolean"
ENUM = "enum"
NUMBER = "number"
# Friendlier option names than the protobuf field names, per call.
OPTION_NAMES = {"transfer": {"dest": "to"}}
# A call is at most a transaction (64 KiB by default: 88 KB as base64 JSON); refuse longer JSON
# before parsing it. (Linux passes at most 128 KiB in one command-line argument.)
MAX_CALL_JSON = 100_000
_INTEGER_RANGES = {
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
}
_KIND_HELP = {
    ACCOUNT: "a dev name (alice, bob, ...), key file, SS58 address or hex public key",
    AMOUNT: "base units (1500) or tokens with the symbol (1.5INFER)",
    HASH: "64 hex digits",
    INTEGER: "a whole number",
    TEXT: "text",
    HEX: "bytes as hex digits",
    BOOLEAN: "true or false",
    NUMBER: "a number",
}


@dataclass(frozen=True)
class CallOption:
    """One scalar field of a call message, as a command-line option."""

    field: FieldDescriptor
    option: str  # "--to"
    kind: str  # ACCOUNT, AMOUNT, ... (runtime/module.py) or HEX, BOOLEAN, ENUM, NUMBER

    @property
    def required(self) -> bool:
        # A plain proto3 scalar cannot tell "unset" from zero: the command asks for it. A boolean
        # left out is false, as a flag would be.
        return not self.field.has_presence and self.kind != BOOLEAN

    @property
    def dest(self) -> str:
        return f"call_{self.field.name}"


def call_options(spec: CallSpec) -> list[CallOption]:
    """The options of a call: each scalar field of its message, named and read by its kind."""
    renames = OPTION_NAMES.get(spec.name, {})
    return [
        CallOption(field, "--" + renames.get(field.name, field.name).replace("_", "-"), _field_kind(spec, field))
        for field in spec.message.DESCRIPTOR.fields
        if not _json_only(field)
    ]


def _json_only(field: FieldDescriptor) -> bool:
    # protobuf 7 dropped `label` for `is_repeated`; setup.cfg allows from 5.26.
    repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == FieldDescriptor.LABEL_REPEATED
    return repeated or field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP)


def _field_kind(spec: CallSpec, field: FieldDescriptor) -> str:
    """The module's declared kind where the wire type can hold it, otherwise one from the wire type."""
    declared = spec.fields.get(field.name)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return declared if declared in (ACCOUNT, HASH) else HEX
    if field.type in _INTEGER_RANGES:
        return declared if declared in (AMOUNT, INTEGER) else INTEGER
    if field.type == FieldDescriptor.TYPE_STRING:
        return TEXT
    if field.type == FieldDescriptor.TYPE_BOOL:
        return BOOLEAN
    if field.type == FieldDescriptor.TYPE_ENUM:
        return ENUM
    return NUMBER


# --- the parser -------------------------------------------------------------------


def register(subparsers) -> None:
    """Add `tx` and one subcommand per runtime call."""
    tx = subparsers.add_parser(
        "tx", help="sign and submit transactions (one command per runtime call)",
        description="Sign a runtime call, simulate it against the latest state, and submit it.",
    )
    commands = tx.add_subparsers(dest="tx_command", metavar="CALL")
    commands.required = True
    for spec in RUNTIME.calls.values():
        _register_call(commands, spec)
    # Imported here: chain/cli/staking.py builds on this module.
    from chain.cli.staking import register_staking_commands

    register_staking_commands(commands)


def _register_call(commands, spec: CallSpec) -> None:
    module = RUNTIME.call_module(spec.name)
    parser = commands.add_parser(
        spec.name, help=spec.doc,
        description=f"{spec.doc.rstrip('.')} ({module.name if module else 'runtime'} call, "
                    f"message {spec.message.DESCRIPTOR.name}). "
                    "Simulated first; a call that would fail is not submitted.",
    )
    for option in call_options(spec):
        if option.kind == BOOLEAN:  # `--validate` alone is `--validate true`
            parser.add_argument(option.option, dest=option.dest, metavar=option.kind.upper(), nargs="?",
                                const="true", help=_option_help(option))
        else:
            parser.add_argument(option.option, dest=option.dest, metavar=option.kind.upper(), help=_option_help(option))
    parser.add_argument("--call-json", metavar="JSON",
                        help=f"the call as a JSON object of {spec.message.DESCRIPTOR.name}'s fields (protobuf JSON; "
                             "fields with an option read as the option does); needed for nested or repeated fields; "
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
                        help="submit without simulating first (a call that fails in its block still pays its fee)")
    add_node_argument(parser)
    add_output_argument(parser)


def _option_help(option: CallOption) -> str:
    kind = option.kind
    if kind == ENUM:
        how = "one of " + ", ".join(value.name for value in option.field.enum_type.values)
    elif kind == INTEGER and option.field.type in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[option.field.type]
        how = f"a whole number from {low} to {high}"
    else:
        how = _KIND_HELP[kind]
    if kind == BOOLEAN:
        return f"{option.field.name} ({kind}): {how}, the option alone is true; optional (default: false)"
    required = "required unless in --call-json" if option.required else "optional"
    return f"{option.field.name} ({kind}): {how}; {required}"


# --- the command ------------------------------------------------------------------


def call_command(args: argparse.Namespace) -> int:
    """Sign the call, simulate it (or only that, with --dry-run), submit it, report what happened.

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
        if not args.no_simulate:
            simulation = client.dry_run(signer, call, fee=fee, nonce=nonce)
            if not simulation.valid:
                raise CliError(
                    f"{spec.name} not submitted: it would fail: {simulation.reason} ({simulation.code})", EXIT_REFUSED
                )
        submission = client.submit(signer, call, fee=fee, nonce=nonce, wait=args.wait, timeout=args.timeout)
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
    given: set[str] = set()
    if args.call_json is not None:
        given |= _merge_call_json(spec, call, args.call_json, token)
    for option in call_options(spec):
        text = getattr(args, option.dest)
        if text is not None:
            _set_field(call, option, parse_value(option, text, option.option, token))
            given.add(option.field.name)
    missing = [option.option for option in call_options(spec) if option.required and option.field.name not in given]
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
        _set_field(call, option, parse_value(option, value, f"--call-json {key!r}", token))
        given.add(option.field.name)
    fields = spec.message.DESCRIPTOR.fields
    given |= {field.name for field in fields if field.name in document or field.json_name in document}
    try:
        json_format.ParseDict(document, call)
    except json_format.ParseError as error:
        raise CliError(f"--call-json: {quote_input(str(error), 200)}", EXIT_USAGE) from None
    return given


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    document = dict(pairs)
    if len(document) < len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"key {quote_input(repeated)} appears twice")
    return document


def _set_field(call: Message, option: CallOption, value: Any) -> None:
    setattr(call, option.field.name, value)


def parse_value(option: CallOption, value: Any, where: str, token: Callable[[], Token] = Token) -> Any:
    """A field's value from its option's text (or a JSON value); CliError naming `where` otherwise."""
    kind, field = option.kind, option.field
    if kind == BOOLEAN:
        return parse_boolean(value, where)
    if isinstance(value, int) and not isinstance(value, bool) and kind in (AMOUNT, INTEGER):
        value = str(value)
    if not isinstance(value, str):
        raise CliError(f"{where} must be a string, got {quote_input(json.dumps(value))}", EXIT_USAGE)
    if kind == ACCOUNT:
        return parse_account(value, where)
    if kind == AMOUNT:
        return parse_amount_value(value, where, token, _INTEGER_RANGES[field.type][1])
    if kind == INTEGER:
        return parse_integer(value, where, *_INTEGER_RANGES[field.type])
    if kind == HASH:
        return parse_hash(value, where)
    if kind == HEX:
        return parse_hex(value, where)
    if kind == ENUM:
        return parse_enum(value, where, field)
    if kind == NUMBER:
        return parse_number(value, where)
    return parse_text(value, where)


def parse_account(text: str, where: str) -> bytes:
    try:
        return resolve_account(text).public_key
    except KeyResolutionError as error:
        raise CliError(f"{where}: {error}", EXIT_BAD_INPUT) from None


def parse_integer(text: str, where: str, low: int, high: int) -> int:
    """A whole number in [low, high], ASCII digits with an optional sign and `_` separators."""
    if len(text) > 48:
        raise CliError(f"{where} must be a whole number, got {quote_input(text)}", EXIT_USAGE)
    cleaned = text.strip().replace("_", "")
    digits = cleaned[1:] if cleaned[:1] in ("-", "+") else cleaned
    if not (digits.isascii() and digits.isdigit()):
        raise CliError(f"{where} must be a whole number, got {quote_input(text)}", EXIT_USAGE)
    value = int(cleaned)
    if not low <= value <= high:
        raise CliError(f"{where} must be from {low} to {high}, got {value}", EXIT_USAGE)
    return value


def parse_amount_value(text: str, where: str, token: Callable[[], Token], maximum: int) -> int:
    """Base units from a plain whole number, or tokens with the chain's symbol (asks the node for it)."""
    cleaned = text.strip().replace("_", "")
    if cleaned.isascii() and cleaned.isdigit() and len(cleaned) <= 48:
        return parse_integer(cleaned, where, 0, maximum)
    try:
        return token().parse(text, maximum)
    except ValueError as error:
        raise CliError(f"{where}: {error}", EXIT_USAGE) from None


def parse_hash(text: str, where: str) -> bytes:
    try:
        if len(text) > 80:
            raise ClientError("INVALID_ARGUMENT", "too long")
        return decode_hash(text, "hash")
    except ClientError:
        raise CliError(f"{where} must be 64 hex digits, got {quote_input(text)}", EXIT_USAGE) from None


def parse_hex(text: str, where: str) -> bytes:
    digits = text.strip()
    digits = digits[2:] if digits[:2].lower() == "0x" else digits
    if len(digits) > 2 * MAX_CALL_JSON:
        raise CliError(f"{where} is {len(digits)} hex digits; a call is at most {MAX_CALL_JSON} bytes", EXIT_USAGE)
    try:
        if not digits.isascii():
            raise ValueError
        return bytes.fromhex(digits)
    except ValueError:
        raise CliError(f"{where} must be hex digits (an even number), got {quote_input(text)}", EXIT_USAGE) from None


def parse_boolean(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise CliError(f"{where} must be true or false, got {quote_input(value)}", EXIT_USAGE)


def parse_enum(text: str, where: str, field: FieldDescriptor) -> int:
    """An enum value by name, any case, with or without the enum's common prefix (VOTE_TYPE_)."""
    values = field.enum_type.values
    prefix = _common_prefix([value.name for value in values])
    wanted = text.strip().upper()
    for value in values:
        if wanted in (value.name, value.name[len(prefix):]):
            return value.number
    names = ", ".join(value.name for value in values)
    raise CliError(f"{where} must be one of {names}, got {quote_input(text)}", EXIT_USAGE)


def _common_prefix(names: list[str]) -> str:
    if len(names) < 2:
        return ""
    first, last = min(names), max(names)
    size = next((i for i, (a, b) in enumerate(zip(first, last)) if a != b), min(len(first), len(last)))
    return first[: first.rfind("_", 0, size) + 1]


def parse_number(text: str, where: str) -> float:
    try:
        if len(text) > 48 or not text.isascii():
            raise ValueError
        return float(text)
    except ValueError:
        raise CliError(f"{where} must be a number, got {quote_input(text)}", EXIT_USAGE) from None


def parse_text(text: str, where: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CliError(f"{where} is not valid UTF-8 text", EXIT_USAGE) from None
    return text


# --- printing -----------------------------------------------------------------------


def arguments_document(spec: CallSpec, call: Message) -> dict:
    """The call's fields as JSON: protobuf names and JSON mapping, accounts as SS58, bytes as hex."""
    document = json_format.MessageToDict(call, preserving_proto_field_name=True)
    for field in spec.message.DESCRIPTOR.fields:
        if _json_only(field) and field.type == FieldDescriptor.TYPE_BYTES and field.name in document:
            document[field.name] = [value.hex() for value in getattr(call, field.name)]
    for option in call_options(spec):
        name = option.field.name
        value = getattr(call, name)
        if option.kind == ACCOUNT:
            document[name] = _address(value)
        elif option.field.type == FieldDescriptor.TYPE_BYTES:
            document[name] = value.hex()
        elif not option.field.has_presence and name not in document:
            # MessageToDict leaves out zero values; every field of the command is shown.
            document[name] = _zero_document(option, value)
    return document


def _zero_document(option: CallOption, value: Any) -> Any:
    if option.kind == ENUM:
        return option.field.enum_type.values_by_number[value].name
    if option.field.type in _INTEGER_RANGES and option.field.cpp_type in (
        FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64
    ):
        return u64(value)
    return value


def argument_fields(spec: CallSpec, call: Message, token: Token) -> list[tuple[str, object]]:
    """The call's fields as `name: value` lines, named by their options."""
    fields = []
    for option in call_options(spec):
        value = getattr(call, option.field.name)
        if option.kind == ACCOUNT:
            value = _address(value)
        elif option.kind == AMOUNT:
            value = token.format(value)
        elif option.field.type == FieldDescriptor.TYPE_BYTES:
            value = value.hex()
        elif option.kind == ENUM:
            value = option.field.enum_type.values_by_number[value].name
        fields.append((option.option[2:], value))
    json_only = [field for field in spec.message.DESCRIPTOR.fields if _json_only(field)]
    documents = arguments_document(spec, call)
    for field in json_only:
        document = documents.get(field.name)
        if document is not None:
            fields.append((field.name, json.dumps(document, sort_keys=True)))
    return fields


def _address(public_key: bytes) -> str:
    # A wrong-length account is shown as sent (the node refuses it with its own reason).
    return encode_address(public_key) if len(public_key) == 32 else public_key.hex()


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
