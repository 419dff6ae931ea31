"""hashing: the Merkle trees behind transactions_root and receipts_root, against RFC 6962's definitions."""

from __future__ import annotations

from hashlib import blake2b

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proto import types_pb2
from runtime.hashing import (
    EMPTY_TREE_HASH,
    block_events_bytes,
    merkle_leaf_hash,
    merkle_node_hash,
    merkle_path,
    merkle_proof,
    merkle_root,
    merkle_tree_hash,
    receipt_bytes,
    receipt_leaves,
    receipts_root,
    sized_root,
    transactions_root,
)


def H(data: bytes) -> bytes:
    return blake2b(data, digest_size=32).digest()


def rfc6962_tree_hash(leaves: list[bytes]) -> bytes:
    """MTH of RFC 6962 section 2.1, written as the RFC states it (recursive split)."""
    if not leaves:
        return H(b"")
    if len(leaves) == 1:
        return H(b"\x00" + leaves[0])
    k = 1 << ((len(leaves) - 1).bit_length() - 1)  # the largest power of two smaller than n
    return H(b"\x01" + rfc6962_tree_hash(leaves[:k]) + rfc6962_tree_hash(leaves[k:]))


def rfc6962_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 section 2.1.1: siblings from the leaf up."""
    if len(leaves) <= 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < k:
        return rfc6962_path(index, leaves[:k]) + [rfc6962_tree_hash(leaves[k:])]
    return rfc6962_path(index - k, leaves[k:]) + [rfc6962_tree_hash(leaves[:k])]


def leaves_of(count: int) -> list[bytes]:
    return [H(index.to_bytes(4, "big")) for index in range(count)]


# --- the tree ---------------------------------------------------------------------


@pytest.mark.parametrize("count", range(0, 71))
def test_tree_hash_and_every_path_match_rfc_6962(count):
    leaves = leaves_of(count)
    assert merkle_tree_hash(leaves) == rfc6962_tree_hash(leaves)
    assert merkle_root(leaves) == H(b"\x02" + count.to_bytes(8, "big") + rfc6962_tree_hash(leaves))
    for index in range(count):
        assert merkle_path(leaves, index) == rfc6962_path(index, leaves)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=40), min_size=0, max_size=70), st.data())
def test_arbitrary_leaves_give_the_rfc_6962_tree(leaves, data):
    assert merkle_tree_hash(leaves) == rfc6962_tree_hash(leaves)
    if leaves:
        index = data.draw(st.integers(0, len(leaves) - 1))
        proof = merkle_proof(leaves, index)
        assert (proof.leaf_index, proof.leaf_count) == (index, len(leaves))
        assert list(proof.siblings) == rfc6962_path(index, leaves)


def test_the_empty_tree_and_a_single_leaf():
    assert EMPTY_TREE_HASH == H(b"") == bytes.fromhex(
        "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
    )
    assert merkle_root([]) == H(b"\x02" + bytes(8) + H(b""))
    assert merkle_tree_hash([b"x"]) == H(b"\x00x") == merkle_leaf_hash(b"x")


def test_an_odd_node_is_carried_up_not_duplicated():
    a, b, c = leaves_of(3)
    assert merkle_tree_hash([a, b, c]) == merkle_node_hash(merkle_node_hash(merkle_leaf_hash(a), merkle_leaf_hash(b)), merkle_leaf_hash(c))
    # Duplicating the last leaf (Bitcoin's rule) would make these two lists share a root.
    assert merkle_root([a, b, c]) != merkle_root([a, b, c, c])
    assert merkle_tree_hash([a, b, c]) != merkle_tree_hash([a, b, c, c])


def test_the_leaf_count_is_part_of_the_root():
    # Without it, leaf 2 of [a, b, c] and leaf 1 of the two-leaf tree [H(a,b) as a leaf list] could share a path.
    a, b, c = leaves_of(3)
    assert merkle_root([a, b, c]) == sized_root(3, merkle_tree_hash([a, b, c]))
    assert merkle_root([a, b, c]) != sized_root(4, merkle_tree_hash([a, b, c]))


def test_a_leaf_cannot_pass_for_a_node():
    a, b = leaves_of(2)
    # The two-leaf tree over (a, b) must differ from a one-leaf tree whose data is the concatenated child hashes.
    concatenated = merkle_leaf_hash(a) + merkle_leaf_hash(b)
    assert merkle_tree_hash([a, b]) != merkle_tree_hash([concatenated])


def test_a_path_for_a_leaf_outside_the_tree_is_refused():
    with pytest.raises(IndexError):
        merkle_path(leaves_of(3), 3)
    with pytest.raises(IndexError):
        merkle_path([], 0)


# --- the worked example of docs/protocol.md -----------------------------------------

EXAMPLE_LEAVES = [bytes([value]) * 32 for value in (0x11, 0x22, 0x33)]


def test_the_worked_example_in_the_protocol_doc():
    a, b, c = (merkle_leaf_hash(leaf) for leaf in EXAMPLE_LEAVES)
    assert a.hex() == "0a0cb64ee9932145bb2398a0964c964dc89f917b6b8d5809f3b1487c80cf827d"
    assert b.hex() == "0ebaae06fc7cfc07684ba9a6f67de7ae3e98301ed0e5e6b5fbda147741be21e4"
    assert c.hex() == "56214d287e93a7ee8b4879aecb35e1ddc848e983f950a4f792bfd3eefc6366dc"
    ab = merkle_node_hash(a, b)
    assert ab.hex() == "704358a2cef869310e1c02e9c9e2b09e4018db46722c7e138168c235af0addc0"
    assert merkle_tree_hash(EXAMPLE_LEAVES).hex() == "004a6a780df5e5e08df3431048e918ddd7faeee3c6524c13f4a61783b8963de8"
    assert transactions_root(EXAMPLE_LEAVES).hex() == "1f135352b9b174f1b41922204a60d8c6de68fa0e59c72a1706a0c440b5b72be4"
    assert merkle_root([]).hex() == "2ed6a20ae5c0c063eafeaccf9f7cac2a9ef20ee3056dcac774042b1c1365b4ca"
    assert merkle_path(EXAMPLE_LEAVES, 2) == [ab]
    assert merkle_path(EXAMPLE_LEAVES, 0) == [b, c]
    assert merkle_path(EXAMPLE_LEAVES, 1) == [a, c]


# --- receipts ---------------------------------------------------------------------


def _receipts() -> types_pb2.BlockReceipts:
    event = types_pb2.Event(module="balances", name="Transfer", attributes=[types_pb2.EventAttribute(key="amount", value="5")])
    return types_pb2.BlockReceipts(
        transactions=[
            types_pb2.Receipt(transaction_hash=H(b"t0"), success=True, fee_paid=10, events=[event]),
            types_pb2.Receipt(transaction_hash=H(b"t1"), error_module="balances", error_name="X", fee_paid=9),
        ],
        block_events=[types_pb2.Event(module="system", name="FeesPaid")],
    )


def test_receipt_leaves_are_each_receipt_then_the_block_events():
    receipts = _receipts()
    leaves = receipt_leaves(receipts)
    assert leaves == [
        H(receipts.transactions[0].SerializeToString()),
        H(receipts.transactions[1].SerializeToString()),
        H(types_pb2.BlockReceipts(block_events=receipts.block_events).SerializeToString()),
    ]
    assert receipts_root(receipts) == merkle_root(leaves)
    assert receipt_bytes(receipts.transactions[1]) == receipts.transactions[1].SerializeToString()
    assert block_events_bytes(receipts) == types_pb2.BlockReceipts(block_events=receipts.block_events).SerializeToString()


def test_a_block_without_transactions_commits_its_events_alone():
    receipts = types_pb2.BlockReceipts(block_events=[types_pb2.Event(module="system", name="FeesPaid")])
    assert receipt_leaves(receipts) == [H(block_events_bytes(receipts))]
    assert receipts_root(types_pb2.BlockReceipts()) == merkle_root([H(b"")])


@pytest.mark.parametrize(
    "change",
    [
        lambda r: setattr(r.transactions[0], "success", False),
        lambda r: setattr(r.transactions[1], "fee_paid", 10),
        lambda r: setattr(r.transactions[0].events[0].attributes[0], "value", "6"),
        lambda r: r.block_events.add(module="system", name="Extra"),
        lambda r: r.transactions.add(transaction_hash=H(b"t2")),
    ],
)
def test_any_change_to_receipts_or_events_changes_the_root(change):
    receipts = _receipts()
    before = receipts_root(receipts)
    change(receipts)
    assert receipts_root(receipts) != before
