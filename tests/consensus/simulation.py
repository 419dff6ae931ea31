"""A deterministic simulation of Tendermint validators on a virtual network (issue 16's consensus tests).

Every validator is a `chain.consensus.machine.Machine`. The network delivers each message after a
seeded random delay; before the global stabilisation time (GST) it may also hold messages back
until after GST (delays, drops that gossip makes good, reorderings) and cut the validators into
partitions. Correct validators relay every message they see for the first time (gossip), so
votes a byzantine validator split between peers reach everyone. Up to f of 3f+1 (by voting power)
are byzantine: double-signing, proposing two values, proposing and voting for an invalid value, or
silent.

Correct validators fail and come back in three ways (issue 28):

- a crash, then a restart that rebuilds the machine by replaying its write-ahead log (every input
  it took, in order), after which it is sent what it missed;
- a restart from an empty database (`rm -rf chains/<id>/db`): machine, log and decided heights are
  gone, and a block it builds now differs from the one it built before. It follows the chain
  (block sync: it learns decided heights from its peers) and joins consensus when caught up;
- a wrong clock: its timers run fast or slow and its clock jumps, then the clock is fixed and the
  node restarts from its log. Where a validity check reads the local clock (`judges_by_clock`, the
  rule "a block's time at most 30 s ahead of the local clock" that the driver used to apply), a
  replay can judge a proposal differently than the first time.

Every signature of a correct validator passes a real `SignState` (chain/consensus/signstate.py) on
a temporary file that survives the node's restarts: a message the guard refuses is not sent.

A second family of scenarios, `Scenario.lock_attack`, is an adversary aimed at the locking rule:
f byzantine validators and a network that lets one correct validator see a value decided in round
0 while the others, some locked on it, see no decision and are offered another value in round 1.

After every event the invariants are checked: no two correct validators decide different values
at one height (agreement), every decided value is valid, and no correct validator sends two
different votes or proposals for one height, round and step, across all its lives. At the end:
every double-signer that a correct validator could see is in some correct validator's evidence,
and every correct validator decided new heights within a bounded time after the last fault healed
(liveness).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

from chain.consensus.machine import (
    FUTURE_HEIGHTS,
    NIL,
    PRECOMMIT,
    PREVOTE,
    PROPOSE,
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
from chain.consensus.proposer import Priorities
from chain.consensus.signstate import SignRefused, SignState

BEHAVIOURS = ("double_sign", "equivocate", "invalid", "silent", "adversary")
RESTARTS = ("log", "empty")  # replay the write-ahead log, or start from an empty database
TIMEOUTS = Timeouts(propose_ms=600, prevote_ms=300, precommit_ms=300, increase_ms=200)
SYNC_MS = 200  # a node that follows the chain asks its peers for new blocks this often
DRIFT_MS = 30_000  # the old validity rule: a block's time at most this far ahead of the local clock
# A run ends once every correct validator decided this many heights after the faults healed
# (liveness is shown; later heights repeat the same synchronous rounds).
SETTLE_HEIGHTS = 5
CHAIN_ID, GENESIS_HASH = "simulation", bytes(32)


def is_valid(value: bytes) -> bool:
    return not value.startswith(b"bad")


def _value(*parts: object) -> bytes:
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).digest()


def _position(message: Union[Proposal, Vote]) -> tuple[int, int, str]:
    """The (height, round, step) a message is signed for: two different messages at one are a double-sign."""
    return message.height, message.round, message.kind if isinstance(message, Vote) else PROPOSE


def _priorities_at(powers: dict[bytes, int], height: int) -> Priorities:
    """The proposer priorities height `height` starts from (one step per height from height 1)."""
    priorities = Priorities.start(powers)
    for _ in range(height - 1):
        priorities = priorities.next_height()
    return priorities


class UnlockedMachine(Machine):
    """The machine without its locking rule (lines 22 and 28 never see a lock): what the lock attack must catch."""

    locked_value = property(lambda self: None, lambda self, value: None)
    locked_round = property(lambda self: -1, lambda self, value: None)


@dataclass(frozen=True)
class ClockFault:
    """One correct validator's clock goes wrong at `start_ms` (a jump, then a rate) and is fixed at `fixed_ms`,
    when the node restarts from its write-ahead log."""

    validator: int
    start_ms: int
    fixed_ms: int
    rate: float  # local milliseconds per real millisecond while wrong
    jump_ms: int  # the local clock jumps by this at start_ms
    judges_by_clock: bool  # its validity check reads the local clock (the rule the driver used to apply)

    def offset(self, now: int) -> int:
        """Local time minus real time at `now`."""
        if not self.start_ms <= now < self.fixed_ms:
            return 0
        return self.jump_ms + int((self.rate - 1) * (now - self.start_ms))

    def real_time(self, local_deadline: int, now: int) -> int:
        """When (real time, not before `now`) the local clock reaches `local_deadline`."""
        if not self.start_ms <= now < self.fixed_ms:
            return max(now, local_deadline)
        at = self.start_ms + (local_deadline - self.start_ms - self.jump_ms) / self.rate
        return max(now, int(at))


@dataclass
class Scenario:
    """What goes wrong in one run, all drawn from its seed (see `Scenario.draw` and `Scenario.lock_attack`)."""

    seed: int
    validators: int
    powers: tuple[int, ...]
    byzantine: dict[int, str]
    gst_ms: int
    late_share: float  # before GST, the share of messages held back until after GST (precommits: 1.6x)
    partition: tuple[frozenset[int], ...]  # groups cut from each other before GST (empty: none)
    crashes: tuple[tuple[int, int, int, str], ...]  # (validator, down at ms, up at ms, one of RESTARTS)
    clock: ClockFault | None = None
    attack_height: int = 0  # lock attack: the first height it may attack (0: no attack)
    hold_relays: bool = False  # before GST, relayed messages arrive only after GST (only the signer's own copy)
    delay_ms: tuple[int, int] = (5, 120)
    liveness_ms: int = 30_000  # after the last fault heals, each correct validator decides within this
    run_ms: int = 0

    @property
    def healed_ms(self) -> int:
        return max([self.gst_ms] + [up for _, _, up, _ in self.crashes] + [self.clock.fixed_ms if self.clock else 0])

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
        late_share = rng.choice((0.0, 0.2, 0.4, 0.6))
        # Drawn after everything above, so a seed keeps the faults it had before issue 28.
        crashes = [(index, down, up, rng.choice(RESTARTS)) for index, down, up in crashes]
        clock = None
        steady = [index for index in correct if index not in {crash[0] for crash in crashes}]
        if steady and rng.random() < 0.35:
            start = rng.randint(500, 10_000)
            clock = ClockFault(
                rng.choice(steady), start, start + rng.randint(2_000, 15_000), rng.choice((0.5, 1.0, 2.0)),
                rng.choice((-40_000, -40_000, -5_000, 0, 5_000, 40_000)), rng.random() < 0.5,
            )
        scenario = cls(seed, n, powers, byzantine, gst, late_share, partition, tuple(crashes), clock)
        scenario.run_ms = scenario.healed_ms + scenario.liveness_ms
        return scenario

    @classmethod
    def lock_attack(cls, seed: int) -> "Scenario":
        """Byzantine validators with as much power as stays under 1/3, all run by the lock adversary; relays
        are held back until GST; no other fault."""
        rng = random.Random(f"lock attack {seed}")
        f = rng.choice((1, 2))
        n = 3 * f + 1
        powers = tuple(rng.choice((1, 1, 2, 3)) for _ in range(n)) if rng.random() < 0.3 else (1,) * n
        byzantine: dict[int, str] = {}
        order = list(range(n))
        rng.shuffle(order)
        for index in order:
            if 3 * (sum(powers[i] for i in byzantine) + powers[index]) < sum(powers):
                byzantine[index] = "lock_attack"
        gst = rng.choice((8_000, 10_000, 12_000))
        scenario = cls(seed, n, powers, byzantine, gst, 0.0, (), (), None, rng.randint(1, 3), True)
        scenario.run_ms = scenario.healed_ms + scenario.liveness_ms
        return scenario


@dataclass(frozen=True)
class AttackPlan:
    """The lock adversary's plan for one height (round 0: A decided by one; round 1: B offered to the rest)."""

    height: int
    first: bytes  # A, proposed in round 0
    second: bytes  # B, proposed in round 1 by a byzantine proposer
    decider: int  # the correct validator that gets the byzantine precommits for A
    lockers: frozenset[int]  # correct validators that see A's polka in round 0 (the decider among them)
    blind: frozenset[int]  # correct validators from whom the network hides A's votes in round 0


@dataclass(frozen=True)
class Timer:
    number: int
    timeout: Timeout


@dataclass
class Node:
    index: int
    key: bytes
    machine: Machine
    log: list[Input] = field(default_factory=list)  # the write-ahead log: every input taken, in order
    up: bool = True
    epoch: int = 0  # timers of an earlier life (or of a clock before a jump) are void
    seen: set = field(default_factory=set)
    decisions: dict[int, bytes] = field(default_factory=dict)
    decided_at: dict[int, int] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)
    # Every value this validator sent for a (height, round, step), over all its lives.
    sent: dict[tuple[int, int, str], set[bytes]] = field(default_factory=dict)
    sign_state: SignState | None = None
    incarnation: int = 0  # databases lost so far: a block built after a loss differs from the one before
    syncing: bool = False  # following the chain after an empty-database restart, not yet in consensus
    timers: dict[int, tuple[int, Timeout]] = field(default_factory=dict)  # pending: number -> (local deadline, timeout)


@dataclass
class Outcome:
    seed: int
    violations: list[str]
    heights: dict[int, int]  # correct validator -> decided height reached
    events: int
    refused: dict[str, int]  # signatures the guard refused: "repeat" (sent before), "conflict", "stale"
    attacked: bool = False  # the lock adversary found a split to try


class Simulation:
    def __init__(self, scenario: Scenario, guard: bool = True, wait_for_sync: bool = True,
                 machine: type[Machine] = Machine):
        """`guard` False: no SignState; `wait_for_sync` False: a node restarted from an empty database starts
        consensus at once from height 1; `machine`: the machine every validator runs."""
        self.scenario = scenario
        self.guard = guard
        self.wait_for_sync = wait_for_sync
        self.machine_class = machine
        self.rng = random.Random(scenario.seed * 7919 + 1)
        self.keys = [bytes([index]) * 32 for index in range(scenario.validators)]
        self.powers = dict(zip(self.keys, scenario.powers))
        self.now = 0
        self.queue: list[tuple[int, int, int, int, object]] = []
        self.sequence = 0
        self.timer_numbers = itertools.count()
        self.violations: list[str] = []
        # Every message a correct validator saw, by height (what gossip and block sync can resend).
        self.history_at: dict[int, list[Union[Proposal, Vote]]] = {}
        self.seen_anywhere: set = set()
        self.equivocated: set[bytes] = set()  # byzantine keys that sent two different votes
        self.decided: dict[int, tuple[int, bytes]] = {}  # height -> (first correct decider, value)
        self.events = 0
        self.refused = {"repeat": 0, "conflict": 0, "stale": 0}
        self.conflicts_refused: list[tuple[int, str]] = []  # (validator, what the guard said)
        self.settled: set[int] = set()
        self._directory = tempfile.TemporaryDirectory(prefix="signstate-", dir=_fast_directory())
        self.nodes = [self._new_node(index) for index in range(scenario.validators)]
        self.plan = self._plan_attack() if scenario.attack_height else None
        self.attacked = False

    # --- building -----------------------------------------------------------------------

    def _new_node(self, index: int) -> Node:
        node = Node(index, self.keys[index], None)  # type: ignore[arg-type]
        node.machine = self._new_machine(node)
        if self.guard and index not in self.scenario.byzantine:
            node.sign_state = self._sign_state(node)
        return node

    def _sign_state(self, node: Node) -> SignState:
        """The node's SignState, read from its file (kept across every restart, as beside a key file)."""
        return SignState(Path(self._directory.name) / f"{node.index}.json", CHAIN_ID, GENESIS_HASH, node.key)

    def _new_machine(self, node: Node, height: int = 1) -> Machine:
        behaviour = self.scenario.byzantine.get(node.index)

        def new_value(height: int) -> bytes:
            if behaviour is not None:
                return (b"bad" if behaviour == "invalid" else b"") + _value(node.index, height)
            return _value(node.index, height, node.incarnation)

        def judge(value: bytes) -> bool:
            return self._judge(node, value)

        guarded = self.guard and behaviour is None
        return self.machine_class(
            node.key, self.powers, height, judge, new_value, TIMEOUTS, _priorities_at(self.powers, height),
            may_sign=(lambda message: self._sign(node, message)) if guarded else (lambda message: True),
        )

    def _judge(self, node: Node, value: bytes) -> bool:
        """Validity as this node sees it now: with `judges_by_clock`, a clock more than DRIFT_MS behind makes
        every honest block look too far in the future."""
        clock = self.scenario.clock
        if clock is not None and clock.judges_by_clock and clock.validator == node.index:
            if clock.offset(self.now) < -DRIFT_MS:
                return False
        return is_valid(value)

    def correct(self) -> list[Node]:
        return [node for node in self.nodes if node.index not in self.scenario.byzantine]

    # --- running ------------------------------------------------------------------------

    def run(self) -> Outcome:
        try:
            return self._run()
        finally:
            self._directory.cleanup()

    def _run(self) -> Outcome:
        for node in self.nodes:
            if self.scenario.byzantine.get(node.index) != "silent":
                self._act(node, node.machine.start())
        for index, down, up, kind in self.scenario.crashes:
            self._push(down, index, 0, "crash")
            self._push(up, index, 0, "restart" if kind == "log" else "restart empty")
        clock = self.scenario.clock
        if clock is not None:
            self._push(clock.start_ms, clock.validator, 0, "clock")
            self._push(clock.fixed_ms, clock.validator, 0, "fix")
        if self.plan is not None and self.plan.height == 1:
            self._attack()
        correct = len(self.correct())
        while self.queue and self.queue[0][0] <= self.scenario.run_ms and len(self.settled) < correct:
            at, _, index, epoch, item = heapq.heappop(self.queue)
            self.now = at
            self.events += 1
            node = self.nodes[index]
            if isinstance(item, str):
                self._control(node, item)
                continue
            if not node.up:
                continue
            if isinstance(item, Timer):
                if epoch != node.epoch:
                    continue
                node.timers.pop(item.number, None)
                item = item.timeout
            self._deliver(node, item)
        self._check_end()
        heights = {node.index: max(node.decisions, default=0) for node in self.correct()}
        return Outcome(self.scenario.seed, self.violations, heights, self.events, dict(self.refused), self.attacked)

    def _control(self, node: Node, event: str) -> None:
        if event == "crash":
            node.up, node.epoch, node.timers = False, node.epoch + 1, {}
        elif event == "restart":
            self._restart(node)
        elif event == "restart empty":
            self._restart_empty(node)
        elif event == "sync":
            self._sync(node)
        elif event == "clock":
            self._rearm_timers(node)
        elif event == "fix":
            node.epoch, node.timers = node.epoch + 1, {}
            self._restart(node)

    def _push(self, at: int, index: int, epoch: int, item) -> None:
        self.sequence += 1
        heapq.heappush(self.queue, (at, self.sequence, index, epoch, item))

    def _deliver(self, node: Node, item: Input) -> None:
        if node.syncing:
            return  # not in consensus yet: what it misses is sent again when it joins (`_join`)
        byzantine = node.index in self.scenario.byzantine
        if isinstance(item, (Proposal, Vote)):
            if item in node.seen:
                return
            if not byzantine and item not in self.seen_anywhere:
                self._remember(item)
                self._send(node, item, relay=True)  # gossip: relayed the first time a correct validator sees it
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
                self._schedule(node, output)
            elif isinstance(output, Decide):
                self._decided(node, output)
            elif isinstance(output, Evidence):
                node.evidence.append(output)

    def _decided(self, node: Node, decision: Decide) -> None:
        node.decisions[decision.height] = decision.value
        node.decided_at.setdefault(decision.height, self.now)
        if node.index in self.scenario.byzantine:
            return
        self._check_decision(node, decision)
        if sum(at > self.scenario.healed_ms for at in node.decided_at.values()) >= SETTLE_HEIGHTS:
            self.settled.add(node.index)
        # Its window of accepted heights moved on: what it dropped as too far ahead comes again
        # (block sync, in the real network).
        self._resend(node, decision.height + 1 + FUTURE_HEIGHTS)
        if self.plan is not None and decision.height + 1 == self.plan.height:
            self._attack()

    # --- timers and clocks --------------------------------------------------------------

    def _local_now(self, node: Node) -> int:
        clock = self.scenario.clock
        return self.now + (clock.offset(self.now) if clock is not None and clock.validator == node.index else 0)

    def _timer_at(self, node: Node, local_deadline: int) -> int:
        clock = self.scenario.clock
        if clock is None or clock.validator != node.index:
            return max(self.now, local_deadline)
        return clock.real_time(local_deadline, self.now)

    def _schedule(self, node: Node, output: Schedule) -> None:
        number = next(self.timer_numbers)
        deadline = self._local_now(node) + output.delay_ms
        node.timers[number] = (deadline, output.timeout)
        self._push(self._timer_at(node, deadline), node.index, node.epoch, Timer(number, output.timeout))

    def _rearm_timers(self, node: Node) -> None:
        """The clock jumped and changed its rate: each pending timer fires when the new clock reaches its deadline."""
        node.epoch += 1
        for number, (deadline, timeout) in node.timers.items():
            self._push(self._timer_at(node, deadline), node.index, node.epoch, Timer(number, timeout))

    # --- the signing guard and the network ----------------------------------------------

    def _broadcast(self, node: Node, message: Union[Proposal, Vote]) -> None:
        behaviour = self.scenario.byzantine.get(node.index)
        if behaviour == "silent":
            return
        if behaviour is None:
            position = _position(message)
            values = node.sent.setdefault(position, set())
            values.add(message.value)
            if len(values) > 1:
                self.violations.append(
                    f"{self.now} ms: correct validator {node.index} signed two {position[2]}s at {position}")
            node.seen.add(message)
            self._remember(message)
            self._send(node, message)
            return
        if behaviour == "lock_attack":
            if self.plan is None or message.height != self.plan.height or message.round > 1:
                self._send(node, message)  # the adversary speaks for it in rounds 0 and 1 of the attacked height
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

    def _sign(self, node: Node, message: Union[Proposal, Vote]) -> bool:
        """The guard between a correct validator's machine and the network: SignState.authorize, then record.
        True: signed now, or the very message it sent before (a replay; sending it again changes nothing).
        A refusal is counted: a repeat of what it sent, a conflict with it, or stale (never sent there)."""
        height, round_number, step = position = _position(message)
        try:
            again = node.sign_state.authorize(height, round_number, step, message.value)
        except SignRefused as refusal:
            sent = node.sent.get(position)
            kind = "stale" if sent is None else "repeat" if message.value in sent else "conflict"
            self.refused[kind] += 1
            if kind == "conflict":
                self.conflicts_refused.append((node.index, f"{self.now} ms: {refusal}"))
            return kind == "repeat"
        if again is None:
            node.sign_state.record(height, round_number, step, message.value, repr(message).encode())
        return True

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

    def _send(self, node: Node, message, relay: bool = False) -> None:
        for peer in self.nodes:
            if peer is not node:
                self._send_to(node, peer, message, relay)

    def _send_to(self, node: Node, peer: Node, message, relay: bool = False) -> None:
        scenario = self.scenario
        low, high = scenario.delay_ms
        at = self.now + self.rng.randint(low, high)
        if self.now < scenario.gst_ms:
            cut = any(node.index in group and peer.index not in group for group in scenario.partition)
            # Precommits are held back more often: it splits validators between rounds, where locks matter.
            late = scenario.late_share * (1.6 if isinstance(message, Vote) and message.kind == PRECOMMIT else 1.0)
            held = (relay and scenario.hold_relays) or self._hidden_by_attack(node, peer, message)
            if cut or held or (late and self.rng.random() < late):
                at = scenario.gst_ms + self.rng.randint(low, high)
        self._push(at, peer.index, peer.epoch, message)

    # --- restarts -----------------------------------------------------------------------

    def _restart(self, node: Node) -> None:
        """Rebuild the machine from the write-ahead log, then catch up on what was missed."""
        node.up = True
        node.epoch += 1
        fresh = self._new_machine(node)
        outputs = fresh.start()
        for item in node.log:
            outputs.extend(fresh.handle(item))
        node.machine = fresh
        # Replayed outputs: its messages go to the guard again (the same ones: refused as repeats, or
        # sent again when they are the last signed), its timers are re-armed.
        self._act(node, outputs)
        node.seen = set(item for item in node.log if not isinstance(item, Timeout))
        for height in range(node.machine.height, node.machine.height + FUTURE_HEIGHTS + 1):
            self._resend(node, height)

    def _restart_empty(self, node: Node) -> None:
        """Start again with no machine state, no log and no decided heights; the sign state file is kept."""
        node.up = True
        node.epoch += 1
        node.log, node.seen, node.decisions, node.timers = [], set(), {}, {}
        node.incarnation += 1
        if node.sign_state is not None:
            node.sign_state = self._sign_state(node)
        if not self.wait_for_sync:
            # The defect of the devnet: consensus at once from the node's own (empty) head.
            self._join(node, 1)
            return
        node.syncing = True
        node.machine = self._new_machine(node)
        self._push(self.now + self._sync_delay(), node.index, 0, "sync")

    def _sync_delay(self) -> int:
        low, high = self.scenario.delay_ms
        return 2 * self.rng.randint(low, high)

    def _sync(self, node: Node) -> None:
        """Block sync's stand-in: take the decided heights (with their commits) of the correct peer that is
        furthest; join consensus when a round of sync brings nothing new."""
        if not node.up:
            return
        peers = [peer for peer in self.correct() if peer is not node and peer.up and not peer.syncing]
        if not peers:
            self._push(self.now + SYNC_MS, node.index, 0, "sync")
            return
        furthest = max(peers, key=lambda peer: len(peer.decisions))
        learned = {height: value for height, value in furthest.decisions.items() if height not in node.decisions}
        for height, value in learned.items():
            if self.decided.get(height, (None, value))[1] != value:
                self.violations.append(f"{self.now} ms: block sync served another value at height {height}")
        node.decisions.update(learned)
        if learned:
            self._push(self.now + SYNC_MS, node.index, 0, "sync")
            return
        node.syncing = False
        self._join(node, len(node.decisions) + 1)

    def _join(self, node: Node, height: int) -> None:
        """Start consensus at `height`, and send the node what its peers saw there."""
        node.machine = self._new_machine(node, height)
        self._act(node, node.machine.start())
        for later in range(height, height + FUTURE_HEIGHTS + 1):
            self._resend(node, later)

    def _resend(self, node: Node, height: int) -> None:
        """What correct peers saw at a height, sent again to a validator that may have missed it."""
        low, high = self.scenario.delay_ms
        for message in self.history_at.get(height, ()):
            if message not in node.seen:
                self._push(self.now + self.rng.randint(low, high), node.index, node.epoch, message)

    # --- the lock adversary -------------------------------------------------------------

    def _plan_attack(self) -> AttackPlan | None:
        """The first height from `attack_height` whose round 1 a byzantine validator proposes, and a split of
        the correct validators that lets one decide A in round 0 while the others can still form a polka for
        B in round 1 unless a lock stops them."""
        total = sum(self.powers.values())
        byzantine_power = sum(self.scenario.powers[index] for index in self.scenario.byzantine)
        correct = [node.index for node in self.correct()]
        power = {index: self.scenario.powers[index] for index in correct}
        for height in range(self.scenario.attack_height, self.scenario.attack_height + 4 * len(self.keys)):
            priorities = _priorities_at(self.powers, height)
            first, second = (self.keys.index(priorities.proposer(r)) for r in (0, 1))
            if second not in self.scenario.byzantine:
                continue
            splits = []
            for size in range(1, len(correct)):
                for lockers in itertools.combinations(correct, size):
                    locked = sum(power[index] for index in lockers)
                    if not (3 * (locked + byzantine_power) > 2 * total and 3 * locked <= 2 * total):
                        continue
                    for decider in lockers:
                        rest = locked - power[decider]
                        if 3 * (total - power[decider]) > 2 * total and 3 * (rest + byzantine_power) > total:
                            splits.append((frozenset(lockers), decider))
            if not splits:
                continue
            lockers, decider = self.rng.choice(splits)
            value_a = _value("A", height) if first in self.scenario.byzantine else _value(first, height, 0)
            return AttackPlan(height, value_a, _value("B", height), decider, lockers, frozenset(correct) - lockers)
        return None

    def _attack(self) -> None:
        """Everything the byzantine validators send in rounds 0 and 1 of the attacked height, at once."""
        plan = self.plan
        if self.attacked:
            return
        self.attacked = True
        height = plan.height
        first_proposer, second_proposer = (
            self.keys.index(_priorities_at(self.powers, height).proposer(r)) for r in (0, 1))
        for node in (self.nodes[index] for index in self.scenario.byzantine):
            others = [peer for peer in self.nodes if peer is not node]
            if node.index == first_proposer:
                for peer in others:
                    value = _value("A'", height) if peer.index in plan.blind else plan.first
                    self._send_to(node, peer, Proposal(height, 0, value, -1, node.key))
            for peer in others:
                prevote = NIL if peer.index in plan.blind else plan.first
                precommit = plan.first if peer.index == plan.decider else NIL
                self._send_to(node, peer, Vote(PREVOTE, height, 0, prevote, node.key))
                self._send_to(node, peer, Vote(PRECOMMIT, height, 0, precommit, node.key))
            if node.index == second_proposer:
                self._send(node, Proposal(height, 1, plan.second, -1, node.key))
            self._send(node, Vote(PREVOTE, height, 1, plan.second, node.key))
            self._send(node, Vote(PRECOMMIT, height, 1, plan.second, node.key))
            self.equivocated.add(node.key)

    def _hidden_by_attack(self, node: Node, peer: Node, message) -> bool:
        """Before GST the network hides from the blind validators the round-0 votes of correct ones for A."""
        plan = self.plan
        return (
            plan is not None and isinstance(message, Vote) and peer.index in plan.blind
            and node.index not in self.scenario.byzantine
            and (message.height, message.round, message.value) == (plan.height, 0, plan.first)
        )

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
        healed = self.scenario.healed_ms
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


def _fast_directory() -> str | None:
    """/dev/shm where there is one: SignState fsyncs every signature, which costs little in memory."""
    shared = Path("/dev/shm")
    return str(shared) if shared.is_dir() else None


def simulate(seed: int, **options) -> Outcome:
    return Simulation(Scenario.draw(seed), **options).run()


def simulate_lock_attack(seed: int, **options) -> Outcome:
    return Simulation(Scenario.lock_attack(seed), **options).run()
