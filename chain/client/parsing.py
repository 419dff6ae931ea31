"""Reading what callers hand the client: signed transaction bytes and hashes written in hex."""

from __future__ import annotations

from google.protobuf.message import DecodeError

from chain.client.errors import ClientError
from chain.client.results import TransactionSummary
from chain.text import quote_input
from proto import types_pb2
from runtime import hashing

# "0x" and 64 hex digits, with room for surrounding spaces; anything longer is refused unread.
_HASH_TEXT_LIMIT = 80


def describe_transaction(raw: bytes) -> TransactionSummary:
    """The sender, nonce, fee and call of signed transaction bytes; ClientError when they do not decode."""
    try:
        body = types_pb2.TransactionBody.FromString(types_pb2.Transaction.FromString(raw).body)
    except DecodeError:
        raise ClientError("INVALID_ARGUMENT", "the bytes are not a signed transaction") from None
    call = body.WhichOneof("call")
    arguments = getattr(body, call) if call else None
    return TransactionSummary(hashing.transaction_hash(raw), body.sender, body.nonce, body.fee, call or "", arguments)


def decode_hash(text: str, what: str = "hash") -> bytes:
    """32 bytes from 64 hex digits (0x optional); ClientError otherwise."""
    digits = text.strip() if len(text) <= _HASH_TEXT_LIMIT else ""
    digits = digits[2:] if digits.lower().startswith("0x") else digits
    try:
        raw = bytes.fromhex(digits) if digits.isascii() else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ClientError("INVALID_ARGUMENT", f"{quote_input(text)} is not a {what} (64 hex digits)")
    return raw
