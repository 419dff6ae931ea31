"""Reading and showing the fields of a runtime message by the kinds its module declares.

The commands built from the registry share this: `inferchain tx CALL` reads a call's fields from
options (CallSpec.fields), `inferchain query MODULE QUERY` reads a query's request fields and shows
its response (QuerySpec.fields). Each scalar field, repeated or not, is one option, read by its kind
(runtime/module.py):

    account  a dev name, key file, SS58 address or hex public key (32 bytes on the wire)
    amount   base units (1500) or tokens with the symbol (1.5INFER)
    hash     64 hex digits
    integer  a whole number in the field's range
    text     UTF-8 text, as given (also for a `bytes` field declared TEXT: never read as hex)
    bytes    hex digits
    boolean  true or false

A field its module declares no kind for is read by its wire type: bytes as hex, strings as text,
booleans, enums by a value's name, integers in range. A repeated field's option is given once per
value or once with a comma-separated list (not for text, which may hold commas). Nested message
fields have no option: they are given as JSON (`tx CALL --call-json`).

Shown: accounts as SS58 addresses, amounts in tokens for people and base units in JSON, hashes and
bytes as hex, 64-bit integers as decimal strings in JSON (docs/cli.md, "JSON output").
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from chain.cli.errors import EXIT_BAD_INPUT, EXIT_USAGE, CliError
from chain.cli.output import Token, u64
from chain.client import ClientError, decode_hash
from chain.keys import KeyResolutionError, resolve_account
from chain.ss58 import encode_address
from chain.text import quote_input, quote_number
from runtime.arithmetic import U32_MAX, U64_MAX
from runtime.models import class_name_problem
from runtime.module import ACCOUNT, AMOUNT, BOOLEAN, BYTES, HASH, INTEGER, TEXT
from runtime.params import IntegerOutOfRange, NotAnInteger, whole_number
from runtime.staking.errors import InvalidOffer
from runtime.staking.offers import check_endpoint

# Kinds for fields whose module declares none, from the wire type.
HEX = BYTES
ENUM = "enum"
NUMBER = "number"
# The most bytes a hex option is read into: a call is at most a transaction (64 KiB by default);
# longer text is refused before it is decoded.
MAX_BYTES = 100_000
# The most values one repeated option takes (a comma list included): bounded work per command line.
MAX_VALUES = 1_000
INTEGER_RANGES = {
    FieldDescriptor.TYPE_UINT64: (0, U64_MAX),
    FieldDescriptor.TYPE_FIXED64: (0, U64_MAX),
    FieldDescriptor.TYPE_UINT32: (0, U32_MAX),
    FieldDescriptor.TYPE_FIXED32: (0, U32_MAX),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
}
_WIDE_INTEGERS = (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64)
KIND_HELP = {
    ACCOUNT: "a dev name (alice, bob, ...), key file, SS58 address or hex public key",
    AMOUNT: "base units (1500) or tokens with the symbol (1.5INFER)",
    HASH: "64 hex digits",
    INTEGER: "a whole number",
    TEXT: "text",
    BYTES: "bytes as hex digits",
    BOOLEAN: "true or false",
    NUMBER: "a number",
}


def is_repeated(field: FieldDescriptor) -> bool:
    # protobuf 7 dropped `label` for `is_repeated`; setup.cfg allows from 5.26.
    if hasattr(field, "is_repeated"):
        return field.is_repeated
    return field.label == FieldDescriptor.LABEL_REPEATED


def is_nested(field: FieldDescriptor) -> bool:
    """A message field: given as JSON, never as an option."""
    return field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP)


def field_kind(kinds: Mapping[str, str], field: FieldDescriptor) -> str:
    """The declared kind where the wire type can hold it, otherwise one from the wire type."""
    declared = kinds.get(field.name)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return declared if declared in (ACCOUNT, HASH, TEXT) else BYTES
    if field.type in INTEGER_RANGES:
        return declared if declared in (AMOUNT, INTEGER) else INTEGER
    if field.type == FieldDescriptor.TYPE_STRING:
        return TEXT
    if field.type == FieldDescriptor.TYPE_BOOL:
        return BOOLEAN
    if field.type == FieldDescriptor.TYPE_ENUM:
        return ENUM
    return NUMBER


@dataclass(frozen=True)
class FieldOption:
    """One scalar field of a message (repeated or not), as a command-line option."""

    field: FieldDescriptor
    option: str  # "--to"
    kind: str  # ACCOUNT, AMOUNT, ... (runtime/module.py) or ENUM, NUMBER
    default: str | None = None  # read as the option would read it when the option is left out
    optional: bool = False  # left out, the field keeps its zero value (a query's filters)

    @property
    def repeated(self) -> bool:
        return is_repeated(self.field)

    @property
    def required(self) -> bool:
        # A plain proto3 scalar cannot tell "unset" from zero: the command asks for it. A boolean
        # left out is false, as a flag would be; a repeated field left out is empty.
        if self.optional or self.repeated or self.default is not None or self.kind == BOOLEAN:
            return False
        return not self.field.has_presence

    @property
    def dest(self) -> str:
        return f"field_{self.field.name}"


def field_options(
    descriptor: Descriptor,
    kinds: Mapping[str, str],
    renames: Mapping[str, str] = {},
    defaults: Mapping[str, str] = {},
    optional: bool = False,
    reserved: Iterable[str] = (),
) -> list[FieldOption]:
    """An option for each scalar field of a message, named (renames: field -> option name) and read by its kind.

    A field whose option would be one of the command's own (`reserved`, such as --node) is given as
    --field-NAME instead, so no module's field name can break a command.
    """
    taken = set(reserved) | {"--help"}
    options = []
    for field in descriptor.fields:
        if is_nested(field):
            continue
        option = "--" + renames.get(field.name, field.name).replace("_", "-")
        if option in taken:
            option = "--field-" + field.name.replace("_", "-")
        options.append(FieldOption(field, option, field_kind(kinds, field), defaults.get(field.name), optional))
    return options


def add_field_options(parser: argparse.ArgumentParser, options: Iterable[FieldOption], json_option: str = "") -> None:
    """Add each option to the parser, with its kind as metavar and a help line saying how it is read."""
    for option in options:
        if option.repeated:
            parser.add_argument(option.option, dest=option.dest, metavar=option.kind.upper(), action="append",
                                help=option_help(option, json_option))
        elif option.kind == BOOLEAN:  # `--validate` alone is `--validate true`
            parser.add_argument(option.option, dest=option.dest, metavar=option.kind.upper(), nargs="?",
                                const="true", help=option_help(option, json_option))
        else:
            parser.add_argument(option.option, dest=option.dest, metavar=option.kind.upper(),
                                help=option_help(option, json_option))


def option_help(option: FieldOption, json_option: str = "") -> str:
    kind = option.kind
    if kind == ENUM:
        how = "one of " + ", ".join(value.name for value in option.field.enum_type.values)
    elif kind == INTEGER and option.field.type in INTEGER_RANGES:
        low, high = INTEGER_RANGES[option.field.type]
        how = f"a whole number from {low} to {high}"
    else:
        how = KIND_HELP[kind]
    if option.repeated:
        each = "repeat the option for each value" + ("" if kind == TEXT else " or give a comma-separated list")
        return f"{option.field.name} ({kind}, repeated): {how}; {each}; optional (default: none)"
    if kind == BOOLEAN:
        return f"{option.field.name} ({kind}): {how}, the option alone is true; optional (default: false)"
    if option.default is not None:
        return f"{option.field.name} ({kind}): {how}; optional (default: {option.default or 'none'})"
    if option.required:
        required = f"required unless in {json_option}" if json_option else "required"
    else:
        required = "optional"
    return f"{option.field.name} ({kind}): {how}; {required}"


# --- reading values -------------------------------------------------------------------


def read_options(
    message: Message, options: Iterable[FieldOption], args: argparse.Namespace, token: Callable[[], Token],
    already: frozenset[str] = frozenset(),
) -> set[str]:
    """Set the message's fields from the options given, then the defaults of fields neither given nor in `already`.

    Returns the names of the fields set.
    """
    given = set()
    for option in options:
        text = getattr(args, option.dest, None)
        if text is None and option.default is not None and option.field.name not in already:
            text = [option.default] if option.repeated else option.default
        if text is None:
            continue
        if option.repeated:
            set_field(message, option, parse_values(option, text, option.option, token))
        else:
            set_field(message, option, parse_value(option, text, option.option, token))
        given.add(option.field.name)
    return given


def set_field(message: Message, option: FieldOption, value: Any) -> None:
    if option.repeated:
        values = getattr(message, option.field.name)
        del values[:]
        values.extend(value)
    else:
        setattr(message, option.field.name, value)


def parse_values(option: FieldOption, values: Any, where: str, token: Callable[[], Token] = Token) -> list:
    """A repeated field's values: a list of option texts (each a comma list, except text) or a JSON list."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        raise CliError(f"{where} must be a list, got {quote_input(json.dumps(values))}", EXIT_USAGE)
    items: list = []
    for value in values:
        if isinstance(value, str) and option.kind != TEXT:
            items += [part for part in value.split(",")] if value.strip() else []
        else:
            items.append(value)
        if len(items) > MAX_VALUES:
            raise CliError(f"{where} takes at most {MAX_VALUES} values", EXIT_USAGE)
    return [parse_value(option, item, where, token) for item in items]


def parse_value(option: FieldOption, value: Any, where: str, token: Callable[[], Token] = Token) -> Any:
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
        return parse_amount_value(value, where, token, INTEGER_RANGES[field.type][1])
    if kind == INTEGER:
        return parse_integer(value, where, *INTEGER_RANGES[field.type])
    if kind == HASH:
        return parse_hash(value, where)
    if kind == BYTES:
        return parse_hex(value, where)
    if kind == ENUM:
        return parse_enum(value, where, field)
    if kind == NUMBER:
        return parse_number(value, where)
    text = parse_text(value, where)
    return text.encode("utf-8") if field.type == FieldDescriptor.TYPE_BYTES else text


def parse_account(text: str, where: str) -> bytes:
    try:
        return resolve_account(text).public_key
    except KeyResolutionError as error:
        raise CliError(f"{where}: {error}", EXIT_BAD_INPUT) from None


def parse_integer(text: str, where: str, low: int, high: int) -> int:
    """A whole number in [low, high], ASCII digits with an optional sign and `_` separators.

    The runtime's rule (runtime/params.py whole_number) after the command line's separators are dropped;
    out of range, the message names the range and says the number (by its length when long, never cut).
    """
    try:
        return whole_number(text.strip().replace("_", ""), low, high)
    except NotAnInteger:
        raise CliError(f"{where} must be a whole number, got {quote_number(text)}", EXIT_USAGE) from None
    except IntegerOutOfRange as error:
        raise CliError(f"{where} must be from {low} to {high}, got {error.shown}", EXIT_USAGE) from None


def parse_amount_value(text: str, where: str, token: Callable[[], Token], maximum: int) -> int:
    """Base units from a plain whole number, or tokens with the chain's symbol (asks the node for it)."""
    cleaned = text.strip().replace("_", "")
    if cleaned.isascii() and cleaned.isdigit():
        significant = cleaned.lstrip("0")
        if len(significant) > len(str(maximum)) or int(significant or "0") > maximum:
            raise CliError(f"{where} must be at most {maximum} base units, got {quote_number(cleaned, 24)}", EXIT_USAGE)
        return int(cleaned)
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
    if len(digits) > 2 * MAX_BYTES:
        raise CliError(f"{where} is {len(digits)} hex digits; at most {MAX_BYTES} bytes are read", EXIT_USAGE)
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
    if len(text) > MAX_BYTES:
        raise CliError(f"{where} is {len(text)} characters; at most {MAX_BYTES} are read", EXIT_USAGE)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CliError(f"{where} is not valid UTF-8 text", EXIT_USAGE) from None
    return text


# --- showing values -------------------------------------------------------------------


def address_text(public_key: bytes) -> str:
    """An account as its SS58 address; a wrong-length one as hex, as sent (the node refuses it with its reason)."""
    return encode_address(public_key) if len(public_key) == 32 else public_key.hex()


def value_text(kind: str, field: FieldDescriptor, value: Any, token: Token) -> str:
    """One scalar value for people: accounts in SS58, amounts in tokens, bytes in hex."""
    if kind == ACCOUNT:
        return address_text(value)
    if kind == AMOUNT:
        return token.format(value)
    if kind == TEXT and isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, bytes):
        return value.hex()
    if kind == ENUM:
        return _enum_name(field, value)
    if kind == BOOLEAN:
        return "true" if value else "false"
    return str(value)


def value_document(kind: str, field: FieldDescriptor, value: Any) -> Any:
    """One scalar value as JSON: accounts in SS58, bytes in hex, 64-bit integers as strings, enums by name."""
    if kind == ACCOUNT:
        return address_text(value)
    if kind == TEXT and isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, bytes):
        return value.hex()
    if field.type == FieldDescriptor.TYPE_ENUM:
        return _enum_name(field, value)
    if field.cpp_type in _WIDE_INTEGERS:
        return u64(value)
    return value


def _enum_name(field: FieldDescriptor, value: int) -> Any:
    known = field.enum_type.values_by_number.get(value)
    return known.name if known is not None else value


def message_document(message: Message, kinds: Mapping[str, str] = {}) -> dict:
    """Every field of a message as JSON (zero values too), by `value_document`; nested messages alike."""
    document = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if is_nested(field):
            if is_repeated(field):
                document[field.name] = [message_document(item) for item in value]
            elif message.HasField(field.name):
                document[field.name] = message_document(value)
            continue
        kind = field_kind(kinds, field)
        if is_repeated(field):
            document[field.name] = [value_document(kind, field, item) for item in value]
        else:
            document[field.name] = value_document(kind, field, value)
    return document


def message_fields(
    message: Message, kinds: Mapping[str, str], token: Token, names: Mapping[str, str] = {}
) -> list[tuple[str, object]]:
    """The message's fields as `name: value` lines (names: field -> shown name); lists comma-separated, nested as JSON."""
    lines: list[tuple[str, object]] = []
    for field in message.DESCRIPTOR.fields:
        name = names.get(field.name, field.name)
        value = getattr(message, field.name)
        if is_nested(field):
            if is_repeated(field) and value:
                lines.append((name, json.dumps([message_document(item) for item in value], sort_keys=True)))
            elif not is_repeated(field) and message.HasField(field.name):
                lines.append((name, json.dumps(message_document(value), sort_keys=True)))
            continue
        kind = field_kind(kinds, field)
        if is_repeated(field):
            lines.append((name, ",".join(value_text(kind, field, item, token) for item in value)))
        else:
            lines.append((name, value_text(kind, field, value, token)))
    return lines


def checked_endpoint(endpoint: str, option: str = "--stream-endpoint") -> str:
    """An offer endpoint given on the command line, checked as the chain checks it (CliError, exit 2, if not)."""
    try:
        check_endpoint(endpoint, InvalidOffer)
    except InvalidOffer as error:
        raise CliError(f"{option}: {error}", EXIT_USAGE) from None
    return endpoint


def engine_class_name(text: str) -> str:
    """An engine class name option (argparse type), checked as the chain checks one."""
    problem = class_name_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text
