"""A real node refuses re-wrapped transactions: the signer's bytes, and only they, get included under their hash.

Issue 13 item 8: the same signed body and signature, re-wrapped (an extra unknown field, the fields
in another order, a junk `body` field before the real one), was included under a new hash while
the original hash stayed NOT_FOUND. Each re-wrapping is submitted alone and in a batch, refused
with its reason and no state change; then the original is included under its own hash, with a
proof that the client checks, and the stored block holds exactly the signed bytes.
"""

from __future__ import annotations

import pytest

from chain.client import Client, ClientError
from chain.crypto import Keypair, dev_keypair
from proto import types_pb2
from runtime.hashing import transaction_hash
from tests.wire import length_delimited, split_fields, varint_field

pytestmark = pytest.mark.slow

ALICE = dev_keypair("alice")
AMOUNT = 3_000_000


def _with_unknown_field(raw: bytes) -> bytes:
    return raw + varint_field(3, 1)


def _reordered(raw: bytes) -> bytes:
    body_field, signature_field = (encoding for _, encoding in split_fields(raw))
    return signature_field + body_field


def _junk_body_first(raw: bytes) -> bytes:
    return length_delimited(1, b"junk that a first-occurrence decoder would read as the body") + raw


REWRAPPINGS = {
    "unknown field": (_with_unknown_field, "unknown field 3"),
    "fields reordered": (_reordered, "field body (1) comes after field 2"),
    "junk body first": (_junk_body_first, "field body (1) appears more than once"),
}


@pytest.fixture(scope="module")
def client(dev_node):
    with Client(dev_node.target) as client:
        yield client


@pytest.mark.parametrize("name", REWRAPPINGS)
def test_a_re_wrapped_transfer_is_refused_and_the_original_is_included_under_its_hash(client, name):
    rewrap, reason = REWRAPPINGS[name]
    receiver = Keypair.generate().public_key
    signed = client.sign_transfer(ALICE, receiver, AMOUNT)
    rewrapped = rewrap(signed.raw)
    # The re-wrapped bytes still carry the signer's body and a valid signature, under another hash.
    parsed = types_pb2.Transaction.FromString(rewrapped)
    original = types_pb2.Transaction.FromString(signed.raw)
    assert (parsed.body, parsed.signature) == (original.body, original.signature)
    assert transaction_hash(rewrapped) != signed.hash

    before = client.account(ALICE)
    with pytest.raises(ClientError) as raised:
        client.submit_raw(rewrapped)
    assert raised.value.code == "INVALID_ARGUMENT"
    assert raised.value.message.startswith(f"transaction is not canonically encoded: {reason}"), raised.value.message
    [verdict] = client.submit_many([rewrapped])
    assert not verdict.accepted and verdict.code == "INVALID_ARGUMENT"
    assert verdict.reason.startswith("transaction is not canonically encoded: ")
    after = client.account(ALICE)
    assert (after.free, after.nonce, after.next_nonce) == (before.free, before.nonce, before.next_nonce)
    assert client.transaction(transaction_hash(rewrapped)).status == "unknown"

    assert client.submit_raw(signed.raw) == signed.hash
    included = client.wait_for_inclusion(signed.hash, timeout=20)
    proven = client.transaction(signed.hash)  # checks the header, both Merkle paths and the receipt
    assert proven.included and proven.receipt.success and proven.raw == signed.raw
    assert (proven.height, proven.index) == (included.height, included.index)
    assert client.account(receiver).free == AMOUNT
    assert client.transaction(transaction_hash(rewrapped)).status == "unknown"
    block = client.block(height=proven.height)
    assert block.transactions[proven.index] == signed.raw
    assert block.transaction_hashes[proven.index] == signed.hash
