"""Protobuf wire format by hand, for tests that build non-canonical encodings on purpose."""

from __future__ import annotations

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


def varint(value: int, padding: int = 0) -> bytes:
    """The varint of `value`; with `padding`, that many extra bytes (a non-minimal encoding of the same value)."""
    out = bytearray()
    while True:
        out.append(value & 0x7F | 0x80)
        value >>= 7
        if not value:
            break
    out.extend([0x80] * padding)
    out[-1] &= 0x7F  # the last byte ends the varint
    return bytes(out)


def tag(number: int, wire_type: int, padding: int = 0) -> bytes:
    return varint(number << 3 | wire_type, padding)


def length_delimited(number: int, payload: bytes, length_padding: int = 0) -> bytes:
    return tag(number, LENGTH_DELIMITED) + varint(len(payload), length_padding) + payload


def varint_field(number: int, value: int) -> bytes:
    return tag(number, VARINT) + varint(value)


def fixed_field(number: int, wire_type: int, payload_byte: int = 1) -> bytes:
    size = 8 if wire_type == FIXED64 else 4
    return tag(number, wire_type) + bytes([payload_byte]) * size


def split_fields(raw: bytes) -> list[tuple[int, bytes]]:
    """The top-level fields of well-formed protobuf bytes: (field number, the field's whole encoding)."""
    fields, offset = [], 0
    while offset < len(raw):
        start = offset
        key, offset = _read_varint(raw, offset)
        number, wire_type = key >> 3, key & 7
        if wire_type == VARINT:
            _, offset = _read_varint(raw, offset)
        elif wire_type == LENGTH_DELIMITED:
            length, offset = _read_varint(raw, offset)
            offset += length
        elif wire_type == FIXED64:
            offset += 8
        elif wire_type == FIXED32:
            offset += 4
        else:
            raise ValueError(f"wire type {wire_type} is not used here")
        fields.append((number, raw[start:offset]))
    return fields


def _read_varint(raw: bytes, offset: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = raw[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, offset
