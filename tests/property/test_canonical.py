"""Property tests of canonical decoding: every message round-trips, every re-wrapping is refused."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from proto import proof_pb2, state_pb2, types_pb2
from runtime.encoding import EncodingError, decode_canonical
from runtime.executive import TRANSACTION_SIGNING_CONTEXT, MalformedTransaction, check_transaction, transaction_rules
from runtime.hashing import transaction_hash
from tests.runtime.helpers import ACCOUNTS, CHAIN_ID, GENESIS_HASH, genesis_state
from tests.wire import FIXED32, FIXED64, LENGTH_DELIMITED, VARINT, length_delimited, split_fields, tag, varint

RULES = transaction_rules(genesis_state())
SIGNERS = ACCOUNTS[:4]

MESSAGES = [
    types_pb2.Transaction, types_pb2.TransactionBody, types_pb2.Header, types_pb2.Block, types_pb2.VoteBody,
    types_pb2.Vote, types_pb2.Commit, types_pb2.ValidatorSet, types_pb2.Receipt, types_pb2.BlockReceipts,
    types_pb2.FinalizedBlock, proof_pb2.StateProof, proof_pb2.MerkleProof, state_pb2.AccountInfo,
    types_pb2.PostJob, types_pb2.RevealResult, types_pb2.ProposeModel, types_pb2.SetOffer, state_pb2.Job,
    state_pb2.StakeLedger,
]

_SCALARS = {
    FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_STRING: st.text(max_size=12),
    FieldDescriptor.TYPE_BYTES: st.binary(max_size=40),
    # Open enums: values the schema does not name are kept and re-encoded as they are.
    FieldDescriptor.TYPE_ENUM: st.integers(0, 5),
}


def _is_repeated(field: FieldDescriptor) -> bool:
    repeated = getattr(field, "is_repeated", None)
    return repeated if repeated is not None else field.label == FieldDescriptor.LABEL_REPEATED


def messages(message_class, depth: int = 0) -> st.SearchStrategy:
    """Arbitrary messages of `message_class`, built from its descriptor (nested ones to depth 2)."""
    values = {}
    for field in message_class.DESCRIPTOR.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth >= 2:
                continue
            value = messages(GetMessageClass(field.message_type), depth + 1)
        else:
            value = _SCALARS[field.type]
        values[field.name] = st.lists(value, max_size=3) if _is_repeated(field) else value
    return st.fixed_dictionaries({}, optional=values).map(lambda chosen: _build(message_class, chosen))


def _build(message_class, chosen: dict):
    message = message_class()
    for name, value in chosen.items():
        field = message_class.DESCRIPTOR.fields_by_name[name]
        if _is_repeated(field):
            getattr(message, name).extend(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(message, name).CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


def any_message() -> st.SearchStrategy:
    return st.sampled_from(MESSAGES).flatmap(lambda cls: messages(cls).map(lambda message: (cls, message)))


# --- round trips -----------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_message())
def test_the_canonical_bytes_of_any_message_decode_to_it(case):
    message_class, message = case
    raw = message.SerializeToString(deterministic=True)
    assert decode_canonical(message_class, raw, "message") == message


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(MESSAGES), st.binary(max_size=200))
def test_arbitrary_bytes_are_accepted_only_when_canonical(message_class, raw):
    try:
        message = decode_canonical(message_class, raw, "message")
    except EncodingError as error:
        assert str(error).startswith(("bytes do not decode as a message", "message is not canonically encoded: "))
    else:
        assert message.SerializeToString(deterministic=True) == raw


# --- non-canonical variants of arbitrary messages ----------------------------------


def _insert_unknown_field(message_class, fields, draw):
    known = set(message_class.DESCRIPTOR.fields_by_number)
    number = draw(st.integers(1, 2**29 - 1).filter(lambda n: n not in known))
    wire_type = draw(st.sampled_from([VARINT, FIXED64, LENGTH_DELIMITED, FIXED32]))
    payload = {VARINT: varint(draw(st.integers(0, 2**64 - 1))), FIXED64: bytes(8), FIXED32: bytes(4)}
    encoding = (
        length_delimited(number, draw(st.binary(max_size=8)))
        if wire_type == LENGTH_DELIMITED else tag(number, wire_type) + payload[wire_type]
    )
    fields.insert(draw(st.integers(0, len(fields))), (number, encoding))
    return "unknown field"


def _swap_two_fields(message_class, fields, draw):
    assume(len({number for number, _ in fields}) >= 2)
    first = draw(st.integers(0, len(fields) - 2))
    second = draw(st.integers(first + 1, len(fields) - 1))
    assume(fields[first][0] != fields[second][0])
    fields[first], fields[second] = fields[second], fields[first]
    return "fields must be in increasing number order"


def _repeat_a_singular_field(message_class, fields, draw):
    singular = [i for i, (number, _) in enumerate(fields) if not _is_repeated(message_class.DESCRIPTOR.fields_by_number[number])]
    assume(singular)
    position = draw(st.sampled_from(singular))
    fields.insert(position, fields[position])
    return "appears more than once"


def _pad_a_tag(message_class, fields, draw):
    assume(fields)
    position = draw(st.integers(0, len(fields) - 1))
    number, encoding = fields[position]
    old_tag_length = len(tag(number, 0))
    fields[position] = (number, tag(number, encoding[0] & 7, padding=draw(st.integers(1, 3))) + encoding[old_tag_length:])
    return "a field tag is a varint of"


def _write_a_default_value(message_class, fields, draw):
    present = {number for number, _ in fields}
    implicit = [
        field for field in message_class.DESCRIPTOR.fields
        if field.number not in present and not _is_repeated(field) and not field.has_presence
    ]
    assume(implicit)
    field = draw(st.sampled_from(implicit))
    default = length_delimited(field.number, b"") if field.type in (
        FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES
    ) else tag(field.number, VARINT) + varint(0)
    fields.append((field.number, default))
    fields.sort(key=lambda item: item[0])
    return "default value"


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(
    any_message(),
    st.sampled_from([_insert_unknown_field, _swap_two_fields, _repeat_a_singular_field, _pad_a_tag, _write_a_default_value]),
    st.data(),
)
def test_every_re_encoding_of_a_message_is_refused_with_its_reason(case, mutation, data):
    message_class, message = case
    canonical = message.SerializeToString(deterministic=True)
    fields = split_fields(canonical)
    reason = mutation(message_class, fields, data.draw)
    raw = b"".join(encoding for _, encoding in fields)
    assert raw != canonical
    with pytest.raises(EncodingError) as raised:
        decode_canonical(message_class, raw, "message")
    assert str(raised.value).startswith("message is not canonically encoded: ")
    assert reason in str(raised.value)


# --- transactions: canonical ones pass, re-wrapped ones never --------------------------


@st.composite
def signed_transactions(draw):
    """A valid signed transfer: (signer, body bytes, transaction bytes)."""
    signer = draw(st.sampled_from(SIGNERS))
    body = types_pb2.TransactionBody(
        chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH, sender=signer.public_key,
        nonce=draw(st.integers(0, 2**64 - 1)), fee=draw(st.integers(0, 2**64 - 1)),
        transfer=types_pb2.Transfer(dest=draw(st.binary(min_size=32, max_size=32)), amount=draw(st.integers(1, 2**64 - 1))),
    ).SerializeToString()
    signature = signer.private.sign(TRANSACTION_SIGNING_CONTEXT + body)
    return signer, body, types_pb2.Transaction(body=body, signature=signature).SerializeToString()


def _rewrap(draw, raw: bytes) -> bytes:
    body_field, signature_field = (encoding for _, encoding in split_fields(raw))
    body = types_pb2.Transaction.FromString(raw).body
    way = draw(st.sampled_from(["unknown", "reordered", "junk body first", "repeated signature", "padded length"]))
    if way == "unknown":
        extra = tag(draw(st.integers(3, 2**29 - 1)), VARINT) + varint(draw(st.integers(0, 2**64 - 1)))
        parts = [body_field, signature_field]
        parts.insert(draw(st.integers(0, 2)), extra)
        return b"".join(parts)
    if way == "reordered":
        return signature_field + body_field
    if way == "junk body first":
        return length_delimited(1, draw(st.binary(max_size=60))) + raw
    if way == "repeated signature":
        return raw + signature_field
    return length_delimited(1, body, length_padding=draw(st.integers(1, 3))) + signature_field


@settings(max_examples=150, deadline=None)
@given(signed_transactions(), st.data())
def test_a_valid_transaction_passes_and_any_re_wrapping_of_it_is_refused(transaction, data):
    _, _, raw = transaction
    assert check_transaction(raw, RULES).hash == transaction_hash(raw)
    rewrapped = _rewrap(data.draw, raw)
    with pytest.raises(MalformedTransaction) as raised:
        check_transaction(rewrapped, RULES)
    assert str(raised.value).startswith("transaction is not canonically encoded: ")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(signed_transactions(), st.sampled_from([_insert_unknown_field, _swap_two_fields, _pad_a_tag, _write_a_default_value]), st.data())
def test_a_body_the_signer_encoded_non_canonically_is_refused(transaction, mutation, data):
    signer, body, _ = transaction
    fields = split_fields(body)
    mutation(types_pb2.TransactionBody, fields, data.draw)
    odd_body = b"".join(encoding for _, encoding in fields)
    signature = signer.private.sign(TRANSACTION_SIGNING_CONTEXT + odd_body)
    raw = types_pb2.Transaction(body=odd_body, signature=signature).SerializeToString()
    with pytest.raises(MalformedTransaction) as raised:
        check_transaction(raw, RULES)
    assert str(raised.value).startswith("transaction body is not canonically encoded: ")
