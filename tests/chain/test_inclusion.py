"""Inclusion proofs: the hashlib-only verifier, the client's checks of GetTransaction, and a real node's proofs."""

from __future__ import annotations

from hashlib import blake2b

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.client import Client, ProofError
from chain.client.verification import proven_inclusion
from chain.crypto import Keypair, dev_keypair
from chain.state.inclusion import verify_inclusion
from chain.transactions import sign_transaction, transfer_call
from proto import node_pb2, proof_pb2, types_pb2
from runtime.hashing import (
    merkle_proof,
    merkle_root,
    receipt_bytes,
    receipt_leaves,
    receipts_root,
    transaction_hash,
    transactions_root,
)
from tests.wire import varint_field
from tests.tampering import TamperingStub

ALICE, BOB = dev_keypair("alice"), dev_keypair("bob")


def H(data: bytes) -> bytes:
    return blake2b(data, digest_size=32).digest()


def leaves_of(count: int) -> list[bytes]:
    return [H(index.to_bytes(4, "big")) for index in range(count)]


# --- the verifier against the builder ------------------------------------------------


@pytest.mark.parametrize("count", range(1, 71))
def test_every_path_of_every_tree_up_to_70_leaves_verifies(count):
    leaves = leaves_of(count)
    root = merkle_root(leaves)
    for index in range(count):
        assert verify_inclusion(root, leaves[index], merkle_proof(leaves, index))


def test_nothing_verifies_in_the_empty_tree():
    root = merkle_root([])
    assert not verify_inclusion(root, b"", proof_pb2.MerkleProof(leaf_index=0, leaf_count=0))


def _flip_sibling(proof, draw):
    if not proof.siblings:
        proof.leaf_count += 1
        return
    which = draw(st.integers(0, len(proof.siblings) - 1))
    bit = draw(st.integers(0, 255))
    sibling = bytearray(proof.siblings[which])
    sibling[bit // 8] ^= 1 << (bit % 8)
    proof.siblings[which] = bytes(sibling)


def _other_index(proof, draw):
    proof.leaf_index = draw(st.integers(0, proof.leaf_count + 2).filter(lambda index: index != proof.leaf_index))


def _other_count(proof, draw):
    proof.leaf_count = draw(st.integers(0, 2 * proof.leaf_count + 2).filter(lambda count: count != proof.leaf_count))


def _drop_or_add_sibling(proof, draw):
    if proof.siblings and draw(st.booleans()):
        del proof.siblings[draw(st.integers(0, len(proof.siblings) - 1))]
    else:
        proof.siblings.insert(draw(st.integers(0, len(proof.siblings))), H(b"extra"))


def _short_sibling(proof, draw):
    proof.siblings.append(b"\x01" * 31)


@settings(max_examples=300, deadline=None)
@given(
    count=st.integers(1, 70),
    data=st.data(),
    tamper=st.sampled_from([_flip_sibling, _other_index, _other_count, _drop_or_add_sibling, _short_sibling]),
)
def test_a_tampered_proof_never_verifies(count, data, tamper):
    leaves = leaves_of(count)
    index = data.draw(st.integers(0, count - 1))
    proof = merkle_proof(leaves, index)
    tamper(proof, data.draw)
    assert not verify_inclusion(merkle_root(leaves), leaves[index], proof)


@settings(max_examples=100, deadline=None)
@given(count=st.integers(1, 70), data=st.data())
def test_another_leaf_never_verifies_in_a_leafs_place(count, data):
    leaves = leaves_of(count)
    index = data.draw(st.integers(0, count - 1))
    other = data.draw(st.binary(max_size=40).filter(lambda leaf: leaf != leaves[index]))
    assert not verify_inclusion(merkle_root(leaves), other, merkle_proof(leaves, index))


def test_a_path_cannot_claim_another_position_with_another_leaf_count():
    # RFC 6962 alone: the path of leaf 2 of 3 also folds to the tree hash as leaf 1 of 2.
    # The count mixed into the root refuses that, so a verified proof fixes the index.
    leaves = leaves_of(3)
    honest = merkle_proof(leaves, 2)
    assert verify_inclusion(merkle_root(leaves), leaves[2], honest)
    lie = proof_pb2.MerkleProof(leaf_index=1, leaf_count=2, siblings=honest.siblings)
    assert not verify_inclusion(merkle_root(leaves), leaves[2], lie)


def test_a_malformed_root_or_huge_count_is_refused_not_raised():
    leaves = leaves_of(2)
    proof = merkle_proof(leaves, 0)
    assert not verify_inclusion(merkle_root(leaves)[:31], leaves[0], proof)
    proof.leaf_count = 2**64 - 1
    assert not verify_inclusion(merkle_root(leaves), leaves[0], proof)


# --- the client's checks of a GetTransaction reply ---------------------------------

CHAIN_ID, GENESIS = "inclusion-test", H(b"genesis")


def _block(count: int = 5):
    raws = [
        sign_transaction(
            ALICE, chain_id=CHAIN_ID, genesis_hash=GENESIS, nonce=nonce,
            call=transfer_call(BOB.public_key, nonce + 1), fee=2_000,
        ).raw
        for nonce in range(count)
    ]
    hashes = [transaction_hash(raw) for raw in raws]
    receipts = types_pb2.BlockReceipts(
        transactions=[types_pb2.Receipt(transaction_hash=tx_hash, success=True, fee_paid=2_000) for tx_hash in hashes],
        block_events=[types_pb2.Event(module="system", name="FeesPaid")],
    )
    header = types_pb2.Header(
        chain_id=CHAIN_ID, height=9, time_ms=1, parent_hash=H(b"parent"), state_root=H(b"state"),
        transactions_root=transactions_root(hashes), receipts_root=receipts_root(receipts), proposer=ALICE.public_key,
    ).SerializeToString()
    return raws, hashes, receipts, header


RAWS, HASHES, RECEIPTS, HEADER = _block()


def _reply(index: int = 2) -> node_pb2.GetTransactionResponse:
    """What a node's GetTransaction answers for transaction `index` of the block above."""
    return node_pb2.GetTransactionResponse(
        transaction_hash=HASHES[index], status=node_pb2.TRANSACTION_STATUS_INCLUDED, height=9,
        block_hash=H(HEADER), index=index, receipt=RECEIPTS.transactions[index], transaction=RAWS[index],
        header=HEADER, transaction_proof=merkle_proof(HASHES, index),
        receipt_bytes=receipt_bytes(RECEIPTS.transactions[index]),
        receipt_proof=merkle_proof(receipt_leaves(RECEIPTS), index),
    )


def test_an_honest_reply_gives_the_proven_inclusion():
    status = proven_inclusion(HASHES[2], _reply(2))
    assert status.included and (status.height, status.index, status.block_hash) == (9, 2, H(HEADER))
    assert status.receipt.success and status.receipt.fee_paid == 2_000 and status.raw == RAWS[2]


def _flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


def _set_header(reply, header: types_pb2.Header) -> None:
    reply.header = header.SerializeToString()
    reply.block_hash = H(reply.header)


def _forge_receipt(reply):
    receipt = types_pb2.Receipt.FromString(reply.receipt_bytes)
    receipt.success, receipt.error_module, receipt.error_name = False, "balances", "InsufficientBalance"
    reply.receipt_bytes = receipt.SerializeToString()


def _move_to_another_index(reply):
    # A consistent lie about the position: index and both proofs' indices changed together.
    reply.index = reply.transaction_proof.leaf_index = reply.receipt_proof.leaf_index = 1


def _send_another_receipt(reply):
    reply.receipt_bytes = receipt_bytes(RECEIPTS.transactions[1])
    reply.receipt_proof.CopyFrom(merkle_proof(receipt_leaves(RECEIPTS), 1))
    reply.receipt_proof.leaf_index = reply.index


def _events_leaf_as_receipt(reply):
    leaves = receipt_leaves(RECEIPTS)
    reply.receipt_proof.CopyFrom(merkle_proof(leaves, len(leaves) - 1))
    reply.receipt_bytes = types_pb2.BlockReceipts(block_events=RECEIPTS.block_events).SerializeToString()


def _other_header(reply):
    header = types_pb2.Header.FromString(HEADER)
    header.time_ms += 1
    reply.header = header.SerializeToString()


def _header_of_another_height(reply):
    # Self-consistent (the block hash follows the header) but not the height the reply names.
    header = types_pb2.Header.FromString(HEADER)
    header.height = 10
    _set_header(reply, header)


TAMPERINGS = {
    "transaction sibling": lambda r: r.transaction_proof.siblings.__setitem__(0, _flip(r.transaction_proof.siblings[0])),
    "receipt sibling": lambda r: r.receipt_proof.siblings.__setitem__(1, _flip(r.receipt_proof.siblings[1])),
    "transaction proof index": lambda r: setattr(r.transaction_proof, "leaf_index", 3),
    "transaction proof count": lambda r: setattr(r.transaction_proof, "leaf_count", 4),
    "receipt proof count": lambda r: setattr(r.receipt_proof, "leaf_count", 5),
    "dropped sibling": lambda r: r.transaction_proof.siblings.pop(),
    "consistent other index": _move_to_another_index,
    "forged receipt": _forge_receipt,
    "another transaction's receipt": _send_another_receipt,
    "block events as the receipt": _events_leaf_as_receipt,
    "another transaction": lambda r: setattr(r, "transaction", RAWS[3]),
    "header not matching the block hash": _other_header,
    "block hash": lambda r: setattr(r, "block_hash", _flip(r.block_hash)),
    "height": lambda r: setattr(r, "height", 8),
    "header of another height": _header_of_another_height,
    "non-canonical header": lambda r: (setattr(r, "header", HEADER + varint_field(99, 1)), setattr(r, "block_hash", H(r.header))),
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_a_tampered_reply_is_refused(tamper):
    reply = _reply(2)
    tamper(reply)
    with pytest.raises(ProofError) as raised:
        proven_inclusion(HASHES[2], reply)
    assert raised.value.code == "DATA_LOSS"


# --- a real node ------------------------------------------------------------------


@pytest.fixture(scope="module")
def included(dev_node):
    """Five transfers submitted in one batch (so they share a block), waited for; their signed bytes."""
    with Client(dev_node.target) as client:
        receiver = Keypair.generate().public_key
        nonce = client.next_nonce(ALICE)
        signed = [client.sign_transfer(ALICE, receiver, 2_000_000 + offset, nonce=nonce + offset) for offset in range(5)]
        verdicts = client.submit_many([item.raw for item in signed])
        assert all(verdict.accepted for verdict in verdicts), verdicts
        for item in signed:
            client.wait_for_inclusion(item.hash, timeout=20)
    return signed


def test_get_transaction_proves_inclusion_and_receipt_on_a_real_node(dev_node, included):
    with Client(dev_node.target) as client:
        statuses = [client.transaction(item.hash) for item in included]
        stub = client._stub
        for item, status in zip(included, statuses):
            assert status.included and status.receipt.success and status.raw == item.raw
            # The same checks by hand, from the reply's bytes alone.
            reply = stub.GetTransaction(node_pb2.GetTransactionRequest(transaction_hash=item.hash), timeout=10)
            header = types_pb2.Header.FromString(reply.header)
            assert H(reply.header) == reply.block_hash == status.block_hash
            assert verify_inclusion(header.transactions_root, item.hash, reply.transaction_proof)
            assert verify_inclusion(header.receipts_root, H(reply.receipt_bytes), reply.receipt_proof)
            assert reply.receipt_proof.leaf_count == reply.transaction_proof.leaf_count + 1
            assert types_pb2.Receipt.FromString(reply.receipt_bytes) == reply.receipt
        block = client.block(height=statuses[0].height)
    assert len(block.transactions) >= 5, "the batch was meant to share one block, so that proofs have siblings"
    assert [status.index for status in statuses] == [block.transaction_hashes.index(item.hash) for item in included]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda r: r.transaction_proof.siblings.__setitem__(0, _flip(r.transaction_proof.siblings[0])),
        _forge_receipt,
        lambda r: setattr(r.receipt_proof, "leaf_index", r.receipt_proof.leaf_index + 1),
    ],
    ids=["sibling", "receipt", "index"],
)
def test_a_real_node_reply_tampered_in_transit_is_refused(dev_node, included, tamper):
    with Client(dev_node.target) as client:
        client._stub = TamperingStub(client._stub, "GetTransaction", tamper)
        with pytest.raises(ProofError):
            client.transaction(included[2].hash)


# --- the state example of docs/protocol.md, "State" ----------------------------------


def test_the_state_tree_example_in_the_protocol_doc():
    from chain.state.proof import compute_root, hash_key, hash_value, leaf_hash, verify_proof
    from proto import state_pb2
    from runtime.system import account_key

    alice_key, bob_key = account_key(ALICE.public_key), account_key(BOB.public_key)
    assert ALICE.public_key.hex() == "801787cfa29833898a4b542744872e579bcb56cb5009f99c4e273d7cb0b42d27"
    assert BOB.public_key.hex() == "0d1cefe8190878be51f7c0d7e688da02be042d39c63c0c0b3defc196fba985d4"
    assert alice_key == b"system/account/" + ALICE.public_key and len(alice_key) == 47
    alice_value = state_pb2.AccountInfo(nonce=1, free=1000).SerializeToString()
    bob_value = state_pb2.AccountInfo(free=500).SerializeToString()
    assert (alice_value.hex(), bob_value.hex()) == ("080110e807", "10f403")
    assert hash_key(alice_key).hex().startswith("be8d4eb9") and hash_key(bob_key).hex().startswith("67fa6a91")
    alice_leaf = leaf_hash(hash_key(alice_key), hash_value(alice_value))
    bob_leaf = leaf_hash(hash_key(bob_key), hash_value(bob_value))
    assert alice_leaf.hex() == "fb2f038af82e39f15042701b7fe5e850d32362b41dd2dec5cb79815f68e8a732"
    assert bob_leaf.hex() == "8dfc2c09da990460369f432ed7320092f2845db17f2f4b0db48f5fd861d43107"
    root = compute_root({alice_key: alice_value, bob_key: bob_value})
    # Alice's path starts with bit 1: her leaf is the right child.
    assert root == H(b"\x01" + bob_leaf + alice_leaf)
    assert root.hex() == "5d4761710a614dd2ea3adcdbb7d43997b1d834596aa9123ea3a6909aa7f66ee0"
    proof = proof_pb2.StateProof(depth=1, sibling_bitmap=b"\x80", siblings=[bob_leaf])
    assert verify_proof(root, alice_key, alice_value, proof)
    assert not verify_proof(root, alice_key, bob_value, proof)
