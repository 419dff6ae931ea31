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
    """Parse `raw` (a JSON object) into the dataclass: defaults for absent fields, unknown ones refused."""
    if not isinstance(raw, Mapping):
        raise ParamsInvalid(f"{where} must be an object")
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

    The one parser of integers that a person writes for the runtime (genesis parameters, stakes,
    balances); raises ParamsInvalid (a ValueError) naming `where` and, past the limit, the limit
    (in `unit`, e.g. "base units"). A long number is described by its length, never cut: a cut
    one reads as a smaller valid value.
    """
    if isinstance(value, bool):
        raise ParamsInvalid(f"{where} must be an integer written as a string")
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            shown = repr(value) if len(value) <= 24 else f"{value[:24]!r}… ({len(value)} characters)"
            raise ParamsInvalid(f"{where} must be an integer written as a string of digits, got {shown}")
        significant = value.lstrip("0")
        if len(significant) > len(str(limit)):  # refused before int() reads thousands of digits
            raise ParamsInvalid(_over_limit(where, limit, unit, f"a {len(significant)}-digit number"))
        number = int(value)
    elif isinstance(value, int):
        number = value
    else:
        raise ParamsInvalid(f"{where} must be an integer written as a string")
    if number < 0:
        raise ParamsInvalid(f"{where} must be in [0, {_bound(limit)}), got {number}")
    if number > limit:
        digits = len(str(number))
        raise ParamsInvalid(_over_limit(where, limit, unit, str(number) if digits <= 24 else f"a {digits}-digit number"))
    return number


def _bound(limit: int) -> str:
    return f"2^{limit.bit_length()}" if limit & (limit + 1) == 0 else str(limit + 1)


def _over_limit(where: str, limit: int, unit: str, shown: str) -> str:
    return f"{where} must be in [0, {_bound(limit)}): at most {limit}{' ' + unit if unit else ''}, got {shown}"
