"""The network's sizes and timings in one typed place: production defaults, shortened by tests."""

from __future__ import annotations

from dataclasses import dataclass

from chain.p2p.rates import MessageRates


@dataclass(frozen=True)
class NetworkLimits:
    """Sizes and timings of the network; the defaults are for production, tests shorten the timings."""

    # A peer's outbound queue: what waits for its writer. 4,096 votes or parts, and at most two
    # largest messages' worth of bytes.
    max_queue_messages: int = 4096
    max_queue_bytes: int = 32 * 1024 * 1024
    # Hashes of gossip already seen (about 100 bytes each in memory).
    seen_cache_size: int = 100_000
    # A stream that has not finished its handshake this long after it opened is ended.
    handshake_timeout_s: float = 3.0
    # Slots (chain/p2p/peer_table.py): peers that dialed us, learned addresses we dialed, and beyond
    # both, boot nodes and proven validators.
    max_inbound: int = 40
    max_outbound: int = 10
    max_reserved: int = 100
    # Inbound streams still in their handshake, all sources together, and connections plus
    # handshakes from one source address (reserved peers not counted).
    max_pending_handshakes: int = 16
    max_per_address: int = 8
    # A peer's wall clock (Hello.time_ms) further than this from ours is refused; beyond
    # warn_clock_offset_s it is logged.
    max_clock_offset_s: float = 30.0
    warn_clock_offset_s: float = 5.0
    rates: MessageRates = MessageRates()
    # Re-dialing: the wait starts at backoff_initial_s and doubles to backoff_max_s; it starts
    # over once a connection lasted stable_after_s. A peer that refused us as incompatible
    # (another chain, genesis or protocol version) is retried only every backoff_max_s.
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    stable_after_s: float = 10.0
    # A learned (not boot) address is forgotten after this many failed dials in a row.
    max_dial_failures: int = 8
    max_known_addrs: int = 1024
    max_concurrent_dials: int = 8
    # Peers are asked for addresses on connect and then this often while below max_outbound.
    peer_exchange_interval_s: float = 30.0
    # A PeersRequest is answered at most this often per peer; more are ignored.
    peers_answer_interval_s: float = 1.0
    # Scores and bans (chain/p2p/scoring.py): the first ban lasts ban_s, each repeat within a day
    # twice as long up to max_ban_s; a score loses score_decay_per_s points a second.
    ban_s: float = 60.0
    max_ban_s: float = 3600.0
    score_decay_per_s: float = 2.0
    # A peer whose writer took nothing from its queue for this long stopped reading: it is disconnected.
    stall_s: float = 30.0
    # A full queue is logged at most once per this interval per peer.
    drop_log_interval_s: float = 10.0
    maintenance_interval_s: float = 0.05
