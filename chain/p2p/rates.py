"""Per-peer message rates (docs/network.md, "Rates"): token buckets of messages and hashes per second.

An honest node stays far below each bound: it announces transactions every 50 ms, asks once per
announcement, asks for peers on connect and every 30 s, sends Status once per finalized block and
asks one peer for at most 10 ranges of blocks a second.
What goes beyond is dropped and penalized (chain/p2p/scoring.py), so a flood ends in a ban.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from proto import p2p_pb2


@dataclass(frozen=True)
class Rate:
    """A sustained rate and the burst allowed on top of it."""

    per_s: float
    burst: float


class TokenBucket:
    """Holds up to `burst` tokens, refilled at `per_s`; take() spends them or refuses."""

    def __init__(self, rate: Rate, now: float):
        self.rate = rate
        self.tokens = rate.burst
        self.updated = now

    def take(self, amount: float, now: float) -> bool:
        self.tokens = min(self.rate.burst, self.tokens + max(0.0, now - self.updated) * self.rate.per_s)
        self.updated = now
        if amount > self.tokens:
            return False
        self.tokens -= amount
        return True


@dataclass(frozen=True)
class MessageRates:
    """The bounds per peer, by message kind: messages, and for hash lists the hashes too."""

    tx_announce: Rate = Rate(per_s=50, burst=200)
    tx_request: Rate = Rate(per_s=100, burst=400)
    # Hashes in TxAnnounce and in TxRequest (each at most 4,096 a message): 10 full messages at once.
    tx_hashes: Rate = Rate(per_s=20_000, burst=40_960)
    peers_request: Rate = Rate(per_s=1, burst=5)
    # One per finalized block; a node catching up finalizes many blocks a second.
    status: Rate = Rate(per_s=200, burst=1000)
    # Block sync: a node asks one peer for one range at a time, at most 10 a second
    # (chain/consensus/sync.py); each answer may read 8 MiB from the store.
    blocks_request: Rate = Rate(per_s=20, burst=40)
    hash_kinds: frozenset = field(default=frozenset({"tx_announce", "tx_request"}))


class PeerRates:
    """One peer's buckets."""

    def __init__(self, rates: MessageRates, now: float):
        self._messages = {
            "tx_announce": TokenBucket(rates.tx_announce, now),
            "tx_request": TokenBucket(rates.tx_request, now),
            "peers_request": TokenBucket(rates.peers_request, now),
            "status": TokenBucket(rates.status, now),
            "blocks_request": TokenBucket(rates.blocks_request, now),
        }
        self._hashes = {kind: TokenBucket(rates.tx_hashes, now) for kind in rates.hash_kinds}

    def over(self, envelope: p2p_pb2.Envelope, now: float) -> str | None:
        """Why `envelope` goes beyond this peer's rates (it is then dropped), or None."""
        kind = envelope.WhichOneof("message")
        bucket = self._messages.get(kind)
        if bucket is None:
            return None
        if not bucket.take(1, now):
            return f"{kind} messages beyond {bucket.rate.per_s:g} a second (burst {bucket.rate.burst:g})"
        hashes = self._hashes.get(kind)
        if hashes is not None:
            count = len(getattr(envelope, kind).hashes)
            if not hashes.take(count, now):
                return f"{kind} hashes beyond {hashes.rate.per_s:g} a second (burst {hashes.rate.burst:g})"
        return None
