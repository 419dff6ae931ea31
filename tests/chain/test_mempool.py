"""The pool: nonce order per sender, fee priority across senders, bounds, replacement, next nonce."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.mempool import AlreadyKnown, Mempool, NonceGap, PoolFull, PoolLimits, ReplacementUnderpriced
from runtime.hashing import blake2b_256
from runtime.primitives import CheckedTransaction


def tx(sender: int, nonce: int, fee: int = 1_000, size: int = 100, salt: int = 0) -> CheckedTransaction:
    raw = bytes([sender]) * 8 + nonce.to_bytes(8, "big") + fee.to_bytes(8, "big") + salt.to_bytes(4, "big")
    raw = raw.ljust(size, b"\0")
    return CheckedTransaction(
        hash=blake2b_256(raw), raw=raw, body=None, sender=bytes([sender]) * 32, nonce=nonce, fee=fee
    )


def order(pool: Mempool, nonces: dict[int, int] | None = None) -> list[tuple[int, int]]:
    nonces = nonces or {}
    return [(t.sender[0], t.nonce) for t in pool.ready(lambda sender: nonces.get(sender[0], 0))]


def test_ready_orders_by_fee_across_senders_and_by_nonce_within():
    pool = Mempool()
    for item in [tx(1, 0, fee=100), tx(1, 1, fee=5_000), tx(2, 0, fee=3_000), tx(3, 0, fee=9_000)]:
        pool.add(item, 0)
    assert order(pool) == [(3, 0), (2, 0), (1, 0), (1, 1)]


def test_a_skipped_nonce_is_refused_and_pending_ones_count():
    pool = Mempool()
    pool.add(tx(1, 0), 0)
    with pytest.raises(NonceGap, match="nonce 2 skips ahead: the account's next nonce is 1"):
        pool.add(tx(1, 2), 0)
    assert pool.next_nonce(bytes([1]) * 32, 0) == 1
    pool.add(tx(1, 1), 0)
    pool.add(tx(1, 2), 0)
    assert order(pool) == [(1, 0), (1, 1), (1, 2)]
    assert pool.next_nonce(bytes([1]) * 32, 0) == 3


def test_dropping_a_transaction_drops_the_senders_later_ones():
    pool = Mempool()
    items = [tx(1, nonce) for nonce in range(4)]
    for item in items:
        pool.add(item, 0)
    pool.drop(items[1], "cannot pay the fee")
    assert order(pool) == [(1, 0)]
    assert pool.rejection(items[1].hash) == "cannot pay the fee"
    assert "earlier transaction" in pool.rejection(items[3].hash)


def test_next_nonce_starts_at_the_account_nonce():
    pool = Mempool()
    assert pool.next_nonce(b"\x09" * 32, 7) == 7


def test_duplicates_and_underpriced_replacements_are_refused():
    pool = Mempool()
    first = tx(1, 0, fee=1_000)
    pool.add(first, 0)
    with pytest.raises(AlreadyKnown):
        pool.add(first, 0)
    with pytest.raises(ReplacementUnderpriced, match="at least 1101"):
        pool.add(tx(1, 0, fee=1_050, salt=1), 0)
    better = tx(1, 0, fee=1_200, salt=2)
    pool.add(better, 0)
    assert pool.get(better.hash) is better and first.hash not in pool
    assert "replaced" in pool.rejection(first.hash)


def test_count_bound_evicts_only_for_a_better_fee():
    pool = Mempool(PoolLimits(max_count=2))
    pool.add(tx(1, 0, fee=1_000), 0)
    pool.add(tx(2, 0, fee=2_000), 0)
    with pytest.raises(PoolFull, match="full"):
        pool.add(tx(3, 0, fee=500), 0)
    pool.add(tx(3, 0, fee=5_000), 0)
    assert len(pool) == 2
    assert order(pool) == [(3, 0), (2, 0)]


def test_byte_bound_is_respected():
    pool = Mempool(PoolLimits(max_bytes=250))
    pool.add(tx(1, 0, size=100), 0)
    pool.add(tx(2, 0, size=100), 0)
    with pytest.raises(PoolFull):
        pool.add(tx(3, 0, size=100), 0)
    assert pool.total_bytes == 200


def test_prune_drops_used_nonces():
    pool = Mempool()
    for nonce in range(4):
        pool.add(tx(1, nonce), 0)
    pool.prune([bytes([1]) * 32], lambda sender: 2)
    assert order(pool, {1: 2}) == [(1, 2), (1, 3)]
    assert len(pool) == 2


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4), st.integers(0, 6), st.integers(1, 10_000)), max_size=40))
def test_ready_is_nonce_contiguous_per_sender_and_bounded(entries):
    pool = Mempool(PoolLimits(max_count=15))
    for sender, nonce, fee in entries:
        try:
            pool.add(tx(sender, nonce, fee=fee), 0)
        except (AlreadyKnown, ReplacementUnderpriced, PoolFull, NonceGap):
            pass
    assert len(pool) <= 15
    seen: dict[int, int] = {}
    for sender, nonce in order(pool):
        assert nonce == seen.get(sender, 0)
        seen[sender] = nonce + 1
    for sender in range(1, 5):
        assert pool.next_nonce(bytes([sender]) * 32, 0) == seen.get(sender, 0)
