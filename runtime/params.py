"""Module parameters: typed dataclasses in code, protobuf in state, JSON in genesis.

A module's parameters are a frozen dataclass (defaults and `validate()` beside the
rules that use them) mirrored field by field by a protobuf message. The protobuf
descriptor is the schema: it says which fields are 64-bit integers (written as
strings in JSON, which loses precision past 2^53), smaller integers (JSON numbers)
and strings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from runtime.arithmetic import U32_MAX, U64_MAX

_U64_TYPES = {FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64}
_U32_TYPES = {FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32}
_LIMITS = {**{kind: U64_MAX for kind in _U64_TYPES}, **{kind: U32_MAX for kind in _U32_TYPES}}
MAX_TEXT_PARAM = 32


class ParamsInvalid(ValueError):
    """Parameters that cannot be used; the message names the field."""


@dataclass(frozen=True)
class ParamsSpec:
    """A module's parameters: a frozen dataclass, stored as a protobuf message under `key`."""

    type: type
    message: type[Message]
    key: bytes
    # Parameters that were once this module's and moved to another module's, each with the genesis section that
    # holds it now: a genesis that still sets one here is refused with a message that says where it went.
    moved: tuple[tuple[str, str], ...] = ()


def encode_params(spec: ParamsSpec, params) -> bytes:
    """The stored form: the protobuf message, deterministically serialised."""
    return spec.message(**asdict(params)).SerializeToString(deterministic=True)


def decode_params(spec: ParamsSpec, raw: bytes | None):
    """The dataclass from its stored form."""
    if raw is None:
        raise ParamsInvalid(f"no parameters are stored under {spec.key!r}")
    message = spec.message.FromString(raw)
    return spec.type(**{item.name: getattr(message, item.name) for item in fields(spec.type)})


def params_to_json(spec: ParamsSpec, params) -> dict[str, Any]:
    """Genesis JSON: 64-bit integers as strings, smaller integers as numbers, text as strings."""
    document = {}
    for name, value in asdict(params).items():
        kind = spec.message.DESCRIPTOR.fields_by_name[name].type
        document[name] = str(value) if kind in _U64_TYPES else value
    return document


def params_from_json(spec: ParamsSpec, raw: Any, where: str):
    """Parse `raw` (a JSON object) into the dataclass: defaults for absent fields, unknown ones refused (and ones
    that moved to another module refused naming where they went)."""
    if not isinstance(raw, Mapping):
        raise ParamsInvalid(f"{where} must be an object")
    moved = _moved(spec, raw)
    if moved:
        raise ParamsInvalid(f"{where}: {moved}")
    known = [item.name for item in fields(spec.type)]
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ParamsInvalid(f"{where}: unknown parameter {unknown[0]!r} (known: {', '.join(sorted(known))})")
    values = {
        name: _field_value(spec.message.DESCRIPTOR.fields_by_name[name], value, f"{where}.{name}")
        for name, value in raw.items()
    }
    params = spec.type(**values)
    try:
        params.validate()
    except ValueError as error:
        raise ParamsInvalid(str(error)) from None
    return params


def _moved(spec: ParamsSpec, raw: Mapping[str, Any]) -> str:
    """What a genesis that sets parameters which moved to another module must do instead ("" when it sets none)."""
    homes: dict[str, list[str]] = {}
    for name, home in spec.moved:
        if name in raw:
            homes.setdefault(home, []).append(name)
    return "; ".join(
        f"{', '.join(names)} moved to {home}: set {'them' if len(names) > 1 else 'it'} there"
        for home, names in homes.items()
    )


def _field_value(descriptor: FieldDescriptor, value: Any, where: str):
    if descriptor.type == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT_PARAM:
            raise ParamsInvalid(f"{where} must be a string of 1 to {MAX_TEXT_PARAM} characters")
        return value
    limit = _LIMITS.get(descriptor.type)
    if limit is None:
        raise ParamsInvalid(f"{where} has a type genesis cannot hold")
    return parse_integer(value, where, limit)


def parse_integer(value: Any, where: str, limit: int = U64_MAX, unit: str = "") -> int:
    """An integer in [0, limit] from JSON: a string of ASCII digits (64-bit values) or a plain number.

    The genesis reading of `whole_number` (genesis parameters, stakes, balances): no sign, no
    separators. Raises ParamsInvalid (a ValueError) naming `where` and, past the limit, the limit
    (in `unit`, e.g. "base units").
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ParamsInvalid(f"{where} must be an integer written as a string")
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        shown = repr(value) if len(value) <= 24 else f"{value[:24]!r}… ({len(value)} characters)"
        raise ParamsInvalid(f"{where} must be an integer written as a string of digits, got {shown}")
    try:
        return whole_number(str(value), 0, limit)
    except IntegerOutOfRange as error:
        if error.below:
            raise ParamsInvalid(f"{where} must be in [0, {_bound(limit)}), got {error.shown}") from None
        raise ParamsInvalid(_over_limit(where, limit, unit, error.shown)) from None


class NotAnInteger(ValueError):
    """The text is not a whole number in decimal digits."""


class IntegerOutOfRange(ValueError):
    """A whole number outside the range asked for: `shown` says it (never cut), `below` whether it is under it."""

    def __init__(self, shown: str, below: bool):
        super().__init__(shown)
        self.shown = shown
        self.below = below


# Out of range, a number is quoted whole up to this many digits, past it by its length.
SHOWN_DIGITS = 24


def whole_number(text: str, low: int, high: int) -> int:
    """A whole number in [low, high] from ASCII decimal digits with an optional sign: the one rule for an integer a
    person writes (genesis JSON through parse_integer, command-line options through chain/cli/fields.py).

    Raises NotAnInteger, or IntegerOutOfRange. A number longer than the range allows is refused by its length
    before int() reads thousands of digits, and a long number is described by its length, never cut: a cut one
    reads as a smaller valid value.
    """
    sign = text[:1] if text[:1] in ("-", "+") else ""
    digits = text[len(sign):]
    if not (digits.isascii() and digits.isdigit()):
        raise NotAnInteger(text)
    significant = digits.lstrip("0")
    negative = sign == "-" and bool(significant)
    if len(significant) > max(len(str(abs(low))), len(str(abs(high)))):
        raise IntegerOutOfRange(_shown_number(significant, negative), below=negative)
    number = int(text)
    if not low <= number <= high:
        raise IntegerOutOfRange(_shown_number(significant, negative), below=number < low)
    return number


def _shown_number(significant: str, negative: bool) -> str:
    if len(significant) > SHOWN_DIGITS:
        return f"a {len(significant)}-digit number"
    return ("-" if negative else "") + (significant or "0")


def _bound(limit: int) -> str:
    return f"2^{limit.bit_length()}" if limit & (limit + 1) == 0 else str(limit + 1)


def _over_limit(where: str, limit: int, unit: str, shown: str) -> str:
    return f"{where} must be in [0, {_bound(limit)}): at most {limit}{' ' + unit if unit else ''}, got {shown}"
