"""Canonical decoding: a signed or hashed message is accepted only in its one canonical encoding.

Protobuf parsers accept many byte strings for one message: fields in any order, a singular field
written twice (the last one wins, a first-occurrence decoder reads the other), unknown fields
(which Python's protobuf keeps and writes back out), default values written explicitly and
varints padded with extra bytes. A hash over such bytes is an id that anyone relaying them can
change without the signer. So every message that is signed or hashed (Transaction,
TransactionBody, Header, VoteBody, Vote, Commit, Receipt) is decoded here: parse, drop unknown
fields, re-encode deterministically and compare with the bytes received. The canonical form is
the one docs/protocol.md ("Canonical encoding") specifies: known fields only, each at most once
(repeated ones consecutively), in increasing field number, default-valued scalars left out, every
varint minimal, repeated numeric fields packed.

The comparison decides; the wire scan below only explains the first difference in words.
"""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from proto import types_pb2
from runtime.arithmetic import U32_MAX

M = TypeVar("M", bound=Message)

_VARINT, _FIXED64, _LENGTH_DELIMITED, _START_GROUP, _END_GROUP, _FIXED32 = 0, 1, 2, 3, 4, 5
_WIRE_TYPES = {
    FieldDescriptor.TYPE_DOUBLE: _FIXED64,
    FieldDescriptor.TYPE_FLOAT: _FIXED32,
    FieldDescriptor.TYPE_FIXED64: _FIXED64,
    FieldDescriptor.TYPE_SFIXED64: _FIXED64,
    FieldDescriptor.TYPE_FIXED32: _FIXED32,
    FieldDescriptor.TYPE_SFIXED32: _FIXED32,
    FieldDescriptor.TYPE_STRING: _LENGTH_DELIMITED,
    FieldDescriptor.TYPE_BYTES: _LENGTH_DELIMITED,
    FieldDescriptor.TYPE_MESSAGE: _LENGTH_DELIMITED,
}


class EncodingError(ValueError):
    """Bytes that do not decode as the message, or are not its canonical encoding."""


def decode_canonical(message_class: type[M], raw: bytes, what: str) -> M:
    """Decode `raw` as `message_class`; EncodingError unless `raw` is its canonical encoding."""
    message = message_class()
    try:
        message.ParseFromString(raw)
    except (DecodeError, ValueError, RecursionError):
        raise EncodingError(f"bytes do not decode as a {what}: the protobuf wire format is malformed") from None
    # Unknown fields are kept by the parser and re-emitted by the encoder: drop them (in nested
    # messages too) so that the comparison below fails when there were any.
    message.DiscardUnknownFields()
    canonical = message.SerializeToString(deterministic=True)
    if canonical != raw:
        reason = explain_difference(message_class.DESCRIPTOR, raw, canonical)
        raise EncodingError(f"{what} is not canonically encoded: {reason}")
    return message


# --- the messages the chain signs or hashes ------------------------------------------


def decode_transaction(
    raw: bytes, body_class: type[Message] = types_pb2.TransactionBody
) -> tuple[types_pb2.Transaction, types_pb2.TransactionBody]:
    """A signed transaction and its body (a `body_class`: the runtime's TransactionBody), both canonical;
    EncodingError otherwise."""
    transaction = decode_canonical(types_pb2.Transaction, raw, "transaction")
    body = decode_canonical(body_class, transaction.body, "transaction body")
    return transaction, body


def decode_header(raw: bytes) -> types_pb2.Header:
    """A block header from its canonical bytes (block import and clients); EncodingError otherwise."""
    return decode_canonical(types_pb2.Header, raw, "block header")


def decode_vote_body(raw: bytes) -> types_pb2.VoteBody:
    """What a validator signed, from its canonical bytes; EncodingError otherwise."""
    return decode_canonical(types_pb2.VoteBody, raw, "vote body")


def decode_commit(raw: bytes) -> types_pb2.Commit:
    """A commit from its canonical bytes, each precommit's body canonical too; EncodingError otherwise."""
    commit = decode_canonical(types_pb2.Commit, raw, "commit")
    for index, vote in enumerate(commit.precommits):
        decode_canonical(types_pb2.VoteBody, vote.body, f"vote body of precommit {index}")
    return commit


def decode_receipt(raw: bytes) -> types_pb2.Receipt:
    """A transaction's receipt from its canonical bytes (the leaf of receipts_root); EncodingError otherwise."""
    return decode_canonical(types_pb2.Receipt, raw, "receipt")


# --- explaining a difference ---------------------------------------------------------


class _Explained(Exception):
    """Carries the first reason found while scanning the wire format."""


def explain_difference(descriptor: Descriptor, raw: bytes, canonical: bytes) -> str:
    """Why `raw` is not the canonical encoding `canonical` of the message it decodes to, in words."""
    try:
        _scan(descriptor, raw, "")
    except _Explained as reason:
        return str(reason)
    except (IndexError, ValueError):
        pass  # a malformed region the parser tolerated: fall back to the byte position
    offset = next(
        (position for position, (a, b) in enumerate(zip(raw, canonical)) if a != b), min(len(raw), len(canonical))
    )
    return f"it differs from the canonical encoding from byte {offset} on ({len(raw)} bytes, {len(canonical)} canonical)"


def _scan(descriptor: Descriptor, raw: bytes, where: str) -> None:
    """Walk the fields of `raw`; raise _Explained at the first thing the canonical form does not allow."""
    offset, previous = 0, 0
    while offset < len(raw):
        tag, offset = _read_varint(raw, offset, f"a field tag{where}")
        number, wire_type = tag >> 3, tag & 7
        field = descriptor.fields_by_number.get(number)
        if field is None:
            raise _Explained(f"unknown field {number}{where}")
        name = f"field {field.name} ({number}){where}"
        if number < previous:
            raise _Explained(f"{name} comes after field {previous}: fields must be in increasing number order")
        if number == previous and not _is_repeated(field):
            raise _Explained(f"{name} appears more than once")
        expected = _LENGTH_DELIMITED if _is_packed(field) else _WIRE_TYPES.get(field.type, _VARINT)
        if wire_type != expected:
            raise _Explained(f"{name} has wire type {wire_type}, its type needs {expected}")
        offset = _scan_value(field, raw, offset, name, where)
        previous = number


def _scan_value(field: FieldDescriptor, raw: bytes, offset: int, name: str, where: str) -> int:
    """Check one field's value starting at `offset`; the offset after it."""
    # Fields without presence (proto3 scalars outside a oneof) are left out when they hold the default.
    implicit = not _is_repeated(field) and not field.has_presence
    wire_type = _LENGTH_DELIMITED if _is_packed(field) else _WIRE_TYPES.get(field.type, _VARINT)
    if wire_type == _VARINT:
        value, offset = _read_varint(raw, offset, name)
        if field.type == FieldDescriptor.TYPE_BOOL and value > 1:
            raise _Explained(f"{name} holds {value}, a boolean is written as 1")
        if field.type == FieldDescriptor.TYPE_UINT32 and value > U32_MAX:
            raise _Explained(f"{name} holds {value}, beyond its 32 bits")
        if implicit and value == 0:
            raise _Explained(f"{name} is written with its default value 0; default values are left out")
        return offset
    if wire_type in (_FIXED64, _FIXED32):
        end = offset + (8 if wire_type == _FIXED64 else 4)
        if implicit and not any(raw[offset:end]):
            raise _Explained(f"{name} is written with its default value 0; default values are left out")
        return end
    length, offset = _read_varint(raw, offset, f"the length of {name}")
    payload = raw[offset : offset + length]
    if len(payload) != length:
        raise ValueError("truncated")
    if implicit and length == 0:
        raise _Explained(f"{name} is written empty, its default value; default values are left out")
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        _scan(field.message_type, payload, f" in {field.name}{where}")
    return offset + length


def _is_repeated(field: FieldDescriptor) -> bool:
    # protobuf 7 dropped `label` for `is_repeated`; 5.x has only `label`.
    repeated = getattr(field, "is_repeated", None)
    return repeated if repeated is not None else field.label == FieldDescriptor.LABEL_REPEATED


def _is_packed(field: FieldDescriptor) -> bool:
    """Repeated numeric fields are packed in proto3 (one length-delimited run)."""
    return _is_repeated(field) and field.type not in (
        FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES, FieldDescriptor.TYPE_MESSAGE
    )


def _read_varint(raw: bytes, offset: int, what: str) -> tuple[int, int]:
    """A varint at `offset` and the offset after it; _Explained when it is not minimally encoded."""
    value, shift, start = 0, 0, offset
    while True:
        byte = raw[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
        if shift >= 70:
            raise ValueError("varint too long")
    minimal = max(1, (value.bit_length() + 6) // 7)
    if offset - start != minimal:
        raise _Explained(f"{what} is a varint of {offset - start} bytes where {minimal} suffice")
    return value, offset
