"""A deterministic simulation of Tendermint validators on a virtual network (issue 16's consensus tests).

Every validator is a `chain.consensus.machine.Machine`. The network delivers each message after a
seeded random delay; before the global stabilisation time (GST) it may also hold messages back
until after GST (delays, drops that gossip makes good, reorderings) and cut the validators into
partitions. Correct validators relay every message they see for the first time (gossip), so
votes a byzantine validator split between peers reach everyone. Validators may crash and restart:
a restarted validator rebuilds its machine by replaying its write-ahead log (every input it took,
in order) and is sent what it missed. Up to f of 3f+1 (by voting power) are byzantine:
double-signing, proposing two values, proposing and voting for an invalid value, or silent.

After every event the invariants are checked: no two correct validators decide different values
at one height (agreement), every decided value is valid, and no correct validator signs two
different votes for one height, round and step. At the end: every double-signer that a correct
validator could see is in some correct validator's evidence, and every correct validator decided
new heights within a bounded time after the last fault healed (liveness).
"""

from __future__ import annotations

import hashlib
import heapq
import random
from dataclasses import dataclass, field
from typing import Union

from chain.consensus.machine import (
    FUTURE_HEIGHTS,
    NIL,
    PRECOMMIT,
    PREVOTE,
    Broadcast,
    Decide,
    Evidence,
    Input,
    Machine,
    Proposal,
    Schedule,
    Timeout,
    Timeouts,
    Vote,
)

BEHAVIOURS = ("double_sign", "equivocate", "invalid", "silent", "adversary")
TIMEOUTS = Timeouts(propose_ms=600, prevote_ms=300, precommit_ms=300, increase_ms=200)


def is_valid(value: bytes) -> bool:
    return not value.startswith(b"bad")


def _value(*parts: object) -> bytes:
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).digest()


@dataclass
class Scenario:
    """What goes wrong in one run, all drawn from its seed (see `Scenario.draw`)."""

    seed: int
    validators: int
    powers: tuple[int, ...]
    byzantine: dict[int, str]
    gst_ms: int
    late_share: float  # before GST, the share of messages held back until after GST (precommits: 1.6x)
    partition: tuple[frozenset[int], ...]  # groups cut from each other before GST (empty: none)
    crashes: tuple[tuple[int, int, int], ...]  # (validator, down at ms, up at ms)
    delay_ms: tuple[int, int] = (5, 120)
    liveness_ms: int = 30_000  # after the last fault heals, each correct validator decides within this
    run_ms: int = 0

    @classmethod
    def draw(cls, seed: int) -> "Scenario":
        rng = random.Random(seed)
        f = rng.choice((1, 1, 2))
        n = 3 * f + 1
        powers = tuple(rng.choice((1, 1, 2, 3)) for _ in range(n)) if rng.random() < 0.5 else (1,) * n
        # Byzantine validators hold less than 1/3 of the power.
        byzantine: dict[int, str] = {}
        order = list(range(n))
        rng.shuffle(order)
        for index in order[: rng.randint(0, f)]:
            if 3 * (sum(powers[i] for i in byzantine) + powers[index]) < sum(powers):
                byzantine[index] = rng.choice(BEHAVIOURS)
        correct = [i for i in range(n) if i not in byzantine]
        gst = rng.choice((0, 2_000, 6_000, 12_000))
        partition: tuple[frozenset[int], ...] = ()
        if gst and rng.random() < 0.4:
            cut = set(rng.sample(range(n), rng.randint(1, n - 1)))
            partition = (frozenset(cut), frozenset(set(range(n)) - cut))
        crashes = []
        for index in rng.sample(correct, rng.randint(0, min(2, len(correct)))):
            down = rng.randint(500, 15_000)
            crashes.append((index, down, down + rng.randint(300, 8_000)))
        scenario = cls(seed, n, powers, byzantine, gst, rng.choice((0.0, 0.2, 0.4, 0.6)), partition, tuple(crashes))
        healed = max([gst] + [up for _, _, up in crashes])
        scenario.run_ms = healed + scenario.liveness_ms
        return scenario


@dataclass
class Node:
    index: int
    key: bytes
    machine: Machine
    log: list[Input] = field(default_factory=list)  # the write-ahead log: every input taken, in order
    up: bool = True
    epoch: int = 0  # timers of an earlier life are void after a crash
    seen: set = field(default_factory=set)
    decisions: dict[int, bytes] = field(default_factory=dict)
    decided_at: dict[int, int] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)
    signed: dict[tuple[int, int, str], bytes] = field(default_factory=dict)


@dataclass
class Outcome:
    seed: int
    violations: list[str]
    heights: dict[int, int]  # correct validator -> decided height reached
    events: int


class Simulation:
    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.rng = random.Random(scenario.seed * 7919 + 1)
        self.keys = [bytes([index]) * 32 for index in range(scenario.validators)]
        self.powers = dict(zip(self.keys, scenario.powers))
        self.nodes = [self._new_node(index) for index in range(scenario.validators)]
        self.now = 0
        self.queue: list[tuple[int, int, int, int, object]] = []
        self.sequence = 0
        self.violations: list[str] = []
        # Every message a correct validator saw, by height (what gossip and block sync can resend).
        self.history_at: dict[int, list[Union[Proposal, Vote]]] = {}
        self.seen_anywhere: set = set()
        self.equivocated: set[bytes] = set()  # byzantine keys that sent two different votes
        self.decided: dict[int, tuple[int, bytes]] = {}  # height -> (first correct decider, value)
        self.events = 0

    # --- building -----------------------------------------------------------------------

    def _new_node(self, index: int) -> Node:
        key = self.keys[index]
        behaviour = self.scenario.byzantine.get(index)

        def new_value(height: int, index=index) -> bytes:
            return (b"bad" if behaviour == "invalid" else b"") + _value(index, height)

        machine = Machine(key, self.powers, 1, is_valid, new_value, TIMEOUTS)
        return Node(index, key, machine)

    def correct(self) -> list[Node]:
        return [node for node in self.nodes if node.index not in self.scenario.byzantine]

    # --- running ------------------------------------------------------------------------

    def run(self) -> Outcome:
        for node in self.nodes:
            if self.scenario.byzantine.get(node.index) != "silent":
                self._act(node, node.machine.start())
        for index, down, up in self.scenario.crashes:
            self._push(down, index, "crash", None)
            self._push(up, index, "restart", None)
        while self.queue and self.queue[0][0] <= self.scenario.run_ms:
            at, _, index, epoch, item = heapq.heappop(self.queue)
            self.now = at
            self.events += 1
            node = self.nodes[index]
            if item == "crash":
                node.up, node.epoch = False, node.epoch + 1
                continue
            if item == "restart":
                self._restart(node)
                continue
            if not node.up or (isinstance(item, Timeout) and epoch != node.epoch):
                continue
            self._deliver(node, item)
        self._check_end()
        heights = {node.index: max(node.decisions, default=0) for node in self.correct()}
        return Outcome(self.scenario.seed, self.violations, heights, self.events)

    def _push(self, at: int, index: int, epoch_or_kind, item) -> None:
        if isinstance(epoch_or_kind, str):
            item, epoch = epoch_or_kind, 0
        else:
            epoch = epoch_or_kind
        self.sequence += 1
        heapq.heappush(self.queue, (at, self.sequence, index, epoch, item))

    def _deliver(self, node: Node, item: Input) -> None:
        byzantine = node.index in self.scenario.byzantine
        if isinstance(item, (Proposal, Vote)):
            if item in node.seen:
                return
            if not byzantine and item not in self.seen_anywhere:
                self._remember(item)
                self._send(node, item)  # gossip: relayed the first time a correct validator sees it
            if item.height > node.machine.height + FUTURE_HEIGHTS:
                return  # too far ahead for it now: sent again when it gets there (`_resend`)
            node.seen.add(item)
        node.log.append(item)
        self._act(node, node.machine.handle(item))

    def _act(self, node: Node, outputs: list) -> None:
        for output in outputs:
            if isinstance(output, Broadcast):
                self._broadcast(node, output.message)
            elif isinstance(output, Schedule):
                self._push(self.now + output.delay_ms, node.index, node.epoch, output.timeout)
            elif isinstance(output, Decide):
                node.decisions[output.height] = output.value
                node.decided_at.setdefault(output.height, self.now)
                if node.index not in self.scenario.byzantine:
                    self._check_decision(node, output)
                    # Its window of accepted heights moved on: what it dropped as too far ahead
                    # comes again (block sync, in the real network).
                    self._resend(node, output.height + 1 + FUTURE_HEIGHTS)
            elif isinstance(output, Evidence):
                node.evidence.append(output)

    def _broadcast(self, node: Node, message: Union[Proposal, Vote]) -> None:
        behaviour = self.scenario.byzantine.get(node.index)
        if behaviour == "silent":
            return
        if behaviour is None:
            if isinstance(message, Vote):
                key = (message.height, message.round, message.kind)
                if node.signed.setdefault(key, message.value) != message.value:
                    self.violations.append(f"{self.now} ms: correct validator {node.index} signed two {message.kind}s at {key}")
            node.seen.add(message)
            self._remember(message)
            self._send(node, message)
            return
        if behaviour in ("double_sign", "adversary") and isinstance(message, Vote):
            other = Vote(message.kind, message.height, message.round, NIL if message.value else _value("x", message), node.key)
            self.equivocated.add(node.key)
            self._split(node, message, other)
        elif behaviour in ("equivocate", "adversary") and isinstance(message, Proposal):
            other = Proposal(message.height, message.round, _value("other", message), message.valid_round, node.key)
            self._split(node, message, other)
        elif behaviour == "invalid" and isinstance(message, Proposal):
            self._send(node, message)
            for kind in (PREVOTE, PRECOMMIT):
                self._send(node, Vote(kind, message.height, message.round, message.value, node.key))
        else:
            self._send(node, message)

    def _split(self, node: Node, first, second) -> None:
        others = [peer for peer in self.nodes if peer is not node]
        self.rng.shuffle(others)
        half = len(others) // 2
        for peer in others[:half]:
            self._send_to(node, peer, first)
        for peer in others[half:]:
            self._send_to(node, peer, second)

    def _remember(self, message: Union[Proposal, Vote]) -> None:
        at = self.history_at.setdefault(message.height, [])
        if message not in self.seen_anywhere:
            self.seen_anywhere.add(message)
            at.append(message)

    def _send(self, node: Node, message) -> None:
        for peer in self.nodes:
            if peer is not node:
                self._send_to(node, peer, message)

    def _send_to(self, node: Node, peer: Node, message) -> None:
        scenario = self.scenario
        low, high = scenario.delay_ms
        at = self.now + self.rng.randint(low, high)
        if self.now < scenario.gst_ms:
            cut = any(node.index in group and peer.index not in group for group in scenario.partition)
            # Precommits are held back more often: it splits validators between rounds, where locks matter.
            late = scenario.late_share * (1.6 if isinstance(message, Vote) and message.kind == PRECOMMIT else 1.0)
            if cut or self.rng.random() < late:
                at = scenario.gst_ms + self.rng.randint(low, high)
        self._push(at, peer.index, peer.epoch, message)

    def _restart(self, node: Node) -> None:
        """Rebuild the machine from the write-ahead log, then catch up on what was missed."""
        node.up = True
        node.epoch += 1
        fresh = self._new_node(node.index).machine
        outputs = fresh.start()
        for item in node.log:
            outputs.extend(fresh.handle(item))
        node.machine = fresh
        # Replayed outputs: its messages go out again (the same ones), its timers are re-armed.
        self._act(node, outputs)
        node.seen = set(item for item in node.log if not isinstance(item, Timeout))
        for height in range(node.machine.height, node.machine.height + FUTURE_HEIGHTS + 1):
            self._resend(node, height)

    def _resend(self, node: Node, height: int) -> None:
        """What correct peers saw at a height, sent again to a validator that may have missed it."""
        low, high = self.scenario.delay_ms
        for message in self.history_at.get(height, ()):
            if message not in node.seen:
                self._push(self.now + self.rng.randint(low, high), node.index, node.epoch, message)

    # --- invariants ---------------------------------------------------------------------

    def _check_decision(self, node: Node, decision: Decide) -> None:
        """Agreement and validity, checked the moment a correct validator decides."""
        first = self.decided.setdefault(decision.height, (node.index, decision.value))
        if first[1] != decision.value:
            self.violations.append(
                f"{self.now} ms: agreement broken at height {decision.height}: validator {first[0]} decided "
                f"{first[1].hex()}, validator {node.index} {decision.value.hex()}"
            )
        if not is_valid(decision.value):
            self.violations.append(f"{self.now} ms: validator {node.index} decided an invalid value at {decision.height}")
        if 3 * sum(self.powers[vote.sender] for vote in decision.precommits) <= 2 * sum(self.powers.values()):
            self.violations.append(f"{self.now} ms: a decision at {decision.height} without precommits of 2/3")

    def _check_end(self) -> None:
        healed = self.scenario.run_ms - self.scenario.liveness_ms
        for node in self.correct():
            later = [height for height, at in node.decided_at.items() if at > healed]
            if not later:
                self.violations.append(
                    f"liveness: validator {node.index} decided nothing in the {self.scenario.liveness_ms} ms after "
                    f"the faults healed at {healed} ms (it is at height {node.machine.height})"
                )
        caught = {evidence.first.sender for node in self.correct() for evidence in node.evidence}
        for key in self.equivocated - caught:
            self.violations.append(f"evidence: the double-signs of validator {key[0]} were never recorded")
        wrongly = caught - {self.keys[i] for i in self.scenario.byzantine}
        for key in wrongly:
            self.violations.append(f"evidence: correct validator {key[0]} was accused")


def simulate(seed: int) -> Outcome:
    return Simulation(Scenario.draw(seed)).run()
