"""The address book: the addresses this node dials, what it learned about each, and when to dial it next."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable, Iterable

import grpc

from chain.p2p.wire import parse_dial_addr

log = logging.getLogger("inferchain.p2p")


@dataclass
class DialTarget:
    """An address this node dials when it is not connected to the node behind it."""

    addr: str
    bootnode: bool
    backoff_s: float
    next_attempt: float = 0.0
    failures: int = 0
    node_id: bytes | None = None  # the node behind the address, as far as this node knows
    proven_id: bytes | None = None  # the node id found by dialing this address (a Hello's public_addr is a claim)
    dialing: bool = False
    is_self: bool = False


@dataclass
class DialOutcome:
    """How one dial went: the connection's length, or the refusal."""

    connected_for: float | None = None  # seconds the connection lasted, None when none was made
    refusal: grpc.StatusCode | None = None
    detail: str = ""
    node_id: bytes | None = None
    refused_here: bool = False  # this node refused the listener's Hello (else the listener refused ours)


class AddressBook:
    """Boot nodes and learned addresses, each with its back-off; shares the network's lock."""

    def __init__(self, lock: threading.RLock, limits, bootnodes: Iterable[str], clock: Callable[[], float]):
        self.lock = lock
        self.limits = limits
        self.clock = clock
        self.targets: dict[str, DialTarget] = {}
        self.own_addrs: set[str] = set()
        for addr in bootnodes:
            parse_dial_addr(addr)
            self.targets[addr] = DialTarget(addr=addr, bootnode=True, backoff_s=limits.backoff_initial_s)

    def set_own_addrs(self, addrs: set[str]) -> None:
        """This node's own addresses: never dialed."""
        with self.lock:
            self.own_addrs = addrs
            for addr in addrs:
                self.targets.pop(addr, None)

    def learn(self, addrs: Iterable[str], source: str) -> None:
        """Add addresses a peer told us of (Peers); invalid ones are skipped."""
        with self.lock:
            for addr in addrs:
                try:
                    parse_dial_addr(addr)
                except ValueError as error:
                    log.debug("p2p: ignoring an address from %s: %s", source, error)
                    continue
                if addr in self.targets or addr in self.own_addrs or len(self.targets) >= self.limits.max_known_addrs:
                    continue
                self.targets[addr] = DialTarget(addr=addr, bootnode=False, backoff_s=self.limits.backoff_initial_s)

    def learn_node_addr(self, node_id: bytes, public_addr: str, dialed_addr: str | None) -> None:
        """Remember which node dialable addresses lead to, so that they are not dialed while connected.

        A boot node's id is learned only by dialing its address: a Hello's public_addr is a claim,
        and the boot nodes' ids earn reserved slots.
        """
        with self.lock:
            for addr, proven in ((public_addr, False), (dialed_addr or "", True)):
                if not addr:
                    continue
                target = self.targets.get(addr)
                if target is None and len(self.targets) < self.limits.max_known_addrs and addr not in self.own_addrs:
                    target = self.targets[addr] = DialTarget(
                        addr=addr, bootnode=False, backoff_s=self.limits.backoff_initial_s)
                if target is not None:
                    target.node_id = node_id
                    if proven:
                        target.proven_id = node_id

    def is_bootnode(self, node_id: bytes) -> bool:
        """Whether `node_id` was found behind a boot node's address."""
        with self.lock:
            return any(t.bootnode and t.proven_id == node_id for t in self.targets.values())

    def due(self, now: float, skip: Callable[[bytes], bool], room: Callable[[int], bool]) -> list[DialTarget]:
        """The targets to dial now, marked as dialing: boot nodes first, then by their time.

        `skip(node_id)`: connected to, or banned; `room(dialing)`: whether a learned address may be
        dialed with `dialing` dials under way.
        """
        with self.lock:
            dialing = sum(1 for t in self.targets.values() if t.dialing)
            due = []
            for target in sorted(self.targets.values(), key=lambda t: (not t.bootnode, t.next_attempt)):
                if target.dialing or target.is_self or target.next_attempt > now:
                    continue
                if target.node_id is not None and skip(target.node_id):
                    continue
                if dialing >= self.limits.max_concurrent_dials:
                    break
                if not target.bootnode and not room(dialing):
                    continue
                target.dialing = True
                dialing += 1
                due.append(target)
            return due

    def after_dial(self, target: DialTarget, outcome: DialOutcome, stopping: bool) -> None:
        """Schedule the next dial of `target` from how this one went, and log a refusal in one line."""
        limits = self.limits
        now = self.clock()
        with self.lock:
            target.dialing = False
            if outcome.node_id is not None:
                target.node_id = target.proven_id = outcome.node_id
            if stopping:
                return
            if outcome.connected_for is not None:
                if outcome.connected_for >= limits.stable_after_s:
                    target.backoff_s = limits.backoff_initial_s
                target.failures = 0
                target.next_attempt = now + target.backoff_s
                target.backoff_s = min(target.backoff_s * 2, limits.backoff_max_s)
                return
            code = outcome.refusal
            if code == grpc.StatusCode.ALREADY_EXISTS and outcome.detail.startswith("self-connection"):
                target.is_self = True
                log.debug("p2p: %s is this node itself; not dialing it again", target.addr)
                return
            if code == grpc.StatusCode.ALREADY_EXISTS:
                target.next_attempt = now + target.backoff_s  # connected the other way round: fine
                return
            target.failures += 1
            if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNAUTHENTICATED):
                target.backoff_s = limits.backoff_max_s
            wait = target.backoff_s
            target.next_attempt = now + wait
            target.backoff_s = min(target.backoff_s * 2, limits.backoff_max_s)
            forget = not target.bootnode and target.failures >= limits.max_dial_failures
            if forget:
                self.targets.pop(target.addr, None)
        _log_failed_dial(target, outcome, wait, forget)


def _log_failed_dial(target: DialTarget, outcome: DialOutcome, wait: float, forget: bool) -> None:
    code = outcome.refusal
    detail = f"{getattr(code, 'name', code)}: {outcome.detail}"
    if outcome.refused_here and code != grpc.StatusCode.ALREADY_EXISTS:
        log.warning("p2p: refused the peer at %s: %s; retrying in %.1f s", target.addr, outcome.detail, wait)
    elif code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT,
                  grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.RESOURCE_EXHAUSTED,
                  grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAUTHENTICATED):
        log.warning("p2p: %s refused the handshake: %s; retrying in %.1f s", target.addr, outcome.detail, wait)
    elif forget:
        log.info("p2p: forgetting %s after %d failed dials (%s)", target.addr, target.failures, detail)
    elif target.failures == 1:
        log.info("p2p: cannot reach %s (%s); retrying with back-off from %.1f s", target.addr, detail, wait)
    else:
        log.debug("p2p: dialing %s failed (%s); retrying in %.1f s", target.addr, detail, wait)
