"""Peer scores and bans (docs/network.md, "Scores and bans").

Each authenticated peer has a score: penalties add points, and the score decays linearly with time,
so an honest peer's occasional slip is forgotten. At PENALTY_THRESHOLD the peer is disconnected and
banned: its node id and, for an inbound peer, its source address; the first ban lasts
`first_ban_s`, and each further ban of the same node id within a day doubles, up to `max_ban_s`.
Only node ids proven in a handshake are ever scored: a failed proof bans nothing (anyone could
claim an honest node's id).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

# Points at which a peer is banned.
PENALTY_THRESHOLD = 100
# What no honest node sends (a vote from a non-validator key, an invalid signature, a message over
# a protocol limit): banned at once.
PENALTY_INVALID = PENALTY_THRESHOLD
# A message beyond a per-peer rate (docs/network.md, "Rates"): 20 in a short while get a peer banned.
PENALTY_RATE = 5
# Something useless that an honest node does now and then (a transaction it announced and did not
# deliver, a stale or duplicate message): hundreds in a short while get a peer banned.
PENALTY_USELESS = 1

# A repeated offence escalates its ban only when the last ban was less than this long ago.
OFFENCE_MEMORY_S = 24 * 3600.0


@dataclass(frozen=True)
class BanPolicy:
    """How scores decay and how long bans last."""

    decay_per_s: float = 2.0
    first_ban_s: float = 60.0
    max_ban_s: float = 3600.0
    # Node ids and addresses remembered (scores, offences, bans); the least recently touched go first.
    max_entries: int = 10_000


class _Bounded(OrderedDict):
    """An LRU dict of at most `capacity` entries."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.capacity:
            self.popitem(last=False)


class PeerScores:
    """Scores, offences and bans by node id and by source address."""

    def __init__(self, policy: BanPolicy, clock: Callable[[], float]):
        self.policy = policy
        self.clock = clock
        self._lock = threading.Lock()
        self._scores: _Bounded = _Bounded(policy.max_entries)  # node id -> (points, when)
        self._offences: _Bounded = _Bounded(policy.max_entries)  # node id -> (count, last ban)
        self._banned_ids: _Bounded = _Bounded(policy.max_entries)  # node id -> (until, reason)
        self._banned_hosts: _Bounded = _Bounded(policy.max_entries)  # host -> (until, reason)

    def score(self, node_id: bytes) -> float:
        """The peer's points now, after decay."""
        with self._lock:
            return self._decayed(node_id, self.clock())

    def _decayed(self, node_id: bytes, now: float) -> float:
        points, when = self._scores.get(node_id, (0.0, now))
        return max(0.0, points - (now - when) * self.policy.decay_per_s)

    def penalize(self, node_id: bytes, points: int) -> bool:
        """Add `points`; True when the score reached the threshold (then it starts over from 0)."""
        if points <= 0:
            return False
        now = self.clock()
        with self._lock:
            total = self._decayed(node_id, now) + points
            if total >= PENALTY_THRESHOLD:
                self._scores.pop(node_id, None)
                return True
            self._scores.put(node_id, (total, now))
            return False

    def ban(self, node_id: bytes, host: str | None, reason: str) -> float:
        """Ban a node id (and the address it came from, if any); the ban's length in seconds."""
        now = self.clock()
        with self._lock:
            count, last = self._offences.get(node_id, (0, -OFFENCE_MEMORY_S))
            count = count + 1 if now - last < OFFENCE_MEMORY_S else 1
            self._offences.put(node_id, (count, now))
            seconds = min(self.policy.first_ban_s * 2 ** min(count - 1, 32), self.policy.max_ban_s)
            self._banned_ids.put(node_id, (now + seconds, reason))
            if host:
                self._banned_hosts.put(host, (now + seconds, reason))
            return seconds

    def banned_id(self, node_id: bytes) -> tuple[float, str] | None:
        """(seconds left, reason) while `node_id` is banned, else None."""
        return self._left(self._banned_ids, node_id)

    def banned_host(self, host: str) -> tuple[float, str] | None:
        """(seconds left, reason) while the address `host` is banned, else None."""
        return self._left(self._banned_hosts, host)

    def _left(self, bans: _Bounded, key) -> tuple[float, str] | None:
        now = self.clock()
        with self._lock:
            entry = bans.get(key)
            if entry is None:
                return None
            until, reason = entry
            if until <= now:
                del bans[key]
                return None
            return until - now, reason
