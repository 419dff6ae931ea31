"""encoding: only the canonical encoding of a signed or hashed message is accepted, with a reason otherwise."""

from __future__ import annotations

import pytest

from proto import types_pb2
from runtime.encoding import (
    EncodingError,
    decode_canonical,
    decode_commit,
    decode_header,
    decode_receipt,
    decode_transaction,
    decode_vote_body,
)
from runtime.executive import (
    TRANSACTION_SIGNING_CONTEXT,
    BadSignature,
    MalformedTransaction,
    check_transaction,
    transaction_rules,
)
from runtime.hashing import transaction_hash
from tests.runtime.helpers import ACCOUNTS, genesis_state, transfer
from tests.wire import (
    FIXED32,
    FIXED64,
    length_delimited,
    split_fields,
    tag,
    varint,
    varint_field,
)

ALICE, BOB = ACCOUNTS[1], ACCOUNTS[2]
RULES = transaction_rules(genesis_state())
RAW = transfer(ALICE, BOB.public_key, 5, nonce=3)
TRANSACTION = types_pb2.Transaction.FromString(RAW)
BODY_FIELD, SIGNATURE_FIELD = (encoding for _, encoding in split_fields(RAW))


def refused(message_class, raw: bytes, what: str) -> str:
    with pytest.raises(EncodingError) as raised:
        decode_canonical(message_class, raw, what)
    return str(raised.value)


# --- the three re-wrappings of the issue, and the rest ----------------------------------


def test_a_canonical_transaction_decodes_to_its_fields():
    transaction, body = decode_transaction(RAW)
    assert transaction.body == TRANSACTION.body and transaction.signature == TRANSACTION.signature
    assert body.sender == ALICE.public_key and body.nonce == 3 and body.transfer.amount == 5


def test_an_extra_unknown_field_is_refused():
    message = refused(types_pb2.Transaction, RAW + varint_field(3, 1), "transaction")
    assert message == "transaction is not canonically encoded: unknown field 3"


@pytest.mark.parametrize("extra", [varint_field(99, 7), length_delimited(1000, b"x"), tag(7, FIXED32) + b"abcd",
                                   tag(8, FIXED64) + b"abcdefgh", length_delimited(536_870_911, b"")])
def test_unknown_fields_of_every_wire_type_and_position_are_refused(extra):
    for raw in (extra + RAW, BODY_FIELD + extra + SIGNATURE_FIELD, RAW + extra):
        assert "unknown field" in refused(types_pb2.Transaction, raw, "transaction")


def test_fields_in_another_order_are_refused():
    message = refused(types_pb2.Transaction, SIGNATURE_FIELD + BODY_FIELD, "transaction")
    assert message == (
        "transaction is not canonically encoded: field body (1) comes after field 2: "
        "fields must be in increasing number order"
    )


def test_a_junk_body_before_the_real_one_is_refused():
    # A last-occurrence parser reads the real body; a first-occurrence one reads the junk.
    raw = length_delimited(1, b"junk") + RAW
    assert types_pb2.Transaction.FromString(raw).body == TRANSACTION.body
    message = refused(types_pb2.Transaction, raw, "transaction")
    assert message == "transaction is not canonically encoded: field body (1) appears more than once"


def test_a_repeated_identical_field_is_refused():
    assert "appears more than once" in refused(types_pb2.Transaction, RAW + SIGNATURE_FIELD, "transaction")


def test_a_padded_length_prefix_is_refused():
    raw = length_delimited(1, TRANSACTION.body, length_padding=1) + SIGNATURE_FIELD
    assert "the length of field body (1) is a varint of 2 bytes where 1 suffice" in refused(
        types_pb2.Transaction, raw, "transaction"
    )


def test_a_padded_field_tag_is_refused():
    raw = tag(1, 2, padding=1) + BODY_FIELD[1:] + SIGNATURE_FIELD
    assert "a field tag is a varint of 2 bytes where 1 suffice" in refused(types_pb2.Transaction, raw, "transaction")


def test_a_field_with_the_wrong_wire_type_is_refused():
    # The parser keeps a field of the wrong wire type as an unknown field.
    raw = varint_field(1, 5) + RAW
    assert "field body (1) has wire type 0, its type needs 2" in refused(types_pb2.Transaction, raw, "transaction")


def test_a_default_value_written_out_is_refused():
    body = types_pb2.TransactionBody(fee=5, transfer=types_pb2.Transfer(dest=b"d", amount=1))
    raw = varint_field(4, 0) + body.SerializeToString()
    message = refused(types_pb2.TransactionBody, raw, "transaction body")
    assert message == (
        "transaction body is not canonically encoded: field nonce (4) is written with its default value 0; "
        "default values are left out"
    )
    empty_string = length_delimited(1, b"") + body.SerializeToString()
    assert "field chain_id (1) is written empty" in refused(types_pb2.TransactionBody, empty_string, "transaction body")


def test_a_padded_integer_is_refused():
    raw = tag(4, 0) + varint(3, padding=2) + types_pb2.TransactionBody(fee=5).SerializeToString()
    assert "field nonce (4) is a varint of 3 bytes where 1 suffice" in refused(
        types_pb2.TransactionBody, raw, "transaction body"
    )


def test_a_present_but_empty_call_is_canonical():
    # A oneof member has presence: an empty Transfer is written (tag and zero length) and kept.
    raw = types_pb2.TransactionBody(fee=5, transfer=types_pb2.Transfer()).SerializeToString()
    assert decode_canonical(types_pb2.TransactionBody, raw, "transaction body").HasField("transfer")


def test_an_unknown_field_inside_a_nested_message_is_refused():
    vote = types_pb2.Vote(body=b"x", signature=b"y").SerializeToString() + varint_field(50, 1)
    raw = varint_field(1, 4) + length_delimited(4, vote)
    assert str(_raises(decode_commit, raw)) == "commit is not canonically encoded: unknown field 50 in precommits"


def test_a_non_canonical_vote_body_inside_a_commit_is_refused():
    body = varint_field(3, 4) + varint_field(2, 2)  # height before type
    raw = types_pb2.Commit(height=4, precommits=[types_pb2.Vote(body=body, signature=b"s")]).SerializeToString()
    assert "vote body of precommit 0 is not canonically encoded: field type (2) comes after field 3" in str(
        _raises(decode_commit, raw)
    )


def test_a_boolean_other_than_one_is_refused():
    raw = varint_field(2, 2)
    assert "field success (2) holds 2, a boolean is written as 1" in str(_raises(decode_receipt, raw))


def test_a_32_bit_field_beyond_32_bits_is_refused():
    raw = varint_field(4, 2**32 + 1)
    assert "field round (4) holds 4294967297, beyond its 32 bits" in str(_raises(decode_vote_body, raw))


def test_bytes_that_do_not_decode_are_refused_as_such():
    for raw in (b"\xff\x00garbage", b"\x0a\x05abc", b"\x80"):
        assert str(_raises(decode_header, raw)).startswith("bytes do not decode as a block header")


def test_a_header_as_the_node_writes_it_is_canonical():
    header = types_pb2.Header(
        chain_id="c", height=7, time_ms=1, parent_hash=b"p" * 32, state_root=b"s" * 32,
        transactions_root=b"t" * 32, receipts_root=b"r" * 32, proposer=b"a" * 32,
        validators_hash=b"v" * 32, last_commit_hash=b"l" * 32,
    )
    assert decode_header(header.SerializeToString()) == header


# --- the executive ----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, reason",
    [
        (RAW + varint_field(3, 1), "transaction is not canonically encoded: unknown field 3"),
        (SIGNATURE_FIELD + BODY_FIELD, "transaction is not canonically encoded: field body (1) comes after field 2"),
        (length_delimited(1, b"junk") + RAW, "transaction is not canonically encoded: field body (1) appears more than once"),
    ],
    ids=["unknown-field", "reordered", "junk-body-first"],
)
def test_the_executive_refuses_a_re_wrapped_transaction(raw, reason):
    # Without the check each of these passed under its own new hash (the signature still verifies).
    assert transaction_hash(raw) != transaction_hash(RAW)
    with pytest.raises(MalformedTransaction) as raised:
        check_transaction(raw, RULES)
    assert str(raised.value).startswith(reason)
    assert check_transaction(RAW, RULES).hash == transaction_hash(RAW)


def test_the_executive_refuses_a_signed_but_non_canonical_body():
    # The signer itself wrote nonce 0 out, in field order: the signature verifies, the encoding does not pass.
    body = types_pb2.TransactionBody.FromString(TRANSACTION.body)
    body.nonce = 0
    fields = split_fields(body.SerializeToString()) + [(4, varint_field(4, 0))]
    raw_body = b"".join(encoding for _, encoding in sorted(fields, key=lambda field: field[0]))
    signature = ALICE.private.sign(TRANSACTION_SIGNING_CONTEXT + raw_body)
    raw = types_pb2.Transaction(body=raw_body, signature=signature).SerializeToString()
    with pytest.raises(MalformedTransaction) as raised:
        check_transaction(raw, RULES)
    assert str(raised.value) == (
        "transaction body is not canonically encoded: field nonce (4) is written with its default value 0; "
        "default values are left out"
    )


def test_a_canonical_transaction_with_nonce_zero_passes():
    assert check_transaction(transfer(ALICE, BOB.public_key, 5, nonce=0), RULES).nonce == 0


def _raises(decode, raw):
    with pytest.raises(EncodingError) as raised:
        decode(raw)
    return raised.value


# Order of the Ed25519 base point (RFC 8032): S and S + L are the same scalar.
ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493


def test_a_malleated_signature_is_refused_so_only_the_signer_can_change_the_id():
    # The id covers the signature too; it stays the signer's only if S + L is refused (RFC 8032 5.1.7).
    signature = TRANSACTION.signature
    s = int.from_bytes(signature[32:], "little") + ED25519_ORDER
    assert s < 2**256
    malleated = types_pb2.Transaction(body=TRANSACTION.body, signature=signature[:32] + s.to_bytes(32, "little"))
    with pytest.raises(BadSignature):
        check_transaction(malleated.SerializeToString(), RULES)


# --- the example of docs/protocol.md, "Canonical encoding" --------------------------------


@pytest.mark.parametrize(
    "hex_bytes, reason",
    [
        ("28050a0163", "field chain_id (1) comes after field 5"),
        ("0a016320002805", "field nonce (4) is written with its default value 0"),
        ("0a0163288500", "field fee (5) is a varint of 2 bytes where 1 suffice"),
        ("0a01632805980601", "unknown field 99"),
    ],
)
def test_the_canonical_encoding_example_in_the_protocol_doc(hex_bytes, reason):
    canonical = types_pb2.TransactionBody(chain_id="c", fee=5)
    assert canonical.SerializeToString().hex() == "0a01632805"
    assert decode_canonical(types_pb2.TransactionBody, bytes.fromhex("0a01632805"), "transaction body") == canonical
    assert reason in refused(types_pb2.TransactionBody, bytes.fromhex(hex_bytes), "transaction body")
